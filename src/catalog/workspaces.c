/*
 * workspaces.c - workspace records in the global catalog. See workspaces.h.
 *
 * Parameters are bound as text; each call is one statement under the catalog
 * mutex (ds_catalog_with_conn).
 *
 * DESIGN
 * Every workspace request (query, load, unload, ...) starts by reading its
 * workspace's record, so the records are kept in memory, the way the catalog
 * keeps projects (catalog.c): a prepared catalog query cost 0.5-1 ms, about
 * as much as the rest of a small workspace query's route together. The copy
 * is read from the table on first use after ds_catalog_ws_init and changed
 * together with the table, in the same call under the catalog mutex, after
 * the statement succeeded; so it always equals the table (this process is
 * the catalog file's only writer). Grants stay in the table: they are read
 * only when a query names another project's storage.
 */
#include "catalog/workspaces.h"

#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../backends/duckdb/ddb.h"
#include "catalog/catalog.h"

#define WS_COLUMNS "id, project, branch, user_name, password_hash, object_name, created_at"

typedef struct {
    const char *sql;
    int nparams;
    const char *const *params;
    ds_arena_t *arena; /* non-NULL: rows are read into items */
    ds_ws_rec_t *items;
    size_t n;
    int64_t changed;
} ws_query_t;

/* The records in memory (see DESIGN); touched only under the catalog mutex. */
static ds_ws_rec_t *recs;
static size_t n_recs, cap_recs;
static bool recs_loaded;

static void cell(duckdb_result *r, idx_t c, idx_t i, char *out, size_t n)
{
    char *v = ds_ddb_cell(r, c, i);
    snprintf(out, n, "%s", v ? v : "");
    free(v);
}

static ds_status_t ws_run(void *conn, void *ud, ds_err_t *err)
{
    ws_query_t *q = ud;
    duckdb_result r;
    ds_status_t st = ds_ddb_run((duckdb_connection)conn, err, &r, q->sql, q->nparams, q->params);
    if (st != DS_OK)
        return st;
    q->changed = (int64_t)duckdb_rows_changed(&r);
    if (q->arena) {
        idx_t rows = duckdb_row_count(&r);
        q->items = ds_arena_alloc(q->arena, sizeof(*q->items) * (rows ? rows : 1));
        if (!q->items) {
            duckdb_destroy_result(&r);
            return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        }
        for (idx_t i = 0; i < rows; i++) {
            ds_ws_rec_t *w = &q->items[i];
            cell(&r, 0, i, w->id, sizeof(w->id));
            cell(&r, 1, i, w->project, sizeof(w->project));
            cell(&r, 2, i, w->branch, sizeof(w->branch));
            cell(&r, 3, i, w->user, sizeof(w->user));
            cell(&r, 4, i, w->password_hash, sizeof(w->password_hash));
            cell(&r, 5, i, w->object_name, sizeof(w->object_name));
            w->created_at = ds_ddb_int(&r, 6, i);
        }
        q->n = (size_t)rows;
    }
    duckdb_destroy_result(&r);
    return DS_OK;
}

/* Reads every record of the table into recs. Holds the catalog mutex. */
static ds_status_t recs_load(void *conn, ds_err_t *err)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    ws_query_t q = {.sql = "SELECT " WS_COLUMNS " FROM workspaces", .arena = a};
    ds_status_t st = ws_run(conn, &q, err);
    ds_ws_rec_t *copy = NULL;
    if (st == DS_OK && !(copy = malloc(sizeof(*copy) * (q.n + 16))))
        st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    if (st == DS_OK) {
        if (q.n)
            memcpy(copy, q.items, sizeof(*copy) * q.n);
        free(recs);
        recs = copy;
        n_recs = q.n;
        cap_recs = q.n + 16;
        recs_loaded = true;
    }
    ds_arena_destroy(&a);
    return st;
}

/* The record of workspace id (any case) of project, or NULL. Holds the catalog mutex; recs loaded. */
static ds_ws_rec_t *recs_find(const char *project, const char *id)
{
    for (size_t i = 0; i < n_recs; i++)
        if (strcmp(recs[i].project, project) == 0 && strcasecmp(recs[i].id, id) == 0)
            return &recs[i];
    return NULL;
}

typedef struct {
    const char *project, *id;
    const ds_ws_rec_t *rec; /* insert: the record to add */
    const char *hash;       /* set_password: the new hash */
    ds_ws_rec_t out;        /* get: the record found */
    bool found;
} ws_op_t;

static ds_status_t get_cb(void *conn, void *ud, ds_err_t *err)
{
    ws_op_t *op = ud;
    ds_status_t st = recs_loaded ? DS_OK : recs_load(conn, err);
    ds_ws_rec_t *r = st == DS_OK ? recs_find(op->project, op->id) : NULL;
    if (r) {
        op->out = *r;
        op->found = true;
    }
    return st;
}

