/*
 * shares.c - share, link and read-only role records in the global catalog.
 * See shares.h.
 *
 * Parameters are bound as text; each call is one statement under the catalog
 * mutex (ds_catalog_with_conn). A share's target projects are stored as one
 * comma-separated text (project ids cannot hold a comma). Bucket ids are
 * compared lower-cased, as the engine compares schema names.
 */
#include "catalog/shares.h"

#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/duckdb/ddb.h"
#include "catalog/catalog.h"

typedef struct {
    const char *sql;
    const char *const *params;
    int nparams;
    ds_arena_t *arena; /* non-NULL: the rows are read into cells (row-major, ncols text cells each) */
    int ncols;
    char **cells;
    size_t n;
    int64_t changed;
} sh_query_t;

static ds_status_t sh_run(void *conn, void *ud, ds_err_t *err)
{
    sh_query_t *q = ud;
    duckdb_result r;
    ds_status_t st = ds_ddb_run((duckdb_connection)conn, err, &r, q->sql, q->nparams, q->params);
    if (st != DS_OK)
        return st;
    q->changed = (int64_t)duckdb_rows_changed(&r);
    idx_t rows = duckdb_row_count(&r);
    q->n = (size_t)rows;
    if (q->arena && q->ncols > 0) {
        size_t total = (size_t)rows * (size_t)q->ncols;
        q->cells = ds_arena_alloc(q->arena, sizeof(char *) * (total ? total : 1));
        for (idx_t i = 0; q->cells && i < rows; i++)
            for (int c = 0; q->cells && c < q->ncols; c++) {
                char *v = ds_ddb_cell(&r, (idx_t)c, i);
                char *copy = ds_arena_strdup(q->arena, v ? v : "");
                free(v);
                if (!copy)
                    q->cells = NULL;
                else
                    q->cells[(size_t)i * (size_t)q->ncols + (size_t)c] = copy;
            }
        if (!q->cells)
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    }
    duckdb_destroy_result(&r);
    return st;
}

static ds_status_t sh_exec(const char *sql, const char *const *params, int nparams, ds_err_t *err, int64_t *changed)
{
    sh_query_t q = {.sql = sql, .params = params, .nparams = nparams};
    ds_status_t st = ds_catalog_with_conn(sh_run, &q, err);
    if (changed)
        *changed = q.changed;
    return st;
}

ds_status_t ds_catalog_shares_init(ds_err_t *err)
{
    static const char *const ddl[] = {
        "CREATE TABLE IF NOT EXISTS bucket_shares (project VARCHAR NOT NULL, bucket VARCHAR NOT NULL, "
        "organization BOOLEAN NOT NULL, targets VARCHAR NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bucket_links (project VARCHAR NOT NULL, bucket VARCHAR NOT NULL, "
        "source_project VARCHAR NOT NULL, source_bucket VARCHAR NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS readonly_revoked (project VARCHAR NOT NULL, bucket VARCHAR NOT NULL)",
    };
    for (size_t i = 0; i < sizeof(ddl) / sizeof(ddl[0]); i++) {
        ds_status_t st = sh_exec(ddl[i], NULL, 0, err, NULL);
        if (st != DS_OK)
            return st;
    }
    return DS_OK;
}

/* ---- shares ---- */

#define SHARE_COLUMNS "project, bucket, CAST(organization AS INTEGER), targets, created_at"

static ds_status_t share_rows(ds_arena_t *arena, sh_query_t *q, ds_share_rec_t **items, ds_err_t *err)
{
    *items = ds_arena_alloc(arena, sizeof(**items) * (q->n ? q->n : 1));
    if (!*items)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < q->n; i++) {
        char **row = &q->cells[i * 5];
        ds_share_rec_t *s = &(*items)[i];
        memset(s, 0, sizeof(*s));
        s->project = row[0];
        s->bucket = row[1];
        s->organization = strcmp(row[2], "1") == 0;
        s->created_at = strtoll(row[4], NULL, 10);
        size_t cap = 1;
        for (const char *c = row[3]; *c; c++)
            cap += *c == ',';
        s->targets = ds_arena_alloc(arena, sizeof(char *) * cap);
        if (!s->targets)
            return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        for (char *tok = row[3], *next; tok && *tok; tok = next) {
            next = strchr(tok, ',');
            if (next)
                *next++ = '\0';
            if (*tok)
                s->targets[s->n_targets++] = tok;
        }
    }
    return DS_OK;
}

