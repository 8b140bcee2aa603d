/*
 * test_duckdb_branch.c - the DuckDB backend's primitives for development
 * branches (backends/duckdb/branch.c): a table's version changes with every
 * write and never comes back; tables_move is all or nothing (a failing move
 * undoes the earlier ones, an unexpected version refuses the whole list);
 * a copy keeps rows and definition; branch_drop removes only its prefix;
 * alias moves apply a branch's alias rows to main inside the same list.
 */

#include "ddb_fixture.h"

#include <criterion/criterion.h>
#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    ddb_fixture_open("ds_ddb_branch_");
    ds_be_column_t cols[] = {{"id", "VARCHAR", true, NULL}, {"n", "INTEGER", false, "7"}};
    const char *pk[] = {"id"};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 2, .primary_key = pk,
                       .n_primary_key = 1, .created_at = 1};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
}

static void teardown(void) { ddb_fixture_close(); }

static int64_t version(const char *bucket, const char *table)
{
    int64_t v = -1;
    ds_err_clear(&err);
    ds_status_t st = ops->table_version(self, &call, bucket, table, &v);
    return st == DS_OK ? v : -1;
}

static size_t marks(const char *prefix)
{
    ds_be_mark_t *m;
    size_t n = 99;
    cr_assert_eq(ops->marks_list(self, &call, prefix, &m, &n), DS_OK, "%s", err.message);
    return n;
}

TestSuite(duckdb_branch, .init = setup, .fini = teardown);

Test(duckdb_branch, version_changes_with_every_write_and_never_repeats)
{
    int64_t v1 = version("in.c-a", "t");
    cr_assert_gt(v1, 0);
    ds_be_column_t c = {"x", "VARCHAR", true, NULL};
    cr_assert_eq(ops->column_add(self, &call, "in.c-a", "t", &c), DS_OK, "%s", err.message);
    int64_t v2 = version("in.c-a", "t");
    cr_assert_gt(v2, v1);
    cr_assert_eq(ops->table_drop(self, &call, "in.c-a", "t"), DS_OK, "%s", err.message);
    cr_assert_eq(version("in.c-a", "t"), -1, "a dropped table has no version");
    ds_be_column_t cols[] = {{"id", "VARCHAR", true, NULL}};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 1, .created_at = 2};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
    cr_assert_gt(version("in.c-a", "t"), v2, "a re-created table got an old version back");
}

Test(duckdb_branch, copy_keeps_definition_and_marks)
{
    ds_be_move_t m = {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "t", .dst_bucket = "_br_x.in.c-a",
                      .dst_table = "t", .expect_version = -1, .mark_version = version("in.c-a", "t")};
    cr_assert_eq(ops->tables_move(self, &call, &m, 1), DS_OK, "%s", err.message);
    ds_be_table_t a, b;
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &a), DS_OK, "%s", err.message);
    cr_assert_eq(ops->table_get(self, &call, "_br_x.in.c-a", "t", &b), DS_OK, "%s", err.message);
    cr_assert_eq(b.n_columns, a.n_columns);
    for (size_t i = 0; i < a.n_columns; i++) {
        cr_assert_str_eq(b.columns[i].name, a.columns[i].name);
        cr_assert_str_eq(b.columns[i].type, a.columns[i].type);
        cr_assert_eq(b.columns[i].nullable, a.columns[i].nullable);
    }
    cr_assert_eq(b.n_primary_key, 1);
    cr_assert_str_eq(b.primary_key[0], "id");
    cr_assert_eq(marks("_br_x."), 1);
    cr_assert_eq(marks("_br_y."), 0);
}

