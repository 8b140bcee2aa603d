/*
 * test_duckdb_snapshot.c - the DuckDB backend's snapshot restore
 * (backends/duckdb/snapshot.c): a restore makes the table again with its
 * definition (types, NOT NULL, defaults, primary key) and its rows with
 * their _timestamp; it replaces a destination only when asked; a list of
 * restores is all or nothing (a failing item undoes the earlier ones); and a
 * restore into a branch commits the branch's bucket and marks with its rows.
 */

#include "ddb_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char parquet[4200];

static void setup(void)
{
    ddb_fixture_open("ds_ddb_snapshot_");
    ds_be_column_t cols[] = {{"id", "INTEGER", false, NULL}, {"v", "VARCHAR", true, "x"}};
    const char *pk[] = {"id"};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 2, .primary_key = pk,
                       .n_primary_key = 1, .created_at = 1};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
    char csv[4200];
    snprintf(csv, sizeof(csv), "%s/in.csv", dir);
    FILE *f = fopen(csv, "w");
    cr_assert_not_null(f);
    fputs("id,v\n1,a\n2,\n", f);
    fclose(f);
    ds_import_t in = {.format = DS_FORMAT_CSV, .strategy = DS_STRATEGY_AUTO, .create_mode = DS_CREATE_NONE};
    strcpy(in.csv.delimiter, ",");
    strcpy(in.csv.enclosure, "\"");
    in.csv.header = true;
    const char *paths[] = {csv};
    ds_import_result_t res;
    cr_assert_eq(ops->table_import(self, &call, "in.c-a", "t", &in, paths, 1, &res), DS_OK, "%s", err.message);
    /* The snapshot's data file, as the host writes it: every column and _timestamp. */
    char out[4200];
    snprintf(out, sizeof(out), "%s/snap", dir);
    cr_assert_eq(mkdir(out, 0750), 0);
    const char *ecols[] = {"id", "v", "_timestamp"};
    ds_export_t ex = {.format = DS_FORMAT_PARQUET, .columns = ecols, .n_columns = 3};
    const char **files;
    size_t n_files;
    int64_t rows;
    cr_assert_eq(ops->table_export(self, &call, "in.c-a", "t", &ex, out, 0, &files, &n_files, &rows), DS_OK, "%s",
                 err.message);
    cr_assert_eq(n_files, 1);
    cr_assert_eq(rows, 2);
    snprintf(parquet, sizeof(parquet), "%s", files[0]);
}

static void teardown(void) { ddb_fixture_close(); }

/* The definition of in.c-a.t with the destination name. */
static ds_be_table_t def_named(const char *name)
{
    ds_be_table_t t;
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &t), DS_OK, "%s", err.message);
    t.name = name;
    return t;
}

static bool exists(const char *name)
{
    ds_be_table_t t;
    ds_err_clear(&err);
    ds_status_t st = ops->table_get(self, &call, "in.c-a", name, &t);
    ds_err_clear(&err);
    return st == DS_OK;
}

TestSuite(duckdb_snapshot, .init = setup, .fini = teardown);

Test(duckdb_snapshot, restore_makes_the_definition_and_rows_again)
{
    ds_be_table_t d = def_named("r");
    const char *paths[] = {parquet};
    ds_be_restore_t it = {.def = &d, .paths = paths, .n_paths = 1};
    cr_assert_eq(ops->tables_restore(self, &call, &it, 1), DS_OK, "%s", err.message);
    ds_be_table_t r, t;
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "r", &r), DS_OK, "%s", err.message);
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &t), DS_OK, "%s", err.message);
    cr_assert_eq(r.rows, 2);
    cr_assert_eq(r.n_columns, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(r.columns[i].name, t.columns[i].name);
        cr_assert_str_eq(r.columns[i].type, t.columns[i].type);
        cr_assert_eq(r.columns[i].nullable, t.columns[i].nullable);
    }
    cr_assert_str_eq(r.columns[1].default_value, "x");
    cr_assert_eq(r.n_primary_key, 1);
    cr_assert_str_eq(r.primary_key[0], "id");
    /* Values and _timestamp as they were. */
    const char *cols[] = {"id", "v", "_timestamp"};
    ds_order_t order = {.column = "id"};
    ds_preview_t pv = {.columns = cols, .n_columns = 3, .order = &order, .n_order = 1, .limit = 10};
    ds_preview_result_t a, b;
    cr_assert_eq(ops->table_preview(self, &call, "in.c-a", "t", &pv, &a), DS_OK, "%s", err.message);
    cr_assert_eq(ops->table_preview(self, &call, "in.c-a", "r", &pv, &b), DS_OK, "%s", err.message);
    cr_assert_eq(a.n_rows, 2);
    cr_assert_eq(b.n_rows, 2);
    for (size_t i = 0; i < 2; i++)
        for (size_t c = 0; c < 3; c++) {
            cr_assert_eq(a.rows[i][c] == NULL, b.rows[i][c] == NULL);
            if (a.rows[i][c])
                cr_assert_str_eq(a.rows[i][c], b.rows[i][c]);
        }
    cr_assert_not_null(b.rows[0][2], "the restored rows lost their _timestamp");
}

