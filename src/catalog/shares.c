/*
 * shares.c - share, link and read-only role records in the global catalog.
 * See shares.h.
 *
 * Parameters are bound as text; each change is one statement under the catalog
 * mutex (ds_catalog_with_conn). A share's target projects are stored as one
 * comma-separated text (project ids cannot hold a comma). Bucket ids are
 * compared regardless of case, as the engine compares schema names.
 *
 * Shares and links are read on every request that names a linked bucket, so
 * they are mirrored in memory (loaded at start, changed right after each
 * statement that changes the tables committed, under mem_lock): lookups cost
 * no SQL. This process is the catalog's only writer, so the mirror is never
 * behind what a later request could read. Lock order: the catalog mutex
 * (inside ds_catalog_with_conn) is never held while taking mem_lock, nor the
 * reverse.
 */
#include "catalog/shares.h"

#include <duckdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- the in-memory mirror ---- */

typedef struct {
    char *project, *bucket, *targets; /* targets: comma-separated */
    bool organization;
    int64_t created_at;
} mshare_t;

typedef struct {
    char *project, *bucket, *source_project, *source_bucket;
    int64_t created_at;
} mlink_t;

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static mshare_t *mshares;
static size_t n_mshares, cap_mshares;
static mlink_t *mlinks;
static size_t n_mlinks, cap_mlinks;

static void mshare_free(mshare_t *m)
{
    free(m->project);
    free(m->bucket);
    free(m->targets);
}

static void mlink_free(mlink_t *m)
{
    free(m->project);
    free(m->bucket);
    free(m->source_project);
    free(m->source_bucket);
}

/* Under mem_lock: replaces (or adds) the share of m's project and bucket; takes m's strings. */
static bool mshare_set_locked(mshare_t m)
{
    for (size_t i = 0; i < n_mshares; i++)
        if (strcmp(mshares[i].project, m.project) == 0 && strcasecmp(mshares[i].bucket, m.bucket) == 0) {
            mshare_free(&mshares[i]);
            mshares[i] = m;
            return true;
        }
    if (n_mshares == cap_mshares) {
        size_t cap = cap_mshares ? cap_mshares * 2 : 16;
        mshare_t *grown = realloc(mshares, sizeof(*grown) * cap);
        if (!grown)
            return false;
        mshares = grown;
        cap_mshares = cap;
    }
    mshares[n_mshares++] = m;
    return true;
}

static bool mlink_add_locked(mlink_t m)
{
    if (n_mlinks == cap_mlinks) {
        size_t cap = cap_mlinks ? cap_mlinks * 2 : 16;
        mlink_t *grown = realloc(mlinks, sizeof(*grown) * cap);
        if (!grown)
            return false;
        mlinks = grown;
        cap_mlinks = cap;
    }
    mlinks[n_mlinks++] = m;
    return true;
}

static char *dup_or_null(const char *s) { return strdup(s ? s : ""); }

/* A copy of m in arena as a record (targets split). */
static bool share_copy(ds_arena_t *arena, const mshare_t *m, ds_share_rec_t *out)
{
    memset(out, 0, sizeof(*out));
    out->project = ds_arena_strdup(arena, m->project);
    out->bucket = ds_arena_strdup(arena, m->bucket);
    out->organization = m->organization;
    out->created_at = m->created_at;
    char *t = ds_arena_strdup(arena, m->targets);
    size_t cap = 1;
    for (const char *c = m->targets; *c; c++)
        cap += *c == ',';
    out->targets = ds_arena_alloc(arena, sizeof(char *) * cap);
    if (!out->project || !out->bucket || !t || !out->targets)
        return false;
    for (char *tok = t, *next; tok && *tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        if (*tok)
            out->targets[out->n_targets++] = tok;
    }
    return true;
}

static bool link_copy(ds_arena_t *arena, const mlink_t *m, ds_link_rec_t *out)
{
    *out = (ds_link_rec_t){.project = ds_arena_strdup(arena, m->project), .bucket = ds_arena_strdup(arena, m->bucket),
                           .source_project = ds_arena_strdup(arena, m->source_project),
                           .source_bucket = ds_arena_strdup(arena, m->source_bucket), .created_at = m->created_at};
    return out->project && out->bucket && out->source_project && out->source_bucket;
}