Test(duckdb_branch, moves_are_all_or_nothing)
{
    ds_be_move_t moves[] = {
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "t", .dst_bucket = "_br_x.in.c-a",
         .dst_table = "t", .expect_version = -1, .mark_version = 3},
        {.kind = DS_MOVE_DROP, .dst_bucket = "in.c-a", .dst_table = "t", .expect_version = -1},
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "ghost", .dst_bucket = "_br_x.in.c-a",
         .dst_table = "ghost", .expect_version = -1},
    };
    cr_assert_eq(ops->tables_move(self, &call, moves, 3), DS_NOT_FOUND);
    cr_assert_gt(version("in.c-a", "t"), 0, "the drop before the failing move was not undone");
    cr_assert_eq(version("_br_x.in.c-a", "t"), -1, "the copy before the failing move was not undone");
    cr_assert_eq(marks("_br_x."), 0);
    /* An unexpected version refuses the list before anything changes. */
    int64_t v = version("in.c-a", "t");
    moves[1].expect_version = v + 1;
    cr_assert_eq(ops->tables_move(self, &call, moves, 2), DS_CONFLICT);
    cr_assert_eq(version("in.c-a", "t"), v);
    cr_assert_eq(version("_br_x.in.c-a", "t"), -1);
    moves[1].expect_version = v;
    cr_assert_eq(ops->tables_move(self, &call, moves, 2), DS_OK, "%s", err.message);
    cr_assert_eq(version("in.c-a", "t"), -1);
    cr_assert_gt(version("_br_x.in.c-a", "t"), v);
}

Test(duckdb_branch, branch_drop_removes_only_its_prefix)
{
    ds_be_branch_t b = {.id = "x", .name = "x", .created_at = 1}, c = {.id = "x2", .name = "x2", .created_at = 1};
    cr_assert_eq(ops->branch_create(self, &call, &b), DS_OK, "%s", err.message);
    cr_assert_eq(ops->branch_create(self, &call, &c), DS_OK, "%s", err.message);
    cr_assert_eq(ops->branch_create(self, &call, &(ds_be_branch_t){.id = "X", .name = "X"}), DS_ALREADY_EXISTS);
    ds_err_clear(&err);
    ds_be_move_t moves[] = {
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "t", .dst_bucket = "_br_x.in.c-a",
         .dst_table = "t", .expect_version = -1, .mark_version = 3},
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "t", .dst_bucket = "_br_x2.in.c-a",
         .dst_table = "t", .expect_version = -1, .mark_version = 3},
    };
    cr_assert_eq(ops->tables_move(self, &call, moves, 2), DS_OK, "%s", err.message);
    cr_assert_eq(ops->branch_drop(self, &call, "X", "_br_x."), DS_OK, "%s", err.message);
    cr_assert_eq(version("_br_x.in.c-a", "t"), -1);
    cr_assert_gt(version("_br_x2.in.c-a", "t"), 0);
    cr_assert_gt(version("in.c-a", "t"), 0);
    cr_assert_eq(marks("_br_x."), 0);
    cr_assert_eq(marks("_br_x2."), 1);
    ds_be_branch_t *items;
    size_t n;
    cr_assert_eq(ops->branch_list(self, &call, &items, &n), DS_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(items[0].id, "x2");
    cr_assert_eq(ops->branch_drop(self, &call, "x", "_br_x."), DS_NOT_FOUND);
}

/* A project file written before branches (no version column, no branch tables) gets them on attach. */
Test(duckdb_branch, older_file_is_migrated_on_attach)
{
    ops->close(self);
    char path[256];
    snprintf(path, sizeof(path), "%s/duckdb/project_p_main.duckdb", dir);
    duckdb_database db;
    duckdb_connection c;
    cr_assert_eq(duckdb_open(path, &db), DuckDBSuccess, "cannot open %s", path);
    cr_assert_eq(duckdb_connect(db, &c), DuckDBSuccess);
    const char *old_schema[] = {"ALTER TABLE _ds.tables DROP COLUMN version", "DROP SEQUENCE _ds.version_seq",
                                "DROP TABLE _ds.branches", "DROP TABLE _ds.branch_marks", "CHECKPOINT"};
    for (size_t i = 0; i < sizeof(old_schema) / sizeof(old_schema[0]); i++) {
        duckdb_result r;
        cr_assert_eq(duckdb_query(c, old_schema[i], &r), DuckDBSuccess, "%s: %s", old_schema[i], duckdb_result_error(&r));
        duckdb_destroy_result(&r);
    }
    duckdb_disconnect(&c);
    duckdb_close(&db);
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    int64_t v = version("in.c-a", "t");
    cr_assert_gt(v, 0, "%s", err.message);
    ds_be_branch_t b = {.id = "x", .name = "x", .created_at = 1};
    cr_assert_eq(ops->branch_create(self, &call, &b), DS_OK, "%s", err.message);
    ds_be_column_t col = {"x", "VARCHAR", true, NULL};
    cr_assert_eq(ops->column_add(self, &call, "in.c-a", "t", &col), DS_OK, "%s", err.message);
    cr_assert_gt(version("in.c-a", "t"), v);
}

