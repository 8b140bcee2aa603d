/*
 * internal.h - what the DuckDB backend's files share (not a public header).
 *
 * duckdb_backend.c owns the instance, project attach/detach and the catalog
 * operations; data.c the table-data operations (import, export, preview,
 * profile, delete rows, schema changes). Both work through a use_t: a pinned
 * project plus a connection whose default database is that project's file.
 */
#ifndef DS_BE_DUCKDB_INTERNAL_H
#define DS_BE_DUCKDB_INTERNAL_H

#include <duckdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/ident.h"
#include "core/lru.h"
#include "duckstore/backend.h"

#define META "_ds"

/* The error of a request allocation that failed (host->alloc/strdup gave NULL): 503, nothing run. */
#define ddb_oom(err) ds_err_set((err), DS_UNAVAILABLE, "out of memory; the request was not carried out")

/* CLOCK_MONOTONIC in seconds (import timers, the idle detach). */
static inline double ddb_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A project's in-memory metadata catalog (meta_cache.c). */
typedef struct ddb_mcat ddb_mcat_t;

typedef struct proj {
    struct proj *next;
    ddb_mcat_t *mcat; /* lives as long as the entry; filled while the file is attached */
    char id[DS_PROJECT_ID_MAX + 1];
    char alias[DS_PROJECT_ID_MAX + 3];
    int64_t refs;   /* calls using it (pins) */
    bool attached;  /* the file is attached (also while a DETACH of it runs) */
    bool attaching; /* an ATTACH of it runs, outside be->lock */
    bool detaching; /* a DETACH of it runs, outside be->lock */
    bool dropping;  /* the project is being dropped: no new pin; the entry stays until its files are gone */
    bool creating;  /* project_create is making its file: only that call may use it */
    /*
     * A write failed for lack of space: DuckDB's in-memory state of the file
     * may no longer match what is on disk (a later commit was seen to write
     * damaged blocks), so the file is detached once idle and attached afresh.
     */
    bool reload;
    /*
     * A compaction (compact.c) has the project for itself: no new pin until
     * it ends (acquire waits, bounded), and nothing detaches or forgets the
     * entry meanwhile.
     */
    bool compacting;
    /*
     * Changes whenever a call that may have written the project ends, and when
     * its file is attached (preview_cache.c): a value from be->epoch_seq.
     */
    _Atomic uint64_t data_epoch;
    double idle_since; /* CLOCK_MONOTONIC seconds when refs last fell to 0 (the idle detach, be_t.idle_detach_s) */
    uint64_t quiet_epoch; /* data_epoch at its last quiet checkpoint (be_t.quiet_checkpoint_s) */
} proj_t;

typedef struct {
    const ds_host_api_t *host;
    duckdb_database db;
    char dir[4096];
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when a project's refs drop to 0 or an ATTACH/DETACH ends */
    proj_t *projects;
    ds_lru_t *lru; /* attached projects */
    int64_t n_attached;
    int64_t n_attaching;
    int64_t n_detaching;
    int64_t peak_attached;
    int64_t max_open;
    /*
     * Engine recovery (see "Engine failure" in duckdb_backend.c): calls that
     * may hold a connection on db, whether db reported a fatal error and
     * awaits reopening, whether a call is reopening it, the fatal-error count
     * (ds_ddb_fatal_events) already looked at, and how often db was reopened.
     */
    int64_t db_users;
    bool broken;
    bool reopening;
    uint64_t fatal_seen;
    int64_t restarts;
    /* A project was attached since db was opened: the reaper may reopen db once all are detached again. */
    bool attached_since_open;
    bool test_hooks; /* DUCKSTORE_TEST_HOOKS=1: tests may provoke an engine failure */
    _Atomic uint64_t epoch_seq; /* the last data epoch handed out (proj_t.data_epoch) */
    struct ddb_pcache *pcache;  /* recent previews (preview_cache.c); NULL when turned off */
    /*
     * Memory back when idle: a project no call used for idle_detach_s seconds is detached by the reaper
     * thread, which frees its share of DuckDB's buffer pool (attached again on its next use). 0: off.
     */
    int64_t idle_detach_s;
    /*
     * Memory back after writes: a project written and then unused for quiet_checkpoint_s seconds is
     * checkpointed by the reaper, which moves its committed rows from DuckDB's in-memory segments (and
     * the WAL) into the file, where the buffer pool may evict them. 0: off (DuckDB checkpoints when
     * its WAL is large, and at the detach).
     */
    int64_t quiet_checkpoint_s;
    struct ds_periodic *reaper; /* core/periodic.h; NULL when both are off */
} be_t;

