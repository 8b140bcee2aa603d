/*
 * branch.c - the DuckDB backend's primitives for development branches.
 *
 * DESIGN
 * The rules of branches are the host's (src/cmd/branch.c): it decides which
 * physical table a branch's table is, when a branch copies a table and when a
 * merge conflicts. This file only stores and moves:
 * - _ds.branches: one row per branch (creating a branch writes one row, so it
 *   costs the same whatever the project holds);
 * - _ds.branch_marks: the host's marks on physical table names (a main table
 *   hidden in a branch, the main version a branch copy was made from);
 * - _ds.tables.version: a fresh number from _ds.version_seq every time a
 *   table's metadata row is written, which every write of the table does
 *   (imports, deletes, schema changes, creation), so it identifies the state
 *   of a table exactly; a sequence never hands out a number twice, so a table
 *   dropped and created again never gets an old version back.
 * - tables_move runs a list of copies, drops and marks in ONE transaction, so
 *   a copy on first write, a pull or a merge is either fully done or not at
 *   all, also when the process is killed.
 * Branch storage lives in the project's own file (schemas of the branch's
 * buckets), so it is attached, capped and deleted with the project.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "ddb.h"
#include "internal.h"

/* *version of bucket.table, or 0 when the table does not exist. */
static ds_status_t version_of(use_t *u, const char *bucket, const char *table, int64_t *version, bool *exists)
{
    duckdb_result r;
    const char *params[] = {bucket, table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT coalesce(version, 0) FROM " META ".tables "
                                "WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                                2, params);
    if (st != DS_OK)
        return st;
    *exists = duckdb_row_count(&r) > 0;
    *version = *exists ? ds_ddb_int(&r, 0, 0) : 0;
    duckdb_destroy_result(&r);
    return DS_OK;
}

ds_status_t ddb_table_version(void *self, ds_be_call_t *call, const char *bucket, const char *table, int64_t *version)
{
    use_t u;
    bool exists = false;
    ds_status_t st = ddb_use_begin_read(self, call, &u);
    if (st != DS_OK)
        return st;
    st = version_of(&u, bucket, table, version, &exists);
    if (st == DS_OK && !exists)
        st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found", bucket, table);
    ddb_use_end(&u);
    return st;
}

static ds_status_t branch_create_txn(use_t *u, void *ud)
{
    const ds_be_branch_t *b = ud;
    duckdb_result r;
    const char *key[] = {b->id};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, "SELECT id FROM " META ".branches WHERE lower(id) = lower($1)", 1,
                                key);
    if (st != DS_OK)
        return st;
    bool exists = duckdb_row_count(&r) > 0;
    duckdb_destroy_result(&r);
    if (exists)
        return ds_err_set(u->err, DS_ALREADY_EXISTS, "branch \"%s\" already exists", b->id);
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)b->created_at);
    const char *params[] = {b->id, b->name ? b->name : b->id, created};
    return ds_ddb_run(u->conn, u->err, NULL, "INSERT INTO " META ".branches VALUES ($1, $2, CAST($3 AS BIGINT))", 3,
                      params);
}

ds_status_t ddb_branch_create(void *self, ds_be_call_t *call, const ds_be_branch_t *branch)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    st = ddb_in_txn(&u, branch_create_txn, (void *)branch);
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_branch_list(void *self, ds_be_call_t *call, ds_be_branch_t **items, size_t *n)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    *items = NULL;
    *n = 0;
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    st = ds_ddb_run(u.conn, call->err, &r, "SELECT id, name, created_at FROM " META ".branches ORDER BY id", 0, NULL);
    if (st == DS_OK) {
        idx_t rows = duckdb_row_count(&r);
        *items = be->host->alloc(call, sizeof(ds_be_branch_t) * (rows ? rows : 1));
        if (!*items)
            st = ddb_oom(call->err);
        for (idx_t i = 0; st == DS_OK && i < rows; i++) {
            char *id = ds_ddb_cell(&r, 0, i), *name = ds_ddb_cell(&r, 1, i);
            (*items)[i].id = be->host->strdup(call, id ? id : "");
            (*items)[i].name = be->host->strdup(call, name ? name : "");
            (*items)[i].created_at = ds_ddb_int(&r, 2, i);
            free(id);
            free(name);
        }
        if (st == DS_OK)
            *n = rows;
        duckdb_destroy_result(&r);
    }
    ddb_use_end(&u);
    return st;
}

