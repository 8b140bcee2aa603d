/*
 * sandbox.h - the SQL sandbox: where user SQL runs (workspaces, queries).
 *
 * DESIGN
 * User SQL never runs in the engine. Each workspace has a DuckDB instance of
 * its own on its own file (<data>/workspaces/ws_<project>_<id>.duckdb), opened
 * with external access disabled (no file, glob, URL, ATTACH of a path, COPY
 * TO, EXPORT DATABASE), extension autoload/autoinstall and community
 * extensions off, its own memory_limit and threads, and then its
 * configuration locked (no SET/RESET/PRAGMA can loosen it). A project query
 * runs in a throw-away in-memory sandbox of the same kind. No project file is
 * ever attached to a sandbox.
 *
 * Storage reaches a sandbox only through the table function
 * ds_storage_scan(bucket, table [, columns := [...]] [, project := id]), registered through the
 * C API before the configuration is locked. Its bind finds the query the
 * service is running on that connection and asks that query's scan hook
 * (the command layer: it checks the workspace's grant and opens a read cursor
 * on the engine, a backend primitive) on every bind; a query the service does
 * not run (there is none) gets an error. Rows come from the engine as DuckDB
 * data chunks whose vectors the sandbox references, without copying.
 *
 * Queries: one statement per call (several, or none, is an error naming the
 * count); statement types outside an allow-list (SET, PRAGMA, ATTACH, COPY,
 * EXPORT, LOAD, INSTALL, CALL, ...) are refused before they run, as a second
 * wall behind the locked configuration. A watchdog thread interrupts
 * (duckdb_interrupt) every query past its deadline; a client's cancel
 * interrupts it too. SELECT results are capped at max_rows (truncated flag).
 *
 * Instances: at most DUCKSTORE_WS_MAX_OPEN are open; opening one more closes
 * the least recently used idle one (reopened on demand from its file). Memory
 * budget: DUCKSTORE_WS_MAX_OPEN x DUCKSTORE_WS_MEMORY_LIMIT (docs/security.md).
 * Each file has one owner: the sandbox table below, under one mutex.
 *
 * Thread-safety: every function may be called from any thread. Lock order:
 * the sandbox table mutex, then the run list mutex; neither is held while a
 * query runs.
 */
#ifndef DS_WS_SANDBOX_H
#define DS_WS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "duckstore/backend.h"

typedef struct ds_sandbox ds_sandbox_t;
struct ds_cancel;

typedef struct {
    int64_t memory_limit_bytes; /* per sandbox (DUCKSTORE_WS_MEMORY_LIMIT) */
    int64_t threads;            /* per sandbox (DUCKSTORE_WS_THREADS) */
    int64_t readers;            /* storage read-ahead threads, all sandboxes together (DUCKSTORE_WS_READERS) */
    int64_t max_open;           /* open sandboxes (DUCKSTORE_WS_MAX_OPEN) */
    int64_t max_rows;           /* default result cap (DUCKSTORE_WS_MAX_ROWS) */
    double timeout_s;           /* default and longest query time (DUCKSTORE_WS_TIMEOUT) */
    double idle_close_s;        /* an unused sandbox is closed after this long (DUCKSTORE_WS_IDLE_CLOSE); 0: never */
} ds_sandbox_limits_t;

/* Takes the limits (copied) and starts the watchdog. data_dir is absolute. */
ds_status_t ds_sandbox_start(const char *data_dir, const ds_sandbox_limits_t *lim, ds_err_t *err);
/* Closes every sandbox (checkpointing its file) and stops the watchdog. */
void ds_sandbox_stop(void);
const ds_sandbox_limits_t *ds_sandbox_limits(void);
/* Number of open sandbox instances (for /metrics and tests). */
int64_t ds_sandbox_open_count(void);

/*
 * Opens a scan of bucket.table for the running query (called by the
 * sandbox's table function at bind, on the query's thread). project (the
 * named parameter "project", NULL when absent: the query's own project),
 * columns (may be empty) and spec (the named parameter "spec", 0 when absent)
 * come from the SQL. On failure fills err (its message reaches the query's
 * error).
 */
typedef ds_status_t (*ds_sandbox_scan_fn)(void *ud, const char *project, const char *bucket, const char *table,
                                          const char *const *columns, size_t n_columns, int64_t spec,
                                          ds_be_scan_t **out, ds_err_t *err);

/*
 * The sandbox of key ("<project>/<workspace>"), opened on path (created when
 * missing) unless already open; path NULL: a new private in-memory sandbox
 * (key ignored) that closes on release. Release with ds_sandbox_release.
 */
ds_status_t ds_sandbox_acquire(const char *key, const char *path, ds_sandbox_t **out, ds_err_t *err);
void ds_sandbox_release(ds_sandbox_t **sb);
/* Closes key's sandbox (interrupting its queries and waiting for them) and removes path, its WAL and temp files. */
ds_status_t ds_sandbox_remove(const char *key, const char *path, ds_err_t *err);

typedef enum {
    DS_SANDBOX_USER = 0,      /* a user's statement: one, of an allowed type */
    DS_SANDBOX_READ_ONLY = 1, /* a user's statement that may only read (SELECT, EXPLAIN) */
    DS_SANDBOX_SERVICE = 2    /* a statement the service built (loads, clear): any type */
} ds_sandbox_mode_t;

typedef struct {
    const char *sql;
    ds_sandbox_mode_t mode;
    double timeout_s; /* <= 0: the default; capped at the default */
    int64_t max_rows; /* <= 0: the default */
    ds_sandbox_scan_fn scan; /* NULL: storage is not readable by this query */
    void *scan_ud;
    struct ds_cancel *cancel; /* the request's cancellation, or NULL */
} ds_sandbox_query_t;

typedef struct {
    size_t n_columns;
    const char **names;
    const char **types;
    size_t n_rows;
    const char ***rows; /* rows[r][c] as text; NULL = SQL NULL */
    bool truncated;
    int64_t rows_affected; /* of the last statement that inserted, updated, deleted or created rows */
} ds_sandbox_result_t;

/*
 * Runs q on sb. Results live in arena. A statement that fails, times out or is
 * refused is DS_QUERY_FAILED with DuckDB's message (no host path); a client's
 * cancel is DS_CANCELLED.
 */
ds_status_t ds_sandbox_query(ds_sandbox_t *sb, ds_arena_t *arena, const ds_sandbox_query_t *q,
                             ds_sandbox_result_t *out, ds_err_t *err);

/* How ds_sandbox_query_file writes rows. */
typedef enum {
    /* CSV: a header, every value enclosed in double quotes (quotes doubled), SQL NULL an empty unquoted field */
    DS_SANDBOX_CSV,
    /* JSON lines: first {"columns": [{"name", "type"}]}, then one JSON array per row, values strings or null */
    DS_SANDBOX_JSONL,
} ds_sandbox_lines_t;

/*
 * Writes every row of q->sql (one SELECT; a user's text is checked as by
 * ds_sandbox_query, and must be a SELECT) to path, a new file, in format. No
 * row cap. out gets the column names and types (arena) and n_rows; no rows
 * are kept in memory beyond DuckDB's result.
 */
ds_status_t ds_sandbox_query_file(ds_sandbox_t *sb, ds_arena_t *arena, const ds_sandbox_query_t *q,
                                  ds_sandbox_lines_t format, const char *path, ds_sandbox_result_t *out, ds_err_t *err);

#endif
