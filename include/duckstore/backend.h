/*
 * duckstore/backend.h - the whole contract between duckstore and a storage backend.
 *
 * DESIGN
 * A backend is a table of function pointers (ds_backend_ops_t) plus a
 * description of what it can do (capability bits) and which settings it takes.
 * Built-in backends (DuckDB) and plugins (.so files) register through the same
 * call. A plugin exports one symbol, DS_BACKEND_ENTRY_SYMBOL, of type
 * ds_backend_entry_fn: the host passes it a table of host functions and the
 * plugin returns its ops. Plugins never link against the host binary.
 *
 * ABI rules: ds_backend_ops_t and ds_host_api_t begin with abi_version and
 * struct_size and only ever grow at the end; a comment marks where each
 * version's fields begin. The host checks abi_version before using anything.
 * A NULL method means "optional method not provided", never "unsupported":
 * what a backend supports is said by its capability bits.
 *
 * Memory: results are allocated with host->alloc(call, n) and live until the
 * request ends; backends never free them. Strings passed in by the host are
 * valid for the duration of the call only.
 *
 * Threads: every method may be called from many threads at once. The host
 * serializes writes per table and catalog changes (bucket/table create/drop,
 * schema changes) per project before calling; backends need no locks of their
 * own for that, only for their internal state.
 */
#ifndef DUCKSTORE_BACKEND_H
#define DUCKSTORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duckstore/status.h"

#define DS_BACKEND_ABI_VERSION 1
#define DS_BACKEND_ENTRY_SYMBOL "ds_backend_entry"
/* Marks a plugin's entry function exported when it builds with -fvisibility=hidden. */
#define DS_BACKEND_EXPORT __attribute__((visibility("default")))

/* Capability bits. */
#define DS_CAP_DRIVER (1ull << 0)        /* speaks the storage driver command set */
#define DS_CAP_TYPED_COLUMNS (1ull << 1) /* native-type tables (USER_DEFINED_TABLE) */
#define DS_CAP_CASE_SENSITIVE (1ull << 2)
#define DS_CAP_WORKSPACES (1ull << 3)
#define DS_CAP_SHARING (1ull << 4)
#define DS_CAP_BRANCHES (1ull << 5)
#define DS_CAP_TIME_TRAVEL (1ull << 6)
#define DS_CAP_FORMAT_CSV (1ull << 7)
#define DS_CAP_FORMAT_PARQUET (1ull << 8)
#define DS_CAP_IMPORT (1ull << 9)
#define DS_CAP_EXPORT (1ull << 10)
#define DS_CAP_PROFILE (1ull << 11)
#define DS_CAP_SCHEMA_CHANGES (1ull << 12)
#define DS_CAP_SNAPSHOTS (1ull << 13) /* tables_restore: tables made again from a snapshot's Parquet files */
#define DS_CAP_ALIASES (1ull << 15) /* stores alias definitions (alias_put/list/drop) and reads views (table_count, table_profile_where) */
#define DS_CAP_COMPACT (1ull << 16) /* project_compact: rewrites a project's storage to return free space to the disk */

/*
 * Bits of ds_be_caps_t's masks: DS_FORMAT_BIT(DS_FORMAT_CSV),
 * DS_FILTER_OP_BIT(DS_OP_GT). (Added after version 1; see ds_be_caps_t.)
 */
#define DS_FORMAT_BIT(format) (1u << (unsigned)(format))
#define DS_FILTER_OP_BIT(op) (1u << (unsigned)(op))

/* One call's context: the request arena, the error to fill, the project. */
typedef struct ds_be_call {
    void *arena;            /* host-owned; allocate with host->alloc */
    ds_err_t *err;          /* fill on failure with host->err_set */
    const char *project_id; /* validated; NULL for backend-wide calls */
    /* Added after version 1 (the host reads it only through the host API's cancel_* functions). */
    void *cancel; /* host-owned: the request's cancellation, or NULL */
    /*
     * Added after version 1: the idempotency record a write keeps in its own
     * transaction (see idem_lookup in the ops), or NULL. Read by
     * table_import, table_delete_rows, bucket_create, bucket_drop,
     * table_create, table_drop, column_add, column_drop, column_alter and
     * primary_key_set.
     */
    const struct ds_be_idem *idem;
    /*
     * Added after version 1: the project keeps no history for time travel
     * (its retention is 0). A backend with DS_CAP_TIME_TRAVEL then records
     * no rows of the write, only that history before it is gone.
     */
    bool history_off;
} ds_be_call_t;