static ds_status_t insert_cb(void *conn, void *ud, ds_err_t *err)
{
    ws_op_t *op = ud;
    const ds_ws_rec_t *rec = op->rec;
    ds_status_t st = recs_loaded ? DS_OK : recs_load(conn, err);
    if (st != DS_OK)
        return st;
    if (recs_find(rec->project, rec->id))
        return ds_err_set(err, DS_ALREADY_EXISTS, "workspace \"%s\" already exists in project \"%s\"", rec->id,
                          rec->project);
    if (n_recs == cap_recs) {
        ds_ws_rec_t *grown = realloc(recs, sizeof(*recs) * (cap_recs * 2 + 16));
        if (!grown)
            return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        recs = grown;
        cap_recs = cap_recs * 2 + 16;
    }
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    const char *params[] = {rec->id, rec->project, rec->branch, rec->user, rec->password_hash, rec->object_name,
                            created};
    ws_query_t q = {.sql = "INSERT INTO workspaces VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT))",
                    .nparams = 7,
                    .params = params};
    if ((st = ws_run(conn, &q, err)) == DS_OK)
        recs[n_recs++] = *rec;
    return st;
}

static ds_status_t set_password_cb(void *conn, void *ud, ds_err_t *err)
{
    ws_op_t *op = ud;
    ds_status_t st = recs_loaded ? DS_OK : recs_load(conn, err);
    if (st != DS_OK)
        return st;
    const char *params[] = {op->project, op->id, op->hash};
    ws_query_t q = {.sql = "UPDATE workspaces SET password_hash = $3 WHERE project = $1 AND id = $2",
                    .nparams = 3,
                    .params = params};
    if ((st = ws_run(conn, &q, err)) != DS_OK)
        return st;
    op->found = q.changed > 0;
    for (size_t i = 0; i < n_recs; i++)
        if (strcmp(recs[i].project, op->project) == 0 && strcmp(recs[i].id, op->id) == 0)
            snprintf(recs[i].password_hash, sizeof(recs[i].password_hash), "%s", op->hash);
    return DS_OK;
}

static ds_status_t delete_cb(void *conn, void *ud, ds_err_t *err)
{
    ws_op_t *op = ud;
    ds_status_t st = recs_loaded ? DS_OK : recs_load(conn, err);
    if (st != DS_OK)
        return st;
    const char *params[] = {op->project, op->id};
    ws_query_t g = {.sql = "DELETE FROM workspace_grants WHERE project = $1 AND workspace = $2",
                    .nparams = 2,
                    .params = params};
    ws_query_t q = {.sql = "DELETE FROM workspaces WHERE project = $1 AND id = $2", .nparams = 2, .params = params};
    if ((st = ws_run(conn, &g, err)) != DS_OK || (st = ws_run(conn, &q, err)) != DS_OK)
        return st;
    size_t k = 0;
    for (size_t i = 0; i < n_recs; i++)
        if (strcmp(recs[i].project, op->project) != 0 || strcmp(recs[i].id, op->id) != 0)
            recs[k++] = recs[i];
    n_recs = k;
    return DS_OK;
}

/* Forgets the records in memory (the catalog may be another file now): the next use reads the table. */
static ds_status_t forget_cb(void *conn, void *ud, ds_err_t *err)
{
    (void)conn;
    (void)ud;
    (void)err;
    free(recs);
    recs = NULL;
    n_recs = cap_recs = 0;
    recs_loaded = false;
    return DS_OK;
}

ds_status_t ds_catalog_ws_init(ds_err_t *err)
{
    ws_query_t q = {.sql = "CREATE TABLE IF NOT EXISTS workspaces (id VARCHAR NOT NULL, project VARCHAR NOT NULL, "
                           "branch VARCHAR NOT NULL, user_name VARCHAR NOT NULL, password_hash VARCHAR NOT NULL, "
                           "object_name VARCHAR NOT NULL, created_at BIGINT NOT NULL)"};
    ws_query_t g = {.sql = "CREATE TABLE IF NOT EXISTS workspace_grants (project VARCHAR NOT NULL, "
                           "workspace VARCHAR NOT NULL, target VARCHAR NOT NULL)"};
    ds_status_t st = ds_catalog_with_conn(forget_cb, NULL, err);
    if (st == DS_OK)
        st = ds_catalog_with_conn(ws_run, &q, err);
    return st == DS_OK ? ds_catalog_with_conn(ws_run, &g, err) : st;
}

ds_status_t ds_catalog_ws_get(const char *project, const char *id, ds_ws_rec_t *out, ds_err_t *err)
{
    ws_op_t op = {.project = project, .id = id};
    ds_status_t st = ds_catalog_with_conn(get_cb, &op, err);
    if (st == DS_OK && !op.found)
        st = ds_err_set(err, DS_NOT_FOUND, "workspace \"%s\" not found in project \"%s\"", id, project);
    if (st == DS_OK)
        *out = op.out;
    return st;
}

ds_status_t ds_catalog_ws_insert(const ds_ws_rec_t *rec, ds_err_t *err)
{
    ws_op_t op = {.rec = rec};
    return ds_catalog_with_conn(insert_cb, &op, err);
}

