/*
 * alias.c - the DuckDB backend's store of table aliases.
 *
 * DESIGN
 * What an alias means (which table it reads, its filter and columns, which
 * writes it refuses) is the host's (src/cmd/alias.c). This file only keeps
 * the definitions, one row each in _ds.aliases of the project's own file, so
 * an alias is attached, detached, capped, copied with and deleted with its
 * project, and a project that is closed and reopened (open-file cap,
 * restart) finds its aliases as they were. Rows are keyed by (scope, bucket,
 * name), compared lower-case: scope "" is main, a branch id a branch (its
 * rows go with the branch, see branch.c; a merge moves them to main inside
 * the merge's transaction, ddb_alias_merge_txn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddb.h"
#include "internal.h"

typedef struct {
    const ds_be_alias_t *a;
} put_t;

static ds_status_t put_txn(use_t *u, void *ud)
{
    const ds_be_alias_t *a = ((put_t *)ud)->a;
    const char *key[] = {a->scope ? a->scope : "", a->bucket, a->name};
    ds_status_t st = ds_ddb_run(u->conn, u->err, NULL,
                                "DELETE FROM " META ".aliases WHERE scope = lower($1) AND lower(bucket) = lower($2) "
                                "AND lower(name) = lower($3)",
                                3, key);
    if (st != DS_OK)
        return st;
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)a->created_at);
    const char *row[] = {a->scope ? a->scope : "", a->bucket, a->name, a->src_bucket ? a->src_bucket : "",
                         a->src_table ? a->src_table : "", a->def ? a->def : "", a->hidden ? "true" : "false", created};
    return ds_ddb_run(u->conn, u->err, NULL,
                      "INSERT INTO " META ".aliases VALUES (lower($1), $2, $3, $4, $5, $6, CAST($7 AS BOOLEAN), "
                      "CAST($8 AS BIGINT))",
                      8, row);
}

ds_status_t ddb_alias_put(void *self, ds_be_call_t *call, const ds_be_alias_t *alias)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    put_t p = {alias};
    st = ddb_in_txn(&u, put_txn, &p);
    ddb_use_end(&u);
    return st;
}

static char *dup_cell(be_t *be, ds_be_call_t *call, duckdb_result *r, idx_t col, idx_t row, bool *oom)
{
    char *v = ds_ddb_cell(r, col, row);
    char *out = be->host->strdup(call, v ? v : "");
    free(v);
    if (!out)
        *oom = true;
    return out;
}

ds_status_t ddb_alias_list(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name,
                           ds_be_alias_t **items, size_t *n)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    *items = NULL;
    *n = 0;
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {scope, bucket, name};
    st = ds_ddb_run(u.conn, call->err, &r,
                    "SELECT scope, bucket, name, src_bucket, src_table, def, hidden, created_at FROM " META ".aliases "
                    "WHERE ($1 IS NULL OR scope = lower($1)) AND ($2 IS NULL OR lower(bucket) = lower($2)) "
                    "AND ($3 IS NULL OR lower(name) = lower($3)) ORDER BY scope, lower(bucket), lower(name)",
                    3, params);
    if (st == DS_OK) {
        idx_t rows = duckdb_row_count(&r);
        bool oom = false;
        *items = be->host->alloc(call, sizeof(ds_be_alias_t) * (rows ? rows : 1));
        oom = !*items;
        for (idx_t i = 0; !oom && i < rows; i++) {
            ds_be_alias_t *a = &(*items)[i];
            a->scope = dup_cell(be, call, &r, 0, i, &oom);
            a->bucket = dup_cell(be, call, &r, 1, i, &oom);
            a->name = dup_cell(be, call, &r, 2, i, &oom);
            a->src_bucket = dup_cell(be, call, &r, 3, i, &oom);
            a->src_table = dup_cell(be, call, &r, 4, i, &oom);
            a->def = dup_cell(be, call, &r, 5, i, &oom);
            a->hidden = duckdb_value_boolean(&r, 6, i);
            a->created_at = ds_ddb_int(&r, 7, i);
        }
        duckdb_destroy_result(&r);
        if (oom)
            st = ddb_oom(call->err);
        else
            *n = rows;
    }
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_alias_merge_txn(use_t *u, const char *scope, const char *bucket, const char *name)
{
    duckdb_result r;
    const char *key[] = {scope ? scope : "", bucket, name};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT count(*) FROM " META ".aliases WHERE scope = lower($1) "
                                "AND lower(bucket) = lower($2) AND lower(name) = lower($3)",
                                3, key);
    if (st != DS_OK)
        return st;
    bool exists = ds_ddb_int(&r, 0, 0) > 0;
    duckdb_destroy_result(&r);
    if (!exists || !key[0][0])
        return ds_err_set(u->err, DS_CONFLICT, "alias \"%s.%s\" of branch \"%s\" changed meanwhile; nothing was changed",
                          bucket, name, key[0]);
    st = ds_ddb_run(u->conn, u->err, NULL,
                    "DELETE FROM " META ".aliases WHERE scope = '' AND lower(bucket) = lower($1) "
                    "AND lower(name) = lower($2)",
                    2, key + 1);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "INSERT INTO " META ".aliases SELECT '', bucket, name, src_bucket, src_table, def, false, "
                        "created_at FROM " META ".aliases WHERE scope = lower($1) AND lower(bucket) = lower($2) "
                        "AND lower(name) = lower($3) AND NOT hidden",
                        3, key);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".aliases WHERE scope = lower($1) AND lower(bucket) = lower($2) "
                        "AND lower(name) = lower($3)",
                        3, key);
    return st;
}

ds_status_t ddb_alias_drop(void *self, ds_be_call_t *call, const char *scope, const char *bucket, const char *name)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {scope ? scope : "", bucket, name};
    st = ds_ddb_run(u.conn, call->err, NULL,
                    "DELETE FROM " META ".aliases WHERE scope = lower($1) AND ($2 IS NULL OR lower(bucket) = lower($2)) "
                    "AND ($3 IS NULL OR lower(name) = lower($3))",
                    3, params);
    ddb_use_end(&u);
    return st;
}