/* An idempotent write's record (ds_be_call_t.idem): written in the write's transaction. */
typedef struct ds_be_idem {
    const char *token;        /* 64 hex digits: who and which Idempotency-Key */
    const char *request_hash; /* 64 hex digits: the request it was first used for */
    int64_t created_at;       /* unix seconds */
    int64_t not_before;       /* records created before this are expired and may be removed */
} ds_be_idem_t;

/* A record found by idem_lookup. */
typedef struct {
    const char *request_hash; /* call arena */
    int64_t created_at;
    int64_t count; /* the write's own figure: rows imported, or rows deleted */
} ds_be_idem_rec_t;

typedef enum { DS_SETTING_STRING, DS_SETTING_INT, DS_SETTING_BOOL } ds_setting_type_t;

/* One setting a backend takes, read from DUCKSTORE_BE_<NAME>_<KEY>. */
typedef struct {
    const char *key; /* upper-case, e.g. "HOST" */
    ds_setting_type_t type;
    bool required;
    const char *default_value; /* NULL when none */
    const char *help;
} ds_be_setting_t;

typedef struct {
    const char *name;
    const char *type;          /* canonical SQL type, e.g. "VARCHAR", "DECIMAL(12,2)" */
    bool nullable;
    const char *default_value; /* the default as literal text, or NULL */
} ds_be_column_t;

typedef struct {
    const char *id;    /* "in.c-crm" */
    const char *stage; /* "in" | "out" */
    const char *name;  /* "c-crm" */
    const char *description;
    int64_t created_at; /* unix seconds */
    int64_t table_count;
} ds_be_bucket_t;

typedef struct {
    const char *bucket;
    const char *name;
    ds_be_column_t *columns;
    size_t n_columns;
    const char **primary_key;
    size_t n_primary_key;
    int64_t rows;  /* exact */
    int64_t bytes; /* storage the table's data occupies */
    int64_t created_at;
    int64_t last_import_at; /* 0 = never */
    int64_t last_change_at; /* 0 = never */
} ds_be_table_t;

typedef struct {
    int64_t buckets;
    int64_t tables;
    int64_t rows;
    int64_t bytes;
} ds_be_project_stats_t;

/* Runtime gauges a backend reports for /metrics. */
typedef struct {
    int64_t open_projects;
    int64_t open_projects_peak;
    int64_t engine_restarts; /* times the engine was reopened after a fatal error (appended: older plugins leave it 0) */
    int64_t calls_in_use;    /* calls running statements now (db uses); 0 when idle (appended: older plugins leave it 0) */
    /* Appended: answers from a backend's cache of recent previews (older plugins and a backend without one leave 0). */
    int64_t preview_cache_hits;
    int64_t preview_cache_misses;
    int64_t preview_cache_bytes;
} ds_be_runtime_stats_t;

/* ---- table data: the requests core passes to backends (and transports fill) ---- */

typedef enum { DS_FORMAT_CSV = 0, DS_FORMAT_PARQUET = 1 } ds_format_t;
typedef enum { DS_DEDUP_UPDATE = 0, DS_DEDUP_INSERT = 1, DS_DEDUP_FAIL = 2 } ds_dedup_t;
typedef enum { DS_TS_CURRENT_TIME = 0, DS_TS_NONE = 1, DS_TS_FROM_SOURCE = 2 } ds_ts_mode_t;
typedef enum { DS_STRATEGY_AUTO = -1, DS_STRATEGY_STRING = 0, DS_STRATEGY_TYPED = 1 } ds_strategy_t;
typedef enum { DS_CREATE_NONE = -1, DS_CREATE_CREATE = 0, DS_CREATE_REPLACE = 1 } ds_create_mode_t;
typedef enum { DS_OP_EQ = 0, DS_OP_NE, DS_OP_GT, DS_OP_GE, DS_OP_LT, DS_OP_LE } ds_filter_op_t;

typedef struct {
    const char *column;
    ds_filter_op_t op;
    const char **values;
    size_t n_values;
    const char *data_type; /* NULL: compare as stored; else a type name (core/types.h grammar) */
} ds_filter_t;

typedef struct {
    ds_filter_t *filters;
    size_t n_filters;
    const char *changed_since; /* UTC "YYYY-MM-DD HH:MM:SS.ffffff" (the host normalizes every client form); NULL = none */
    const char *changed_until;
    /* Delete rows only: keep/delete rows whose in_column is (not) IN ref table's column. */
    const char *in_column;
    const char *in_bucket;
    const char *in_table;
    const char *in_ref_column;
    bool in_negate;
} ds_where_t;