typedef struct {
    const char *id;
    const char *prefix;
} branch_drop_t;

static ds_status_t branch_drop_txn(use_t *u, void *ud)
{
    branch_drop_t *d = ud;
    duckdb_result r;
    const char *key[] = {d->id};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, "SELECT id FROM " META ".branches WHERE lower(id) = lower($1)", 1,
                                key);
    if (st != DS_OK)
        return st;
    bool exists = duckdb_row_count(&r) > 0;
    duckdb_destroy_result(&r);
    if (!exists)
        return ds_err_set(u->err, DS_NOT_FOUND, "branch \"%s\" not found", d->id);
    const char *pre[] = {d->prefix};
    st = ds_ddb_run(u->conn, u->err, &r,
                    "SELECT id FROM " META ".buckets WHERE starts_with(lower(id), lower($1))", 1, pre);
    if (st != DS_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        char *id = ds_ddb_cell(&r, 0, i);
        ds_buf_t sql = {0};
        ddb_mcat_note_bucket(u, id);
        ds_buf_puts(&sql, "DROP SCHEMA IF EXISTS ");
        ds_buf_ident(&sql, id ? id : "");
        ds_buf_puts(&sql, " CASCADE");
        st = id ? ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql)) : ddb_oom(u->err);
        ds_buf_free(&sql);
        free(id);
    }
    duckdb_destroy_result(&r);
    /* A deleted branch's history goes with it (a branch of the same id later starts afresh). */
    if (st == DS_OK)
        st = ddb_hist_forget(u, d->prefix);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".tables WHERE starts_with(lower(bucket), lower($1))", 1, pre);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".buckets WHERE starts_with(lower(id), lower($1))", 1, pre);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".branch_marks WHERE starts_with(lower(bucket), lower($1))", 1, pre);
    if (st == DS_OK) /* the branch's aliases (alias.c) go with it */
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".aliases WHERE scope = lower($1)", 1, key);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".branches WHERE lower(id) = lower($1)", 1, key);
    return st;
}

ds_status_t ddb_branch_drop(void *self, ds_be_call_t *call, const char *id, const char *bucket_prefix)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    branch_drop_t d = {id, bucket_prefix};
    st = ddb_in_txn(&u, branch_drop_txn, &d);
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_marks_list(void *self, ds_be_call_t *call, const char *bucket_prefix, ds_be_mark_t **items, size_t *n)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    *items = NULL;
    *n = 0;
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    const char *pre[] = {bucket_prefix};
    st = ds_ddb_run(u.conn, call->err, &r,
                    "SELECT bucket, name, hidden, base_version FROM " META ".branch_marks "
                    "WHERE starts_with(lower(bucket), lower($1)) ORDER BY bucket, name",
                    1, pre);
    if (st == DS_OK) {
        idx_t rows = duckdb_row_count(&r);
        *items = be->host->alloc(call, sizeof(ds_be_mark_t) * (rows ? rows : 1));
        if (!*items)
            st = ddb_oom(call->err);
        for (idx_t i = 0; st == DS_OK && i < rows; i++) {
            char *b = ds_ddb_cell(&r, 0, i), *t = ds_ddb_cell(&r, 1, i);
            (*items)[i].bucket = be->host->strdup(call, b ? b : "");
            (*items)[i].name = be->host->strdup(call, t ? t : "");
            (*items)[i].hidden = duckdb_value_boolean(&r, 2, i);
            (*items)[i].base_version = ds_ddb_int(&r, 3, i);
            free(b);
            free(t);
        }
        if (st == DS_OK)
            *n = rows;
        duckdb_destroy_result(&r);
    }
    ddb_use_end(&u);
    return st;
}