/* One call's working set: a connection and the pinned project. */

typedef struct {
    be_t *be;
    duckdb_connection conn;
    proj_t *p;
    ds_err_t *err;
    ds_be_call_t *call; /* its cancellation interrupts conn (host->cancel_hook) while the use lasts */
    bool hooked;
    atomic_bool cancelled; /* set by that interrupt: conn starts no more statements (ds_ddb_watch) */
    /*
     * What this use's transaction changed in the metadata the cache holds
     * (meta_cache.c): tables (bucket, name) and buckets (bucket, ""), or
     * everything (mc_all). Applied once the transaction committed.
     */
#define DDB_MC_NOTES 16
    struct {
        char bucket[DS_BUCKET_ID_MAX + 1];
        char table[DS_NAME_MAX + 1];
    } mc_note[DDB_MC_NOTES];
    int n_mc;
    bool mc_all;
    bool read_only; /* the use runs no statement that changes data: its end leaves the data epoch as it is */
} use_t;


/* Pins the call's project (attaching it) and opens a connection on it. create: the file may be new. */
ds_status_t ddb_use_begin(be_t *be, ds_be_call_t *call, bool create, use_t *u);
/* ddb_use_begin for a call that changes no table's data: its end keeps the cached previews (read_only). */
ds_status_t ddb_use_begin_read(be_t *be, ds_be_call_t *call, use_t *u);
void ddb_use_end(use_t *u);
/*
 * Background work (the history sweep) is no use to the idle detach: read the
 * project's idle clock before its use (ddb_idle_save: -1 when the project is
 * not attached) and put it back after (ddb_idle_restore: a project the work
 * attached counts as idle for the whole DUCKSTORE_BE_DUCKDB_IDLE_DETACH, so
 * the reaper detaches it at its next look). A call that used the project
 * meanwhile and still holds it keeps it; one that ended meanwhile may see it
 * detached early, and its next use attaches it again.
 */
double ddb_idle_save(be_t *be, const char *id);
void ddb_idle_restore(be_t *be, const char *id, double saved);
/* Runs fn inside BEGIN/COMMIT; rolls back when fn fails. */
ds_status_t ddb_in_txn(use_t *u, ds_status_t (*fn)(use_t *, void *), void *ud);
/* Exact row count of bucket.table. */
ds_status_t ddb_count_rows(use_t *u, const char *bucket, const char *table, int64_t *rows);
/*
 * byte_count of a table's metadata row that a write stored: "not measured
 * since that write" (see ddb_meta_write); readers measure it (ddb_bytes_known).
 */
#define DDB_BYTES_UNMEASURED (-1)
/*
 * *bytes as it is when it is a figure; when it is DDB_BYTES_UNMEASURED, the
 * storage bytes of [alias.]bucket.table as DuckDB's storage shows them now
 * (alias NULL: the connection's current database). Call outside the table's
 * writing transaction: inside it DuckDB's storage does not show its own rows.
 */
ds_status_t ddb_bytes_known(duckdb_connection c, const char *alias, const char *bucket, const char *table,
                            int64_t *bytes, ds_err_t *err);
/*
 * The row count and bytes of bucket.table's metadata row (bytes measured
 * when unmeasured): the figures GET table, table lists, project stats and
 * ObjectInfo report, so a write's response reads them here to say the same.
 */
ds_status_t ddb_meta_counts(use_t *u, const char *bucket, const char *table, int64_t *rows, int64_t *bytes);
/*
 * Asks the engine whether value converts to type (canonical) with TRY_CAST:
 * DS_OK, or DS_INVALID_ARGUMENT "<what>: "<value>" is not a valid <type>
 * value" with field set, so a client never sees DuckDB's conversion error
 * for a value it gave.
 */
