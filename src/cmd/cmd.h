/*
 * cmd.h - the command layer: one C function per storage operation.
 *
 * DESIGN
 * Every transport (REST, gRPC, the HTTP bridge) is a thin adapter that parses
 * its input into the plain structs below, calls one ds_cmd_* function and
 * encodes the result. Each command does, in order: validate -> authorize ->
 * look up the project -> take its write slot -> call the backend -> record
 * metadata. No storage logic lives in a transport.
 *
 * A ds_ctx_t carries one request: its arena (results are allocated there and
 * die with it), the presented API key, and the error detail. Commands return a
 * ds_status_t; on failure ctx->err says why.
 *
 * Thread-safety: every command may run on many threads at once. Writes are
 * serialized through write queues (core/wq.h): per table for data, per project
 * for catalog changes, in that lock order.
 */
#ifndef DS_CMD_CMD_H
#define DS_CMD_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/status.h"
#include "duckstore/backend.h"

typedef struct ds_ctx {
    ds_arena_t *arena;
    ds_err_t err;
    const char *request_id;
    const char *key;        /* presented credential, or NULL; never logged */
    const char *project_id; /* set by commands once they know the project (for logs) */
} ds_ctx_t;

/* Starts the service core: catalog, backends, recovery, write queues. */
ds_status_t ds_service_start(const ds_config_t *cfg, ds_err_t *err);
/* Closes every backend and the catalog cleanly. */
void ds_service_stop(void);
const ds_config_t *ds_service_config(void);
/* Gauges for /metrics. */
int64_t ds_service_queue_waiting(void);
int64_t ds_service_open_projects(void);
int64_t ds_service_open_projects_peak(void);
/* DS_OK when the catalog and every backend answer. */
ds_status_t ds_service_ready(ds_err_t *err);

/* Authorization checks, usable by transports for routes without a command. */
ds_status_t ds_cmd_require_admin(ds_ctx_t *ctx);

/* ---- backend ---- */
typedef struct {
    const char *data_dir;
    const char *engine;
    int64_t projects;
} ds_backend_info_t;
ds_status_t ds_cmd_backend_init(ds_ctx_t *ctx, ds_backend_info_t *out);
ds_status_t ds_cmd_backend_remove(ds_ctx_t *ctx);

/* ---- projects ---- */
typedef struct {
    const char *id;
    const char *name;    /* NULL: the id */
    const char *backend; /* NULL: "duckdb" */
} ds_project_create_t;

typedef struct {
    ds_project_rec_t rec;
    const char *api_key; /* only from create */
    bool has_stats;
    ds_be_project_stats_t stats;
} ds_project_t;

ds_status_t ds_cmd_project_create(ds_ctx_t *ctx, const ds_project_create_t *in, ds_project_t *out);
ds_status_t ds_cmd_project_list(ds_ctx_t *ctx, ds_project_rec_t **items, size_t *n);
ds_status_t ds_cmd_project_get(ds_ctx_t *ctx, const char *id, ds_project_t *out);
ds_status_t ds_cmd_project_update(ds_ctx_t *ctx, const char *id, const char *name, ds_project_t *out);
ds_status_t ds_cmd_project_delete(ds_ctx_t *ctx, const char *id);

/* ---- buckets ---- */
typedef struct {
    const char *stage;
    const char *name; /* "c-" is prefixed when missing */
    const char *description;
} ds_bucket_create_t;

ds_status_t ds_cmd_bucket_create(ds_ctx_t *ctx, const char *project, const ds_bucket_create_t *in,
                                 ds_be_bucket_t *out);
ds_status_t ds_cmd_bucket_list(ds_ctx_t *ctx, const char *project, ds_be_bucket_t **items, size_t *n);
ds_status_t ds_cmd_bucket_get(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_bucket_t *out);
ds_status_t ds_cmd_bucket_delete(ds_ctx_t *ctx, const char *project, const char *bucket, bool force);

/* ---- tables ---- */
typedef struct {
    const char *name;
    const char *type; /* NULL: VARCHAR */
    bool nullable;
    const char *default_value; /* NULL: none */
} ds_column_in_t;

typedef struct {
    const char *name;
    ds_column_in_t *columns;
    size_t n_columns;
    const char **primary_key;
    size_t n_primary_key;
} ds_table_create_t;

ds_status_t ds_cmd_table_create(ds_ctx_t *ctx, const char *project, const char *bucket,
                                const ds_table_create_t *in, ds_be_table_t *out);
ds_status_t ds_cmd_table_get(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                             ds_be_table_t *out);
ds_status_t ds_cmd_table_list(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_table_t **items,
                              size_t *n);
ds_status_t ds_cmd_table_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);

/* ---- table data (import, export, preview, profile, delete rows) ---- */

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
    const char *changed_since; /* unix seconds, or a timestamp text; NULL = none */
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

typedef struct {
    const char **columns;
    size_t n_columns;
    ds_order_t *order;
    size_t n_order;
    int64_t limit; /* capped at 1000 */
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

ds_status_t ds_cmd_table_import(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_import_t *in, ds_import_result_t *out);
ds_status_t ds_cmd_table_export(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_export_t *in, ds_export_result_t *out);
ds_status_t ds_cmd_table_preview(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 const ds_preview_t *in, ds_preview_result_t *out);
ds_status_t ds_cmd_table_profile(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 ds_profile_result_t *out);
ds_status_t ds_cmd_table_delete_rows(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                     const ds_where_t *where, int64_t *deleted, int64_t *table_rows);

/* ---- schema changes ---- */
ds_status_t ds_cmd_column_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                              const ds_column_in_t *col);
ds_status_t ds_cmd_column_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                               const char *column);
typedef struct {
    const char *type;          /* NULL: unchanged */
    int nullable;              /* -1 unchanged, 0 NOT NULL, 1 nullable */
    bool set_default;          /* true: default_value becomes the default (NULL drops it) */
    const char *default_value;
} ds_column_alter_t;
ds_status_t ds_cmd_column_alter(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const char *column, const ds_column_alter_t *alter);
ds_status_t ds_cmd_primary_key_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                   const char **columns, size_t n);
ds_status_t ds_cmd_primary_key_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);

#endif
