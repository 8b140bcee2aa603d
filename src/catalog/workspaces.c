/*
 * workspaces.c - workspace records in the global catalog. See workspaces.h.
 *
 * Parameters are bound as text; each call is one statement under the catalog
 * mutex (ds_catalog_with_conn).
 */
#include "catalog/workspaces.h"

#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

ds_status_t ds_catalog_ws_init(ds_err_t *err)
{
    ws_query_t q = {.sql = "CREATE TABLE IF NOT EXISTS workspaces (id VARCHAR NOT NULL, project VARCHAR NOT NULL, "
                           "branch VARCHAR NOT NULL, user_name VARCHAR NOT NULL, password_hash VARCHAR NOT NULL, "
                           "object_name VARCHAR NOT NULL, created_at BIGINT NOT NULL)"};
    ws_query_t g = {.sql = "CREATE TABLE IF NOT EXISTS workspace_grants (project VARCHAR NOT NULL, "
                           "workspace VARCHAR NOT NULL, target VARCHAR NOT NULL)"};
    ds_status_t st = ds_catalog_with_conn(ws_run, &q, err);
    return st == DS_OK ? ds_catalog_with_conn(ws_run, &g, err) : st;
}

ds_status_t ds_catalog_ws_get(const char *project, const char *id, ds_ws_rec_t *out, ds_err_t *err)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    const char *params[] = {project, id};
    ws_query_t q = {.sql = "SELECT " WS_COLUMNS " FROM workspaces WHERE project = $1 AND lower(id) = lower($2)",
                    .nparams = 2,
                    .params = params,
                    .arena = a};
    ds_status_t st = ds_catalog_with_conn(ws_run, &q, err);
    if (st == DS_OK && q.n == 0)
        st = ds_err_set(err, DS_NOT_FOUND, "workspace \"%s\" not found in project \"%s\"", id, project);
    if (st == DS_OK)
        *out = q.items[0];
    ds_arena_destroy(&a);
    return st;
}

ds_status_t ds_catalog_ws_insert(const ds_ws_rec_t *rec, ds_err_t *err)
{
    ds_ws_rec_t old;
    ds_err_t ignored = {0};
    if (ds_catalog_ws_get(rec->project, rec->id, &old, &ignored) == DS_OK)
        return ds_err_set(err, DS_ALREADY_EXISTS, "workspace \"%s\" already exists in project \"%s\"", rec->id,
                          rec->project);
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    const char *params[] = {rec->id, rec->project, rec->branch, rec->user, rec->password_hash, rec->object_name,
                            created};
    ws_query_t q = {.sql = "INSERT INTO workspaces VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT))",
                    .nparams = 7,
                    .params = params};
    return ds_catalog_with_conn(ws_run, &q, err);
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
    const char *params[] = {project, id, hash};
    ws_query_t q = {.sql = "UPDATE workspaces SET password_hash = $3 WHERE project = $1 AND id = $2",
                    .nparams = 3,
                    .params = params};
    ds_status_t st = ds_catalog_with_conn(ws_run, &q, err);
    if (st == DS_OK && q.changed == 0)
        st = ds_err_set(err, DS_NOT_FOUND, "workspace \"%s\" not found in project \"%s\"", id, project);
    return st;
}

ds_status_t ds_catalog_ws_delete(const char *project, const char *id, ds_err_t *err)
{
    const char *params[] = {project, id};
    ws_query_t g = {.sql = "DELETE FROM workspace_grants WHERE project = $1 AND workspace = $2",
                    .nparams = 2,
                    .params = params};
    ws_query_t q = {.sql = "DELETE FROM workspaces WHERE project = $1 AND id = $2", .nparams = 2, .params = params};
    ds_status_t st = ds_catalog_with_conn(ws_run, &g, err);
    return st == DS_OK ? ds_catalog_with_conn(ws_run, &q, err) : st;
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