typedef struct {
    const char *column;
    bool desc;
    const char *data_type; /* NULL or a type name to sort by */
} ds_order_t;

typedef struct {
    char delimiter[8];  /* default "," */
    char enclosure[8];  /* default "\""; "" = none */
    char escaped_by[8]; /* default "" */
    bool header;        /* default true; false when columns are given */
    const char **columns; /* explicit column list (headless file) */
    size_t n_columns;
    bool gzip;
    int64_t skip_lines; /* numberOfIgnoredLines */
} ds_csv_opts_t;

typedef struct {
    /* source: a Storage File (file_id or file_key) ... */
    const char *file_id;
    const char *file_key;
    ds_format_t format;
    ds_csv_opts_t csv;
    /* ... or a table of the same project (import from table) */
    const char *src_bucket;
    const char *src_table;
    const char **src_columns; /* mapping source -> destination; NULL = same names, all */
    const char **dst_columns;
    size_t n_mapping;
    ds_where_t src_where;
    /* options */
    bool incremental;
    ds_dedup_t dedup;
    const char **dedup_columns; /* NULL = the table's primary key */
    size_t n_dedup_columns;
    ds_ts_mode_t timestamp_mode;
    const char *timestamp_column; /* FROM_SOURCE: the source column holding it */
    const char **convert_empty_to_null;
    size_t n_convert_empty_to_null;
    const char **import_as_null;
    size_t n_import_as_null;
    ds_strategy_t strategy;
    ds_create_mode_t create_mode;
    /* Appended (a backend whose ops struct is older than tables_move_restore does not read them): */
    int64_t src_limit;   /* import from table: at most this many source rows, after src_where (0: all) */
    int64_t src_seconds; /* the host's own: turned into src_where.changed_since before a backend sees the import */
} ds_import_t;

typedef struct {
    const char *name;
    double seconds;
} ds_timer_t;

typedef struct {
    int64_t imported_rows;
    int64_t table_rows;
    int64_t table_bytes;
    const char **imported_columns;
    size_t n_imported_columns;
    ds_timer_t *timers;
    size_t n_timers;
} ds_import_result_t;

typedef struct {
    ds_format_t format;
    bool gzip;
    const char **columns;
    size_t n_columns;
    ds_order_t *order;
    size_t n_order;
    int64_t limit; /* 0 = none */
    ds_where_t where;
    bool sliced;
    const char *file_name; /* NULL: generated */
} ds_export_t;

typedef struct {
    const char *file_id;
    const char *file_name;
    bool sliced;
    int64_t rows;
    int64_t bytes;
} ds_export_result_t;

/* The most rows a preview returns (the core refuses a larger limit). */
#define DS_PREVIEW_MAX_ROWS 1000

typedef struct {
    const char **columns;
    size_t n_columns;
    ds_order_t *order;
    size_t n_order;
    int64_t limit; /* 1..DS_PREVIEW_MAX_ROWS */
    ds_where_t where;
} ds_preview_t;

typedef struct {
    const char **columns;
    const char **types;
    size_t n_columns;
    const char ***rows; /* rows[r][c]; NULL = SQL NULL */
    size_t n_rows;
} ds_preview_result_t;

typedef struct {
    const char *value;
    int64_t count;
} ds_top_value_t;

typedef struct {
    const char *name;
    const char *type;
    int64_t count;
    int64_t nulls;
    int64_t distinct;
    const char *min;
    const char *max;
    const char *avg; /* NULL unless numeric */
    ds_top_value_t *top;
    size_t n_top;
} ds_column_profile_t;

typedef struct {
    int64_t rows;
    ds_column_profile_t *columns;
    size_t n_columns;
} ds_profile_result_t;

typedef struct {
    const char *type;          /* NULL: unchanged */
    int nullable;              /* -1 unchanged, 0 NOT NULL, 1 nullable */
    bool set_default;          /* true: default_value becomes the default (NULL drops it) */
    const char *default_value;
} ds_column_alter_t;

struct ds_be_scan; /* an open table scan: see table_scan_open below */
/*
 * Development branches (DS_CAP_BRANCHES). The rules (which physical table a
 * branch's table is, when to copy, the merge conflict rule) are the host's
 * (src/cmd/branch.c); a backend stores branch records and offers the table
 * primitives below. Added after version 1 (see the end of ds_backend_ops_t).
 */
typedef struct {
    const char *id;
    const char *name;
    int64_t created_at; /* unix seconds */
} ds_be_branch_t;

