/*
 * test_duckdb_alias.c - the DuckDB backend's store of alias definitions
 * (backends/duckdb/alias.c) and its filtered reads (data.c): alias_put
 * replaces a row regardless of case, alias_list filters by scope, bucket and
 * name, alias_drop removes only its scope, a branch drop removes the
 * branch's rows, definitions survive the project being closed and opened
 * again; table_count and table_profile_where see only the rows a filter
 * selects, and the profile's filter may name a column it leaves out.
 */

#include "ddb_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    ddb_fixture_open("ds_ddb_alias_");
    ds_be_column_t cols[] = {{"id", "INTEGER", true, NULL}, {"city", "VARCHAR", true, NULL}};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 2, .created_at = 1};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
}

static void teardown(void) { ddb_fixture_close(); }

static void put(const char *scope, const char *bucket, const char *name, const char *def, bool hidden)
{
    ds_be_alias_t a = {.scope = scope, .bucket = bucket, .name = name, .src_bucket = "in.c-a", .src_table = "t",
                       .def = def, .hidden = hidden, .created_at = 5};
    cr_assert_eq(ops->alias_put(self, &call, &a), DS_OK, "%s", err.message);
}

static size_t list(const char *scope, const char *bucket, const char *name, ds_be_alias_t **items)
{
    size_t n = 99;
    cr_assert_eq(ops->alias_list(self, &call, scope, bucket, name, items, &n), DS_OK, "%s", err.message);
    return n;
}

TestSuite(duckdb_alias, .init = setup, .fini = teardown);

Test(duckdb_alias, put_replaces_regardless_of_case_and_list_filters)
{
    ds_be_alias_t *items;
    put("", "out.c-v", "a", "{\"x\":1}", false);
    put("", "OUT.C-V", "A", "{\"x\":2}", false);
    put("", "out.c-v", "b", "{}", false);
    put("dev", "out.c-v", "a", "{}", true);
    cr_assert_eq(list("", NULL, NULL, &items), 2);
    cr_assert_str_eq(items[0].name, "A", "the replacing row keeps its own spelling");
    cr_assert_str_eq(items[0].def, "{\"x\":2}");
    cr_assert_str_eq(items[0].src_bucket, "in.c-a");
    cr_assert_eq(items[0].created_at, 5);
    cr_assert(!items[0].hidden);
    cr_assert_eq(list(NULL, NULL, "a", &items), 2, "one row per scope");
    cr_assert_eq(list("DEV", "out.c-v", "a", &items), 1);
    cr_assert(items[0].hidden);
    cr_assert_str_eq(items[0].scope, "dev");
    cr_assert_eq(list("", "out.c-other", NULL, &items), 0);
}

Test(duckdb_alias, drop_keeps_other_scopes_and_branch_drop_removes_the_branchs)
{
    ds_be_alias_t *items;
    put("", "out.c-v", "a", "{}", false);
    put("", "out.c-v", "b", "{}", false);
    put("dev", "out.c-v", "a", "{}", false);
    cr_assert_eq(ops->alias_drop(self, &call, "", "out.c-v", "A"), DS_OK, "%s", err.message);
    cr_assert_eq(list("", NULL, NULL, &items), 1);
    cr_assert_str_eq(items[0].name, "b");
    cr_assert_eq(list("dev", NULL, NULL, &items), 1, "main's drop left the branch's row");
    ds_be_branch_t br = {.id = "Dev", .name = "dev", .created_at = 1};
    cr_assert_eq(ops->branch_create(self, &call, &br), DS_OK, "%s", err.message);
    cr_assert_eq(ops->branch_drop(self, &call, "Dev", "_br_dev."), DS_OK, "%s", err.message);
    cr_assert_eq(list("dev", NULL, NULL, &items), 0, "the branch's aliases went with it");
    cr_assert_eq(list("", NULL, NULL, &items), 1);
    cr_assert_eq(ops->alias_drop(self, &call, "", "out.c-v", NULL), DS_OK, "%s", err.message);
    cr_assert_eq(list("", NULL, NULL, &items), 0);
}

Test(duckdb_alias, definitions_survive_close_and_reopen)
{
    ds_be_alias_t *items;
    put("", "out.c-v", "a", "{\"auto_sync\":false}", false);
    ds_arena_destroy(&arena);
    ops->close(self);
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    arena = ds_arena_create();
    call.arena = arena;
    cr_assert_eq(list("", "out.c-v", "a", &items), 1);
    cr_assert_str_eq(items[0].def, "{\"auto_sync\":false}");
}

Test(duckdb_alias, count_and_profile_see_only_the_filtered_rows)
{
    const char *sql_rows[][2] = {{"1", "Brno"}, {"2", "Brno"}, {"3", "Prague"}, {"4", NULL}};
    /* Rows go in through an import from a staged CSV, as every client's do. */
    char path[256];
    snprintf(path, sizeof(path), "%s/rows.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("id,city\n", f);
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "%s,%s\n", sql_rows[i][0], sql_rows[i][1] ? sql_rows[i][1] : "");
    fclose(f);
    ds_import_t in = {.format = DS_FORMAT_CSV, .csv = {.delimiter = ",", .enclosure = "\"", .header = true},
                      .strategy = DS_STRATEGY_AUTO, .create_mode = DS_CREATE_NONE,
                      .timestamp_mode = DS_TS_CURRENT_TIME};
    const char *const paths[] = {path};
    ds_import_result_t res;
    cr_assert_eq(ops->table_import(self, &call, "in.c-a", "t", &in, paths, 1, &res), DS_OK, "%s", err.message);

    const char *brno[] = {"Brno"};
    ds_filter_t eq = {.column = "city", .op = DS_OP_EQ, .values = brno, .n_values = 1};
    ds_where_t w = {.filters = &eq, .n_filters = 1};
    int64_t rows = -1;
    cr_assert_eq(ops->table_count(self, &call, "in.c-a", "t", &w, &rows), DS_OK, "%s", err.message);
    cr_assert_eq(rows, 2);
    ds_filter_t ne = {.column = "city", .op = DS_OP_NE, .values = brno, .n_values = 1};
    w.filters = &ne;
    cr_assert_eq(ops->table_count(self, &call, "in.c-a", "t", &w, &rows), DS_OK, "%s", err.message);
    cr_assert_eq(rows, 2, "ne keeps Prague and the empty city (an empty CSV value is an empty string)");

    const char *cols[] = {"id"};
    ds_profile_result_t prof;
    w.filters = &eq;
    cr_assert_eq(ops->table_profile_where(self, &call, "in.c-a", "t", cols, 1, &w, &prof), DS_OK, "%s", err.message);
    cr_assert_eq(prof.rows, 2);
    cr_assert_eq(prof.n_columns, 1);
    cr_assert_str_eq(prof.columns[0].name, "id");
    cr_assert_str_eq(prof.columns[0].max, "2");
    const char *bad[] = {"nope"};
    cr_assert_eq(ops->table_profile_where(self, &call, "in.c-a", "t", bad, 1, &w, &prof), DS_INVALID_ARGUMENT);
}