ds_status_t ddb_check_value(use_t *u, const char *field, const char *what, const char *value, const char *type);
/* What ddb_meta_write changes in a table's metadata row (NULL / false: kept as it is). */
typedef struct {
    bool counts;             /* store the exact row count, counted now, and bytes as unmeasured */
    const char *primary_key; /* comma list */
    const char *import_at;   /* unix seconds, as text */
    const char *change_at;   /* unix seconds, as text */
} ddb_meta_t;
/*
 * Rewrites bucket.table's metadata row inside the caller's transaction (a
 * DELETE and an INSERT, never an UPDATE: see duckdb_backend.c); with nothing
 * to change it still writes the row, so concurrent writers of one table
 * conflict. No row: nothing happens.
 */
ds_status_t ddb_meta_write(use_t *u, const char *bucket, const char *table, const ddb_meta_t *m);
/* Stores bucket.table's exact row count in its metadata, bytes unmeasured (call inside the writing transaction). */
ds_status_t ddb_refresh_counts(use_t *u, const char *bucket, const char *table);
/* Columns (without _timestamp) of t->bucket.t->name into t (arena). */
ds_status_t ddb_load_columns(use_t *u, ds_be_call_t *call, ds_be_table_t *t);
/* Columns, primary key and times of bucket.table (no counts); DS_NOT_FOUND (2004) when absent. */
ds_status_t ddb_table_describe(use_t *u, ds_be_call_t *call, const char *bucket, const char *table, ds_be_table_t *t);
/*
 * The same outside a transaction: from the project's metadata cache when it
 * can answer (the committed definition), else ddb_table_describe. Reads that
 * plan or run one statement use it; checks inside a write's transaction use
 * ddb_table_describe, which sees that transaction's own view.
 */
ds_status_t ddb_table_describe_read(use_t *u, ds_be_call_t *call, const char *bucket, const char *table,
                                    ds_be_table_t *t);

/* Creates the bucket ud (a const ds_be_bucket_t *) inside the caller's transaction. */
ds_status_t ddb_bucket_create_txn(use_t *u, void *ud);
/* Drops bucket inside the caller's transaction: DS_NOT_FOUND when missing, DS_CONFLICT when it holds tables
 * and force is false; with force its tables go too (each keeps its history). */
ds_status_t ddb_bucket_drop_txn(use_t *u, const char *bucket, bool force);
/* Creates the table ud (a const ds_be_table_t *) and its metadata row inside the caller's transaction. */
ds_status_t ddb_table_create_txn(use_t *u, void *ud);
/*
 * What project files gained for development branches (branch.c): every
 * metadata row of _ds.tables gets a fresh version from a sequence whenever it
 * is written (each write rewrites the row), so a table's version changes
 * with every write; _ds.branches holds the branch records, _ds.branch_marks
 * the host's marks on branch tables. Runs with the project as default
 * database; a no-op on files that have it all.
 */
#define DDB_META_BRANCH_TABLES_DDL                                                                                     \
    "CREATE TABLE IF NOT EXISTS " META ".branches (id VARCHAR NOT NULL, name VARCHAR NOT NULL, "                       \
    "created_at BIGINT NOT NULL);"                                                                                     \
    "CREATE TABLE IF NOT EXISTS " META ".branch_marks (bucket VARCHAR NOT NULL, name VARCHAR NOT NULL, "               \
    "hidden BOOLEAN NOT NULL, base_version BIGINT NOT NULL);"
/* Table aliases (alias.c): one row per definition; files written before aliases get it on attach. */
#define DDB_META_ALIASES_DDL                                                                                           \
    "CREATE TABLE IF NOT EXISTS " META ".aliases (scope VARCHAR NOT NULL, bucket VARCHAR NOT NULL, "                   \
    "name VARCHAR NOT NULL, src_bucket VARCHAR NOT NULL, src_table VARCHAR NOT NULL, def VARCHAR NOT NULL, "           \
    "hidden BOOLEAN NOT NULL, created_at BIGINT NOT NULL);"
