/*
 * ddb.c - DuckDB statement helpers. See ddb.h.
 */
#include "ddb.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* DuckDB reports a full volume as an I/O (or, from a commit, fatal) error carrying strerror's text. */
static bool volume_full(const char *m)
{
    return strstr(m, "No space left on device") || strstr(m, "Disk quota exceeded");
}

ds_status_t ds_ddb_error(ds_err_t *err, duckdb_error_type type, const char *msg)
{
    ds_status_t st = DS_INTERNAL;
    const char *m = msg ? msg : "unknown DuckDB error";
    /*
     * The statement failed, so its transaction did not commit. DuckDB's text
     * names host paths, which are not the client's business.
     */
    if (volume_full(m))
        return ds_err_set(err, DS_INSUFFICIENT_STORAGE,
                          "no space left on the data volume: the write was not committed; free space and retry");
    switch (type) {
    case DUCKDB_ERROR_CATALOG:
        st = strstr(m, "already exists") ? DS_ALREADY_EXISTS
             : strstr(m, "does not exist") ? DS_NOT_FOUND
                                           : DS_INVALID_ARGUMENT;
        break;
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_CONSTRAINT:
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_MISMATCH_TYPE:
        st = DS_INVALID_ARGUMENT;
        break;
    case DUCKDB_ERROR_TRANSACTION:
        st = DS_CONFLICT;
        break;
    case DUCKDB_ERROR_OUT_OF_MEMORY:
        st = DS_UNAVAILABLE;
        break;
    case DUCKDB_ERROR_INTERRUPT: /* duckdb_interrupt() from the call's cancellation hook */
        return ds_err_set(err, DS_CANCELLED, "the request was cancelled (deadline exceeded or client gone): %s", m);
    default:
        break;
    }
    return ds_err_set(err, st, "%s", m);
}

/* The connections watched by this thread (see ds_ddb_watch). */
static _Thread_local struct {
    duckdb_connection conn;
    const atomic_bool *cancelled;
} watched_[DS_DDB_MAX_WATCH];

void ds_ddb_watch(duckdb_connection conn, const atomic_bool *cancelled)
{
    for (int i = 0; i < DS_DDB_MAX_WATCH; i++)
        if (!watched_[i].conn) {
            watched_[i].conn = conn;
            watched_[i].cancelled = cancelled;
            return;
        }
}

void ds_ddb_unwatch(duckdb_connection conn)
{
    for (int i = 0; i < DS_DDB_MAX_WATCH; i++)
        if (watched_[i].conn == conn) {
            watched_[i].conn = NULL;
            watched_[i].cancelled = NULL;
        }
}

static bool cancelled(duckdb_connection conn)
{
    for (int i = 0; i < DS_DDB_MAX_WATCH; i++)
        if (watched_[i].conn == conn)
            return atomic_load(watched_[i].cancelled);
    return false;
}

ds_status_t ds_ddb_run(duckdb_connection conn, ds_err_t *err, duckdb_result *out, const char *sql,
                       int nparams, const char *const *params)
{
    duckdb_result res;
    duckdb_state state;
    if (!sql)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory while building an SQL statement; nothing was run");
    if (cancelled(conn))
        return ds_err_set(err, DS_CANCELLED, "the request was cancelled (deadline exceeded or client gone)");
    if (nparams == 0) {
        state = duckdb_query(conn, sql, &res);
    } else {
        duckdb_prepared_statement stmt = NULL;
        if (duckdb_prepare(conn, sql, &stmt) == DuckDBError) {
            ds_status_t st = ds_ddb_error(err, DUCKDB_ERROR_PARSER, duckdb_prepare_error(stmt));
            duckdb_destroy_prepare(&stmt);
            return st;
        }
        for (int i = 0; i < nparams; i++) {
            duckdb_state b = params[i] ? duckdb_bind_varchar(stmt, (idx_t)i + 1, params[i])
                                       : duckdb_bind_null(stmt, (idx_t)i + 1);
            if (b == DuckDBError) {
                duckdb_destroy_prepare(&stmt);
                return ds_err_set(err, DS_INTERNAL, "cannot bind parameter %d", i + 1);
            }
        }
        state = duckdb_execute_prepared(stmt, &res);
        duckdb_destroy_prepare(&stmt);
    }
    if (state == DuckDBError) {
        ds_status_t st = ds_ddb_error(err, duckdb_result_error_type(&res), duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        return st;
    }
    if (out)
        *out = res;
    else
        duckdb_destroy_result(&res);
    return DS_OK;
}

ds_status_t ds_ddb_exec(duckdb_connection conn, ds_err_t *err, const char *sql)
{
    return ds_ddb_run(conn, err, NULL, sql, 0, NULL);
}

char *ds_ddb_cell(duckdb_result *r, idx_t col, idx_t row)
{
    if (duckdb_value_is_null(r, col, row))
        return NULL;
    char *v = duckdb_value_varchar(r, col, row);
    char *copy = v ? strdup(v) : NULL;
    duckdb_free(v);
    return copy;
}

int64_t ds_ddb_int(duckdb_result *r, idx_t col, idx_t row)
{
    return duckdb_value_is_null(r, col, row) ? 0 : duckdb_value_int64(r, col, row);
}
