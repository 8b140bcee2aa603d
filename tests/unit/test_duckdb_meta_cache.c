/*
 * test_duckdb_meta_cache.c - the DuckDB backend's in-memory metadata catalog
 * (backends/duckdb/meta_cache.c) answers exactly what SQL answers.
 *
 * After every kind of write the backend offers (bucket and table create and
 * drop, imports full, incremental, upsert and creating, failed imports and
 * other rolled-back writes, row deletions, every schema change, branch copies
 * and drops) and after the project was detached and attached again, each
 * cached answer (bucket_get, bucket_list, table_get, table_list,
 * project_stats) is compared field by field with the same answer read from
 * SQL (ddb_sql_*), including lookups in another letter case and misses.
 */
#include "../../backends/duckdb/ddb.h"
#include "../../backends/duckdb/duckdb_backend.h"
#include "../../backends/duckdb/internal.h"
#include "backend/registry.h"
#include "core/arena.h"
#include "core/log.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ds_backend_ops_t *ops;
static void *self;
static char dir[] = "/tmp/ds_ddb_mcat_XXXXXX";
static ds_arena_t *arena;
static ds_err_t err;
static ds_be_call_t call;

static ds_be_call_t call_on(ds_arena_t *a, ds_err_t *e, const char *project)
{
    return (ds_be_call_t){.arena = a, .err = e, .project_id = project};
}

static void setup(void)
{
    ds_log_set_level(DS_LOG_ERROR);
    cr_assert_not_null(mkdtemp(dir));
    /* At most 2 attached projects: touching two others detaches "p" (its cache is dropped and read again). */
    cr_assert_eq(ds_registry_init(dir, (int64_t)512 << 20, 2, 2, &err), DS_OK, "%s", err.message);
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    arena = ds_arena_create();
    call = call_on(arena, &err, "p");
    cr_assert_eq(ops->project_create(self, &call), DS_OK, "%s", err.message);
}

