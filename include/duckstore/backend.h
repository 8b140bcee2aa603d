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

/* One call's context: the request arena, the error to fill, the project. */
typedef struct ds_be_call {
    void *arena;            /* host-owned; allocate with host->alloc */
    ds_err_t *err;          /* fill on failure with host->err_set */
    const char *project_id; /* validated; NULL for backend-wide calls */
} ds_be_call_t;

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
} ds_be_runtime_stats_t;

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
} ds_host_api_t;

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
} ds_backend_ops_t;

/* The one symbol a plugin exports. Returns NULL (after host->log) when it cannot start. */
typedef const ds_backend_ops_t *(*ds_backend_entry_fn)(const ds_host_api_t *host);

#endif
