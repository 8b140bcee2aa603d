/*
 * ddb.c - DuckDB statement helpers. See ddb.h.
 */
#include "ddb.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/status.h"

/* Fatal errors (FATAL, INTERNAL, "database has been invalidated") any DuckDB instance reported so far. */
static atomic_uint_fast64_t fatal_events;

uint64_t ds_ddb_fatal_events(void) { return (uint64_t)atomic_load(&fatal_events); }

bool ds_ddb_is_fatal(duckdb_error_type type, const char *msg)
{
    /*
     * DuckDB invalidates the whole instance after a FATAL or INTERNAL error;
     * every later statement on it fails with "database has been invalidated"
     * (whatever error type the failing call reports, e.g. a prepare error).
     */
    return type == DUCKDB_ERROR_FATAL || type == DUCKDB_ERROR_INTERNAL ||
           (msg && strstr(msg, "database has been invalidated"));
}

bool ds_ddb_err_is_engine_failure(const ds_err_t *err)
{
    return err->status == DS_UNAVAILABLE &&
           strncmp(err->message, DS_DDB_ENGINE_FAILED, strlen(DS_DDB_ENGINE_FAILED)) == 0;
}

/*
 * Copies msg into out without what a client must not see: everything from
 * DuckDB's "Stack Trace:" on, and absolute host paths (a word starting with
 * '/' after a blank, a quote or a parenthesis becomes "<path>").
 */
void ds_ddb_client_text(const char *msg, char *out, size_t outsz)
{
    size_t o = 0;
    const char *end = strstr(msg, "Stack Trace:");
    if (!end)
        end = msg + strlen(msg);
    for (const char *p = msg; p < end && o + 1 < outsz;) {
        bool starts_word = p == msg || strchr(" \t\n\"'(`=:", p[-1]) != NULL;
        if (*p == '/' && starts_word) {
            const char *rep = "<path>";
            for (size_t k = 0; rep[k] && o + 1 < outsz; k++)
                out[o++] = rep[k];
            while (p < end && !strchr(" \t\n\"'):`", *p))
                p++;
            continue;
        }
        out[o++] = *p++;
    }
    while (o > 0 && (out[o - 1] == '\n' || out[o - 1] == ' '))
        o--;
    out[o] = '\0';
}

/* DuckDB reports a full volume as an I/O (or, from a commit, fatal) error carrying strerror's text. */
static bool volume_full(const char *m)
{
    return strstr(m, "No space left on device") || strstr(m, "Disk quota exceeded");
}

ds_status_t ds_ddb_error(ds_err_t *err, duckdb_error_type type, const char *msg)
{
    ds_status_t st = DS_INTERNAL;
    const char *m = msg ? msg : "unknown DuckDB error";
    char clean[DS_ERR_MSG_MAX];
    bool fatal = ds_ddb_is_fatal(type, m), invalidated = strstr(m, "database has been invalidated") != NULL;
    if (fatal) {
        /*
         * The instance is unusable until it is reopened (the DuckDB backend
         * does that, see duckdb_backend.c). The operator's log gets DuckDB's
         * whole text; the client a fixed message, never a stack trace or path.
         */
        atomic_fetch_add(&fatal_events, 1);
        ds_log(invalidated ? DS_LOG_WARN : DS_LOG_ERROR, "DuckDB %s: %s",
               invalidated ? "refused a statement, its instance is invalidated"
                           : "fatal error, its instance is invalidated",
               m);
    }
    if (fatal && (invalidated || !volume_full(m)))
        return ds_err_set(err, DS_UNAVAILABLE, "%s", DS_DDB_ENGINE_FAILED);
    if (volume_full(m))
        return ds_err_set(err, DS_INSUFFICIENT_STORAGE,
                          "no space left on the data volume: the write was not committed; free space and retry");
    if (type == DUCKDB_ERROR_OUT_OF_MEMORY || strstr(m, "Out of Memory Error")) {
        /*
         * The engine's memory limit is every request's budget: this one is
         * over it, the others go on. Only DuckDB's first line (the sizes):
         * its advice after it (SET ..., temp_directory) is for its own users.
         */
        ds_ddb_client_text(m, clean, sizeof(clean));
        clean[strcspn(clean, "\n")] = '\0';
        return ds_err_set(err, DS_RESOURCE_EXHAUSTED,
                          "the request needs more memory than the storage engine may use (DUCKSTORE_MEMORY_LIMIT); "
                          "it was stopped and its changes rolled back, and other requests are not affected. Narrow "
                          "it (a filter, fewer columns, a limit, a smaller file) or raise the limit. Engine: %s",
                          clean);
    }
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
    case DUCKDB_ERROR_INTERRUPT: /* duckdb_interrupt() from the call's cancellation hook */
        return ds_err_set(err, DS_CANCELLED, "the request was cancelled (deadline exceeded or client gone): %s", m);
    default:
        break;
    }
    ds_ddb_client_text(m, clean, sizeof(clean));
    /*
     * DuckDB names a NOT NULL violation by "<table>.<column>" in its own
     * words; say first which column and why, then quote it.
     */
    const char *nn = type == DUCKDB_ERROR_CONSTRAINT ? strstr(clean, "NOT NULL constraint failed: ") : NULL;
    if (nn) {
        const char *col = nn + strlen("NOT NULL constraint failed: ");
        const char *dot = strrchr(col, '.');
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(dot ? dot + 1 : col, " \n"), dot ? dot + 1 : col);
        return ds_err_setf(err, st, name, "column \"%s\" is NOT NULL and a row has no value for it (%s)", name, clean);
    }
    return ds_err_set(err, st, "%s", clean);
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