Test(duckdb_snapshot, existing_destination_is_replaced_only_when_asked)
{
    ds_be_table_t d = def_named("t");
    const char *paths[] = {parquet};
    ds_be_restore_t it = {.def = &d, .paths = paths, .n_paths = 1};
    cr_assert_eq(ops->tables_restore(self, &call, &it, 1), DS_ALREADY_EXISTS);
    ds_err_clear(&err);
    ds_where_t none = {0};
    int64_t deleted, left;
    cr_assert_eq(ops->table_delete_rows(self, &call, "in.c-a", "t", &none, &deleted, &left), DS_OK, "%s",
                 err.message);
    cr_assert_eq(left, 0);
    it.replace = true;
    cr_assert_eq(ops->tables_restore(self, &call, &it, 1), DS_OK, "%s", err.message);
    ds_be_table_t t;
    cr_assert_eq(ops->table_get(self, &call, "in.c-a", "t", &t), DS_OK, "%s", err.message);
    cr_assert_eq(t.rows, 2);
}

Test(duckdb_snapshot, a_list_of_restores_is_all_or_nothing)
{
    ds_be_table_t d1 = def_named("r1"), d2 = def_named("t");
    const char *paths[] = {parquet};
    ds_be_restore_t items[] = {{.def = &d1, .paths = paths, .n_paths = 1},
                               {.def = &d2, .paths = paths, .n_paths = 1, .replace = false}};
    cr_assert_eq(ops->tables_restore(self, &call, items, 2), DS_ALREADY_EXISTS);
    cr_assert(!exists("r1"), "the restore before the failing one was not undone");
    cr_assert(exists("t"));
}

Test(duckdb_snapshot, a_branch_restore_commits_its_moves_with_the_rows_or_nothing)
{
    ds_be_table_t d = def_named("t");
    d.bucket = "_br_x.in.c-a";
    const char *paths[] = {parquet};
    ds_be_restore_t it = {.def = &d, .paths = paths, .n_paths = 1};
    int64_t v;
    cr_assert_eq(ops->table_version(self, &call, "in.c-a", "t", &v), DS_OK, "%s", err.message);
    ds_be_move_t moves[] = {
        {.kind = DS_MOVE_BUCKET, .src_bucket = "in.c-a", .dst_bucket = "_br_x.in.c-a", .expect_version = -1},
        {.kind = DS_MOVE_MARK, .dst_bucket = "_br_x.in.c-a", .dst_table = "t", .expect_version = -1,
         .mark_version = v},
    };
    ds_be_mark_t *marks;
    size_t n_marks;
    ds_be_table_t got;
    /* A restore item that fails (its data file is gone) undoes the branch's bucket and mark too. */
    const char *missing[] = {"/nonexistent/ds_snapshot_missing.parquet"};
    ds_be_restore_t bad = {.def = &d, .paths = missing, .n_paths = 1};
    cr_assert_neq(ops->tables_move_restore(self, &call, moves, 2, &bad, 1), DS_OK);
    ds_err_clear(&err);
    cr_assert_eq(ops->bucket_get(self, &call, "_br_x.in.c-a", &(ds_be_bucket_t){0}), DS_NOT_FOUND);
    ds_err_clear(&err);
    cr_assert_eq(ops->marks_list(self, &call, "_br_x.", &marks, &n_marks), DS_OK, "%s", err.message);
    cr_assert_eq(n_marks, 0, "the mark of a failed restore stayed");
    cr_assert_eq(ops->tables_move_restore(self, &call, moves, 2, &it, 1), DS_OK, "%s", err.message);
    cr_assert_eq(ops->table_get(self, &call, "_br_x.in.c-a", "t", &got), DS_OK, "%s", err.message);
    cr_assert_eq(got.rows, 2);
    cr_assert_eq(ops->marks_list(self, &call, "_br_x.", &marks, &n_marks), DS_OK, "%s", err.message);
    cr_assert_eq(n_marks, 1);
    cr_assert_eq(marks[0].base_version, v);
    cr_assert(!marks[0].hidden);
    /* main's table is untouched */
    int64_t after;
    cr_assert_eq(ops->table_version(self, &call, "in.c-a", "t", &after), DS_OK, "%s", err.message);
    cr_assert_eq(after, v);
}