/* DROP TABLE bucket.table and its metadata row, when it exists. */
/* keep_history: the table is replaced by a copy at once (copy_table) and its history goes on. */
static ds_status_t drop_if_exists(use_t *u, const char *bucket, const char *table, bool keep_history)
{
    int64_t v;
    bool exists;
    ds_status_t st = version_of(u, bucket, table, &v, &exists);
    if (st != DS_OK || !exists)
        return st;
    ddb_mcat_note_table(u, bucket, table);
    if (!keep_history && (st = ddb_hist_drop(u, bucket, table)) != DS_OK)
        return st;
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DROP TABLE ");
    ds_buf_ident(&sql, bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, table);
    st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    const char *params[] = {bucket, table};
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2,
                        params);
    return st;
}

static ds_status_t unmark(use_t *u, const char *bucket, const char *table)
{
    const char *params[] = {bucket, table};
    return ds_ddb_run(u->conn, u->err, NULL,
                      "DELETE FROM " META ".branch_marks WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                      2, params);
}

static ds_status_t mark(use_t *u, const char *bucket, const char *table, bool hidden, int64_t base)
{
    char base_s[32];
    snprintf(base_s, sizeof(base_s), "%lld", (long long)base);
    const char *params[] = {bucket, table, hidden ? "true" : "false", base_s};
    ds_status_t st = unmark(u, bucket, table);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "INSERT INTO " META ".branch_marks VALUES ($1, $2, CAST($3 AS BOOLEAN), CAST($4 AS BIGINT))", 4,
                        params);
    return st;
}

/* Creates dst_bucket like src_bucket (stage, name, description) when it does not exist. */
static ds_status_t ensure_bucket(use_t *u, const char *src_bucket, const char *dst_bucket)
{
    duckdb_result r;
    const char *params[] = {dst_bucket, src_bucket};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT (SELECT count(*) FROM " META ".buckets WHERE lower(id) = lower($1)), stage, "
                                "name, description, created_at FROM " META ".buckets WHERE lower(id) = lower($2)",
                                2, params);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) == 0) {
        duckdb_destroy_result(&r);
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", src_bucket);
    }
    if (ds_ddb_int(&r, 0, 0) > 0) {
        duckdb_destroy_result(&r);
        return DS_OK;
    }
    char *stage = ds_ddb_cell(&r, 1, 0), *name = ds_ddb_cell(&r, 2, 0), *desc = ds_ddb_cell(&r, 3, 0);
    ds_be_bucket_t b = {.id = dst_bucket, .stage = stage, .name = name, .description = desc,
                        .created_at = ds_ddb_int(&r, 4, 0)};
    duckdb_destroy_result(&r);
    st = stage && name ? ddb_bucket_create_txn(u, &b) : ddb_oom(u->err);
    free(stage);
    free(name);
    free(desc);
    return st;
}