/* The row history behind time travel (history.c); files written before it get it on attach. */
#define DDB_META_HISTORY_DDL                                                                                           \
    "CREATE SEQUENCE IF NOT EXISTS " META ".hist_seq;"                                                                 \
    "CREATE TABLE IF NOT EXISTS " META ".hist_tables (hid BIGINT NOT NULL, bucket VARCHAR NOT NULL, "                  \
    "name VARCHAR NOT NULL, horizon_us BIGINT NOT NULL, dropped_us BIGINT);"                                           \
    "CREATE TABLE IF NOT EXISTS " META ".hist_writes (hid BIGINT NOT NULL, ver BIGINT NOT NULL, at_us BIGINT NOT NULL, " \
    "\"full\" BOOLEAN NOT NULL, removed BIGINT NOT NULL, added BIGINT NOT NULL, ts_hi BIGINT, stamp_lo BIGINT);"        \
    "CREATE TABLE IF NOT EXISTS " META ".hist_cols (hid BIGINT NOT NULL, ver BIGINT NOT NULL, pos INTEGER NOT NULL, "   \
    "name VARCHAR NOT NULL, type VARCHAR NOT NULL, nullable BOOLEAN NOT NULL, dflt VARCHAR, slot VARCHAR NOT NULL, "    \
    "pk_pos INTEGER);"
#define DDB_META_V2_DDL                                                                                                \
    "CREATE SEQUENCE IF NOT EXISTS " META ".version_seq;"                                                              \
    "ALTER TABLE " META ".tables ADD COLUMN IF NOT EXISTS version BIGINT DEFAULT nextval('" META ".version_seq');"     \
    DDB_META_BRANCH_TABLES_DDL DDB_META_HISTORY_DDL DDB_META_ALIASES_DDL                                               \
    "ALTER TABLE " META ".hist_writes ADD COLUMN IF NOT EXISTS ts_hi BIGINT;"                                         \
    "ALTER TABLE " META ".hist_writes ADD COLUMN IF NOT EXISTS stamp_lo BIGINT;"

/*
 * meta_cache.c: the in-memory metadata catalog of attached projects (see its
 * header). create/destroy go with the project entry; load fills it when the
 * file is attached, drop empties it when the file is detached.
 */
ddb_mcat_t *ddb_mcat_create(void);
void ddb_mcat_destroy(ddb_mcat_t **mc);
void ddb_mcat_load(be_t *be, proj_t *p);
void ddb_mcat_drop(ddb_mcat_t *mc);
/*
 * Every statement that changes a table's metadata row, a table's definition,
 * a bucket or more (note_all) notes it inside its transaction; ddb_in_txn
 * applies the notes after COMMIT (ddb_mcat_apply) and forgets them on a
 * rollback (ddb_mcat_notes_clear).
 */
void ddb_mcat_note_table(use_t *u, const char *bucket, const char *table);
void ddb_mcat_note_bucket(use_t *u, const char *bucket);
void ddb_mcat_note_all(use_t *u);
void ddb_mcat_notes_clear(use_t *u);
void ddb_mcat_apply(use_t *u);
/*
 * Answers from the cache of p (pinned by the caller, who holds a db use):
 * false when the cache cannot answer (then ask SQL); true with *st the
 * answer otherwise (results in the call's arena, errors in call->err, as the
 * SQL answers give them).
 */
bool ddb_mcat_table_get(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, const char *table,
                        ds_be_table_t *out, ds_status_t *st);
bool ddb_mcat_table_list(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, ds_be_table_t **items,
                         size_t *n, ds_status_t *st);
bool ddb_mcat_bucket_get(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out,
                         ds_status_t *st);
bool ddb_mcat_bucket_list(be_t *be, proj_t *p, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n,
                          ds_status_t *st);
bool ddb_mcat_project_stats(be_t *be, proj_t *p, ds_be_project_stats_t *out);
/* bucket.table's row count and bytes, when the cache holds it now (it is not loaded for this): true. */
bool ddb_mcat_counts(proj_t *p, const char *bucket, const char *table, int64_t *rows, int64_t *bytes);
/*
 * The same answers read from SQL every time (duckdb_backend.c): the fallback,
 * and what tests compare the cache with.
 */
