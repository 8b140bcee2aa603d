/*
 * pg_idem.c - idempotency records of the PostgreSQL backend (the ops'
 * idem_lookup, and ds_be_call_t.idem of imports and row deletions).
 *
 * A write that carries call->idem inserts (project, token, request_hash,
 * created_at, count) into _duckstore.idempotency inside its own transaction
 * (pg_idem_record), so the record commits exactly when the data does. The
 * table is part of the metadata schema (pg_backend.c); a project's records go
 * with it (ON DELETE CASCADE). Expired records are removed by the lookup the
 * host makes before every such write, outside the write's transaction.
 */
#include <stdio.h>
#include <string.h>

#include "pg.h"

ds_status_t pg_idem_lookup(void *self, ds_be_call_t *call, const char *token, int64_t not_before,
                           ds_be_idem_rec_t *out)
{
    pg_use_t u;
    PGresult *r;
    char nb[32];
    memset(out, 0, sizeof(*out));
    snprintf(nb, sizeof(nb), "%lld", (long long)not_before);
    const char *params[] = {call->project_id, token, nb};
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *old[] = {call->project_id, nb};
    st = pg_run(&u, NULL, "DELETE FROM " PG_META ".idempotency WHERE project = $1 AND created_at < CAST($2 AS bigint)",
                2, old);
    if (st == DS_OK)
        st = pg_run(&u, &r,
                    "SELECT request_hash, created_at, count FROM " PG_META
                    ".idempotency WHERE project = $1 AND token = $2 AND created_at >= CAST($3 AS bigint)",
                    3, params);
    if (st == DS_OK) {
        if (PQntuples(r) == 0) {
            st = u.be->host->err_set(call->err, DS_NOT_FOUND, "no idempotency record");
        } else {
            out->request_hash = pg_cell(&u, r, 0, 0);
            out->created_at = pg_cell_int(r, 0, 1);
            out->count = pg_cell_int(r, 0, 2);
            if (!out->request_hash)
                st = u.be->host->err_set(call->err, DS_UNAVAILABLE, "out of memory");
        }
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

ds_status_t pg_idem_record(pg_use_t *u, int64_t count)
{
    const ds_be_idem_t *idem = u->call ? u->call->idem : NULL;
    if (!idem)
        return DS_OK;
    char created[32], n[32];
    snprintf(created, sizeof(created), "%lld", (long long)idem->created_at);
    snprintf(n, sizeof(n), "%lld", (long long)count);
    const char *params[] = {u->call->project_id, idem->token, idem->request_hash, created, n};
    return pg_run(u, NULL,
                  "INSERT INTO " PG_META ".idempotency VALUES ($1, $2, $3, CAST($4 AS bigint), CAST($5 AS bigint))", 5,
                  params);
}

typedef struct {
    ds_status_t (*fn)(pg_use_t *, void *);
    void *ud;
} recorded_t;

static ds_status_t recorded_txn(pg_use_t *u, void *ud)
{
    recorded_t *r = ud;
    ds_status_t st = r->fn(u, r->ud);
    return st == DS_OK ? pg_idem_record(u, 0) : st;
}

ds_status_t pg_in_txn_recorded(pg_use_t *u, ds_status_t (*fn)(pg_use_t *, void *), void *ud)
{
    recorded_t r = {fn, ud};
    return pg_in_txn(u, recorded_txn, &r);
}
