/*
 * files.c - the Storage Files index in the global catalog. See files.h.
 *
 * Every function builds its parameters as text (ds_ddb_run binds VARCHARs and
 * the SQL casts them), then runs inside ds_catalog_with_conn, so it holds the
 * catalog mutex for exactly one statement or one transaction.
 */
#include "catalog/files.h"

#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/duckdb/ddb.h"
#include "catalog/catalog.h"

#define COLUMNS "id, project, name, size, sha256, created_at, expires_at, permanent, sliced, overwrite, state"

typedef struct {
    const char *sql;
    int nparams;
    const char *const *params;
    ds_arena_t *arena; /* non-NULL: the result rows are read into items */
    ds_file_rec_t *items;
    size_t n;
    bool want_one; /* zero rows is DS_NOT_FOUND */
} query_t;

static ds_status_t read_rows(duckdb_result *r, query_t *q, ds_err_t *err)
{
    idx_t rows = duckdb_row_count(r);
    q->items = ds_arena_alloc(q->arena, sizeof(*q->items) * (rows ? rows : 1));
    if (!q->items)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    for (idx_t i = 0; i < rows; i++) {
        ds_file_rec_t *f = &q->items[i];
        char *v[3];
        v[0] = ds_ddb_cell(r, 0, i);
        v[1] = ds_ddb_cell(r, 1, i);
        v[2] = ds_ddb_cell(r, 4, i);
        snprintf(f->id, sizeof(f->id), "%s", v[0] ? v[0] : "");
        snprintf(f->project, sizeof(f->project), "%s", v[1] ? v[1] : "");
        snprintf(f->sha256, sizeof(f->sha256), "%s", v[2] ? v[2] : "");
        for (int c = 0; c < 3; c++)
            free(v[c]);
        char *name = ds_ddb_cell(r, 2, i);
        f->name = ds_arena_strdup(q->arena, name ? name : "");
        free(name);
        if (!f->name)
            return ds_err_set(err, DS_INTERNAL, "out of memory");
        f->size = ds_ddb_int(r, 3, i);
        f->created_at = ds_ddb_int(r, 5, i);
        f->expires_at = ds_ddb_int(r, 6, i);
        f->permanent = ds_ddb_int(r, 7, i) != 0;
        f->sliced = ds_ddb_int(r, 8, i) != 0;
        f->overwrite = ds_ddb_int(r, 9, i) != 0;
        f->state = ds_ddb_int(r, 10, i) == DS_FILE_READY ? DS_FILE_READY : DS_FILE_STAGING;
    }
    q->n = (size_t)rows;
    return DS_OK;
}

static ds_status_t run_query(void *conn, void *ud, ds_err_t *err)
{
    query_t *q = ud;
    duckdb_result r;
    ds_status_t st = ds_ddb_run((duckdb_connection)conn, err, q->arena ? &r : NULL, q->sql, q->nparams, q->params);
    if (st != DS_OK || !q->arena)
        return st;
    st = read_rows(&r, q, err);
    duckdb_destroy_result(&r);
    return st;
}

static ds_status_t query(query_t *q, ds_err_t *err)
{
    ds_status_t st = ds_catalog_with_conn(run_query, q, err);
    if (st == DS_OK && q->want_one && q->n == 0)
        return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "file not found");
    return st;
}

ds_status_t ds_catalog_files_init(ds_err_t *err)
{
    query_t q = {.sql = "CREATE TABLE IF NOT EXISTS files (id VARCHAR NOT NULL, project VARCHAR NOT NULL, "
                        "name VARCHAR NOT NULL, size BIGINT NOT NULL, sha256 VARCHAR NOT NULL, "
                        "created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, permanent INTEGER NOT NULL, "
                        "sliced INTEGER NOT NULL, overwrite INTEGER NOT NULL, state INTEGER NOT NULL)"};
    return query(&q, err);
}

ds_status_t ds_catalog_file_get(ds_arena_t *arena, const char *project, const char *id, ds_file_rec_t *out,
                                ds_err_t *err)
{
    const char *params[] = {project, id};
    query_t q = {.sql = "SELECT " COLUMNS " FROM files WHERE project = $1 AND id = $2",
                 .nparams = 2,
                 .params = params,
                 .arena = arena,
                 .want_one = true};
    ds_status_t st = query(&q, err);
    if (st == DS_OK)
        *out = q.items[0];
    return st;
}

ds_status_t ds_catalog_file_by_name(ds_arena_t *arena, const char *project, const char *name, ds_file_rec_t *out,
                                    ds_err_t *err)
{
    const char *params[] = {project, name};
    query_t q = {.sql = "SELECT " COLUMNS " FROM files WHERE project = $1 AND name = $2 AND state = 1 "
                        "ORDER BY created_at DESC LIMIT 1",
                 .nparams = 2,
                 .params = params,
                 .arena = arena,
                 .want_one = true};
    ds_status_t st = query(&q, err);
    if (st == DS_OK)
        *out = q.items[0];
    return st;
}

ds_status_t ds_catalog_file_list(ds_arena_t *arena, const char *project, const char *prefix, int64_t now,
                                 ds_file_rec_t **items, size_t *n, ds_err_t *err)
{
    char now_s[32];
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    const char *params[] = {project, prefix ? prefix : "", now_s};
    query_t q = {.sql = "SELECT " COLUMNS " FROM files WHERE project = $1 AND state = 1 "
                        "AND starts_with(name, $2) AND (expires_at = 0 OR expires_at > CAST($3 AS BIGINT)) "
                        "ORDER BY name",
                 .nparams = 3,
                 .params = params,
                 .arena = arena};
    ds_status_t st = query(&q, err);
    if (st == DS_OK) {
        *items = q.items;
        *n = q.n;
    }
    return st;
}

