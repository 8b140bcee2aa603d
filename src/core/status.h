/*
 * status.h - lookups over the status map (include/duckstore/status.h) and the
 * error-detail helpers. Transports map a ds_status_t with these functions and
 * never switch on it themselves.
 */
#ifndef DS_CORE_STATUS_H
#define DS_CORE_STATUS_H

#include <stddef.h>

#include "duckstore/status.h"

/* The stable snake_case code ("not_found"). Never NULL; unknown values give "internal". */
const char *ds_status_code(ds_status_t st);
/* The HTTP status for st (200 for DS_OK). */
int ds_status_http(ds_status_t st);
/* The gRPC status code for st (0 for DS_OK). */
int ds_status_grpc(ds_status_t st);
/* Keboola's numeric exception code for st, or 0 for DS_OK. */
int ds_status_keboola(ds_status_t st);
/* The status whose HTTP status is http (first match), or DS_INTERNAL. */
ds_status_t ds_status_from_http(int http);

/*
 * Fills err (which may be NULL) and returns st, so a failure reads
 *   return ds_err_set(err, DS_NOT_FOUND, "table \"%s\" not found", name);
 * The message is printf-formatted and truncated to DS_ERR_MSG_MAX.
 */
ds_status_t ds_err_set(ds_err_t *err, ds_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like ds_err_set, also naming the request field at fault. */
ds_status_t ds_err_setf(ds_err_t *err, ds_status_t st, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Like ds_err_set, also setting Keboola's specific exception code (DS_KBC_*). */
ds_status_t ds_err_setk(ds_err_t *err, ds_status_t st, int keboola_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Resets err to success. */
void ds_err_clear(ds_err_t *err);
/* The Keboola code to report for err: its own if set, else the status's default. */
int ds_err_keboola(const ds_err_t *err);

#endif