/* Fills the mirror from the tables (service start). */
static ds_status_t mem_load(ds_err_t *err)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    sh_query_t qs = {.sql = "SELECT project, bucket, CAST(organization AS INTEGER), targets, created_at FROM bucket_shares",
                     .arena = a,
                     .ncols = 5};
    sh_query_t ql = {.sql = "SELECT project, bucket, source_project, source_bucket, created_at FROM bucket_links",
                     .arena = a,
                     .ncols = 5};
    ds_status_t st = ds_catalog_with_conn(sh_run, &qs, err);
    if (st == DS_OK)
        st = ds_catalog_with_conn(sh_run, &ql, err);
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; st == DS_OK && i < qs.n; i++) {
        char **r = &qs.cells[i * 5];
        mshare_t m = {strdup(r[0]), strdup(r[1]), strdup(r[3]), strcmp(r[2], "1") == 0, strtoll(r[4], NULL, 10)};
        if (!m.project || !m.bucket || !m.targets || !mshare_set_locked(m)) {
            mshare_free(&m);
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        }
    }
    for (size_t i = 0; st == DS_OK && i < ql.n; i++) {
        char **r = &ql.cells[i * 5];
        mlink_t m = {strdup(r[0]), strdup(r[1]), strdup(r[2]), strdup(r[3]), strtoll(r[4], NULL, 10)};
        if (!m.project || !m.bucket || !m.source_project || !m.source_bucket || !mlink_add_locked(m)) {
            mlink_free(&m);
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        }
    }
    pthread_mutex_unlock(&mem_lock);
    ds_arena_destroy(&a);
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
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mshares; i++)
        mshare_free(&mshares[i]);
    for (size_t i = 0; i < n_mlinks; i++)
        mlink_free(&mlinks[i]);
    n_mshares = n_mlinks = 0;
    pthread_mutex_unlock(&mem_lock);
    return mem_load(err);
}

/* ---- shares ---- */

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
    if (st == DS_OK) {
        mshare_t m = {dup_or_null(rec->project), dup_or_null(rec->bucket), targets, rec->organization,
                      rec->created_at};
        pthread_mutex_lock(&mem_lock);
        bool ok = m.project && m.bucket && mshare_set_locked(m);
        pthread_mutex_unlock(&mem_lock);
        if (ok)
            return DS_OK;
        mshare_free(&m);
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    }
    free(targets);
    return st;
}

ds_status_t ds_catalog_share_get(ds_arena_t *arena, const char *project, const char *bucket, ds_share_rec_t *out,
                                 bool *found, ds_err_t *err)
{
    bool ok = true;
    *found = false;
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mshares && !*found; i++)
        if (strcmp(mshares[i].project, project) == 0 && strcasecmp(mshares[i].bucket, bucket) == 0) {
            ok = share_copy(arena, &mshares[i], out);
            *found = true;
        }
    pthread_mutex_unlock(&mem_lock);
    return ok ? DS_OK : ds_err_set(err, DS_UNAVAILABLE, "out of memory");
}

static int share_cmp(const void *a, const void *b)
{
    return strcmp(((const ds_share_rec_t *)a)->bucket, ((const ds_share_rec_t *)b)->bucket);
}

ds_status_t ds_catalog_share_list(ds_arena_t *arena, const char *project, ds_share_rec_t **items, size_t *n,
                                  ds_err_t *err)
{
    bool ok = true;
    *n = 0;
    pthread_mutex_lock(&mem_lock);
    *items = ds_arena_alloc(arena, sizeof(**items) * (n_mshares ? n_mshares : 1));
    ok = *items != NULL;
    for (size_t i = 0; ok && i < n_mshares; i++)
        if (strcmp(mshares[i].project, project) == 0)
            ok = share_copy(arena, &mshares[i], &(*items)[(*n)++]);
    pthread_mutex_unlock(&mem_lock);
    if (!ok)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    qsort(*items, *n, sizeof(**items), share_cmp);
    return DS_OK;
}