static void teardown(void)
{
    ds_arena_destroy(&arena);
    ops->close(self);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(duckdb_meta_cache, .init = setup, .fini = teardown);

static bool same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static void same_table(const ds_be_table_t *a, const ds_be_table_t *b, const char *when)
{
    cr_assert(same_str(a->bucket, b->bucket) && same_str(a->name, b->name), "%s: table %s.%s vs %s.%s", when,
              a->bucket, a->name, b->bucket, b->name);
    cr_assert_eq(a->rows, b->rows, "%s: %s rows cached %lld, SQL %lld", when, a->name, (long long)a->rows,
                 (long long)b->rows);
    cr_assert_eq(a->bytes, b->bytes, "%s: %s bytes cached %lld, SQL %lld", when, a->name, (long long)a->bytes,
                 (long long)b->bytes);
    cr_assert_eq(a->created_at, b->created_at, "%s: %s created_at", when, a->name);
    cr_assert_eq(a->last_import_at, b->last_import_at, "%s: %s last_import_at", when, a->name);
    cr_assert_eq(a->last_change_at, b->last_change_at, "%s: %s last_change_at", when, a->name);
    cr_assert_eq(a->n_primary_key, b->n_primary_key, "%s: %s primary key length", when, a->name);
    for (size_t i = 0; i < a->n_primary_key; i++)
        cr_assert(same_str(a->primary_key[i], b->primary_key[i]), "%s: %s key column %zu", when, a->name, i);
    cr_assert_eq(a->n_columns, b->n_columns, "%s: %s has %zu columns cached, %zu in SQL", when, a->name,
                 a->n_columns, b->n_columns);
    for (size_t i = 0; i < a->n_columns; i++) {
        const ds_be_column_t *x = &a->columns[i], *y = &b->columns[i];
        cr_assert(same_str(x->name, y->name) && same_str(x->type, y->type) && x->nullable == y->nullable &&
                      same_str(x->default_value, y->default_value),
                  "%s: %s column %zu cached (%s %s %d %s) vs SQL (%s %s %d %s)", when, a->name, i, x->name, x->type,
                  x->nullable, x->default_value ? x->default_value : "-", y->name, y->type, y->nullable,
                  y->default_value ? y->default_value : "-");
    }
}

static void same_get(const char *bucket, const char *table, const char *when)
{
    ds_arena_t *a = ds_arena_create();
    ds_err_t e1 = {0}, e2 = {0};
    ds_be_call_t c1 = call_on(a, &e1, "p"), c2 = call_on(a, &e2, "p");
    ds_be_table_t x, y;
    ds_status_t s1 = ops->table_get(self, &c1, bucket, table, &x);
    ds_status_t s2 = ddb_sql_table_get(self, &c2, bucket, table, &y);
    cr_assert_eq(s1, s2, "%s: table_get %s.%s: cached %d (%s), SQL %d (%s)", when, bucket, table, s1, e1.message, s2,
                 e2.message);
    if (s1 == DS_OK)
        same_table(&x, &y, when);
    else
        cr_assert(strcmp(e1.message, e2.message) == 0 && e1.keboola_code == e2.keboola_code,
                  "%s: table_get errors differ: %s / %s", when, e1.message, e2.message);
    ds_arena_destroy(&a);
}

/* Every cached answer of project p against SQL's. Returns the number of tables. */
static int64_t check(const char *when)
{
    ds_arena_t *a = ds_arena_create();
    ds_err_t e1 = {0}, e2 = {0};
    ds_be_call_t c1 = call_on(a, &e1, "p"), c2 = call_on(a, &e2, "p");
    ds_be_bucket_t *b1, *b2;
    size_t nb1, nb2;
    cr_assert_eq(ops->bucket_list(self, &c1, &b1, &nb1), DS_OK, "%s: %s", when, e1.message);
    cr_assert_eq(ddb_sql_bucket_list(self, &c2, &b2, &nb2), DS_OK, "%s: %s", when, e2.message);
    cr_assert_eq(nb1, nb2, "%s: %zu buckets cached, %zu in SQL", when, nb1, nb2);
    for (size_t i = 0; i < nb1; i++) {
        cr_assert(same_str(b1[i].id, b2[i].id) && same_str(b1[i].stage, b2[i].stage) &&
                      same_str(b1[i].name, b2[i].name) && same_str(b1[i].description, b2[i].description) &&
                      b1[i].created_at == b2[i].created_at && b1[i].table_count == b2[i].table_count,
                  "%s: bucket %zu cached %s (%lld tables) vs SQL %s (%lld tables)", when, i, b1[i].id,
                  (long long)b1[i].table_count, b2[i].id, (long long)b2[i].table_count);
        ds_be_bucket_t g1, g2;
        cr_assert_eq(ops->bucket_get(self, &c1, b1[i].id, &g1), DS_OK, "%s: %s", when, e1.message);
        cr_assert_eq(ddb_sql_bucket_get(self, &c2, b1[i].id, &g2), DS_OK, "%s: %s", when, e2.message);
        cr_assert(same_str(g1.id, g2.id) && g1.table_count == g2.table_count, "%s: bucket_get %s", when, g1.id);
        ds_be_table_t *t1, *t2;
        size_t nt1, nt2;
        cr_assert_eq(ops->table_list(self, &c1, b1[i].id, &t1, &nt1), DS_OK, "%s: %s", when, e1.message);
        cr_assert_eq(ddb_sql_table_list(self, &c2, b1[i].id, &t2, &nt2), DS_OK, "%s: %s", when, e2.message);
        cr_assert_eq(nt1, nt2, "%s: bucket %s lists %zu tables cached, %zu in SQL", when, b1[i].id, nt1, nt2);
        for (size_t k = 0; k < nt1; k++) {
            same_table(&t1[k], &t2[k], when);
            same_get(t1[k].bucket, t1[k].name, when);
        }
    }
    ds_be_project_stats_t s1, s2;
    cr_assert_eq(ops->project_stats(self, &c1, &s1), DS_OK, "%s: %s", when, e1.message);
    cr_assert_eq(ddb_sql_project_stats(self, &c2, &s2), DS_OK, "%s: %s", when, e2.message);
    cr_assert(s1.buckets == s2.buckets && s1.tables == s2.tables && s1.rows == s2.rows && s1.bytes == s2.bytes,
              "%s: stats cached %lld/%lld/%lld/%lld vs SQL %lld/%lld/%lld/%lld", when, (long long)s1.buckets,
              (long long)s1.tables, (long long)s1.rows, (long long)s1.bytes, (long long)s2.buckets,
              (long long)s2.tables, (long long)s2.rows, (long long)s2.bytes);
    /* Misses and other letter cases answer alike. */
    same_get("in.c-A", "T", when);
    same_get("in.c-a", "nope", when);
    same_get("in.c-none", "t", when);
    ds_be_table_t *t;
    size_t nt;
    ds_status_t m1 = ops->table_list(self, &c1, "in.c-none", &t, &nt);
    ds_status_t m2 = ddb_sql_table_list(self, &c2, "in.c-none", &t, &nt);
    cr_assert(m1 == m2 && m1 == DS_NOT_FOUND && strcmp(e1.message, e2.message) == 0, "%s: list of a missing bucket",
              when);
    ds_arena_destroy(&a);
    return s1.tables;
}

static const char *write_csv(const char *name, const char *text)
{
    char *path = ds_arena_printf(arena, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static ds_import_t csv_import(bool incremental)
{
    ds_import_t in = {.format = DS_FORMAT_CSV,
                      .incremental = incremental,
                      .dedup = DS_DEDUP_UPDATE,
                      .timestamp_mode = DS_TS_CURRENT_TIME,
                      .strategy = DS_STRATEGY_AUTO,
                      .create_mode = DS_CREATE_NONE};
    snprintf(in.csv.delimiter, sizeof(in.csv.delimiter), ",");
    snprintf(in.csv.enclosure, sizeof(in.csv.enclosure), "\"");
    in.csv.header = true;
    return in;
}

static ds_status_t import(const char *table, const ds_import_t *in, const char *csv_name, const char *csv)
{
    const char *paths[] = {write_csv(csv_name, csv)};
    ds_import_result_t out;
    ds_err_clear(&err);
    return ops->table_import(self, &call, "in.c-a", table, in, paths, 1, &out);
}

static void touch_other_projects(void)
{
    const char *ids[] = {"q1", "q2"};
    for (int i = 0; i < 2; i++) {
        ds_be_call_t c = call_on(arena, &err, ids[i]);
        ds_status_t st = ops->project_create(self, &c);
        cr_assert(st == DS_OK || st == DS_ALREADY_EXISTS, "%s", err.message);
        ds_be_bucket_t *b;
        size_t n;
        cr_assert_eq(ops->bucket_list(self, &c, &b, &n), DS_OK, "%s", err.message);
    }
}

/* Column col of in.c-a.t's metadata row (the use attaches "p" when it is detached). */
static int64_t stored(const char *col)
{
    use_t u;
    duckdb_result r;
    ds_err_clear(&err);
    cr_assert_eq(ddb_use_begin(self, &call, false, &u), DS_OK, "%s", err.message);
    u.read_only = true;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT %s FROM _ds.tables WHERE name = 't'", col);
    cr_assert_eq(ds_ddb_run(u.conn, &err, &r, sql, 0, NULL), DS_OK, "%s", err.message);
    cr_assert_eq(duckdb_row_count(&r), 1);
    int64_t v = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    ddb_use_end(&u);
    return v;
}

/*
 * A write cannot measure its table's bytes inside its transaction (DuckDB's
 * storage does not show its own rows there): it stores "unmeasured", the
 * cache measures right after the commit, a detach stores that figure, and
 * an attach measures what a crash left unmeasured.
 */
Test(duckdb_meta_cache, bytes_are_measured_after_the_write_and_stored_at_detach)
{
    ds_be_bucket_t b = {.id = "in.c-a", .stage = "in", .name = "c-a", .created_at = 5};
    cr_assert_eq(ops->bucket_create(self, &call, &b), DS_OK, "%s", err.message);
    ds_be_column_t cols[] = {{"id", "VARCHAR", false, NULL}, {"n", "INTEGER", true, NULL}};
    const char *pk[] = {"id"};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 2, .primary_key = pk,
                       .n_primary_key = 1, .created_at = 9};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
    ds_import_t full = csv_import(false);
    cr_assert_eq(import("t", &full, "a.csv", "id,n\n1,1\n2,2\n3,3\n"), DS_OK, "%s", err.message);

    cr_assert_eq(stored("byte_count"), DDB_BYTES_UNMEASURED, "the write's own transaction cannot measure its bytes");
    ds_be_table_t got;
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &got), DS_OK, "%s", err.message);
    int64_t measured = got.bytes;
    cr_assert_gt(measured, 0, "the cache measured the bytes after the commit");
    cr_assert_eq(got.rows, 3);
    ds_be_table_t sql;
    cr_assert_eq(ddb_sql_table_get(self, &call, "in.c-a", "t", &sql), DS_OK, "%s", err.message);
    cr_assert_eq(sql.bytes, measured, "the SQL answer measures an unmeasured row as the cache did");

    int64_t version = stored("version");
    touch_other_projects(); /* detaches "p": its figure is stored */
    cr_assert_eq(stored("byte_count"), measured, "the detach stores what was measured after the write");
    cr_assert_eq(stored("version"), version, "storing the bytes is no write: a branch merge compares versions");
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &got), DS_OK, "%s", err.message);
    cr_assert_eq(got.bytes, measured, "after the attach the stored figure is read");

    /* A row left unmeasured (as a crash leaves it) is measured when the file is attached again. */
    ds_import_t inc = csv_import(true);
    cr_assert_eq(import("t", &inc, "b.csv", "id,n\n4,4\n"), DS_OK, "%s", err.message);
    cr_assert_eq(stored("byte_count"), DDB_BYTES_UNMEASURED);
    proj_t *p = ((be_t *)self)->projects;
    while (p && strcmp(p->id, "p") != 0)
        p = p->next;
    cr_assert_not_null(p);
    ddb_mcat_drop(p->mcat);
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &got), DS_OK, "%s", err.message);
    cr_assert_gt(got.bytes, 0, "a load of the cache measures unmeasured rows");
    cr_assert_eq(got.rows, 4);
    cr_assert_eq(ddb_sql_table_get(self, &call, "in.c-a", "t", &sql), DS_OK, "%s", err.message);
    cr_assert_eq(sql.bytes, got.bytes, "the cache's load and the SQL answer measure the same figure");
    check("after bytes were measured and stored");
}

