/*
 * idem.c - idempotency records in the catalog. See idem.h.
 */
#include "catalog/idem.h"

#include <duckdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/duckdb/ddb.h"

static ds_status_t open_cb(void *conn, void *ud, ds_err_t *err)
{
    (void)ud;
    return ds_ddb_exec(conn, err,
                       "CREATE TABLE IF NOT EXISTS idempotency (scope VARCHAR NOT NULL, idem_key VARCHAR NOT NULL, "
                       "request_hash VARCHAR NOT NULL, status INTEGER NOT NULL, content_type VARCHAR NOT NULL, "
                       "body_b64 VARCHAR NOT NULL, created_at BIGINT NOT NULL)");
}

ds_status_t ds_catalog_idem_open(ds_err_t *err) { return ds_catalog_with_conn(open_cb, NULL, err); }

typedef struct {
    ds_arena_t *arena;
    const char *scope, *key;
    int64_t not_before;
    ds_idem_rec_t *rec;
} get_t;

static ds_status_t get_cb(void *conn, void *ud, ds_err_t *err)
{
    get_t *g = ud;
    char nb[32];
    duckdb_result r;
    snprintf(nb, sizeof(nb), "%lld", (long long)g->not_before);
    const char *params[] = {g->scope, g->key, nb};
    ds_status_t st = ds_ddb_run(conn, err, &r,
                                "SELECT request_hash, content_type, body_b64, status, created_at FROM idempotency "
                                "WHERE scope = $1 AND idem_key = $2 AND created_at >= CAST($3 AS BIGINT) LIMIT 1",
                                3, params);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) == 0) {
        duckdb_destroy_result(&r);
        return ds_err_set(err, DS_NOT_FOUND, "no idempotency record");
    }
    char *v[3];
    for (int c = 0; c < 3; c++)
        v[c] = ds_ddb_cell(&r, (idx_t)c, 0);
    ds_idem_rec_t *o = g->rec;
    memset(o, 0, sizeof(*o));
    o->scope = g->scope;
    o->key = g->key;
    o->request_hash = ds_arena_strdup(g->arena, v[0] ? v[0] : "");
    o->content_type = ds_arena_strdup(g->arena, v[1] ? v[1] : "");
    o->status = (int)ds_ddb_int(&r, 3, 0);
    o->created_at = ds_ddb_int(&r, 4, 0);
    size_t b64 = v[2] ? strlen(v[2]) : 0;
    unsigned char *bin = ds_arena_alloc(g->arena, b64 + 1);
    size_t n = 0;
    if (bin && sodium_base642bin(bin, b64 + 1, v[2] ? v[2] : "", b64, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) !=
                   0)
        st = ds_err_set(err, DS_INTERNAL, "an idempotency record's answer is damaged");
    if (bin) {
        bin[n] = '\0';
        o->body = (const char *)bin;
        o->body_len = n;
    }
    if (st == DS_OK && (!bin || !o->request_hash || !o->content_type))
        st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    for (int c = 0; c < 3; c++)
        free(v[c]);
    duckdb_destroy_result(&r);
    return st;
}

ds_status_t ds_catalog_idem_get(ds_arena_t *arena, const char *scope, const char *key, int64_t not_before,
                                ds_idem_rec_t *out, ds_err_t *err)
{
    get_t g = {arena, scope, key, not_before, out};
    return ds_catalog_with_conn(get_cb, &g, err);
}

typedef struct {
    const ds_idem_rec_t *rec;
    int64_t not_before;
    char *b64;
} put_t;

static ds_status_t put_cb(void *conn, void *ud, ds_err_t *err)
{
    put_t *p = ud;
    char status[16], created[32], nb[32];
    snprintf(status, sizeof(status), "%d", p->rec->status);
    snprintf(created, sizeof(created), "%lld", (long long)p->rec->created_at);
    snprintf(nb, sizeof(nb), "%lld", (long long)p->not_before);
    const char *del[] = {p->rec->scope, p->rec->key, nb};
    const char *ins[] = {p->rec->scope, p->rec->key, p->rec->request_hash, status, p->rec->content_type, p->b64,
                         created};
    ds_status_t st = ds_ddb_exec(conn, err, "BEGIN TRANSACTION");
    if (st == DS_OK)
        st = ds_ddb_run(conn, err, NULL,
                        "DELETE FROM idempotency WHERE (scope = $1 AND idem_key = $2) OR created_at < CAST($3 AS "
                        "BIGINT)",
                        3, del);
    if (st == DS_OK)
        st = ds_ddb_run(conn, err, NULL,
                        "INSERT INTO idempotency VALUES ($1, $2, $3, CAST($4 AS INTEGER), $5, $6, CAST($7 AS BIGINT))",
                        7, ins);
    if (st == DS_OK)
        st = ds_ddb_exec(conn, err, "COMMIT");
    if (st != DS_OK) {
        ds_err_t ignored = {0};
        ds_ddb_exec(conn, &ignored, "ROLLBACK");
    }
    return st;
}

ds_status_t ds_catalog_idem_put(const ds_idem_rec_t *rec, int64_t not_before, ds_err_t *err)
{
    size_t cap = sodium_base64_ENCODED_LEN(rec->body_len, sodium_base64_VARIANT_ORIGINAL);
    put_t p = {rec, not_before, malloc(cap)};
    if (!p.b64)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    sodium_bin2base64(p.b64, cap, (const unsigned char *)(rec->body ? rec->body : ""), rec->body_len,
                      sodium_base64_VARIANT_ORIGINAL);
    ds_status_t st = ds_catalog_with_conn(put_cb, &p, err);
    free(p.b64);
    return st;
}
