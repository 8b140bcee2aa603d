/*
 * pg.h - what the PostgreSQL backend's files share (not a public header).
 *
 * The plugin sees only the public headers (include/duckstore) and libpq: it has its own SQL
 * text buffer and quoting (pg_sql.c), never the core's.
 *
 * Files: pg_backend.c (settings, connection pool, circuit breaker, health,
 * the metadata schema, projects, buckets, tables), pg_sql.c (buffer, quoting,
 * statement helpers, error mapping, names and types), pg_data.c (import,
 * export, preview, profile, delete rows, schema changes).
 */
#ifndef DS_BE_POSTGRES_PG_H
#define DS_BE_POSTGRES_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "duckstore/backend.h"

#define PG_BACKEND "postgres"
#define PG_META "\"_duckstore\""
/* PostgreSQL keeps identifiers up to NAMEDATALEN - 1 bytes. */
#define PG_NAME_MAX 63

/* ---- SQL text (pg_sql.c) ---- */

/* A growable string; starts zeroed. On allocation failure it latches oom and appends stop. */
typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} pgbuf_t;

void pb_add(pgbuf_t *b, const char *s, size_t n);
void pb_puts(pgbuf_t *b, const char *s);
void pb_printf(pgbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends name as a double-quoted identifier ("a""b"). */
void pb_ident(pgbuf_t *b, const char *name);
/* Appends s as a string literal ('it''s'); standard_conforming_strings is on for every connection. */
void pb_literal(pgbuf_t *b, const char *s);
/* Appends "schema"."table". */
void pb_qualified(pgbuf_t *b, const char *schema, const char *table);
/*
 * The content, or NULL when an allocation failed while building it (pg_run
 * refuses NULL: a statement missing a piece is never run). Never pass it to a
 * printf "%s": append with pb_add_buf, or use pb_text in messages.
 */
const char *pb_cstr(const pgbuf_t *b);
/* Appends src; a failed src fails b (so does pb_puts(b, NULL)). */
void pb_add_buf(pgbuf_t *b, const pgbuf_t *src);
/* For messages only: the content, or "(out of memory)". */
const char *pb_text(const pgbuf_t *b);
void pb_reset(pgbuf_t *b);
void pb_free(pgbuf_t *b);

/* ---- the backend ---- */

typedef struct {
    PGconn *conn;
    bool busy;
} pg_slot_t;

typedef enum { BREAKER_CLOSED = 0, BREAKER_OPEN = 1 } pg_breaker_state_t;

typedef struct {
    const ds_host_api_t *host;
    /* connection parameters (malloc'd; password never logged) */
    char *host_name, *port, *user, *password, *database;
    int connect_timeout_s;
    int pool_size;
    int retry_ms; /* breaker: fail fast this long after a failure; the monitor probes this often */
    int acquire_timeout_ms;
    /* the pool: lock guards slots, breaker and meta_ready */
    pthread_mutex_t lock;
    pthread_cond_t freed;   /* a slot was released */
    pthread_cond_t wake;    /* the monitor: breaker opened, or stopping */
    pg_slot_t *slots;
    /* circuit breaker */
    pg_breaker_state_t state;
    double opened_at; /* monotonic seconds */
    int64_t failures;
    char last_error[512];
    /* the monitor thread probes while the breaker is open */
    pthread_t monitor;
    bool monitor_started;
    bool stopping;
    /* the metadata schema exists (set once per backend instance); meta_lock guards these */
    bool meta_ready;
    bool foreign_owner;  /* the database belongs to another data directory */
    char owner_dir[1024];
    pthread_mutex_t meta_lock;
} pg_be_t;

/* One call's connection. */
typedef struct {
    pg_be_t *be;
    pg_slot_t *slot;
    PGconn *c;
    ds_be_call_t *call;
    ds_err_t *err;
    bool broken;     /* the connection failed: discard it on release */
    char sqlstate[6]; /* of the last failed statement, or "" */
} pg_use_t;

/* Takes a pooled connection for call (fail fast with DS_UNAVAILABLE while the breaker is open). */
ds_status_t pg_use_begin(pg_be_t *be, ds_be_call_t *call, pg_use_t *u);
/* Returns it (rolling back a transaction left open). */
void pg_use_end(pg_use_t *u);

/*
 * Runs sql with text parameters (NULL entries are SQL NULL). With out, the
 * result is returned there (PQclear it); otherwise discarded. Failures map to
 * a status in u->err (see pg_map_error); a lost connection trips the breaker.
 */
ds_status_t pg_run(pg_use_t *u, PGresult **out, const char *sql, int n, const char *const *params);
/* pg_run without parameters or result. */
ds_status_t pg_exec(pg_use_t *u, const char *sql);
/* A single integer cell (0 for NULL or no rows). */
ds_status_t pg_query_int(pg_use_t *u, const char *sql, int n, const char *const *params, int64_t *out);
/*
 * Asks PostgreSQL whether value converts to pgtype (the metadata schema's
 * try_cast, which raises nothing): DS_OK, or DS_INVALID_ARGUMENT "<what>:
 * "<value>" is not a valid <pgtype> value", so a client never sees
 * PostgreSQL's conversion error for a value it gave.
 */
ds_status_t pg_check_value(pg_use_t *u, const char *what, const char *value, const char *pgtype);
/* BEGIN / COMMIT; on fn failure ROLLBACK. */
ds_status_t pg_in_txn(pg_use_t *u, ds_status_t (*fn)(pg_use_t *, void *), void *ud);
/* The SQLSTATE of the last failed statement on u ("" when none). */
const char *pg_last_sqlstate(const pg_use_t *u);
/* Records a lost connection: the breaker opens and the slot is discarded. */
void pg_connection_lost(pg_use_t *u, const char *why);

/* Copies a cell into the call's arena (NULL for SQL NULL). */
char *pg_cell(pg_use_t *u, PGresult *r, int row, int col);
int64_t pg_cell_int(PGresult *r, int row, int col);

/* ---- names and types (pg_sql.c) ---- */

/* The physical PostgreSQL name of a logical name: itself when it fits, else a prefix and a hash. */
void pg_phys_name(const char *logical, char out[PG_NAME_MAX + 1]);
/* The schema of project's bucket: "<project>/<bucket>" when it fits, else a prefix and a hash. */
void pg_schema_name(const char *project, const char *bucket, char out[PG_NAME_MAX + 1]);
/* The name of the index over a table's primary key columns ("ds_pk_<hash of the table>"). */
void pg_index_name(const char *phys_table, char out[PG_NAME_MAX + 1]);
/* The PostgreSQL type for a canonical duckstore type, or NULL when there is none. */
const char *pg_type_of(const char *canonical, char *buf, size_t bufsz);
/* True for canonical numeric types (avg is shown for them). */
bool pg_type_numeric(const char *canonical);
/* True for VARCHAR. */
bool pg_type_is_string(const char *canonical);
/*
 * Appends the column as text the way the DuckDB backend shows values
 * (booleans as true/false); prefix is a table alias plus "." or "".
 */
void pg_text_expr(pgbuf_t *b, const char *prefix, const char *column, const char *canonical);

/* ---- metadata (pg_backend.c) ---- */

/* A table as the data operations need it: logical names, physical names, canonical types. */
typedef struct {
    ds_be_table_t t;   /* logical description (arena) */
    const char *schema; /* physical schema */
    const char *phys;   /* physical table name */
} pg_table_t;

/* Loads bucket.table (columns, primary key, times; no counts). DS_NOT_FOUND (2004) when absent. */
ds_status_t pg_table_describe(pg_use_t *u, const char *bucket, const char *table, pg_table_t *out);
/* Sets the column's comment (canonical type, logical name, default) after a change. */
ds_status_t pg_column_comment(pg_use_t *u, const pg_table_t *t, const char *column, const char *canonical,
                              const char *default_value);
/* Marks bucket.table imported and/or changed now. */
ds_status_t pg_touch(pg_use_t *u, const char *bucket, const char *table, bool imported, bool changed);
/* Exact row count and storage bytes of a table. */
ds_status_t pg_table_counts(pg_use_t *u, const char *schema, const char *phys, int64_t *rows, int64_t *bytes);
/* (Re)creates the non-unique index over the primary key columns (none when n == 0). */
ds_status_t pg_pk_index(pg_use_t *u, const pg_table_t *t, const char *const *columns, size_t n);

/* ---- table data (pg_data.c) ---- */

ds_status_t pg_table_import(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                            const ds_import_t *in, const char *const *paths, size_t n_paths, ds_import_result_t *out);
ds_status_t pg_table_export(void *self, ds_be_call_t *call, const char *bucket, const char *table, const ds_export_t *in,
                            const char *out_dir, int64_t slice_bytes, const char ***paths, size_t *n_paths,
                            int64_t *rows);
ds_status_t pg_table_preview(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_preview_t *in, ds_preview_result_t *out);
ds_status_t pg_table_profile(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             ds_profile_result_t *out);
ds_status_t pg_table_delete_rows(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                 const ds_where_t *where, int64_t *deleted, int64_t *table_rows);
ds_status_t pg_column_add(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                          const ds_be_column_t *column);
ds_status_t pg_column_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column);
ds_status_t pg_column_alter(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column,
                            const ds_column_alter_t *alter);
ds_status_t pg_primary_key_set(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                               const char *const *columns, size_t n);

/* ---- idempotency records (pg_idem.c) ---- */
ds_status_t pg_idem_lookup(void *self, ds_be_call_t *call, const char *token, int64_t not_before,
                           ds_be_idem_rec_t *out);
/* Records u->call->idem (when set) with the write's count; call inside the write's transaction. */
ds_status_t pg_idem_record(pg_use_t *u, int64_t count);
/* pg_in_txn, and when fn succeeds pg_idem_record(u, 0) in the same transaction (metadata writes). */
ds_status_t pg_in_txn_recorded(pg_use_t *u, ds_status_t (*fn)(pg_use_t *, void *), void *ud);

#endif