/* dst becomes a copy of src: definition, rows (with _timestamp), primary key and times. */
static ds_status_t copy_table(use_t *u, const ds_be_move_t *m)
{
    ds_be_table_t src;
    memset(&src, 0, sizeof(src));
    ds_status_t st = ddb_table_describe(u, u->call, m->src_bucket, m->src_table, &src);
    if (st == DS_OK)
        st = ensure_bucket(u, m->src_bucket, m->dst_bucket);
    if (st != DS_OK)
        return st;
    /* A table copied over another (a merge) goes on with its history: a write that replaced every row. */
    int64_t v;
    bool replaced;
    ddb_hist_t h;
    if ((st = version_of(u, m->dst_bucket, m->dst_table, &v, &replaced)) != DS_OK)
        return st;
    if (replaced && ((st = ddb_hist_begin(u, m->dst_bucket, m->dst_table, &h)) != DS_OK ||
                     (st = ddb_hist_removed(u, &h, NULL, NULL)) != DS_OK))
        return st;
    if ((st = drop_if_exists(u, m->dst_bucket, m->dst_table, true)) != DS_OK)
        return st;
    ds_be_table_t dst = src;
    dst.bucket = m->dst_bucket;
    dst.name = m->dst_table;
    if ((st = ddb_table_create_txn(u, &dst)) != DS_OK)
        return st;
    /* Columns by name: a column added later sits after _timestamp in the source. */
    ds_buf_t sql = {0}, cols = {0};
    for (size_t i = 0; i < src.n_columns; i++) {
        ds_buf_ident(&cols, src.columns[i].name);
        ds_buf_puts(&cols, ", ");
    }
    ds_buf_puts(&cols, "\"_timestamp\"");
    ds_buf_puts(&sql, "INSERT INTO ");
    ds_buf_ident(&sql, m->dst_bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, m->dst_table);
    ds_buf_printf(&sql, " (%s) SELECT %s FROM ", ds_buf_text(&cols), ds_buf_text(&cols));
    ds_buf_ident(&sql, m->src_bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, m->src_table);
    st = ds_buf_failed(&cols) ? ddb_oom(u->err) : ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    ds_buf_free(&cols);
    if (st != DS_OK)
        return st;
    char imp[32], chg[32];
    snprintf(imp, sizeof(imp), "%lld", (long long)src.last_import_at);
    snprintf(chg, sizeof(chg), "%lld", (long long)src.last_change_at);
    ddb_meta_t meta = {.counts = true,
                       .import_at = src.last_import_at ? imp : NULL,
                       .change_at = src.last_change_at ? chg : NULL};
    if ((st = ddb_meta_write(u, m->dst_bucket, m->dst_table, &meta)) != DS_OK)
        return st;
    if ((st = replaced ? ddb_hist_end(u, &h) : ddb_hist_register(u, m->dst_bucket, m->dst_table)) != DS_OK)
        return st;
    return m->mark_version > 0 ? mark(u, m->dst_bucket, m->dst_table, false, m->mark_version)
                               : unmark(u, m->dst_bucket, m->dst_table);
}

typedef struct {
    const ds_be_move_t *moves;
    size_t n;
} moves_t;

ds_status_t ddb_moves_txn(use_t *u, const ds_be_move_t *moves, size_t n)
{
    ds_status_t st = DS_OK;
    for (size_t i = 0; i < n && st == DS_OK; i++) {
        const ds_be_move_t *m = &moves[i];
        if (m->expect_version >= 0) {
            int64_t v;
            bool exists;
            if ((st = version_of(u, m->dst_bucket, m->dst_table, &v, &exists)) != DS_OK)
                return st;
            if (m->expect_version == 0 ? exists : (!exists || v != m->expect_version))
                return ds_err_set(u->err, DS_CONFLICT, "table \"%s.%s\" changed meanwhile; nothing was changed",
                                  m->dst_bucket, m->dst_table);
        }
        switch (m->kind) {
        case DS_MOVE_COPY:
            st = copy_table(u, m);
            break;
        case DS_MOVE_DROP:
            st = drop_if_exists(u, m->dst_bucket, m->dst_table, false);
            break;
        case DS_MOVE_MARK:
            st = mark(u, m->dst_bucket, m->dst_table, m->hidden, m->mark_version);
            break;
        case DS_MOVE_UNMARK:
            st = unmark(u, m->dst_bucket, m->dst_table);
            break;
        case DS_MOVE_BUCKET:
            st = ensure_bucket(u, m->src_bucket, m->dst_bucket);
            break;
        case DS_MOVE_ALIAS:
            st = ddb_alias_merge_txn(u, m->src_bucket, m->dst_bucket, m->dst_table);
            break;
        case DS_MOVE_DROP_BUCKET:
            if ((st = ddb_bucket_drop_txn(u, m->dst_bucket, false)) == DS_NOT_FOUND) {
                ds_err_clear(u->err);
                st = DS_OK;
            }
            break;
        default:
            st = ds_err_set(u->err, DS_INVALID_ARGUMENT, "unknown table move %d", (int)m->kind);
        }
    }
    return st;
}

static ds_status_t moves_txn(use_t *u, void *ud)
{
    moves_t *ms = ud;
    return ddb_moves_txn(u, ms->moves, ms->n);
}

ds_status_t ddb_tables_move(void *self, ds_be_call_t *call, const ds_be_move_t *moves, size_t n)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    moves_t ms = {moves, n};
    st = ddb_in_txn(&u, moves_txn, &ms);
    ddb_use_end(&u);
    return st;
}