ds_status_t ds_catalog_share_put(const ds_share_rec_t *rec, ds_err_t *err)
{
    size_t len = 1;
    for (size_t i = 0; i < rec->n_targets; i++)
        len += strlen(rec->targets[i]) + 1;
    char *targets = malloc(len);
    if (!targets)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    targets[0] = '\0';
    for (size_t i = 0; i < rec->n_targets; i++) {
        if (i)
            strcat(targets, ",");
        strcat(targets, rec->targets[i]);
    }
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    const char *del[] = {rec->project, rec->bucket};
    const char *ins[] = {rec->project, rec->bucket, rec->organization ? "true" : "false", targets, created};
    ds_status_t st = sh_exec("DELETE FROM bucket_shares WHERE project = $1 AND lower(bucket) = lower($2)", del, 2,
                             err, NULL);
    if (st == DS_OK)
        st = sh_exec("INSERT INTO bucket_shares VALUES ($1, $2, CAST($3 AS BOOLEAN), $4, CAST($5 AS BIGINT))", ins, 5,
                     err, NULL);
    free(targets);
    return st;
}

ds_status_t ds_catalog_share_get(ds_arena_t *arena, const char *project, const char *bucket, ds_share_rec_t *out,
                                 bool *found, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    sh_query_t q = {.sql = "SELECT " SHARE_COLUMNS " FROM bucket_shares WHERE project = $1 AND lower(bucket) = lower($2)",
                    .params = params,
                    .nparams = 2,
                    .arena = arena,
                    .ncols = 5};
    *found = false;
    ds_status_t st = ds_catalog_with_conn(sh_run, &q, err);
    ds_share_rec_t *items;
    if (st == DS_OK && q.n > 0 && (st = share_rows(arena, &q, &items, err)) == DS_OK) {
        *out = items[0];
        *found = true;
    }
    return st;
}

ds_status_t ds_catalog_share_list(ds_arena_t *arena, const char *project, ds_share_rec_t **items, size_t *n,
                                  ds_err_t *err)
{
    const char *params[] = {project};
    sh_query_t q = {.sql = "SELECT " SHARE_COLUMNS " FROM bucket_shares WHERE project = $1 ORDER BY bucket",
                    .params = params,
                    .nparams = 1,
                    .arena = arena,
                    .ncols = 5};
    *n = 0;
    ds_status_t st = ds_catalog_with_conn(sh_run, &q, err);
    if (st == DS_OK && (st = share_rows(arena, &q, items, err)) == DS_OK)
        *n = q.n;
    return st;
}

ds_status_t ds_catalog_share_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    int64_t changed = 0;
    ds_status_t st = sh_exec("DELETE FROM bucket_shares WHERE project = $1 AND lower(bucket) = lower($2)", params, 2,
                             err, &changed);
    if (removed)
        *removed = st == DS_OK && changed > 0;
    return st;
}

bool ds_catalog_share_includes(const ds_share_rec_t *rec, const char *project)
{
    if (rec->organization)
        return true;
    for (size_t i = 0; i < rec->n_targets; i++)
        if (strcmp(rec->targets[i], project) == 0)
            return true;
    return false;
}

/* ---- links ---- */

#define LINK_COLUMNS "project, bucket, source_project, source_bucket, created_at"

static ds_status_t link_query(ds_arena_t *arena, const char *sql, const char *const *params, int nparams,
                              ds_link_rec_t **items, size_t *n, ds_err_t *err)
{
    sh_query_t q = {.sql = sql, .params = params, .nparams = nparams, .arena = arena, .ncols = 5};
    *n = 0;
    ds_status_t st = ds_catalog_with_conn(sh_run, &q, err);
    if (st != DS_OK)
        return st;
    *items = ds_arena_alloc(arena, sizeof(**items) * (q.n ? q.n : 1));
    if (!*items)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < q.n; i++) {
        char **row = &q.cells[i * 5];
        (*items)[i] = (ds_link_rec_t){.project = row[0], .bucket = row[1], .source_project = row[2],
                                      .source_bucket = row[3], .created_at = strtoll(row[4], NULL, 10)};
    }
    *n = q.n;
    return DS_OK;
}