ds_status_t ddb_sql_table_get(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              ds_be_table_t *out);
ds_status_t ddb_sql_table_list(void *self, ds_be_call_t *call, const char *bucket, ds_be_table_t **items, size_t *n);
ds_status_t ddb_sql_bucket_get(void *self, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out);
ds_status_t ddb_sql_bucket_list(void *self, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n);
ds_status_t ddb_sql_project_stats(void *self, ds_be_call_t *call, ds_be_project_stats_t *out);

/*
 * compact.c: project_compact. The project state it needs from
 * duckdb_backend.c: compact_take makes the caller the project's only user
 * (sets compacting, waits at most wait_ms for the running calls to end,
 * attaches the file when it is not); compact_detach and compact_attach
 * DETACH and ATTACH the file while it is taken; compact_give ends it (new
 * pins go ahead). Every one of them runs with a db use held (db_enter).
 */
ds_status_t ddb_project_compact(void *self, ds_be_call_t *call, const struct ds_be_compact *in,
                                struct ds_be_compact_result *out);
ds_status_t ddb_compact_take(be_t *be, const char *id, int64_t wait_ms, proj_t **out, ds_err_t *err);
ds_status_t ddb_compact_detach(be_t *be, proj_t *p, ds_err_t *err);
ds_status_t ddb_compact_attach(be_t *be, proj_t *p, ds_err_t *err);
void ddb_compact_give(be_t *be, proj_t *p);
ds_status_t ddb_db_enter(be_t *be, ds_err_t *err);
void ddb_db_leave(be_t *be);
/* Runs sql on a short-lived connection of the engine (default database: the in-memory one). */
ds_status_t ddb_admin_exec(be_t *be, const char *sql, ds_err_t *err);
/* The path of project id's file. */
void ddb_project_path(const be_t *be, const char *id, char *out, size_t outsz);
/* Removes what a compaction killed before its rename left next to path (its temporary file and log). */
void ddb_compact_leftovers(const char *path);
/* The same for every project file in dir (at start). */
void ddb_compact_leftovers_all(const char *dir);

/* branch.c: development branch primitives, wired into the ops table. */
ds_status_t ddb_table_version(void *self, ds_be_call_t *call, const char *bucket, const char *table, int64_t *version);
ds_status_t ddb_branch_create(void *self, ds_be_call_t *call, const ds_be_branch_t *branch);
ds_status_t ddb_branch_list(void *self, ds_be_call_t *call, ds_be_branch_t **items, size_t *n);
ds_status_t ddb_branch_drop(void *self, ds_be_call_t *call, const char *id, const char *bucket_prefix);
ds_status_t ddb_marks_list(void *self, ds_be_call_t *call, const char *bucket_prefix, ds_be_mark_t **items, size_t *n);
ds_status_t ddb_tables_move(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n);
/* Inside a transaction: moves[0..n) as tables_move applies them (branch.c). */
ds_status_t ddb_moves_txn(use_t *u, const ds_be_move_t *moves, size_t n);
/* Inside a transaction: items[0..n) as tables_restore restores them (snapshot.c). */
ds_status_t ddb_restore_txn(use_t *u, const ds_be_restore_t *items, size_t n);
ds_status_t ddb_tables_move_restore(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n_moves,
                                    const ds_be_restore_t *items, size_t n);

/* snapshot.c: tables made again from a snapshot's Parquet files, in one transaction. */
ds_status_t ddb_tables_restore(void *self, ds_be_call_t *call, const ds_be_restore_t *items, size_t n);
/* alias.c: the store of alias definitions, wired into the ops table. */
ds_status_t ddb_alias_put(void *self, ds_be_call_t *call, const ds_be_alias_t *alias);
ds_status_t ddb_alias_list(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name,
                           ds_be_alias_t **items, size_t *n);
ds_status_t ddb_alias_drop(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name);
/* Inside a transaction: the alias row (scope, bucket, name) becomes main's (DS_MOVE_ALIAS, branch.c). */
ds_status_t ddb_alias_merge_txn(use_t *u, const char *scope, const char *bucket, const char *name);

/* data.c: the table-data operations, wired into the ops table. */
ds_status_t ddb_table_count(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                            const ds_where_t *where, int64_t *rows);
ds_status_t ddb_table_profile_where(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                    const char *const *columns, size_t n, const ds_where_t *where,
                                    ds_profile_result_t *out);
