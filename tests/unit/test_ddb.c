/*
 * test_ddb.c - the DuckDB backend's one SQL executor (backends/duckdb/ddb.c)
 * never runs a statement whose text failed to build: an allocation failure
 * injected while a DELETE is built leaves the table untouched and answers
 * an out-of-memory error.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../backends/duckdb/ddb.h"
#include "core/alloc.h"
#include "core/buf.h"

static duckdb_database db;
static duckdb_connection conn;

static void open_db(void)
{
    cr_assert_eq(duckdb_open(NULL, &db), DuckDBSuccess);
    cr_assert_eq(duckdb_connect(db, &conn), DuckDBSuccess);
    ds_err_t err = {0};
    cr_assert_eq(ds_ddb_exec(conn, &err, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1), (2), (3)"), DS_OK,
                 "%s", err.message);
}

static void close_db(void)
{
    ds_alloc_fail_after(-1);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
}

static int64_t rows(void)
{
    duckdb_result r;
    ds_err_t err = {0};
    cr_assert_eq(ds_ddb_run(conn, &err, &r, "SELECT count(*) FROM t", 0, NULL), DS_OK);
    int64_t n = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    return n;
}

TestSuite(ddb, .init = open_db, .fini = close_db);

Test(ddb, a_delete_that_lost_its_where_is_not_run)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DELETE FROM t");
    ds_alloc_fail_after(0); /* the WHERE makes the buffer grow: that allocation fails */
    ds_buf_puts(&sql, " WHERE id = 1 AND 'padding the clause past the buffer''s first 64 bytes' <> ''");
    ds_alloc_fail_after(-1);
    ds_err_t err = {0};
    ds_status_t st = ds_ddb_exec(conn, &err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    cr_assert_eq(st, DS_UNAVAILABLE, "an allocation failure is a 503, got %d", st);
    cr_assert(strstr(err.message, "out of memory") != NULL, "the error names it: %s", err.message);
    cr_assert_eq(rows(), 3, "nothing was deleted");
}

Test(ddb, a_piece_built_apart_that_failed_fails_the_statement)
{
    ds_buf_t where = {0}, sql = {0};
    ds_alloc_fail_after(0);
    ds_buf_puts(&where, " WHERE id = 2");
    ds_alloc_fail_after(-1);
    ds_buf_puts(&sql, "DELETE FROM t");
    ds_buf_append_buf(&sql, &where);
    ds_err_t err = {0};
    cr_assert_eq(ds_ddb_exec(conn, &err, ds_buf_cstr(&sql)), DS_UNAVAILABLE);
    ds_buf_free(&where);
    ds_buf_free(&sql);
    cr_assert_eq(rows(), 3, "nothing was deleted");
}

Test(ddb, every_allocation_failure_point_of_a_delete_fails_cleanly)
{
    /* Fail the 1st, 2nd, ... allocation of the build in turn: each either builds the whole statement or runs nothing. */
    for (long n = 0; n < 8; n++) {
        ds_buf_t sql = {0};
        ds_alloc_fail_after(n);
        ds_buf_puts(&sql, "DELETE FROM ");
        ds_buf_ident(&sql, "t");
        ds_buf_puts(&sql, " WHERE id = 3 AND ");
        ds_buf_literal(&sql, "a long literal that needs a bigger buffer than the first one, and then one more growth ......");
        ds_buf_puts(&sql, " <> ''");
        ds_alloc_fail_after(-1);
        ds_err_t err = {0};
        ds_status_t st = ds_ddb_exec(conn, &err, ds_buf_cstr(&sql));
        bool failed = ds_buf_failed(&sql);
        ds_buf_free(&sql);
        if (failed) {
            cr_assert_eq(st, DS_UNAVAILABLE, "failure point %ld: %s", n, err.message);
            cr_assert_eq(rows(), 3, "failure point %ld deleted rows", n);
        } else {
            cr_assert_eq(st, DS_OK, "%s", err.message);
            cr_assert_eq(rows(), 2, "the complete statement deletes exactly its row");
            return;
        }
    }
    cr_assert_fail("the statement never built");
}