/* A mark the host keeps on a physical table name: a hidden (dropped in a branch) main table, or the main version a branch copy was made from. */
typedef struct {
    const char *bucket;
    const char *name;
    bool hidden;
    int64_t base_version; /* the version of the main table when the branch copied or hid it; 0: none */
} ds_be_mark_t;

typedef enum {
    DS_MOVE_COPY = 0, /* dst becomes a copy of src (definition, rows, metadata); dst replaced when it exists; its bucket created like src's when missing */
    DS_MOVE_DROP = 1, /* dst dropped when it exists */
    DS_MOVE_MARK = 2, /* dst's mark set (hidden, mark_version) */
    DS_MOVE_UNMARK = 3, /* dst's mark removed */
    /* Added with branch merges of aliases (a backend with DS_CAP_ALIASES that offers tables_move knows them): */
    DS_MOVE_BUCKET = 4, /* dst_bucket created like src_bucket (stage, name, description) when missing */
    DS_MOVE_ALIAS = 5,  /* the alias row (scope src_bucket, dst_bucket, dst_table) becomes main's: a hidden row
                           removes main's alias of that name, any other replaces it; the scope's row is removed.
                           DS_CONFLICT when the scope has no such row */
    /* Added so a branch's bucket delete is one transaction (a backend that offers tables_move knows it): */
    DS_MOVE_DROP_BUCKET = 6 /* dst_bucket dropped when it exists; DS_CONFLICT when it still holds a table (the
                               list's earlier moves drop them) */
} ds_move_kind_t;

typedef struct {
    ds_move_kind_t kind;
    const char *src_bucket; /* COPY */
    const char *src_table;
    const char *dst_bucket;
    const char *dst_table;
    /* Checked inside the transaction before the move: -1 no check; 0 dst must not exist; > 0 dst's version must equal it (else DS_CONFLICT naming dst). */
    int64_t expect_version;
    /* COPY: > 0 records a mark on dst with this base version, 0 removes dst's mark. MARK: the mark's base version. */
    int64_t mark_version;
    bool hidden; /* MARK */
} ds_be_move_t;

/*
 * One table of a snapshot restore (tables_restore): the destination's full
 * definition (bucket and name are the destination; columns with types,
 * nullability and defaults; primary key; created_at) and the Parquet files
 * holding its rows: every column of def by name plus _timestamp. Added after
 * version 1.
 */
typedef struct {
    const ds_be_table_t *def;
    const char *const *paths; /* absolute, inside the data directory */
    size_t n_paths;
    bool replace; /* the destination exists and is replaced; false: it must not exist */
} ds_be_restore_t;

/*
 * Table aliases (DS_CAP_ALIASES). The rules (what an alias reads, which
 * writes it refuses, when a drop needs force) are the host's (src/cmd/alias.c);
 * a backend stores the definitions in the project's own storage, so they
 * live, move and die with the project. scope is "" for main or a branch id
 * (lower-case); bucket and name are the alias's logical id; src_bucket and
 * src_table its source's; def is the host's own text (JSON), kept as given.
 * A hidden row hides main's alias of the same name in its scope.
 */
typedef struct {
    const char *scope;
    const char *bucket;
    const char *name;
    const char *src_bucket;
    const char *src_table;
    const char *def;
    bool hidden;
    int64_t created_at; /* unix seconds */
} ds_be_alias_t;