ds_status_t ds_catalog_file_all(ds_arena_t *arena, const char *project, ds_file_rec_t **items, size_t *n,
                                ds_err_t *err)
{
    const char *params[] = {project};
    query_t q = {.sql = project ? "SELECT " COLUMNS " FROM files WHERE project = $1 ORDER BY name"
                                : "SELECT " COLUMNS " FROM files ORDER BY project, name",
                 .nparams = project ? 1 : 0,
                 .params = params,
                 .arena = arena};
    ds_status_t st = query(&q, err);
    if (st == DS_OK) {
        *items = q.items;
        *n = q.n;
    }
    return st;
}

ds_status_t ds_catalog_file_due(ds_arena_t *arena, int64_t now, ds_file_rec_t **items, size_t *n, ds_err_t *err)
{
    char now_s[32];
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    const char *params[] = {now_s};
    query_t q = {.sql = "SELECT " COLUMNS " FROM files WHERE expires_at > 0 AND expires_at <= CAST($1 AS BIGINT) "
                        "ORDER BY expires_at",
                 .nparams = 1,
                 .params = params,
                 .arena = arena};
    ds_status_t st = query(&q, err);
    if (st == DS_OK) {
        *items = q.items;
        *n = q.n;
    }
    return st;
}

#define INSERT_SQL                                                                                                 \
    "INSERT INTO files VALUES ($1, $2, $3, CAST($4 AS BIGINT), $5, CAST($6 AS BIGINT), CAST($7 AS BIGINT), "      \
    "CAST($8 AS INTEGER), CAST($9 AS INTEGER), CAST($10 AS INTEGER), CAST($11 AS INTEGER))"

/* Runs the INSERT of one row. */
static ds_status_t insert_row(duckdb_connection conn, const ds_file_rec_t *rec, ds_err_t *err)
{
    char size[32], created[32], expires[32], perm[4], sliced[4], over[4], state[4];
    snprintf(size, sizeof(size), "%lld", (long long)rec->size);
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    snprintf(expires, sizeof(expires), "%lld", (long long)rec->expires_at);
    snprintf(perm, sizeof(perm), "%d", rec->permanent ? 1 : 0);
    snprintf(sliced, sizeof(sliced), "%d", rec->sliced ? 1 : 0);
    snprintf(over, sizeof(over), "%d", rec->overwrite ? 1 : 0);
    snprintf(state, sizeof(state), "%d", (int)rec->state);
    const char *params[] = {rec->id, rec->project, rec->name, size, rec->sha256, created, expires,
                            perm,    sliced,       over,      state};
    return ds_ddb_run(conn, err, NULL, INSERT_SQL, 11, params);
}

static ds_status_t run_insert(void *conn, void *ud, ds_err_t *err) { return insert_row(conn, ud, err); }

ds_status_t ds_catalog_file_insert(const ds_file_rec_t *rec, ds_err_t *err)
{
    return ds_catalog_with_conn(run_insert, (void *)rec, err);
}

typedef struct {
    const ds_file_rec_t *recs;
    size_t n;
} publish_t;

static ds_status_t run_publish(void *vconn, void *ud, ds_err_t *err)
{
    duckdb_connection conn = vconn;
    publish_t *p = ud;
    ds_status_t st = ds_ddb_exec(conn, err, "BEGIN TRANSACTION");
    for (size_t i = 0; st == DS_OK && i < p->n; i++) {
        const ds_file_rec_t *rec = &p->recs[i];
        const char *params[] = {rec->project, rec->name, rec->id};
        st = ds_ddb_run(conn, err, NULL,
                        "DELETE FROM files WHERE project = $1 AND ((name = $2 AND state = 1) OR id = $3)", 3, params);
        if (st == DS_OK)
            st = insert_row(conn, rec, err);
    }
    if (st == DS_OK)
        st = ds_ddb_exec(conn, err, "COMMIT");
    if (st != DS_OK) {
        ds_err_t e = {0};
        ds_ddb_exec(conn, &e, "ROLLBACK");
    }
    return st;
}

ds_status_t ds_catalog_file_publish(const ds_file_rec_t *recs, size_t n, ds_err_t *err)
{
    publish_t p = {recs, n};
    return ds_catalog_with_conn(run_publish, &p, err);
}

typedef struct {
    const char *project;
    const char *id;
    bool found;
} delete_t;

static ds_status_t run_delete(void *vconn, void *ud, ds_err_t *err)
{
    delete_t *d = ud;
    duckdb_result r;
    const char *params[] = {d->project, d->id};
    ds_status_t st = d->id ? ds_ddb_run(vconn, err, &r, "DELETE FROM files WHERE project = $1 AND id = $2", 2, params)
                           : ds_ddb_run(vconn, err, &r, "DELETE FROM files WHERE project = $1", 1, params);
    if (st != DS_OK)
        return st;
    d->found = duckdb_rows_changed(&r) > 0;
    duckdb_destroy_result(&r);
    return DS_OK;
}

ds_status_t ds_catalog_file_delete(const char *project, const char *id, ds_err_t *err)
{
    delete_t d = {project, id, false};
    ds_status_t st = ds_catalog_with_conn(run_delete, &d, err);
    if (st == DS_OK && !d.found)
        return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "file \"%s\" not found", id);
    return st;
}

ds_status_t ds_catalog_file_delete_project(const char *project, ds_err_t *err)
{
    delete_t d = {project, NULL, false};
    return ds_catalog_with_conn(run_delete, &d, err);
}