ds_status_t ds_catalog_link_insert(const ds_link_rec_t *rec, ds_err_t *err)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    ds_link_rec_t existing;
    bool found = false;
    ds_status_t st = ds_catalog_link_get(a, rec->project, rec->bucket, &existing, &found, err);
    if (st == DS_OK && found)
        st = ds_err_set(err, DS_ALREADY_EXISTS, "project \"%s\" already has a linked bucket \"%s\"", rec->project,
                        existing.bucket);
    ds_arena_destroy(&a);
    if (st != DS_OK)
        return st;
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    const char *params[] = {rec->project, rec->bucket, rec->source_project, rec->source_bucket, created};
    return sh_exec("INSERT INTO bucket_links VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT))", params, 5, err, NULL);
}

ds_status_t ds_catalog_link_get(ds_arena_t *arena, const char *project, const char *bucket, ds_link_rec_t *out,
                                bool *found, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    ds_link_rec_t *items;
    size_t n;
    *found = false;
    ds_status_t st = link_query(arena,
                                "SELECT " LINK_COLUMNS " FROM bucket_links WHERE project = $1 AND lower(bucket) = lower($2)",
                                params, 2, &items, &n, err);
    if (st == DS_OK && n > 0) {
        *out = items[0];
        *found = true;
    }
    return st;
}

ds_status_t ds_catalog_link_list(ds_arena_t *arena, const char *project, ds_link_rec_t **items, size_t *n,
                                 ds_err_t *err)
{
    const char *params[] = {project};
    return link_query(arena, "SELECT " LINK_COLUMNS " FROM bucket_links WHERE project = $1 ORDER BY bucket", params, 1,
                      items, n, err);
}

ds_status_t ds_catalog_link_list_source(ds_arena_t *arena, const char *source_project, const char *source_bucket,
                                        ds_link_rec_t **items, size_t *n, ds_err_t *err)
{
    if (!source_bucket) {
        const char *params[] = {source_project};
        return link_query(arena,
                          "SELECT " LINK_COLUMNS " FROM bucket_links WHERE source_project = $1 ORDER BY project, bucket",
                          params, 1, items, n, err);
    }
    const char *params[] = {source_project, source_bucket};
    return link_query(arena,
                      "SELECT " LINK_COLUMNS " FROM bucket_links WHERE source_project = $1 AND "
                      "lower(source_bucket) = lower($2) ORDER BY project, bucket",
                      params, 2, items, n, err);
}

ds_status_t ds_catalog_link_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    int64_t changed = 0;
    ds_status_t st = sh_exec("DELETE FROM bucket_links WHERE project = $1 AND lower(bucket) = lower($2)", params, 2,
                             err, &changed);
    if (removed)
        *removed = st == DS_OK && changed > 0;
    return st;
}

/* ---- read-only role ---- */

ds_status_t ds_catalog_readonly_set(const char *project, const char *bucket, bool revoked, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    ds_status_t st = sh_exec("DELETE FROM readonly_revoked WHERE project = $1 AND lower(bucket) = lower($2)", params,
                             2, err, NULL);
    if (st == DS_OK && revoked)
        st = sh_exec("INSERT INTO readonly_revoked VALUES ($1, $2)", params, 2, err, NULL);
    return st;
}

ds_status_t ds_catalog_readonly_revoked(const char *project, const char *bucket, bool *revoked, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    sh_query_t q = {.sql = "SELECT 1 FROM readonly_revoked WHERE project = $1 AND lower(bucket) = lower($2)",
                    .params = params,
                    .nparams = 2};
    ds_status_t st = ds_catalog_with_conn(sh_run, &q, err);
    *revoked = st == DS_OK && q.n > 0;
    return st;
}

ds_status_t ds_catalog_shares_forget(const char *project, ds_err_t *err)
{
    const char *params[] = {project};
    ds_status_t st = sh_exec("DELETE FROM bucket_links WHERE project = $1 OR source_project = $1", params, 1, err, NULL);
    if (st == DS_OK)
        st = sh_exec("DELETE FROM bucket_shares WHERE project = $1", params, 1, err, NULL);
    if (st == DS_OK)
        st = sh_exec("DELETE FROM readonly_revoked WHERE project = $1", params, 1, err, NULL);
    return st;
}