/* Functions the host gives a backend. */
typedef struct ds_host_api {
    uint32_t abi_version;
    uint32_t struct_size;
    /* Fields below are valid for version 1. */
    /* Zeroed memory that lives until the request ends. NULL on exhaustion. */
    void *(*alloc)(ds_be_call_t *call, size_t n);
    char *(*strdup)(ds_be_call_t *call, const char *s);
    /* level: 0 debug, 1 info, 2 warn, 3 error. */
    void (*log)(int level, const char *backend, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
    ds_status_t (*err_set)(ds_err_t *err, ds_status_t st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
    /* The value of setting key for backend (env DUCKSTORE_BE_<NAME>_<KEY>), or its default, or NULL. */
    const char *(*setting)(const char *backend, const char *key);
    /* The service's data directory (absolute). */
    const char *data_dir;
    int64_t memory_limit_bytes;
    int64_t threads;
    int64_t max_open_projects;
    /*
     * Reads the header record of a CSV file (gzip or plain; o's delimiter,
     * enclosure, escape and skip_lines) as column names, into the call's
     * arena. Errors go to call->err.
     */
    ds_status_t (*csv_header)(ds_be_call_t *call, const char *path, const ds_csv_opts_t *o, const char ***names,
                              size_t *n);

    /*
     * Fields below were appended after version 1 (check with DS_HOST_HAS).
     * Cancellation: a client's deadline or cancel (gRPC) must stop the work
     * of its call. A backend registers interrupt(ud) while it runs work for
     * call (e.g. a function calling duckdb_interrupt on the connection, or
     * PQcancel); the host calls it, from another thread, when the client
     * gives up. cancel_hook returns false when the call is already cancelled
     * (do not start). After cancel_unhook(call, ud) returns, interrupt is never
     * called again. Before committing, a backend asks cancelled(call) and rolls
     * back when true. A backend that registers nothing is simply not interrupted.
     */
    bool (*cancel_hook)(ds_be_call_t *call, void (*interrupt)(void *ud), void *ud);
    void (*cancel_unhook)(ds_be_call_t *call, void *ud);
    bool (*cancelled)(ds_be_call_t *call);
    /*
     * Keboola's rule for "is this still the table the write was planned
     * against": the same columns (names, types, nullability, in order) and
     * the same primary key (names compared regardless of case). Backends ask
     * it inside the write's transaction.
     */
    bool (*same_definition)(const ds_be_table_t *a, const ds_be_table_t *b);
} ds_host_api_t;

/* True when host (of struct_size bytes) has field. */
#define DS_HOST_HAS(host, field)                                                                    \
    ((size_t)(host)->struct_size >= offsetof(ds_host_api_t, field) + sizeof((host)->field))

struct ds_be_time_travel;
struct ds_be_compact;
struct ds_be_compact_result;

typedef struct ds_backend_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    /* Fields below are valid for version 1. */
    const char *name;    /* lower-case, unique: "duckdb" */
    const char *version; /* the backend's own version string */
    uint64_t capabilities;
    const ds_be_setting_t *settings;
    size_t n_settings;

    /* Starts the backend; *self receives its state. */
    ds_status_t (*open)(const ds_host_api_t *host, void **self, ds_err_t *err);
    /* Stops it, closing every file/connection cleanly. */
    void (*close)(void *self);
    /* DS_OK when usable; DS_UNAVAILABLE with a reason otherwise. */
    ds_status_t (*health)(void *self, ds_err_t *err);
    void (*runtime_stats)(void *self, ds_be_runtime_stats_t *out);
    /*
     * Calls cb for every project that has stored data in this backend,
     * so the host can find orphans after a crash.
     */
    ds_status_t (*project_list_stored)(void *self, void (*cb)(const char *project_id, void *ud), void *ud,
                                       ds_err_t *err);

    ds_status_t (*project_create)(void *self, ds_be_call_t *call);
    /* Removes all of the project's data. Dropping a project that has none is DS_OK. */
    ds_status_t (*project_drop)(void *self, ds_be_call_t *call);
    ds_status_t (*project_stats)(void *self, ds_be_call_t *call, ds_be_project_stats_t *out);

    ds_status_t (*bucket_create)(void *self, ds_be_call_t *call, const ds_be_bucket_t *bucket);
    ds_status_t (*bucket_get)(void *self, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out);
    ds_status_t (*bucket_list)(void *self, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n);
    /* Without force, a bucket with tables is DS_CONFLICT. */
    ds_status_t (*bucket_drop)(void *self, ds_be_call_t *call, const char *bucket, bool force);

    ds_status_t (*table_create)(void *self, ds_be_call_t *call, const ds_be_table_t *def);
    ds_status_t (*table_get)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             ds_be_table_t *out);
    ds_status_t (*table_list)(void *self, ds_be_call_t *call, const char *bucket, ds_be_table_t **items,
                              size_t *n);
    ds_status_t (*table_drop)(void *self, ds_be_call_t *call, const char *bucket, const char *table);

    /*
     * Loads files (absolute local paths, already confined to the project's
     * area) or, when in->src_table is set, another table of the project, into
     * bucket.table with Keboola's semantics (see docs/architecture.md). All or
     * nothing: on failure the table is as it was.
     */
    ds_status_t (*table_import)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const ds_import_t *in, const char *const *paths, size_t n_paths,
                                ds_import_result_t *out);
    /*
     * Writes the table's rows to files inside out_dir (which exists and is
     * empty). slice_bytes > 0 lets the backend split the output into several
     * files of about that size. *paths (arena) lists the files written, in order.
     */
    ds_status_t (*table_export)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const ds_export_t *in, const char *out_dir, int64_t slice_bytes, const char ***paths,
                                size_t *n_paths, int64_t *rows);
    ds_status_t (*table_preview)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                 const ds_preview_t *in, ds_preview_result_t *out);
    ds_status_t (*table_profile)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                 ds_profile_result_t *out);
    ds_status_t (*table_delete_rows)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                     const ds_where_t *where, int64_t *deleted, int64_t *table_rows);
    /* Schema changes. Types are canonical (core-validated). */
    ds_status_t (*column_add)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              const ds_be_column_t *column);
    ds_status_t (*column_drop)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                               const char *column);
    ds_status_t (*column_alter)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const char *column, const ds_column_alter_t *alter);
    /* Sets the primary key (n == 0 drops it). Duplicates over the new key are DS_INVALID_ARGUMENT. */
    ds_status_t (*primary_key_set)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                   const char *const *columns, size_t n);

    /*
     * Fields below were appended after version 1 shipped. The ABI version did
     * not change: a backend built before them has a smaller struct_size, and
     * the host reads them only when struct_size covers them (DS_BE_HAS);
     * otherwise they count as NULL.
     */
    /* What the backend can do beyond the capability bits; NULL: only the bits. */
    const struct ds_be_caps *caps;
    /* One line for GET /backends ("PostgreSQL 15+ over libpq"), or NULL. */
    const char *description;
    /*
     * Crash recovery (docs/operations.md, "Recovery and quarantine"); each may
     * be NULL. project_meta_put stores doc (the catalog's record of the
     * project as JSON text, owned by the host) inside the project's own
     * storage, replacing any earlier copy, durably, so a lost catalog can be
     * rebuilt. project_meta_get returns that copy in *doc (call arena):
     * DS_NOT_FOUND when the storage holds none, DS_UNAVAILABLE when the
     * storage cannot be read. project_quarantine moves all of the project's
     * stored data into dir (an existing folder on the data directory's file
     * system) instead of deleting it, releasing it first; *moved says whether
     * there was anything to move.
     */
    ds_status_t (*project_meta_put)(void *self, ds_be_call_t *call, const char *doc);
    ds_status_t (*project_meta_get)(void *self, ds_be_call_t *call, char **doc);
    ds_status_t (*project_quarantine)(void *self, ds_be_call_t *call, const char *dir, bool *moved);
    /*
     * Idempotent writes (docs/api.md, "Idempotency"). A backend that sets
     * idem_lookup promises: when call->idem is set, table_import and
     * table_delete_rows store (token, request_hash, created_at, count) in the
     * project's own storage inside the write's transaction, so the record and
     * the data commit together, and may drop records older than not_before;
     * bucket_create, bucket_drop, table_create, table_drop and the schema
     * changes (column_add, column_drop, column_alter, primary_key_set) store
     * it the same way with count 0, in the transaction that completes the
     * change.
     * idem_lookup finds token's record created at or after not_before:
     * DS_NOT_FOUND when there is none. NULL: the host keeps records only in
     * its catalog (a crash between a commit and the answer then loses it).
     */
    ds_status_t (*idem_lookup)(void *self, ds_be_call_t *call, const char *token, int64_t not_before,
                               ds_be_idem_rec_t *out);
    /*
     * Read cursor over a table, for workspaces (DS_CAP_WORKSPACES; backends
     * whose engine is DuckDB). Starts reading bucket.table as in->columns,
     * in->where and in->limit say (the same interpretation as table_export;
     * in->order is honoured, format/gzip/sliced are ignored). *out (owned by
     * the backend) is released with its close method, which the host always
     * calls before the request ends. May be NULL.
     */
    ds_status_t (*table_scan_open)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                   const ds_export_t *in, struct ds_be_scan **out);
    /*
     * Development branches (appended; NULL when the backend has none). A table's
     * version is a number that changes with every write of the table (data,
     * schema, re-creation) and never returns to an earlier value in the
     * project: table_version gives it (DS_NOT_FOUND when no such table).
     * branch_create records a branch (DS_ALREADY_EXISTS regardless of case);
     * branch_list lists them by id; branch_drop removes the record, every
     * bucket whose id starts with bucket_prefix (compared lower-case) and the
     * marks of those buckets, in one transaction (DS_NOT_FOUND when no such
     * branch). marks_list gives the marks of buckets starting with
     * bucket_prefix. tables_move applies moves in order in ONE transaction:
     * all or nothing, also under kill -9.
     */
    ds_status_t (*table_version)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                 int64_t *version);
    ds_status_t (*branch_create)(void *self, ds_be_call_t *call, const ds_be_branch_t *branch);
    ds_status_t (*branch_list)(void *self, ds_be_call_t *call, ds_be_branch_t **items, size_t *n);
    ds_status_t (*branch_drop)(void *self, ds_be_call_t *call, const char *id, const char *bucket_prefix);
    ds_status_t (*marks_list)(void *self, ds_be_call_t *call, const char *bucket_prefix, ds_be_mark_t **items,
                              size_t *n);
    ds_status_t (*tables_move)(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n);
    /*
     * Snapshots (DS_CAP_SNAPSHOTS; appended, NULL when the backend has none).
     * Makes every item's destination table from its definition and loads its
     * rows (values and _timestamp as stored) from its Parquet files, replacing
     * the destination when item.replace, all in ONE transaction: all or
     * nothing, also under kill -9. DS_ALREADY_EXISTS when a destination not to
     * be replaced exists, DS_NOT_FOUND when its bucket does not.
     */
    ds_status_t (*tables_restore)(void *self, ds_be_call_t *call, const ds_be_restore_t *items, size_t n);
    /*
     * Time travel (appended; DS_CAP_TIME_TRAVEL; NULL when the backend keeps
     * no history). table_time_travel creates in->dst_bucket.in->dst_table as
     * in->bucket.in->table was at in->at_us (every write committed at or
     * before it, none after): same columns, types, key, rows and values, in
     * one transaction (all or nothing); *rows gets its row count.
     * DS_INVALID_ARGUMENT (field "timestamp") when the backend's history does
     * not reach that moment, DS_NOT_FOUND when there is no such (dropped)
     * table. history_expire removes what only moments before not_before_us
     * would need (the project's retention), including dropped tables'
     * histories; *rows gets the history rows removed.
     */
    ds_status_t (*table_time_travel)(void *self, ds_be_call_t *call, const struct ds_be_time_travel *in, int64_t *rows);
    ds_status_t (*history_expire)(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows);
    /*
     * Table aliases (appended; NULL when the backend has none, see
     * ds_be_alias_t). alias_put inserts the row, replacing one with the same
     * (scope, bucket, name) compared lower-case. alias_list gives the rows
     * matching scope, bucket and name (each NULL: any), ordered by scope,
     * bucket, name. alias_drop removes the rows matching scope (required),
     * bucket and name (NULL: any). table_count is the exact number of rows of
     * bucket.table that where selects; table_profile_where profiles the
     * columns (n == 0: all) of the rows where selects, as table_profile does
     * for the whole table.
     */
    ds_status_t (*alias_put)(void *self, ds_be_call_t *call, const ds_be_alias_t *alias);
    ds_status_t (*alias_list)(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name,
                              ds_be_alias_t **items, size_t *n);
    ds_status_t (*alias_drop)(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name);
    ds_status_t (*table_count)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                               const ds_where_t *where, int64_t *rows);
    ds_status_t (*table_profile_where)(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                       const char *const *columns, size_t n, const ds_where_t *where,
                                       ds_profile_result_t *out);
    /*
     * Snapshot restore into a development branch (appended; NULL when the
     * backend has none): moves applied as tables_move applies them (the
     * branch's bucket, the marks of main's tables the branch now owns), then
     * items as tables_restore restores them, all in ONE transaction.
     */
    ds_status_t (*tables_move_restore)(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n_moves,
                                       const ds_be_restore_t *items, size_t n);
    /*
     * Compaction (appended; DS_CAP_COMPACT; NULL when the backend cannot).
     * Rewrites the project's storage without its free space, keeping every
     * table, row, sequence position and metadata record as they are; a
     * kill -9 at any moment leaves the old storage or the new one, never a
     * mix. The backend takes the project for itself: calls for it that
     * arrive meanwhile wait until it is done. DS_UNAVAILABLE (nothing
     * changed) when the project's running calls did not end within
     * in->wait_ms. With in->only_if_worth, compacts only when the free space
     * is at least in->min_free_ratio of the file and in->min_free_bytes
     * (out->skipped otherwise). out gets the sizes (see ds_be_compact_result_t).
     */
    ds_status_t (*project_compact)(void *self, ds_be_call_t *call, const struct ds_be_compact *in,
                                   struct ds_be_compact_result *out);
    /*
     * Memory the backend's engine holds now, in bytes, for /metrics (DuckDB:
     * its buffer manager over every tag: cached table blocks, query state,
     * temporary data); -1 when unknown. It may run a statement, so the host
     * calls it only to render /metrics, never on a request's path. NULL: not
     * reported.
     */
    int64_t (*engine_memory)(void *self);
    /*
     * history_expire, and when the history is next worth a call (appended;
     * NULL when not offered: the host then calls history_expire every time).
     * *next_us gets a moment such that a later call with not_before_us at or
     * before it would remove nothing this call left (INT64_MAX: nothing kept
     * now can go). What writes after this call record is later than the
     * call, so the host's sweep leaves a project alone, not even attached,
     * until the sooner of next_us and the call's own time is past the
     * project's retention.
     */
    ds_status_t (*history_expire_next)(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows,
                                       int64_t *next_us);
} ds_backend_ops_t;

