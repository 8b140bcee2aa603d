/*
 * test_duckdb_preview.c - the plan DuckDB gives a preview-shaped query on the
 * backend's engine: a plain `LIMIT n` up to the preview's largest limit is a
 * scan that stops after n rows, not DuckDB's late-materialization rewrite (a
 * semi-join on rowid against a second scan of the whole table, then a sort),
 * which made a 100-row preview of a 100,000-row table cost ten times the scan.
 */
#include "be_call_fixture.h"
#include "../../backends/duckdb/ddb.h"
#include "../../backends/duckdb/duckdb_backend.h"
#include "../../backends/duckdb/internal.h"
#include "backend/registry.h"
#include "core/arena.h"
#include "core/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ds_backend_ops_t *ops;
static void *self;
static char dir[] = "/tmp/ds_ddb_preview_XXXXXX";

static void setup(void)
{
    ds_err_t err = {0};
    cr_assert_not_null(mkdtemp(dir));
    ds_log_set_level(getenv("DS_TEST_LOG") ? DS_LOG_DEBUG : DS_LOG_ERROR);
    cr_assert_eq(ds_registry_init(dir, (int64_t)512 << 20, 2, 8, &err), DS_OK, "%s", err.message);
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    call_t c;
    call_init(&c, "a");
    cr_assert_eq(ops->project_create(self, &c.call), DS_OK, "%s", c.err.message);
    call_done(&c);
}

static void teardown(void)
{
    ops->close(self);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs sql on project "a"; the text of cell (col, row) of its result into out (NULL for SQL NULL). */
static void cell(const char *sql, idx_t col, idx_t row, char *out, size_t outsz)
{
    call_t c;
    use_t u;
    call_init(&c, "a");
    cr_assert_eq(ddb_use_begin(self, &c.call, false, &u), DS_OK, "%s", c.err.message);
    duckdb_result r;
    cr_assert_eq(ds_ddb_run(u.conn, &c.err, &r, sql, 0, NULL), DS_OK, "%s: %s", sql, c.err.message);
    char *v = ds_ddb_cell(&r, col, row);
    snprintf(out, outsz, "%s", v ? v : "NULL");
    free(v);
    duckdb_destroy_result(&r);
    ddb_use_end(&u);
    call_done(&c);
}

static void run(const char *sql)
{
    char ignored[8];
    cell(sql, 0, 0, ignored, sizeof(ignored));
}

TestSuite(duckdb_preview, .init = setup, .fini = teardown);

Test(duckdb_preview, a_plain_limit_up_to_the_largest_preview_scans_once)
{
    run("CREATE TABLE t AS SELECT range AS i, 'row ' || range AS s FROM range(100000)");
    static const char *const limits[] = {"51", "100", "1000"};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        char sql[256], plan[16384];
        snprintf(sql, sizeof(sql), "EXPLAIN SELECT CAST(i AS VARCHAR) AS i, CAST(s AS VARCHAR) AS s FROM t LIMIT %s",
                 limits[k]);
        cell(sql, 1, 0, plan, sizeof(plan));
        cr_assert_null(strstr(plan, "HASH_JOIN"), "LIMIT %s joins the table with itself:\n%s", limits[k], plan);
        cr_assert_not_null(strstr(plan, "LIMIT"), "LIMIT %s has no limit in its plan:\n%s", limits[k], plan);
    }
    /* The rows are still the first ones in insertion order. */
    char v[64];
    cell("SELECT CAST(s AS VARCHAR) FROM t LIMIT 100", 0, 99, v, sizeof(v));
    cr_assert_str_eq(v, "row 99");
    cell("SELECT CAST(i AS VARCHAR) FROM t LIMIT 1000", 0, 999, v, sizeof(v));
    cr_assert_str_eq(v, "999");
}