ds_status_t ddb_table_import(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_import_t *in, const char *const *paths, size_t n_paths, ds_import_result_t *out);
ds_status_t ddb_table_export(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_export_t *in, const char *out_dir, int64_t slice_bytes, const char ***paths,
                             size_t *n_paths, int64_t *rows);
ds_status_t ddb_table_preview(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              const ds_preview_t *in, ds_preview_result_t *out);
ds_status_t ddb_table_profile(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              ds_profile_result_t *out);
ds_status_t ddb_table_delete_rows(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                  const ds_where_t *where, int64_t *deleted, int64_t *table_rows);
ds_status_t ddb_column_add(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                           const ds_be_column_t *column);
ds_status_t ddb_column_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column);
ds_status_t ddb_column_alter(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column,
                             const ds_column_alter_t *alter);
ds_status_t ddb_table_scan_open(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const ds_export_t *in, ds_be_scan_t **out);
ds_status_t ddb_primary_key_set(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const char *const *columns, size_t n);

/*
 * history.c: the row history behind time travel (see its DESIGN block).
 * Every write of a table's rows or columns, inside its transaction:
 *   ddb_hist_begin before changing anything; ddb_hist_removed(cond) before
 *   removing rows (cond: SQL over the table as alias t selecting exactly the
 *   rows about to go; NULL: all of them, a "full" write), or ddb_hist_delete
 *   to select, record and delete rows in one; ddb_hist_appended
 *   after appending (expected: the rows the statements appended, or -1); then
 *   ddb_hist_end, after the table's definition reached its new state. A
 *   table dropped: ddb_hist_drop before its DROP. A table created:
 *   ddb_hist_register after it holds its first rows.
 */
/*
 * DuckDB 1.4's MAX_ROW_ID: the first row id of the rows a transaction
 * appended (until it commits). A filter "rowid >= DDB_HIST_LOCAL_ROWID" goes
 * into DuckDB's scan, which then reads the transaction's own rows only
 * (tests/unit/test_duckdb_history.c holds DuckDB to both).
 */
#define DDB_HIST_LOCAL_ROWID "36028797018960000"
/* A _timestamp bound below every timestamp a row can carry here (epoch microseconds): no rows yet. */
#define DDB_TS_NONE (-(INT64_C(1) << 62))
/* The bound of an infinite _timestamp ('infinity'): no stamp is above it. */
#define DDB_TS_INF INT64_MAX
typedef struct {
    const char *name;
    const char *type;
    bool nullable;
    const char *dflt;
    const char *slot; /* its column in _ds.h_<hid> */
    int pk_pos;       /* position in the primary key, or -1 */
} ddb_hcol_t;
typedef struct {
    const char *bucket;
    const char *table;
    int64_t hid; /* the table's generation */
    int64_t ver; /* this write */
    ddb_hcol_t *cols;
    size_t n_cols;
    int64_t next_slot; /* -1: not counted yet */
    bool rows_table_pending; /* _ds.h_<hid> is created by the next sync_cols, with its slots */
    int64_t last_at;   /* the time of the generation's last write (has_last_at) */
    bool has_last_at;
    bool cols_changed;
    bool full;
    int64_t removed;
    int64_t added;
    const ds_be_table_t *known; /* the table as the write's transaction sees it, or NULL: read at each step */
    /*
     * _timestamp bounds (epoch microseconds, see history.c "Stamped writes"):
     * ts_lo bounds every row the table had before this write (ts_lo_known
     * false: history off); ts_added the largest _timestamp this write
     * appended (has_added); stamped: its appended rows share one _timestamp
     * above ts_lo and were not copied.
     */
    int64_t ts_lo;
    bool ts_lo_known;
    int64_t ts_added;
    bool has_added;
    bool stamped;
} ddb_hist_t;
int64_t ddb_hist_now_us(void);
ds_status_t ddb_hist_begin(use_t *u, const char *bucket, const char *table, ddb_hist_t *h);
/*
 * ddb_hist_begin for a write that has read its table's definition in this
 * transaction (known, e.g. by ddb_table_describe) and does not change it:
 * the history takes it instead of reading the definition again at each step.
 * known must stay valid until ddb_hist_end.
 */