Test(duckdb_meta_cache, every_write_keeps_the_cache_equal_to_sql)
{
    check("empty project");
    ds_be_bucket_t b = {.id = "in.c-a", .stage = "in", .name = "c-a", .description = "first", .created_at = 5};
    cr_assert_eq(ops->bucket_create(self, &call, &b), DS_OK, "%s", err.message);
    ds_be_bucket_t b2 = {.id = "out.c-b", .stage = "out", .name = "c-b", .created_at = 6};
    cr_assert_eq(ops->bucket_create(self, &call, &b2), DS_OK, "%s", err.message);
    check("bucket create");

    ds_be_column_t cols[] = {{"id", "VARCHAR", false, NULL}, {"n", "INTEGER", true, "7"}, {"s", "VARCHAR", true, "it's"}};
    const char *pk[] = {"id"};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 3, .primary_key = pk,
                       .n_primary_key = 1, .created_at = 9};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
    ds_be_table_t u = {.bucket = "out.c-b", .name = "U", .columns = cols, .n_columns = 1, .created_at = 10};
    cr_assert_eq(ops->table_create(self, &call, &u), DS_OK, "%s", err.message);
    cr_assert_eq(check("table create"), 2);
    cr_assert_eq(ops->table_create(self, &call, &t), DS_ALREADY_EXISTS, "a second create must fail");
    check("failed table create (rolled back)");

    ds_import_t full = csv_import(false);
    cr_assert_eq(import("t", &full, "a.csv", "id,n,s\n1,1,a\n2,2,b\n3,3,c\n"), DS_OK, "%s", err.message);
    cr_assert_eq(check("full import"), 2);
    ds_import_t inc = csv_import(true);
    cr_assert_eq(import("t", &inc, "b.csv", "id,n,s\n3,30,c\n4,4,d\n"), DS_OK, "%s", err.message);
    check("incremental upsert");
    ds_import_t dup = csv_import(true);
    dup.dedup = DS_DEDUP_INSERT;
    cr_assert_eq(import("t", &dup, "c.csv", "id,n,s\n9,9,x\n"), DS_OK, "%s", err.message);
    check("incremental append");
    ds_import_t bad = csv_import(true);
    cr_assert_neq(import("t", &bad, "d.csv", "id,n,s\n5,not-a-number,e\n"), DS_OK, "a bad value must fail");
    check("failed import (rolled back)");
    ds_import_t fail = csv_import(true);
    fail.dedup = DS_DEDUP_FAIL;
    cr_assert_neq(import("t", &fail, "e.csv", "id,n,s\n1,1,a\n"), DS_OK, "a duplicate key must fail");
    check("fail_on_duplicates import (rolled back)");
    ds_import_t create = csv_import(false);
    create.create_mode = DS_CREATE_CREATE;
    cr_assert_eq(import("made", &create, "f.csv", "a,b\nx,y\n"), DS_OK, "%s", err.message);
    cr_assert_eq(check("import creating a table"), 3);
    ds_import_t newcol = csv_import(true);
    cr_assert_eq(import("made", &newcol, "g.csv", "a,b,c\nz,z,z\n"), DS_OK, "%s", err.message);
    check("import adding a column to a string table");

    ds_filter_t f = {.column = "id", .op = DS_OP_EQ, .values = (const char *[]){"1"}, .n_values = 1};
    ds_where_t w = {.filters = &f, .n_filters = 1};
    int64_t deleted = 0, left = 0;
    cr_assert_eq(ops->table_delete_rows(self, &call, "in.c-a", "t", &w, &deleted, &left), DS_OK, "%s", err.message);
    cr_assert_eq(deleted, 1);
    check("delete rows");

    ds_be_column_t add = {"extra", "BIGINT", true, "42"};
    cr_assert_eq(ops->column_add(self, &call, "in.c-a", "t", &add), DS_OK, "%s", err.message);
    check("column add");
    ds_be_column_t add_nn = {"strict", "BIGINT", false, NULL};
    cr_assert_neq(ops->column_add(self, &call, "in.c-a", "t", &add_nn), DS_OK, "NOT NULL over rows must fail");
    check("failed NOT NULL column add (undone)");
    ds_column_alter_t alter = {.type = NULL, .nullable = 0, .set_default = true, .default_value = "0"};
    cr_assert_eq(ops->column_alter(self, &call, "in.c-a", "t", "n", &alter), DS_OK, "%s", err.message);
    check("column alter");
    cr_assert_eq(ops->column_drop(self, &call, "in.c-a", "t", "extra"), DS_OK, "%s", err.message);
    check("column drop");
    cr_assert_eq(ops->primary_key_set(self, &call, "in.c-a", "t", NULL, 0), DS_OK, "%s", err.message);
    check("primary key drop");
    const char *key2[] = {"id", "n"};
    cr_assert_eq(ops->primary_key_set(self, &call, "in.c-a", "t", key2, 2), DS_OK, "%s", err.message);
    check("primary key set");

    ds_be_branch_t br = {.id = "x", .name = "x", .created_at = 11};
    cr_assert_eq(ops->branch_create(self, &call, &br), DS_OK, "%s", err.message);
    ds_be_move_t mv = {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "t", .dst_bucket = "_br_x.in.c-a",
                       .dst_table = "t", .expect_version = -1, .mark_version = 1};
    cr_assert_eq(ops->tables_move(self, &call, &mv, 1), DS_OK, "%s", err.message);
    cr_assert_eq(check("branch copy"), 4);
    ds_be_move_t bad_mv[] = {
        {.kind = DS_MOVE_DROP, .dst_bucket = "in.c-a", .dst_table = "t", .expect_version = -1},
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "ghost", .dst_bucket = "_br_x.in.c-a",
         .dst_table = "ghost", .expect_version = -1},
    };
    cr_assert_neq(ops->tables_move(self, &call, bad_mv, 2), DS_OK);
    cr_assert_eq(check("failed moves (rolled back)"), 4);
    cr_assert_eq(ops->branch_drop(self, &call, "x", "_br_x."), DS_OK, "%s", err.message);
    cr_assert_eq(check("branch drop"), 3);

    touch_other_projects();
    cr_assert_eq(check("detached and attached again"), 3);

    cr_assert_eq(ops->table_drop(self, &call, "in.c-a", "made"), DS_OK, "%s", err.message);
    cr_assert_eq(check("table drop"), 2);
    cr_assert_eq(ops->bucket_drop(self, &call, "out.c-b", false), DS_CONFLICT, "a bucket with tables needs force");
    check("refused bucket drop");
    cr_assert_eq(ops->bucket_drop(self, &call, "OUT.C-B", true), DS_OK, "%s", err.message);
    cr_assert_eq(check("bucket drop with its tables"), 1);
}