static size_t alias_rows(const char *scope, const char *bucket, const char *name, bool *hidden)
{
    ds_be_alias_t *items;
    size_t n = 99;
    cr_assert_eq(ops->alias_list(self, &call, scope, bucket, name, &items, &n), DS_OK, "%s", err.message);
    if (hidden && n)
        *hidden = items[0].hidden;
    return n;
}

Test(duckdb_branch, alias_moves_apply_a_branchs_rows_to_main_in_the_same_transaction)
{
    ds_be_alias_t main_kept = {.scope = "", .bucket = "in.c-a", .name = "kept", .src_bucket = "in.c-a",
                               .src_table = "t", .def = "{}", .created_at = 1};
    ds_be_alias_t main_gone = main_kept, made = main_kept, hide = main_kept;
    main_gone.name = "gone";
    made.scope = "x";
    made.bucket = "out.c-new";
    made.name = "made";
    made.def = "{\"auto_sync\":true}";
    hide.scope = "x";
    hide.name = "gone";
    hide.hidden = true;
    const ds_be_alias_t *rows[] = {&main_kept, &main_gone, &made, &hide};
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(ops->alias_put(self, &call, rows[i]), DS_OK, "%s", err.message);
    ds_be_bucket_t nb = {.id = "_br_x.out.c-new", .stage = "out", .name = "c-new", .created_at = 1};
    cr_assert_eq(ops->bucket_create(self, &call, &nb), DS_OK, "%s", err.message);
    ds_be_move_t moves[] = {
        {.kind = DS_MOVE_BUCKET, .src_bucket = "_br_x.out.c-new", .dst_bucket = "out.c-new", .expect_version = -1},
        {.kind = DS_MOVE_ALIAS, .src_bucket = "x", .dst_bucket = "out.c-new", .dst_table = "made",
         .expect_version = -1},
        {.kind = DS_MOVE_ALIAS, .src_bucket = "x", .dst_bucket = "in.c-a", .dst_table = "gone", .expect_version = -1},
        {.kind = DS_MOVE_COPY, .src_bucket = "in.c-a", .src_table = "ghost", .dst_bucket = "in.c-a",
         .dst_table = "t2", .expect_version = -1},
    };
    /* A failing move after them undoes the alias moves and the bucket. */
    cr_assert_eq(ops->tables_move(self, &call, moves, 4), DS_NOT_FOUND);
    cr_assert_eq(alias_rows("", NULL, NULL, NULL), 2);
    cr_assert_eq(alias_rows("x", NULL, NULL, NULL), 2);
    ds_be_bucket_t got;
    cr_assert_eq(ops->bucket_get(self, &call, "out.c-new", &got), DS_NOT_FOUND);
    ds_err_clear(&err);
    cr_assert_eq(ops->tables_move(self, &call, moves, 3), DS_OK, "%s", err.message);
    bool hidden = true;
    cr_assert_eq(alias_rows("", "out.c-new", "made", &hidden), 1, "the branch's alias did not reach main");
    cr_assert(!hidden);
    cr_assert_eq(alias_rows("", "in.c-a", "gone", NULL), 0, "the alias hidden in the branch is still in main");
    cr_assert_eq(alias_rows("", "in.c-a", "kept", NULL), 1);
    cr_assert_eq(alias_rows("x", NULL, NULL, NULL), 0, "the branch kept its rows");
    cr_assert_eq(ops->bucket_get(self, &call, "out.c-new", &got), DS_OK, "%s", err.message);
    cr_assert_str_eq(got.stage, "out");
    /* A row that is gone from the branch's scope is a conflict, not a silent removal from main. */
    cr_assert_eq(ops->tables_move(self, &call, &moves[1], 1), DS_CONFLICT);
    cr_assert_eq(alias_rows("", "out.c-new", "made", NULL), 1);
}
