/*
 * types.h - column types: the fixed grammar of what may reach SQL as a type.
 *
 * Users name types the DuckDB way (VARCHAR, DECIMAL(12,2), TIMESTAMP) or the
 * Keboola base-type way (STRING, NUMERIC, FLOAT, ...). Both are mapped here to
 * one canonical DuckDB type name; anything else is rejected, so a type string
 * is never passed through to SQL unchecked. Also the grammar of points in
 * time (changed_since, changed_until). Pure, thread-safe.
 */
#ifndef DS_CORE_TYPES_H
#define DS_CORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DS_TYPE_MAX 48

/*
 * Writes the canonical type for in ("string" -> "VARCHAR", "decimal(12, 2)" ->
 * "DECIMAL(12,2)") into out. column names the column for the error message.
 */
ds_status_t ds_type_canonical(const char *in, const char *column, char out[DS_TYPE_MAX], ds_err_t *err);
/* True for VARCHAR (the type of Keboola's string tables). */
bool ds_type_is_string(const char *canonical);

/* The forms ds_time_parse accepts, as error messages list them. */
#define DS_TIME_FORMS                                                                                                 \
    "use unix seconds (1767225600), an ISO 8601 date or date-time (2026-01-02, 2026-01-02T03:04:05Z, "             \
    "2026-01-02 03:04:05.5+02:00; without a zone: UTC) or a time relative to now (-15 minutes, -2 hours, "        \
    "-7 days, -1 week; seconds, minutes, hours, days or weeks, singular or plural)"

/* Room for ds_time_format_utc's text and its NUL. */
#define DS_TIME_TEXT_MAX 32

/*
 * Turns a point in time given by a client (changed_since, changed_until) into
 * unix microseconds (UTC) in *out_us. Accepted: unix seconds ("1767225600",
 * optionally signed); an ISO 8601 date or date-time
 * "YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[[:]MM]]" (no zone = UTC);
 * a time relative to now_us (unix microseconds): "[+|-]N unit[s] [ago]" with
 * unit second, minute, hour, day or week (also "sec", "min"), or "now".
 * Years 0001 to 9999 only. field names the request field for the error, which
 * lists the accepted forms. Pure, thread-safe.
 */
ds_status_t ds_time_parse(const char *v, int64_t now_us, const char *field, int64_t *out_us, ds_err_t *err);

/*
 * Writes us (unix microseconds) as UTC text "YYYY-MM-DD HH:MM:SS.ffffff", the
 * one form backends receive in ds_where_t (a TIMESTAMP literal for both SQL
 * engines). us must be inside ds_time_parse's range.
 */
void ds_time_format_utc(int64_t us, char out[DS_TIME_TEXT_MAX]);

#endif
