/*
 * idem.c - idempotency records of the DuckDB backend (the ops' idem_lookup,
 * and ds_be_call_t.idem of imports and row deletions).
 *
 * A write that carries call->idem inserts (token, request_hash, created_at,
 * count) into the project file's _ds.idempotency inside its own transaction
 * (ddb_idem_record), so the record commits exactly when the data does. The
 * table is created on first use, outside any transaction, by the lookup the
 * host makes before every such write (ddb_idem_lookup). Expired records are
 * removed there too, outside the write's transaction: two writes of
 * different tables that both deleted the same old rows would conflict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddb.h"
#include "internal.h"

#define IDEM_TABLE META ".idempotency"

static ds_status_t prepare(use_t *u)
{
    ds_status_t st = DS_OK;
    /* Two first uses at once may conflict on the catalog entry; the loser retries and finds it. */
    for (int attempt = 0; attempt < 5; attempt++) {
        ds_err_clear(u->err);
        st = ds_ddb_exec(u->conn, u->err,
                         "CREATE TABLE IF NOT EXISTS " IDEM_TABLE " (token VARCHAR NOT NULL, request_hash VARCHAR NOT "
                         "NULL, created_at BIGINT NOT NULL, count BIGINT NOT NULL)");
        if (st != DS_CONFLICT && st != DS_INTERNAL)
            break;
        usleep(2000u << attempt);
    }
    return st;
}

ds_status_t ddb_idem_lookup(void *self, ds_be_call_t *call, const char *token, int64_t not_before,
                            ds_be_idem_rec_t *out)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    char nb[32];
    memset(out, 0, sizeof(*out));
    snprintf(nb, sizeof(nb), "%lld", (long long)not_before);
    const char *params[] = {token, nb};
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    st = prepare(&u);
    if (st == DS_OK) {
        ds_err_t ignored = {0};
        ds_ddb_run(u.conn, &ignored, NULL, "DELETE FROM " IDEM_TABLE " WHERE created_at < CAST($2 AS BIGINT)", 2,
                   params);
        st = ds_ddb_run(u.conn, call->err, &r,
                        "SELECT request_hash, created_at, count FROM " IDEM_TABLE
                        " WHERE token = $1 AND created_at >= CAST($2 AS BIGINT) ORDER BY created_at LIMIT 1",
                        2, params);
    }
    if (st == DS_OK) {
        if (duckdb_row_count(&r) == 0) {
            st = ds_err_set(call->err, DS_NOT_FOUND, "no idempotency record");
        } else {
            char *hash = ds_ddb_cell(&r, 0, 0);
            out->request_hash = hash ? be->host->strdup(call, hash) : NULL;
            free(hash);
            out->created_at = ds_ddb_int(&r, 1, 0);
            out->count = ds_ddb_int(&r, 2, 0);
            if (!out->request_hash)
                st = ddb_oom(call->err);
        }
        duckdb_destroy_result(&r);
    }
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_idem_record(use_t *u, int64_t count)
{
    const ds_be_idem_t *idem = u->call ? u->call->idem : NULL;
    if (!idem)
        return DS_OK;
    char created[32], n[32];
    snprintf(created, sizeof(created), "%lld", (long long)idem->created_at);
    snprintf(n, sizeof(n), "%lld", (long long)count);
    const char *params[] = {idem->token, idem->request_hash, created, n};
    return ds_ddb_run(u->conn, u->err, NULL,
                      "INSERT INTO " IDEM_TABLE " VALUES ($1, $2, CAST($3 AS BIGINT), CAST($4 AS BIGINT))", 4, params);
}

typedef struct {
    ds_status_t (*fn)(use_t *, void *);
    void *ud;
} recorded_t;

static ds_status_t recorded_txn(use_t *u, void *ud)
{
    recorded_t *r = ud;
    ds_status_t st = r->fn(u, r->ud);
    return st == DS_OK ? ddb_idem_record(u, 0) : st;
}

ds_status_t ddb_in_txn_recorded(use_t *u, ds_status_t (*fn)(use_t *, void *), void *ud)
{
    recorded_t r = {fn, ud};
    return ddb_in_txn(u, recorded_txn, &r);
}