ds_status_t ddb_hist_begin_known(use_t *u, const ds_be_table_t *known, ddb_hist_t *h);
ds_status_t ddb_hist_removed(use_t *u, ddb_hist_t *h, const char *cond, int64_t *n);
/*
 * Deletes the rows of h's table that `where` selects (SQL text after "FROM
 * <table> t", starting with " WHERE") and records them as removed, the
 * selection evaluated once for both; *deleted: the rows deleted.
 */
ds_status_t ddb_hist_delete(use_t *u, ddb_hist_t *h, const char *where, int64_t *deleted);
ds_status_t ddb_hist_appended(use_t *u, ddb_hist_t *h, int64_t expected);
ds_status_t ddb_hist_end(use_t *u, ddb_hist_t *h);
ds_status_t ddb_hist_drop(use_t *u, const char *bucket, const char *table);
ds_status_t ddb_hist_register(use_t *u, const char *bucket, const char *table);
/* Removes every history (live or dropped) of buckets whose id starts with prefix (compared lower-case). */
ds_status_t ddb_hist_forget(use_t *u, const char *prefix);
ds_status_t ddb_table_time_travel(void *self, ds_be_call_t *call, const ds_be_time_travel_t *in, int64_t *rows);
ds_status_t ddb_history_expire(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows);
ds_status_t ddb_history_expire_next(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows,
                                    int64_t *next_us);
/* idem.c: idempotency records (the ops' idem_lookup; ddb_idem_record inside a write's transaction). */
ds_status_t ddb_idem_lookup(void *self, ds_be_call_t *call, const char *token, int64_t not_before,
                            ds_be_idem_rec_t *out);
/* Records u->call->idem (when set) with the write's count; call inside the write's transaction. */
ds_status_t ddb_idem_record(use_t *u, int64_t count);
/* ddb_in_txn, and when fn succeeds ddb_idem_record(u, 0) in the same transaction (metadata writes). */
ds_status_t ddb_in_txn_recorded(use_t *u, ds_status_t (*fn)(use_t *, void *), void *ud);

/*
 * Pins the call's project without a connection (answers from memory). False:
 * answer through a db use instead (nothing held). True with *p NULL: the
 * project cannot be had (*st says why). End with ddb_pin_end.
 */
bool ddb_pin_begin(be_t *be, ds_be_call_t *call, proj_t **p, ds_status_t *st);
void ddb_pin_end(be_t *be, proj_t *p);
/* Gives p a new data epoch: every cached preview of it stops answering. */
void ddb_data_changed(be_t *be, proj_t *p);

/* ---- recent previews (preview_cache.c) ---- */

typedef struct ddb_pcache ddb_pcache_t;
typedef struct {
    size_t entries, bytes, max_bytes;
    uint64_t hits, misses;
} ddb_pcache_stats_t;
/* NULL when max_bytes is 0 (off) or memory is short; every function accepts NULL. */
ddb_pcache_t *ddb_pcache_create(size_t max_bytes);
void ddb_pcache_destroy(ddb_pcache_t **pc);
/* Appends the key of a preview of project's bucket.table with in's columns, order, filters and limit. */
void ddb_pcache_key(ds_buf_t *b, const char *project, const char *bucket, const char *table,
                    const ds_preview_t *in);
/* True (out filled in the call's arena) when key has an entry of this epoch. */
bool ddb_pcache_get(ddb_pcache_t *pc, const ds_host_api_t *h, ds_be_call_t *call, const ds_buf_t *key,
                    uint64_t epoch, ds_preview_result_t *out);
/* Keeps r under key when *current still equals epoch (the epoch read before r's query ran). */
void ddb_pcache_put(ddb_pcache_t *pc, const ds_buf_t *key, uint64_t epoch, const _Atomic uint64_t *current,
                    const ds_preview_result_t *r);
/* Frees every entry of project (its file was detached: they can never answer again). */
void ddb_pcache_forget(ddb_pcache_t *pc, const char *project);
void ddb_pcache_stats(ddb_pcache_t *pc, ddb_pcache_stats_t *out);

#endif