/* A compaction request (project_compact). */
typedef struct ds_be_compact {
    bool only_if_worth;    /* measure first; compact only when the thresholds below are met */
    double min_free_ratio; /* free bytes / file bytes */
    int64_t min_free_bytes;
    int64_t wait_ms; /* longest wait for the project's running calls to end */
} ds_be_compact_t;

/* What project_compact did. */
typedef struct ds_be_compact_result {
    int64_t bytes_before; /* storage on disk before (file and its log) */
    int64_t bytes_after;  /* and after (when skipped: after the checkpoint that measured it) */
    int64_t free_bytes;   /* free space found in the storage before */
    bool skipped;         /* only_if_worth and below the thresholds: nothing rewritten */
} ds_be_compact_result_t;

/* A time-travel request (table_time_travel). */
typedef struct ds_be_time_travel {
    const char *bucket; /* the source, as stored (or as it was spelled when dropped) */
    const char *table;
    bool dropped;       /* the source is a table dropped after at_us, not the live one */
    int64_t at_us;      /* unix microseconds */
    const char *dst_bucket;
    const char *dst_table;
} ds_be_time_travel_t;

/*
 * An open table scan (table_scan_open). names (call arena) and types (each a
 * duckdb_logical_type owned by the scan) describe the columns. next gives the
 * next duckdb_data_chunk of rows (the caller destroys it with
 * duckdb_destroy_data_chunk) or NULL in *chunk at the end; it may be called
 * from any thread, one call at a time. close releases the scan and s itself.
 */