ds_status_t ds_catalog_share_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    int64_t changed = 0;
    ds_status_t st = sh_exec("DELETE FROM bucket_shares WHERE project = $1 AND lower(bucket) = lower($2)", params, 2,
                             err, &changed);
    if (removed)
        *removed = st == DS_OK && changed > 0;
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mshares; i++)
        if (strcmp(mshares[i].project, project) == 0 && strcasecmp(mshares[i].bucket, bucket) == 0) {
            mshare_free(&mshares[i]);
            mshares[i--] = mshares[--n_mshares];
        }
    pthread_mutex_unlock(&mem_lock);
    return DS_OK;
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
    if ((st = sh_exec("INSERT INTO bucket_links VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT))", params, 5, err, NULL)) !=
        DS_OK)
        return st;
    mlink_t m = {dup_or_null(rec->project), dup_or_null(rec->bucket), dup_or_null(rec->source_project),
                 dup_or_null(rec->source_bucket), rec->created_at};
    pthread_mutex_lock(&mem_lock);
    bool ok = m.project && m.bucket && m.source_project && m.source_bucket && mlink_add_locked(m);
    pthread_mutex_unlock(&mem_lock);
    if (ok)
        return DS_OK;
    mlink_free(&m);
    return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
}

ds_status_t ds_catalog_link_get(ds_arena_t *arena, const char *project, const char *bucket, ds_link_rec_t *out,
                                bool *found, ds_err_t *err)
{
    bool ok = true;
    *found = false;
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mlinks && !*found; i++)
        if (strcmp(mlinks[i].project, project) == 0 && strcasecmp(mlinks[i].bucket, bucket) == 0) {
            ok = link_copy(arena, &mlinks[i], out);
            *found = true;
        }
    pthread_mutex_unlock(&mem_lock);
    return ok ? DS_OK : ds_err_set(err, DS_UNAVAILABLE, "out of memory");
}

static int link_cmp(const void *a, const void *b)
{
    const ds_link_rec_t *x = a, *y = b;
    int c = strcmp(x->project, y->project);
    return c ? c : strcmp(x->bucket, y->bucket);
}

/* The links whose target (by_source false) or source (true) is project; bucket NULL: any. Sorted. */
static ds_status_t link_select(ds_arena_t *arena, const char *project, const char *bucket, bool by_source,
                               ds_link_rec_t **items, size_t *n, ds_err_t *err)
{
    bool ok;
    *n = 0;
    pthread_mutex_lock(&mem_lock);
    *items = ds_arena_alloc(arena, sizeof(**items) * (n_mlinks ? n_mlinks : 1));
    ok = *items != NULL;
    for (size_t i = 0; ok && i < n_mlinks; i++) {
        const mlink_t *m = &mlinks[i];
        if (strcmp(by_source ? m->source_project : m->project, project) != 0)
            continue;
        if (bucket && strcasecmp(by_source ? m->source_bucket : m->bucket, bucket) != 0)
            continue;
        ok = link_copy(arena, m, &(*items)[(*n)++]);
    }
    pthread_mutex_unlock(&mem_lock);
    if (!ok)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    qsort(*items, *n, sizeof(**items), link_cmp);
    return DS_OK;
}

ds_status_t ds_catalog_link_list(ds_arena_t *arena, const char *project, ds_link_rec_t **items, size_t *n,
                                 ds_err_t *err)
{
    return link_select(arena, project, NULL, false, items, n, err);
}

ds_status_t ds_catalog_link_list_source(ds_arena_t *arena, const char *source_project, const char *source_bucket,
                                        ds_link_rec_t **items, size_t *n, ds_err_t *err)
{
    return link_select(arena, source_project, source_bucket, true, items, n, err);
}

ds_status_t ds_catalog_link_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err)
{
    const char *params[] = {project, bucket};
    int64_t changed = 0;
    ds_status_t st = sh_exec("DELETE FROM bucket_links WHERE project = $1 AND lower(bucket) = lower($2)", params, 2,
                             err, &changed);
    if (removed)
        *removed = st == DS_OK && changed > 0;
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mlinks; i++)
        if (strcmp(mlinks[i].project, project) == 0 && strcasecmp(mlinks[i].bucket, bucket) == 0) {
            mlink_free(&mlinks[i]);
            mlinks[i--] = mlinks[--n_mlinks];
        }
    pthread_mutex_unlock(&mem_lock);
    return DS_OK;
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
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < n_mlinks; i++)
        if (strcmp(mlinks[i].project, project) == 0 || strcmp(mlinks[i].source_project, project) == 0) {
            mlink_free(&mlinks[i]);
            mlinks[i--] = mlinks[--n_mlinks];
        }
    for (size_t i = 0; i < n_mshares; i++)
        if (strcmp(mshares[i].project, project) == 0) {
            mshare_free(&mshares[i]);
            mshares[i--] = mshares[--n_mshares];
        }
    pthread_mutex_unlock(&mem_lock);
    return DS_OK;
}
