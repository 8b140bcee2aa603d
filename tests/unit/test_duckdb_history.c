/*
 * test_duckdb_history.c - what the row history (backends/duckdb/history.c)
 * needs from DuckDB, held to the statement shapes history.c runs:
 *   - the rows a transaction appended are the ones from DDB_HIST_LOCAL_ROWID
 *     on, and a scan filtered that way reads those rows only (the filter is in
 *     DuckDB's scan: the copy of an upsert's added rows does not read the
 *     whole table);
 *   - rows selected by a temp table of their row ids (ddb_hist_delete) are
 *     read only from where they are: a write that replaces rows clustered at
 *     the end of a large table scans that end, not every row.
 */
#include "../../backends/duckdb/internal.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static duckdb_database db;
static duckdb_connection conn;

static void exec(const char *sql)
{
    duckdb_result r;
    duckdb_state s = duckdb_query(conn, sql, &r);
    cr_assert_eq(s, DuckDBSuccess, "%s: %s", sql, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
}

static int64_t one_int(const char *sql)
{
    duckdb_result r;
    duckdb_state s = duckdb_query(conn, sql, &r);
    cr_assert_eq(s, DuckDBSuccess, "%s: %s", sql, duckdb_result_error(&r));
    int64_t v = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    return v;
}

/* 300,000 committed rows: three of DuckDB's row groups. */
static void open_db(void)
{
    cr_assert_eq(duckdb_open(NULL, &db), DuckDBSuccess);
    cr_assert_eq(duckdb_connect(db, &conn), DuckDBSuccess);
    exec("SET threads = 1");
    exec("CREATE SCHEMA b; CREATE TABLE b.x (id BIGINT, s VARCHAR, \"_timestamp\" TIMESTAMP)");
    exec("INSERT INTO b.x SELECT range, 'v' || range, TIMESTAMP '2026-01-01' FROM range(300000)");
    exec("CREATE TABLE h (_h_ver BIGINT NOT NULL, _h_add BOOLEAN NOT NULL, \"_timestamp\" TIMESTAMP, c0 BIGINT, "
         "c1 VARCHAR)");
}

static void close_db(void)
{
    duckdb_disconnect(&conn);
    duckdb_close(&db);
}

static json_t *find_scan(json_t *node, const char *table)
{
    json_t *info = json_object_get(node, "extra_info");
    const char *type = json_string_value(json_object_get(node, "operator_type"));
    if (type && strcmp(type, "TABLE_SCAN") == 0 && json_is_string(json_object_get(info, "Table")) &&
        strcmp(json_string_value(json_object_get(info, "Table")), table) == 0)
        return node;
    size_t i;
    json_t *child;
    json_array_foreach(json_object_get(node, "children"), i, child)
    {
        json_t *found = find_scan(child, table);
        if (found)
            return found;
    }
    return NULL;
}

/* The rows the scan of table produced while sql ran (EXPLAIN ANALYZE): what it read past its own filters. */
static int64_t rows_scanned(const char *sql, const char *table)
{
    char *q = NULL;
    cr_assert_gt(asprintf(&q, "EXPLAIN (ANALYZE, FORMAT json) %s", sql), 0);
    duckdb_result r;
    duckdb_state s = duckdb_query(conn, q, &r);
    cr_assert_eq(s, DuckDBSuccess, "%s: %s", q, duckdb_result_error(&r));
    free(q);
    char *text = duckdb_value_varchar(&r, duckdb_column_count(&r) - 1, 0);
    duckdb_destroy_result(&r);
    json_error_t jerr;
    json_t *plan = json_loads(text, 0, &jerr);
    cr_assert_not_null(plan, "the profile is JSON: %s", jerr.text);
    json_t *scan = find_scan(plan, table);
    cr_assert_not_null(scan, "the plan scans %s: %s", table, text);
    int64_t n = json_integer_value(json_object_get(scan, "operator_cardinality"));
    duckdb_free(text);
    json_decref(plan);
    return n;
}

TestSuite(duckdb_history, .init = open_db, .fini = close_db);

Test(duckdb_history, the_rows_a_transaction_appended_are_those_from_the_local_row_id)
{
    exec("BEGIN");
    exec("DELETE FROM b.x WHERE id % 1000 = 7");
    exec("INSERT INTO b.x SELECT 1000000 + range, 'new', NULL FROM range(3000)");
    cr_assert_eq(one_int("SELECT count(*) FROM b.x t WHERE t.rowid >= " DDB_HIST_LOCAL_ROWID), 3000);
    cr_assert_eq(one_int("SELECT min(id) FROM b.x t WHERE t.rowid >= " DDB_HIST_LOCAL_ROWID), 1000000,
                 "no committed row is among them");
    cr_assert_eq(one_int("SELECT count(*) FROM b.x t WHERE t.rowid < " DDB_HIST_LOCAL_ROWID), 300000 - 300);
    exec("ROLLBACK");
}

Test(duckdb_history, the_copy_of_appended_rows_reads_only_the_transaction_rows)
{
    exec("BEGIN");
    exec("INSERT INTO b.x SELECT 1000000 + range, 'new', NULL FROM range(3000)");
    int64_t n = rows_scanned(
        "INSERT INTO h SELECT 1, true, t.\"_timestamp\", t.id, t.s FROM b.x t WHERE t.rowid >= " DDB_HIST_LOCAL_ROWID,
        "x");
    cr_assert_eq(n, 3000, "the scan read %lld rows: the row id filter is not in DuckDB's scan", (long long)n);
    cr_assert_eq(one_int("SELECT count(*) FROM h WHERE c1 = 'new'"), 3000);
    exec("ROLLBACK");
}

Test(duckdb_history, rows_selected_by_row_id_are_read_where_they_are)
{
    exec("BEGIN");
    exec("CREATE TEMP TABLE gone AS SELECT t.rowid AS r FROM b.x t WHERE t.id >= 299000 AND t.id % 2 = 0");
    int64_t n = rows_scanned("INSERT INTO h SELECT 1, false, t.\"_timestamp\", t.id, t.s FROM b.x t "
                             "WHERE t.rowid IN (SELECT r FROM gone)",
                             "x");
    cr_assert_leq(n, 1000, "the copy read %lld of 300,000 rows to find 500 at the table's end", (long long)n);
    cr_assert_eq(one_int("SELECT count(*) FROM h WHERE NOT _h_add AND c0 >= 299000 AND c0 % 2 = 0"), 500);
    cr_assert_eq(one_int("DELETE FROM b.x t WHERE t.rowid IN (SELECT r FROM gone)"), 500);
    cr_assert_eq(one_int("SELECT count(*) FROM b.x WHERE id >= 299000 AND id % 2 = 0"), 0);
    exec("ROLLBACK");
}
