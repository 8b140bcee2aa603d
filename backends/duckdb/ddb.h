/*
 * ddb.h - small helpers over DuckDB's C API for the DuckDB backend.
 *
 * Every statement goes through these, so DuckDB errors are mapped to duckstore
 * statuses in one place (catalog errors -> not found / already exists,
 * conversion and constraint errors -> invalid argument, a full volume ->
 * insufficient storage, a fatal error that invalidated the instance -> 503
 * unavailable with a fixed text, the rest -> internal; callers that read user
 * files reword those as invalid input). No client message carries DuckDB's
 * stack trace or a host path.
 * Values are bound as parameters, never spliced into SQL text; identifiers go
 * through ds_buf_ident.
 */
#ifndef DS_BE_DUCKDB_DDB_H
#define DS_BE_DUCKDB_DDB_H

#include <duckdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "duckstore/status.h"

/*
 * Runs sql with params bound as VARCHAR (NULL entries bind SQL NULL). When out
 * is non-NULL the result is returned there (caller destroys it with
 * duckdb_destroy_result); otherwise it is discarded. On failure the result is
 * destroyed and err filled.
 */
ds_status_t ds_ddb_run(duckdb_connection conn, ds_err_t *err, duckdb_result *out, const char *sql,
                       int nparams, const char *const *params);
/* ds_ddb_run without parameters and without a result. */
ds_status_t ds_ddb_exec(duckdb_connection conn, ds_err_t *err, const char *sql);
/* Maps a DuckDB error type and message onto err; returns the status. */
ds_status_t ds_ddb_error(ds_err_t *err, duckdb_error_type type, const char *msg);
/*
 * The client message of every error for which ds_ddb_is_fatal holds (503):
 * DuckDB's own text goes to the log only.
 */
#define DS_DDB_ENGINE_FAILED                                                                                           \
    "the storage engine failed internally and is being restarted; this request was not completed (the operator's "     \
    "log has the details); retry it shortly"
/* True for an error after which DuckDB has invalidated its whole instance (FATAL, INTERNAL, invalidated). */
bool ds_ddb_is_fatal(duckdb_error_type type, const char *msg);
/* True when err is the engine failure ds_ddb_error reported (DS_DDB_ENGINE_FAILED). */
bool ds_ddb_err_is_engine_failure(const ds_err_t *err);
/* How many fatal errors DuckDB reported in this process (any instance); only ever grows. */
uint64_t ds_ddb_fatal_events(void);
/* msg as a client may see it: no stack trace, absolute paths replaced by "<path>". */
void ds_ddb_client_text(const char *msg, char *out, size_t outsz);
/* A cell as a malloc'd string (free()), or NULL for SQL NULL. */
char *ds_ddb_cell(duckdb_result *r, idx_t col, idx_t row);
/* A cell as int64 (0 for NULL). */
int64_t ds_ddb_int(duckdb_result *r, idx_t col, idx_t row);

/*
 * Cancellation that sticks: duckdb_interrupt() stops the statement running on
 * a connection, but an interrupt that arrives while the connection is idle
 * (between two statements) is lost. While conn is watched by the calling
 * thread, ds_ddb_run refuses to start statements on it (DS_CANCELLED) once
 * *cancelled is true. Thread-local: watch and unwatch on the thread that runs
 * the statements; at most DS_DDB_MAX_WATCH connections per thread (more are
 * simply not watched). Temp tables and an open transaction of a refused
 * connection go when it disconnects.
 */
#define DS_DDB_MAX_WATCH 8
void ds_ddb_watch(duckdb_connection conn, const atomic_bool *cancelled);
void ds_ddb_unwatch(duckdb_connection conn);

#endif