typedef struct ds_be_scan {
    size_t n_columns;
    const char **names;
    void **types;
    ds_status_t (*next)(struct ds_be_scan *s, void **chunk, ds_err_t *err);
    void (*close)(struct ds_be_scan *s);
} ds_be_scan_t;

/* ---- additions after version 1 (append-only) ---- */

/* Identifier case rules of a backend's storage. */
typedef enum {
    DS_CASE_INSENSITIVE = 0, /* names keep their case but "Id" and "id" are one name (DuckDB) */
    DS_CASE_SENSITIVE = 1    /* "Id" and "id" are two names */
} ds_case_rule_t;

/*
 * The capability description richer than the bits, pointed to by
 * ds_backend_ops_t.caps. struct_size first: it only grows at the end, and the
 * host reads a field only when struct_size covers it (zero otherwise).
 * A zero mask means "as the capability bits say" (import_formats,
 * export_formats) or "none" (unsupported_filter_ops).
 */
typedef struct ds_be_caps {
    uint32_t struct_size;            /* sizeof(ds_be_caps_t) the backend was built with */
    uint32_t case_rule;              /* ds_case_rule_t */
    uint32_t import_formats;         /* DS_FORMAT_BIT() mask of formats table_import reads */
    uint32_t export_formats;         /* DS_FORMAT_BIT() mask of formats table_export writes */
    uint32_t unsupported_filter_ops; /* DS_FILTER_OP_BIT() mask of where-filter operators it cannot run */
    uint32_t max_name_length;        /* longest table/column name it keeps as given; 0: the core's limit */
    bool filter_data_types;          /* runs filters and ordering with a data_type cast */
    const char *notes;               /* free text for GET /backends ("Parquet is not supported"), or NULL */
} ds_be_caps_t;

/* True when ops (of struct_size bytes) has field. */
#define DS_BE_HAS(ops, field)                                                                       \
    ((size_t)(ops)->struct_size >= offsetof(ds_backend_ops_t, field) + sizeof((ops)->field))
/* The size of a version-1 ops struct: the smallest struct_size the host accepts. */
#define DS_BE_OPS_V1_SIZE offsetof(ds_backend_ops_t, caps)
/* True when caps (of struct_size bytes) has field. */
#define DS_BE_CAPS_HAS(caps, field)                                                                 \
    ((caps) && (size_t)(caps)->struct_size >= offsetof(ds_be_caps_t, field) + sizeof((caps)->field))

/* The one symbol a plugin exports. Returns NULL (after host->log) when it cannot start. */
typedef const ds_backend_ops_t *(*ds_backend_entry_fn)(const ds_host_api_t *host);

#endif