/* Writers into different tables and readers at once; afterwards the cache still equals SQL. */
typedef struct {
    int i;
    ds_status_t st;
} worker_t;

static void *writer(void *arg)
{
    worker_t *w = arg;
    ds_arena_t *a = ds_arena_create();
    ds_err_t e = {0};
    ds_be_call_t c = call_on(a, &e, "p");
    char name[16], csv[64], file[32];
    snprintf(name, sizeof(name), "w%d", w->i);
    w->st = DS_OK;
    for (int k = 0; k < 6 && w->st == DS_OK; k++) {
        snprintf(file, sizeof(file), "w%d_%d.csv", w->i, k);
        snprintf(csv, sizeof(csv), "id,v\n%d,%d\n%d,%d\n", k, k, k + 100, k);
        char *path = ds_arena_printf(a, "%s/%s", dir, file);
        FILE *f = fopen(path, "w");
        fputs(csv, f);
        fclose(f);
        ds_import_t in = csv_import(k > 0);
        if (k == 0)
            in.create_mode = DS_CREATE_CREATE;
        const char *paths[] = {path};
        ds_import_result_t out;
        w->st = ops->table_import(self, &c, "in.c-a", name, &in, paths, 1, &out);
        ds_be_table_t t;
        if (w->st == DS_OK && (w->st = ops->table_get(self, &c, "in.c-a", name, &t)) == DS_OK && t.rows != 2 * (k + 1))
            w->st = DS_INTERNAL; /* an acknowledged import must show in the next read */
    }
    ds_arena_destroy(&a);
    return NULL;
}

Test(duckdb_meta_cache, concurrent_imports_are_seen_once_acknowledged)
{
    ds_be_bucket_t b = {.id = "in.c-a", .stage = "in", .name = "c-a", .created_at = 5};
    cr_assert_eq(ops->bucket_create(self, &call, &b), DS_OK, "%s", err.message);
    pthread_t th[3];
    worker_t w[3];
    for (int i = 0; i < 3; i++) {
        w[i].i = i;
        cr_assert_eq(pthread_create(&th[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].st, DS_OK, "writer %d failed or read a stale row count (status %d)", i, w[i].st);
    }
    cr_assert_eq(check("after concurrent imports"), 3);
}