ds_status_t ds_catalog_ws_list(ds_arena_t *arena, const char *project, ds_ws_rec_t **items, size_t *n, ds_err_t *err)
{
    const char *params[] = {project};
    ws_query_t q = {.sql = "SELECT " WS_COLUMNS " FROM workspaces WHERE project = $1 ORDER BY id",
                    .nparams = 1,
                    .params = params,
                    .arena = arena};
    ds_status_t st = ds_catalog_with_conn(ws_run, &q, err);
    *items = q.items;
    *n = st == DS_OK ? q.n : 0;
    return st;
}

ds_status_t ds_catalog_ws_set_password(const char *project, const char *id, const char *hash, ds_err_t *err)
{
    ws_op_t op = {.project = project, .id = id, .hash = hash};
    ds_status_t st = ds_catalog_with_conn(set_password_cb, &op, err);
    if (st == DS_OK && !op.found)
        st = ds_err_set(err, DS_NOT_FOUND, "workspace \"%s\" not found in project \"%s\"", id, project);
    return st;
}

ds_status_t ds_catalog_ws_delete(const char *project, const char *id, ds_err_t *err)
{
    ws_op_t op = {.project = project, .id = id};
    return ds_catalog_with_conn(delete_cb, &op, err);
}

/* ---- grants ---- */

typedef struct {
    const char *sql;
    const char *const *params;
    int nparams;
    ds_arena_t *arena; /* non-NULL: the first column's values are read into values */
    char **values;
    size_t n;
    int64_t changed;
} grant_query_t;

static ds_status_t grant_run(void *conn, void *ud, ds_err_t *err)
{
    grant_query_t *q = ud;
    duckdb_result r;
    ds_status_t st = ds_ddb_run((duckdb_connection)conn, err, &r, q->sql, q->nparams, q->params);
    if (st != DS_OK)
        return st;
    q->changed = (int64_t)duckdb_rows_changed(&r);
    idx_t rows = duckdb_row_count(&r);
    q->n = (size_t)rows;
    if (q->arena) {
        q->values = ds_arena_alloc(q->arena, sizeof(char *) * (rows ? rows : 1));
        for (idx_t i = 0; q->values && i < rows; i++) {
            char *v = ds_ddb_cell(&r, 0, i);
            q->values[i] = ds_arena_strdup(q->arena, v ? v : "");
            free(v);
            if (!q->values[i])
                q->values = NULL;
        }
        if (!q->values)
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    }
    duckdb_destroy_result(&r);
    return st;
}

ds_status_t ds_catalog_ws_grant_has(const char *project, const char *id, const char *target, bool *granted,
                                    ds_err_t *err)
{
    const char *params[] = {project, id, target};
    grant_query_t q = {.sql = "SELECT 1 FROM workspace_grants WHERE project = $1 AND workspace = $2 AND target = $3",
                       .params = params,
                       .nparams = 3};
    ds_status_t st = ds_catalog_with_conn(grant_run, &q, err);
    *granted = st == DS_OK && q.n > 0;
    return st;
}

ds_status_t ds_catalog_ws_grant_add(const char *project, const char *id, const char *target, ds_err_t *err)
{
    bool granted = false;
    ds_status_t st = ds_catalog_ws_grant_has(project, id, target, &granted, err);
    if (st != DS_OK || granted)
        return st;
    const char *params[] = {project, id, target};
    grant_query_t q = {.sql = "INSERT INTO workspace_grants VALUES ($1, $2, $3)", .params = params, .nparams = 3};
    return ds_catalog_with_conn(grant_run, &q, err);
}

ds_status_t ds_catalog_ws_grant_remove(const char *project, const char *id, const char *target, ds_err_t *err)
{
    const char *params[] = {project, id, target};
    grant_query_t q = {.sql = "DELETE FROM workspace_grants WHERE project = $1 AND workspace = $2 AND target = $3",
                       .params = params,
                       .nparams = 3};
    ds_status_t st = ds_catalog_with_conn(grant_run, &q, err);
    if (st == DS_OK && q.changed == 0)
        st = ds_err_set(err, DS_NOT_FOUND, "workspace \"%s\" of project \"%s\" has no access to project \"%s\"", id,
                        project, target);
    return st;
}

ds_status_t ds_catalog_ws_grant_list(ds_arena_t *arena, const char *project, const char *id, char ***targets,
                                     size_t *n, ds_err_t *err)
{
    const char *params[] = {project, id};
    grant_query_t q = {.sql = "SELECT target FROM workspace_grants WHERE project = $1 AND workspace = $2 ORDER BY target",
                       .params = params,
                       .nparams = 2,
                       .arena = arena};
    ds_status_t st = ds_catalog_with_conn(grant_run, &q, err);
    *targets = q.values;
    *n = st == DS_OK ? q.n : 0;
    return st;
}

ds_status_t ds_catalog_ws_grant_forget(const char *target, ds_err_t *err)
{
    const char *params[] = {target};
    grant_query_t q = {.sql = "DELETE FROM workspace_grants WHERE target = $1", .params = params, .nparams = 1};
    return ds_catalog_with_conn(grant_run, &q, err);
}
