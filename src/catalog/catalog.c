/*
 * catalog.c - the global catalog. See catalog.h.
 *
 * One mutex guards both the DuckDB connection and the in-memory array; every
 * operation is short (a single-row statement), and catalog changes are rare
 * next to the lookups, which only read memory.
 */
#include "catalog/catalog.h"

#include <duckdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../backends/duckdb/ddb.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static duckdb_database db;
static duckdb_connection conn;
static bool open_;
static ds_project_rec_t *recs;
static size_t n_recs, cap_recs;

static ds_project_rec_t *find(const char *id)
{
    for (size_t i = 0; i < n_recs; i++)
        if (strcmp(recs[i].id, id) == 0)
            return &recs[i];
    return NULL;
}

static ds_status_t load(ds_err_t *err)
{
    duckdb_result r;
    ds_status_t st = ds_ddb_run(conn, err, &r,
                                "SELECT id, name, backend, key_hash, state, created_at, updated_at, retention_days FROM projects", 0,
                                NULL);
    if (st != DS_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    recs = calloc(n + 16, sizeof(*recs));
    if (!recs) {
        duckdb_destroy_result(&r);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    cap_recs = n + 16;
    for (idx_t i = 0; i < n; i++) {
        ds_project_rec_t *p = &recs[i];
        char *v[4];
        for (int c = 0; c < 4; c++)
            v[c] = ds_ddb_cell(&r, (idx_t)c, i);
        snprintf(p->id, sizeof(p->id), "%s", v[0] ? v[0] : "");
        snprintf(p->name, sizeof(p->name), "%s", v[1] ? v[1] : "");
        snprintf(p->backend, sizeof(p->backend), "%s", v[2] ? v[2] : "");
        snprintf(p->key_hash, sizeof(p->key_hash), "%s", v[3] ? v[3] : "");
        for (int c = 0; c < 4; c++)
            free(v[c]);
        p->state = (ds_project_state_t)ds_ddb_int(&r, 4, i);
        p->created_at = ds_ddb_int(&r, 5, i);
        p->updated_at = ds_ddb_int(&r, 6, i);
        p->retention_days = (int32_t)ds_ddb_int(&r, 7, i);
    }
    n_recs = n;
    duckdb_destroy_result(&r);
    return DS_OK;
}

ds_status_t ds_catalog_open(const char *data_dir, ds_err_t *err)
{
    char path[4200];
    char *open_err = NULL;
    duckdb_config cfg = NULL;
    snprintf(path, sizeof(path), "%s/catalog.duckdb", data_dir);
    if (duckdb_create_config(&cfg) == DuckDBError)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    duckdb_set_config(cfg, "threads", "1");
    duckdb_set_config(cfg, "memory_limit", "128MB");
    duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
    duckdb_set_config(cfg, "autoload_known_extensions", "false");
    duckdb_state s = duckdb_open_ext(path, &db, cfg, &open_err);
    duckdb_destroy_config(&cfg);
    if (s == DuckDBError) {
        ds_err_set(err, DS_UNAVAILABLE,
                   "the catalog %s is damaged or unreadable (%s). Nothing was changed or deleted. Way out: restore "
                   "catalog.duckdb from a backup, or move catalog.duckdb (and catalog.duckdb.wal) out of the data "
                   "directory and start again: the catalog is then rebuilt from the project files (docs/operations.md, "
                   "\"Recovery and quarantine\")",
                   path, open_err ? open_err : "unknown error");
        duckdb_free(open_err);
        return DS_UNAVAILABLE;
    }
    if (duckdb_connect(db, &conn) == DuckDBError) {
        duckdb_close(&db);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot connect to catalog %s", path);
    }
    ds_status_t st = ds_ddb_exec(conn, err,
                                 "CREATE TABLE IF NOT EXISTS projects (id VARCHAR NOT NULL, name VARCHAR, "
                                 "backend VARCHAR NOT NULL, key_hash VARCHAR NOT NULL, state INTEGER NOT NULL, "
                                 "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS catalog_flags (name VARCHAR NOT NULL);"
                                 /* Catalogs written before time travel get the column with the default. */
                                 "ALTER TABLE projects ADD COLUMN IF NOT EXISTS retention_days INTEGER "
                                 "DEFAULT 7");
    if (st == DS_OK)
        st = load(err);
    if (st != DS_OK) {
        duckdb_disconnect(&conn);
        duckdb_close(&db);
        return st;
    }
    open_ = true;
    return DS_OK;
}

void ds_catalog_close(void)
{
    pthread_mutex_lock(&lock);
    if (open_) {
        ds_err_t e = {0};
        ds_ddb_exec(conn, &e, "CHECKPOINT");
        duckdb_disconnect(&conn);
        duckdb_close(&db);
        open_ = false;
    }
    free(recs);
    recs = NULL;
    n_recs = cap_recs = 0;
    pthread_mutex_unlock(&lock);
}

bool ds_catalog_ready(void)
{
    pthread_mutex_lock(&lock);
    bool r = open_;
    pthread_mutex_unlock(&lock);
    return r;
}

ds_status_t ds_catalog_project_insert(const ds_project_rec_t *rec, ds_err_t *err)
{
    char state[8], created[32], updated[32], retention[16];
    snprintf(state, sizeof(state), "%d", (int)rec->state);
    snprintf(retention, sizeof(retention), "%d", (int)rec->retention_days);
    snprintf(created, sizeof(created), "%lld", (long long)rec->created_at);
    snprintf(updated, sizeof(updated), "%lld", (long long)rec->updated_at);
    const char *params[] = {rec->id, rec->name, rec->backend, rec->key_hash, state, created, updated, retention};
    ds_status_t st;
    pthread_mutex_lock(&lock);
    /* Ids are unique regardless of case: the engine's names (and some filesystems) ignore case. */
    for (size_t i = 0; i < n_recs; i++)
        if (strcasecmp(recs[i].id, rec->id) == 0) {
            st = ds_err_set(err, DS_ALREADY_EXISTS,
                            strcmp(recs[i].id, rec->id) == 0 ? "project \"%s\" already exists"
                                                             : "project \"%s\" already exists (ids are unique regardless of case)",
                            recs[i].id);
            goto out;
        }
    if (n_recs == cap_recs) {
        size_t cap = cap_recs ? cap_recs * 2 : 16;
        ds_project_rec_t *p = realloc(recs, cap * sizeof(*recs));
        if (!p) {
            st = ds_err_set(err, DS_INTERNAL, "out of memory");
            goto out;
        }
        recs = p;
        cap_recs = cap;
    }
    st = ds_ddb_run(conn, err, NULL,
                    "INSERT INTO projects (id, name, backend, key_hash, state, created_at, updated_at, retention_days) "
                    "VALUES ($1, $2, $3, $4, CAST($5 AS INTEGER), CAST($6 AS BIGINT), CAST($7 AS BIGINT), "
                    "CAST($8 AS INTEGER))",
                    8, params);
    if (st == DS_OK)
        recs[n_recs++] = *rec;
out:
    pthread_mutex_unlock(&lock);
    return st;
}

ds_status_t ds_catalog_project_set_state(const char *id, ds_project_state_t state, ds_err_t *err)
{
    char s[8];
    snprintf(s, sizeof(s), "%d", (int)state);
    const char *params[] = {s, id};
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    ds_status_t st = p ? ds_ddb_run(conn, err, NULL, "UPDATE projects SET state = CAST($1 AS INTEGER) WHERE id = $2",
                                    2, params)
                       : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK)
        p->state = state;
    pthread_mutex_unlock(&lock);
    return st;
}

ds_status_t ds_catalog_project_set_name(const char *id, const char *name, int64_t updated_at, ds_err_t *err)
{
    char u[32];
    snprintf(u, sizeof(u), "%lld", (long long)updated_at);
    const char *params[] = {name, u, id};
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    ds_status_t st = p && p->state == DS_PROJECT_READY
                         ? ds_ddb_run(conn, err, NULL,
                                      "UPDATE projects SET name = $1, updated_at = CAST($2 AS BIGINT) WHERE id = $3",
                                      3, params)
                         : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK) {
        snprintf(p->name, sizeof(p->name), "%s", name);
        p->updated_at = updated_at;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

ds_status_t ds_catalog_project_set_key_hash(const char *id, const char *key_hash, int64_t updated_at, ds_err_t *err)
{
    char u[32];
    snprintf(u, sizeof(u), "%lld", (long long)updated_at);
    const char *params[] = {key_hash, u, id};
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    ds_status_t st = p && p->state == DS_PROJECT_READY
                         ? ds_ddb_run(conn, err, NULL,
                                      "UPDATE projects SET key_hash = $1, updated_at = CAST($2 AS BIGINT) WHERE id = $3",
                                      3, params)
                         : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK) {
        snprintf(p->key_hash, sizeof(p->key_hash), "%s", key_hash);
        p->updated_at = updated_at;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

ds_status_t ds_catalog_project_set_retention(const char *id, int32_t days, int64_t updated_at, ds_err_t *err)
{
    char d[16], u[32];
    snprintf(d, sizeof(d), "%d", (int)days);
    snprintf(u, sizeof(u), "%lld", (long long)updated_at);
    const char *params[] = {d, u, id};
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    ds_status_t st = p && p->state == DS_PROJECT_READY
                         ? ds_ddb_run(conn, err, NULL,
                                      "UPDATE projects SET retention_days = CAST($1 AS INTEGER), updated_at = "
                                      "CAST($2 AS BIGINT) WHERE id = $3",
                                      3, params)
                         : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK) {
        p->retention_days = days;
        p->updated_at = updated_at;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

ds_status_t ds_catalog_project_delete(const char *id, ds_err_t *err)
{
    const char *params[] = {id};
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    ds_status_t st = p ? ds_ddb_run(conn, err, NULL, "DELETE FROM projects WHERE id = $1", 1, params)
                       : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK) {
        *p = recs[n_recs - 1];
        n_recs--;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

bool ds_catalog_project_spelling(const char *id, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_recs && !found; i++)
        if (strcasecmp(recs[i].id, id) == 0) {
            snprintf(out, n, "%s", recs[i].id);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

ds_status_t ds_catalog_project_get(const char *id, ds_project_rec_t *out, ds_err_t *err)
{
    pthread_mutex_lock(&lock);
    ds_project_rec_t *p = find(id);
    if (p)
        *out = *p;
    pthread_mutex_unlock(&lock);
    return p ? DS_OK : ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", id);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const ds_project_rec_t *)a)->id, ((const ds_project_rec_t *)b)->id);
}

static ds_status_t list(ds_arena_t *arena, bool only_ready, ds_project_rec_t **items, size_t *n, ds_err_t *err)
{
    pthread_mutex_lock(&lock);
    ds_project_rec_t *out = ds_arena_alloc(arena, sizeof(*out) * (n_recs ? n_recs : 1));
    size_t k = 0;
    if (out)
        for (size_t i = 0; i < n_recs; i++)
            if (!only_ready || recs[i].state == DS_PROJECT_READY)
                out[k++] = recs[i];
    pthread_mutex_unlock(&lock);
    if (!out)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    qsort(out, k, sizeof(*out), cmp_id);
    *items = out;
    *n = k;
    return DS_OK;
}

ds_status_t ds_catalog_project_list(ds_arena_t *arena, ds_project_rec_t **items, size_t *n, ds_err_t *err)
{
    return list(arena, true, items, n, err);
}

ds_status_t ds_catalog_project_list_all(ds_arena_t *arena, ds_project_rec_t **items, size_t *n, ds_err_t *err)
{
    return list(arena, false, items, n, err);
}

bool ds_catalog_project_by_key(const char *key, char id[DS_PROJECT_ID_MAX + 1])
{
    char hash[DS_KEY_HASH_HEX];
    bool found = false;
    ds_key_hash(key, hash);
    pthread_mutex_lock(&lock);
    /* Compare against every project, without an early exit, so timing says nothing. */
    for (size_t i = 0; i < n_recs; i++)
        if (recs[i].state == DS_PROJECT_READY && sodium_memcmp(recs[i].key_hash, hash, DS_KEY_HASH_HEX - 1) == 0) {
            snprintf(id, DS_PROJECT_ID_MAX + 1, "%s", recs[i].id);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

int64_t ds_catalog_project_count(void)
{
    int64_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_recs; i++)
        n += recs[i].state == DS_PROJECT_READY;
    pthread_mutex_unlock(&lock);
    return n;
}

ds_status_t ds_catalog_with_conn(ds_catalog_conn_cb cb, void *ud, ds_err_t *err)
{
    pthread_mutex_lock(&lock);
    ds_status_t st = open_ ? cb((void *)conn, ud, err) : ds_err_set(err, DS_UNAVAILABLE, "catalog is not open");
    pthread_mutex_unlock(&lock);
    return st;
}

typedef struct {
    const char *name;
    bool set, found;
} flag_t;

static ds_status_t run_flag(void *conn, void *ud, ds_err_t *err)
{
    flag_t *f = ud;
    const char *params[] = {f->name};
    duckdb_result r;
    if (f->set)
        return ds_ddb_run(conn, err, NULL,
                          "INSERT INTO catalog_flags SELECT $1 WHERE NOT EXISTS "
                          "(SELECT 1 FROM catalog_flags WHERE name = $1)",
                          1, params);
    ds_status_t st = ds_ddb_run(conn, err, &r, "SELECT count(*) FROM catalog_flags WHERE name = $1", 1, params);
    if (st == DS_OK) {
        f->found = ds_ddb_int(&r, 0, 0) > 0;
        duckdb_destroy_result(&r);
    }
    return st;
}

bool ds_catalog_flag_get(const char *name)
{
    flag_t f = {name, false, false};
    ds_err_t e = {0};
    return ds_catalog_with_conn(run_flag, &f, &e) == DS_OK && f.found;
}

ds_status_t ds_catalog_flag_set(const char *name, ds_err_t *err)
{
    flag_t f = {name, true, false};
    return ds_catalog_with_conn(run_flag, &f, err);
}
