/*
 * types.h - column types: the fixed grammar of what may reach SQL as a type.
 *
 * Users name types the DuckDB way (VARCHAR, DECIMAL(12,2), TIMESTAMP) or the
 * Keboola base-type way (STRING, NUMERIC, FLOAT, ...). Both are mapped here to
 * one canonical DuckDB type name; anything else is rejected, so a type string
 * is never passed through to SQL unchecked. Pure, thread-safe.
 */
#ifndef DS_CORE_TYPES_H
#define DS_CORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define DS_TYPE_MAX 48

/*
 * Writes the canonical type for in ("string" -> "VARCHAR", "decimal(12, 2)" ->
 * "DECIMAL(12,2)") into out. column names the column for the error message.
 */
ds_status_t ds_type_canonical(const char *in, const char *column, char out[DS_TYPE_MAX], ds_err_t *err);
/* True for VARCHAR (the type of Keboola's string tables). */
bool ds_type_is_string(const char *canonical);

/*
 * Checks a point in time given by a client (changed_since, changed_until):
 * unix seconds ("1767225600", optionally signed), or a date with an optional
 * time "YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][Z|(+|-)HH[:MM]]". field names
 * the request field for the error. Pure, thread-safe.
 */
ds_status_t ds_time_check(const char *v, const char *field, ds_err_t *err);

#endif
