/*
 * snapshot.c - the DuckDB backend's half of snapshots: restoring tables.
 *
 * DESIGN
 * The host writes a snapshot through table_export (Parquet, every column
 * plus _timestamp) and keeps the files and their metadata itself
 * (src/cmd/snapshot.c). Restoring is the part that must be atomic: every
 * destination of one restore is dropped (when replaced), created from the
 * recorded definition (ddb_table_create_txn, as a table create does: types,
 * NOT NULL, defaults, primary key in _ds.tables) and filled from the Parquet
 * files with its recorded _timestamp values, in ONE transaction. A failure
 * or a kill -9 before the COMMIT leaves every destination as it was. A
 * restore into a development branch (tables_move_restore) runs the branch's
 * moves (its bucket, the marks of main's tables it now owns) in the same
 * transaction, so the branch has either all of it or none.
 *
 * DUCKSTORE_TEST_HOOKS=1 with DUCKSTORE_TEST_CRASH_AFTER_COMMIT=
 * snapshot_restore_uncommitted kills the process after the rows are in and
 * before the COMMIT, so a test can show that nothing of the restore remains.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "ddb.h"
#include "internal.h"

typedef struct {
    const ds_be_restore_t *items;
    size_t n;
} restore_t;

/* *exists: bucket.table is a table of the project (its _ds.tables row). */
static ds_status_t table_exists(use_t *u, const char *bucket, const char *table, bool *exists)
{
    duckdb_result r;
    const char *params[] = {bucket, table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT 1 FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                                2, params);
    if (st != DS_OK)
        return st;
    *exists = duckdb_row_count(&r) > 0;
    duckdb_destroy_result(&r);
    return DS_OK;
}

static ds_status_t drop_existing(use_t *u, const ds_be_table_t *def)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DROP TABLE IF EXISTS ");
    ds_buf_ident(&sql, def->bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, def->name);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    const char *params[] = {def->bucket, def->name};
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2,
                        params);
    return st;
}

static ds_status_t load_rows(use_t *u, const ds_be_restore_t *it)
{
    const ds_be_table_t *def = it->def;
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "INSERT INTO ");
    ds_buf_ident(&sql, def->bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, def->name);
    ds_buf_puts(&sql, " (");
    for (size_t i = 0; i < def->n_columns; i++) {
        ds_buf_ident(&sql, def->columns[i].name);
        ds_buf_puts(&sql, ", ");
    }
    ds_buf_puts(&sql, "\"_timestamp\") SELECT ");
    for (size_t i = 0; i < def->n_columns; i++) {
        ds_buf_ident(&sql, def->columns[i].name);
        ds_buf_puts(&sql, ", ");
    }
    ds_buf_puts(&sql, "\"_timestamp\" FROM read_parquet([");
    for (size_t i = 0; i < it->n_paths; i++) {
        ds_buf_puts(&sql, i ? ", " : "");
        ds_buf_literal(&sql, it->paths[i]);
    }
    ds_buf_puts(&sql, "])");
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    return st;
}

ds_status_t ddb_restore_txn(use_t *u, const ds_be_restore_t *items, size_t n)
{
    restore_t rs = {items, n}, *r = &rs;
    ds_status_t st = DS_OK;
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    for (size_t i = 0; i < r->n && st == DS_OK; i++) {
        const ds_be_restore_t *it = &r->items[i];
        if (it->n_paths == 0)
            return ds_err_set(u->err, DS_INTERNAL, "restore of %s.%s names no data file", it->def->bucket,
                              it->def->name);
        /* A restore over a table goes on with its history: a write that replaced every row (time travel to a
         * moment before it finds the rows it replaced). A new table's history starts with it (create). */
        bool replaced = false;
        ddb_hist_t h;
        if (it->replace && (st = table_exists(u, it->def->bucket, it->def->name, &replaced)) == DS_OK &&
            replaced && (st = ddb_hist_begin(u, it->def->bucket, it->def->name, &h)) == DS_OK)
            st = ddb_hist_removed(u, &h, NULL, NULL);
        if (st == DS_OK && it->replace)
            st = drop_existing(u, it->def);
        if (st == DS_OK)
            st = ddb_table_create_txn(u, (void *)it->def);
        if (st == DS_OK)
            st = load_rows(u, it);
        if (st == DS_OK) {
            ddb_meta_t m = {.counts = true, .change_at = now};
            st = ddb_meta_write(u, it->def->bucket, it->def->name, &m);
        }
        if (st == DS_OK && replaced)
            st = ddb_hist_end(u, &h);
    }
    const char *at = getenv("DUCKSTORE_TEST_CRASH_AFTER_COMMIT");
    if (st == DS_OK && u->be->test_hooks && at && strcmp(at, "snapshot_restore_uncommitted") == 0) {
        u->be->host->log(2, "duckdb", "test hook: dying like kill -9 inside a restore, before its commit");
        raise(SIGKILL);
    }
    return st;
}

static ds_status_t restore_txn(use_t *u, void *ud)
{
    restore_t *r = ud;
    return ddb_restore_txn(u, r->items, r->n);
}

ds_status_t ddb_tables_restore(void *self, ds_be_call_t *call, const ds_be_restore_t *items, size_t n)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    restore_t r = {items, n};
    st = ddb_in_txn(&u, restore_txn, &r);
    ddb_use_end(&u);
    return st;
}

typedef struct {
    const ds_be_move_t *moves;
    size_t n_moves;
    restore_t restore;
} move_restore_t;

static ds_status_t move_restore_txn(use_t *u, void *ud)
{
    move_restore_t *mr = ud;
    ds_status_t st = ddb_moves_txn(u, mr->moves, mr->n_moves);
    return st == DS_OK ? ddb_restore_txn(u, mr->restore.items, mr->restore.n) : st;
}

ds_status_t ddb_tables_move_restore(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n_moves,
                                    const ds_be_restore_t *items, size_t n)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    move_restore_t mr = {moves, n_moves, {items, n}};
    st = ddb_in_txn(&u, move_restore_txn, &mr);
    ddb_use_end(&u);
    return st;
}
