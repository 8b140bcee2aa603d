/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Lines are written with a single write() each, so lines from different
 * threads never interleave. Keys and secrets must never be passed in: callers
 * log ids, never credentials. Thread-safe.
 */
#ifndef DS_CORE_LOG_H
#define DS_CORE_LOG_H

#include <stdint.h>

#include "core/config.h"

void ds_log_set_level(ds_log_level_t level);
ds_log_level_t ds_log_get_level(void);
/* {"ts":..,"level":..,"msg":<formatted>} */
void ds_log(ds_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The access log line of one request. project may be NULL. Fields are
 * JSON-escaped here.
 */
void ds_log_request(const char *request_id, const char *method, const char *route, int status,
                    double duration_ms, const char *project, const char *transport);
/* Current time as RFC 3339 UTC with milliseconds, into out (>= 32 bytes). */
void ds_log_now_rfc3339(char *out, int outsz);
/* Unix seconds as RFC 3339 UTC ("2026-11-21T05:34:14Z") into out (>= 24 bytes). */
void ds_time_rfc3339(int64_t unix_s, char *out, int outsz);

#endif
