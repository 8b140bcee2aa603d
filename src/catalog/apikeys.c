/*
 * apikeys.c - additional and retired API keys in the catalog. See apikeys.h.
 *
 * The rows live in the catalog file's api_keys table and, for lookups, in an
 * array in memory guarded by `keys_lock`. Lock order: the catalog mutex (held
 * by ds_catalog_with_conn while a statement runs) before keys_lock.
 */
#include "catalog/apikeys.h"

#include <duckdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/duckdb/ddb.h"

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static ds_apikey_rec_t *keys;
static size_t n_keys, cap_keys;

const char *ds_key_scope_name(ds_key_scope_t scope)
{
    switch (scope) {
    case DS_KEY_SCOPE_ADMIN:
        return "admin";
    case DS_KEY_SCOPE_READ:
        return "read";
    case DS_KEY_SCOPE_BRANCH:
        return "branch";
    }
    return "unknown";
}

bool ds_key_scope_parse(const char *name, ds_key_scope_t *out)
{
    static const ds_key_scope_t all[] = {DS_KEY_SCOPE_ADMIN, DS_KEY_SCOPE_READ, DS_KEY_SCOPE_BRANCH};
    for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(name, ds_key_scope_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* Appends rec to the array; keys_lock held. */
static bool push(const ds_apikey_rec_t *rec)
{
    if (n_keys == cap_keys) {
        size_t cap = cap_keys ? cap_keys * 2 : 16;
        ds_apikey_rec_t *k = realloc(keys, cap * sizeof(*keys));
        if (!k)
            return false;
        keys = k;
        cap_keys = cap;
    }
    keys[n_keys++] = *rec;
    return true;
}

/* Index of the project's row id (retired or not), or -1; keys_lock held. */
static long find(const char *project, const char *id, bool retired)
{
    for (size_t i = 0; i < n_keys; i++)
        if (keys[i].retired == retired && strcmp(keys[i].project_id, project) == 0 && strcmp(keys[i].id, id) == 0)
            return (long)i;
    return -1;
}

static void remove_at(size_t i)
{
    keys[i] = keys[n_keys - 1];
    n_keys--;
}

static void fill_row(duckdb_result *r, idx_t i, ds_apikey_rec_t *k)
{
    char *v[5];
    for (int c = 0; c < 5; c++)
        v[c] = ds_ddb_cell(r, (idx_t)c, i);
    memset(k, 0, sizeof(*k));
    snprintf(k->project_id, sizeof(k->project_id), "%s", v[0] ? v[0] : "");
    snprintf(k->id, sizeof(k->id), "%s", v[1] ? v[1] : "");
    snprintf(k->key_hash, sizeof(k->key_hash), "%s", v[2] ? v[2] : "");
    snprintf(k->branch, sizeof(k->branch), "%s", v[3] ? v[3] : "");
    snprintf(k->description, sizeof(k->description), "%s", v[4] ? v[4] : "");
    for (int c = 0; c < 5; c++)
        free(v[c]);
    k->scope = (ds_key_scope_t)ds_ddb_int(r, 5, i);
    k->created_at = ds_ddb_int(r, 6, i);
    k->retired = ds_ddb_int(r, 7, i) != 0;
    k->expires_at = ds_ddb_int(r, 8, i);
}

static ds_status_t open_cb(void *conn, void *ud, ds_err_t *err)
{
    (void)ud;
    duckdb_result r;
    ds_status_t st = ds_ddb_exec(conn, err,
                                 "CREATE TABLE IF NOT EXISTS api_keys (project_id VARCHAR NOT NULL, key_id VARCHAR NOT "
                                 "NULL, key_hash VARCHAR NOT NULL, branch VARCHAR NOT NULL, description VARCHAR NOT "
                                 "NULL, scope INTEGER NOT NULL, created_at BIGINT NOT NULL, retired INTEGER NOT NULL, "
                                 "expires_at BIGINT NOT NULL)");
    if (st == DS_OK)
        st = ds_ddb_run(conn, err, &r,
                        "SELECT project_id, key_id, key_hash, branch, description, scope, created_at, retired, "
                        "expires_at FROM api_keys ORDER BY created_at, key_id",
                        0, NULL);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&keys_lock);
    for (idx_t i = 0; i < duckdb_row_count(&r) && st == DS_OK; i++) {
        ds_apikey_rec_t k;
        fill_row(&r, i, &k);
        if (!push(&k))
            st = ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    pthread_mutex_unlock(&keys_lock);
    duckdb_destroy_result(&r);
    return st;
}

ds_status_t ds_catalog_apikeys_open(ds_err_t *err) { return ds_catalog_with_conn(open_cb, NULL, err); }

void ds_catalog_apikeys_close(void)
{
    pthread_mutex_lock(&keys_lock);
    free(keys);
    keys = NULL;
    n_keys = cap_keys = 0;
    pthread_mutex_unlock(&keys_lock);
}

static ds_status_t insert_row(void *conn, const ds_apikey_rec_t *k, ds_err_t *err)
{
    char scope[8], created[32], retired[4], expires[32];
    snprintf(scope, sizeof(scope), "%d", (int)k->scope);
    snprintf(created, sizeof(created), "%lld", (long long)k->created_at);
    snprintf(retired, sizeof(retired), "%d", k->retired ? 1 : 0);
    snprintf(expires, sizeof(expires), "%lld", (long long)k->expires_at);
    const char *params[] = {k->project_id, k->id,  k->key_hash, k->branch, k->description,
                            scope,         created, retired,     expires};
    return ds_ddb_run(conn, err, NULL,
                      "INSERT INTO api_keys VALUES ($1, $2, $3, $4, $5, CAST($6 AS INTEGER), CAST($7 AS BIGINT), "
                      "CAST($8 AS INTEGER), CAST($9 AS BIGINT))",
                      9, params);
}

static ds_status_t insert_cb(void *conn, void *ud, ds_err_t *err)
{
    const ds_apikey_rec_t *k = ud;
    pthread_mutex_lock(&keys_lock);
    bool taken = find(k->project_id, k->id, false) >= 0;
    pthread_mutex_unlock(&keys_lock);
    if (taken)
        return ds_err_set(err, DS_ALREADY_EXISTS, "project \"%s\" already has a key \"%s\"", k->project_id, k->id);
    ds_status_t st = insert_row(conn, k, err);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&keys_lock);
    if (!push(k))
        st = ds_err_set(err, DS_INTERNAL, "out of memory");
    pthread_mutex_unlock(&keys_lock);
    return st;
}

ds_status_t ds_catalog_apikey_insert(const ds_apikey_rec_t *rec, ds_err_t *err)
{
    return ds_catalog_with_conn(insert_cb, (void *)rec, err);
}

static int cmp_created(const void *a, const void *b)
{
    const ds_apikey_rec_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

ds_status_t ds_catalog_apikey_list(ds_arena_t *arena, const char *project, ds_apikey_rec_t **items, size_t *n,
                                   ds_err_t *err)
{
    pthread_mutex_lock(&keys_lock);
    ds_apikey_rec_t *out = ds_arena_alloc(arena, sizeof(*out) * (n_keys ? n_keys : 1));
    size_t k = 0;
    for (size_t i = 0; out && i < n_keys; i++)
        if (!keys[i].retired && strcmp(keys[i].project_id, project) == 0)
            out[k++] = keys[i];
    pthread_mutex_unlock(&keys_lock);
    if (!out)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    qsort(out, k, sizeof(*out), cmp_created);
    *items = out;
    *n = k;
    return DS_OK;
}

ds_status_t ds_catalog_apikey_get(const char *project, const char *id, ds_apikey_rec_t *out, ds_err_t *err)
{
    pthread_mutex_lock(&keys_lock);
    long i = find(project, id, false);
    if (i >= 0)
        *out = keys[i];
    pthread_mutex_unlock(&keys_lock);
    return i >= 0 ? DS_OK : ds_err_set(err, DS_NOT_FOUND, "project \"%s\" has no key \"%s\"", project, id);
}

typedef struct {
    const char *project, *id;
    const char *new_hash;
    const ds_apikey_rec_t *retired; /* rotate: the row to keep */
} change_t;

static ds_status_t delete_cb(void *conn, void *ud, ds_err_t *err)
{
    change_t *c = ud;
    pthread_mutex_lock(&keys_lock);
    bool exists = find(c->project, c->id, false) >= 0;
    pthread_mutex_unlock(&keys_lock);
    if (!exists && strcmp(c->id, "main") != 0)
        return ds_err_set(err, DS_NOT_FOUND, "project \"%s\" has no key \"%s\"", c->project, c->id);
    const char *params[] = {c->project, c->id};
    ds_status_t st = ds_ddb_run(conn, err, NULL, "DELETE FROM api_keys WHERE project_id = $1 AND key_id = $2", 2,
                                params);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&keys_lock);
    for (long i; (i = find(c->project, c->id, false)) >= 0 || (i = find(c->project, c->id, true)) >= 0;)
        remove_at((size_t)i);
    pthread_mutex_unlock(&keys_lock);
    return DS_OK;
}

ds_status_t ds_catalog_apikey_delete(const char *project, const char *id, ds_err_t *err)
{
    change_t c = {.project = project, .id = id};
    return ds_catalog_with_conn(delete_cb, &c, err);
}

static ds_status_t rotate_cb(void *conn, void *ud, ds_err_t *err)
{
    change_t *c = ud;
    const char *params[] = {c->project, c->id, c->new_hash};
    ds_status_t st = ds_ddb_exec(conn, err, "BEGIN TRANSACTION");
    if (st == DS_OK)
        st = ds_ddb_run(conn, err, NULL, "DELETE FROM api_keys WHERE project_id = $1 AND key_id = $2 AND retired = 1",
                        2, params);
    if (st == DS_OK && c->new_hash)
        st = ds_ddb_run(conn, err, NULL,
                        "UPDATE api_keys SET key_hash = $3 WHERE project_id = $1 AND key_id = $2 AND retired = 0", 3,
                        params);
    if (st == DS_OK)
        st = insert_row(conn, c->retired, err);
    if (st == DS_OK)
        st = ds_ddb_exec(conn, err, "COMMIT");
    if (st != DS_OK) {
        ds_err_t ignored = {0};
        ds_ddb_exec(conn, &ignored, "ROLLBACK");
        return st;
    }
    pthread_mutex_lock(&keys_lock);
    long i = find(c->project, c->id, true);
    if (i >= 0)
        keys[i] = *c->retired;
    else if (!push(c->retired))
        st = ds_err_set(err, DS_INTERNAL, "out of memory");
    if (c->new_hash && (i = find(c->project, c->id, false)) >= 0)
        snprintf(keys[i].key_hash, sizeof(keys[i].key_hash), "%s", c->new_hash);
    pthread_mutex_unlock(&keys_lock);
    return st;
}

ds_status_t ds_catalog_apikey_rotate(const char *project, const char *id, const char *new_hash, const char *old_hash,
                                     ds_key_scope_t scope, const char *branch, int64_t expires_at, ds_err_t *err)
{
    ds_apikey_rec_t old = {.scope = scope, .retired = true, .expires_at = expires_at};
    snprintf(old.project_id, sizeof(old.project_id), "%s", project);
    snprintf(old.id, sizeof(old.id), "%s", id);
    snprintf(old.key_hash, sizeof(old.key_hash), "%s", old_hash);
    snprintf(old.branch, sizeof(old.branch), "%s", branch ? branch : "");
    change_t c = {.project = project, .id = id, .new_hash = new_hash, .retired = &old};
    return ds_catalog_with_conn(rotate_cb, &c, err);
}

static ds_status_t drop_cb(void *conn, void *ud, ds_err_t *err)
{
    const char *project = ud;
    const char *params[] = {project};
    ds_status_t st = ds_ddb_run(conn, err, NULL, "DELETE FROM api_keys WHERE project_id = $1", 1, params);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&keys_lock);
    for (size_t i = n_keys; i-- > 0;)
        if (strcmp(keys[i].project_id, project) == 0)
            remove_at(i);
    pthread_mutex_unlock(&keys_lock);
    return DS_OK;
}

ds_status_t ds_catalog_apikeys_drop_project(const char *project, ds_err_t *err)
{
    return ds_catalog_with_conn(drop_cb, (void *)project, err);
}

bool ds_catalog_apikey_find(const char *key, int64_t now, ds_apikey_rec_t *out)
{
    char hash[DS_KEY_HASH_HEX];
    bool found = false;
    if (!key)
        return false;
    ds_key_hash(key, hash);
    pthread_mutex_lock(&keys_lock);
    /* Every row is compared, without an early exit, so timing says nothing about the key. */
    for (size_t i = 0; i < n_keys; i++) {
        bool same = sodium_memcmp(keys[i].key_hash, hash, DS_KEY_HASH_HEX - 1) == 0;
        if (same && (!keys[i].retired || keys[i].expires_at > now)) {
            *out = keys[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&keys_lock);
    sodium_memzero(hash, sizeof(hash));
    return found;
}
