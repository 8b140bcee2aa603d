/*
 * workspace.h - workspace and query commands (workspace.c).
 *
 * A workspace is a sandbox database (src/ws/sandbox.h) of one project, with
 * its own login (user + password, shown once, only a hash stored). Loads copy
 * (FULL, CLONE, INCREMENTAL) or expose (VIEW) storage tables in it through the
 * sandbox's storage scan; queries run the user's SQL there. A project query
 * runs read-only SQL over the project's storage in a throw-away sandbox.
 *
 * Authorization: the project's key or the admin key for everything; the
 * workspace's own credentials (ds_ws_cred_t) for load and query of that
 * workspace only. A workspace reads only its own project's storage.
 */
#ifndef DS_CMD_WORKSPACE_H
#define DS_CMD_WORKSPACE_H

#include "catalog/workspaces.h"
#include "cmd/cmd.h"
#include "ws/sandbox.h"

typedef struct {
    const char *id;     /* NULL: generated */
    const char *branch; /* NULL or "default": the main branch */
} ds_ws_create_t;

typedef struct {
    ds_ws_rec_t rec;
    const char *password; /* create and reset only; otherwise NULL */
} ds_ws_t;

/* Workspace login presented instead of an API key (HTTP Basic), or NULL. */
typedef struct {
    const char *user;
    const char *password;
} ds_ws_cred_t;

typedef enum { DS_WS_LOAD_FULL = 0, DS_WS_LOAD_INCREMENTAL, DS_WS_LOAD_VIEW, DS_WS_LOAD_CLONE } ds_ws_load_type_t;

typedef struct {
    const char *bucket;
    const char *table;
    const char *destination; /* NULL: the table's name */
    ds_ws_load_type_t type;
    ds_export_t read; /* columns, where (filters, changed_since/until), limit: as table export reads them */
    int64_t seconds;  /* > 0: only rows changed in the last seconds seconds (not with read.where.changed_since) */
    /* NULL, or read.n_columns names the loaded columns get in the workspace (NULL entry: the column's own) */
    const char *const *renames;
    /*
     * As a table import takes them (ds_cmd_check_dedup): the key is dedup_columns, or the source's primary key
     * when every key column is loaded. update_duplicates (the default): an incremental load replaces the
     * destination's rows of keys the input holds, and dedup_columns collapse the input to one row per key;
     * insert_duplicates: rows are appended; fail_on_duplicates: a key the input holds twice, or (incremental)
     * one the destination holds already, fails the load. A view load takes none.
     */
    ds_dedup_t dedup;
    const char *const *dedup_columns;
    size_t n_dedup_columns;
} ds_ws_load_t;

typedef struct {
    const char *sql;
    double timeout_s; /* 0: the default */
    int64_t limit;    /* 0: the default row cap */
    /* DS_QUERY_JSON: capped rows in the result; CSV / JSONL: every row as a file (ds_query_file_t) */
    enum { DS_QUERY_JSON, DS_QUERY_CSV, DS_QUERY_JSONL } format;
} ds_query_t;

/* The file answer of a query with format CSV or JSONL: an open descriptor of an unlinked file (caller closes), its size. */
typedef struct {
    int fd;
    int64_t size;
} ds_query_file_t;

ds_status_t ds_cmd_ws_create(ds_ctx_t *ctx, const char *project, const ds_ws_create_t *in, ds_ws_t *out);
ds_status_t ds_cmd_ws_list(ds_ctx_t *ctx, const char *project, ds_ws_rec_t **items, size_t *n);
ds_status_t ds_cmd_ws_get(ds_ctx_t *ctx, const char *project, const char *id, ds_ws_t *out);
ds_status_t ds_cmd_ws_drop(ds_ctx_t *ctx, const char *project, const char *id);
/* Drops every object of the workspace but those named in preserve; the workspace and its login stay. */
ds_status_t ds_cmd_ws_clear(ds_ctx_t *ctx, const char *project, const char *id, const char *const *preserve,
                            size_t n_preserve);
/* Drops table or view name; if_exists: a missing one is no error. */
ds_status_t ds_cmd_ws_drop_object(ds_ctx_t *ctx, const char *project, const char *id, const char *name,
                                  bool if_exists);
ds_status_t ds_cmd_ws_reset_password(ds_ctx_t *ctx, const char *project, const char *id, ds_ws_t *out);
/* Disables the workspace's login (a new password nobody is told) until the next reset. */
ds_status_t ds_cmd_ws_disable_login(ds_ctx_t *ctx, const char *project, const char *id);
/*
 * Grants (grant) or revokes workspace id of project read-only access to the
 * storage of project target (GrantWorkspaceAccessToProject). Granting needs a
 * key that may change the workspace and open target; the grant is checked at
 * every storage scan bind of the workspace's queries (ds_storage_scan(...,
 * project := target)), so a revocation holds from the next query on.
 */
ds_status_t ds_cmd_ws_grant(ds_ctx_t *ctx, const char *project, const char *id, const char *target, bool grant);
/* The projects workspace id may read besides its own, in the arena. */
ds_status_t ds_cmd_ws_grants(ds_ctx_t *ctx, const char *project, const char *id, char ***targets, size_t *n);
ds_status_t ds_cmd_ws_load(ds_ctx_t *ctx, const char *project, const char *id, const ds_ws_cred_t *cred,
                           const ds_ws_load_t *in, int64_t *rows);
/* file: filled (instead of out's rows) when q->format is not DS_QUERY_JSON; may be NULL otherwise. */
ds_status_t ds_cmd_ws_query(ds_ctx_t *ctx, const char *project, const char *id, const ds_ws_cred_t *cred,
                            const ds_query_t *q, ds_sandbox_result_t *out, ds_query_file_t *file);
/* Read-only SQL over the project's storage ("<bucket id>"."<table>"). */
ds_status_t ds_cmd_project_query(ds_ctx_t *ctx, const char *project, const ds_query_t *q, ds_sandbox_result_t *out,
                                 ds_query_file_t *file);
/*
 * Unload: imports table in->src_table of workspace ws into bucket.table with
 * in's import options (incremental, dedup, timestamp mode, ...), through the
 * same import as a file: the workspace table's rows become a CSV file in the
 * project's scratch area, imported and then removed. Values of non-text
 * columns that are NULL stay NULL; text NULLs become empty strings (Keboola's
 * string tables have no NULL). Source filters and column mappings are refused.
 */
ds_status_t ds_cmd_table_import_workspace(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                          const char *ws, const ds_import_t *in, ds_import_result_t *out);
/* Removes every workspace of a project being deleted (project.c), or only those of one branch
 * (branch: a deleted branch's, branch.c; NULL: all); failures are logged. */
void ds_cmd_ws_drop_all(ds_ctx_t *ctx, const char *project, const char *branch);

#endif
