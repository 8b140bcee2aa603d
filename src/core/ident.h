/*
 * ident.h - identifier validation and the one SQL quoting function.
 *
 * DESIGN
 * Every name that reaches SQL (project, bucket, table, column) is validated
 * here before any SQL is built, and is then quoted with ds_ident_quote, the only
 * function in the tree that writes an identifier into SQL text. Validation is
 * strict (REST.md's grammar), so quoting is a second line of defence, not the
 * first. Pure functions, thread-safe.
 */
#ifndef DS_CORE_IDENT_H
#define DS_CORE_IDENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define DS_PROJECT_ID_MAX 64
#define DS_BUCKET_ID_MAX 96
#define DS_NAME_MAX 64

/* Project ids: [A-Za-z0-9_-]{1,64}. */
ds_status_t ds_ident_check_project(const char *id, ds_err_t *err);
/*
 * Bucket ids: Keboola's "<stage>.c-<name>" (stage in|out), or any
 * [A-Za-z0-9_.-]{1,96} that is not reserved (leading "_", "." or "..", a
 * name of DuckDB's own schemas). field names the request field for the error.
 */
ds_status_t ds_ident_check_bucket(const char *id, const char *field, ds_err_t *err);
/* Bucket stage: "in" or "out". */
ds_status_t ds_ident_check_stage(const char *stage, ds_err_t *err);
/* Bucket name part: [A-Za-z0-9_-]{1,64} (the "c-" prefix is added when missing). */
ds_status_t ds_ident_check_bucket_name(const char *name, ds_err_t *err);
/*
 * Table and column names: [A-Za-z0-9_]{1,64}, not made of digits only, not
 * starting with "_ds", not "_timestamp", and for columns not "rowid" (all
 * reserved). what is "table" or "column" (the message says it; "column" also
 * selects the column rules).
 */
ds_status_t ds_ident_check_name(const char *name, const char *what, ds_err_t *err);
/* Storage File keys: relative, no "..", no "//", no NUL, printable, <= 1024 bytes. */
ds_status_t ds_ident_check_file_key(const char *key, ds_err_t *err);

/*
 * Writes name as a double-quoted SQL identifier ("a""b") into out (size outsz).
 * Returns false when it does not fit; out is then "".
 */
bool ds_ident_quote(const char *name, char *out, size_t outsz);
/*
 * Writes s as a single-quoted SQL string literal into out (size outsz).
 * Returns false when it does not fit; out is then "".
 */
bool ds_sql_literal(const char *s, char *out, size_t outsz);

#endif
