/*
 * test_ddb.c - the DuckDB backend's one SQL executor (backends/duckdb/ddb.c)
 * never runs a statement whose text failed to build: an allocation failure
 * injected while a DELETE is built leaves the table untouched and answers
 * an out-of-memory error.
 */
#include "../../backends/duckdb/ddb.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/status.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- what a client sees of DuckDB's fatal and internal errors ---- */

static const char *trace_msg =
    "INTERNAL Error: Unaligned fetch in validity and main column data for update\n\nStack Trace:\n\n"
    "/srv/duckstore/third_party/duckdb/lib/libduckdb.so(_ZN6duckdb9Exception6ToJSON+0x56) [0x7fa92ca83ef6]\n";

static void assert_client_safe(const ds_err_t *err)
{
    cr_assert(strstr(err->message, "Stack Trace") == NULL, "no stack trace: %s", err->message);
    cr_assert(strstr(err->message, "libduckdb") == NULL, "no library path: %s", err->message);
    cr_assert(strchr(err->message, '/') == NULL, "no host path: %s", err->message);
}

Test(ddb, an_internal_error_is_a_503_without_trace_or_path)
{
    ds_err_t err = {0};
    uint64_t before = ds_ddb_fatal_events();
    cr_assert_eq(ds_ddb_error(&err, DUCKDB_ERROR_INTERNAL, trace_msg), DS_UNAVAILABLE);
    cr_assert_str_eq(err.message, DS_DDB_ENGINE_FAILED);
    assert_client_safe(&err);
    cr_assert_eq(ds_ddb_fatal_events(), before + 1, "the fatal error is counted for the backend's recovery");
}

Test(ddb, an_invalidated_database_is_a_503_whatever_the_reported_type)
{
    ds_err_t err = {0};
    const char *m =
        "FATAL Error: Failed: database has been invalidated because of a previous fatal error. The database "
        "must be restarted prior to being used again.\nOriginal error: \"No space left on device\"\n\n"
        "Stack Trace:\n\n/opt/x/libduckdb.so(foo) [0x1]\n";
    /* A prepare on an invalidated instance reports it as a parser error. */
    cr_assert_eq(ds_ddb_error(&err, DUCKDB_ERROR_PARSER, m), DS_UNAVAILABLE);
    cr_assert_str_eq(err.message, DS_DDB_ENGINE_FAILED);
    cr_assert(ds_ddb_err_is_engine_failure(&err));
}

Test(ddb, other_errors_keep_their_text_but_lose_traces_and_paths)
{
    ds_err_t err = {0};
    const char *m = "IO Error: Cannot open file \"/srv/data/duckdb/project_a_main.duckdb\": Permission denied\n\n"
                    "Stack Trace:\n\n/srv/bin/libduckdb.so(x) [0x1]\n";
    cr_assert_eq(ds_ddb_error(&err, DUCKDB_ERROR_IO, m), DS_INTERNAL);
    assert_client_safe(&err);
    cr_assert(strstr(err.message, "Cannot open file \"<path>\": Permission denied") != NULL, "%s", err.message);
    cr_assert_not(ds_ddb_err_is_engine_failure(&err));
}

Test(ddb, a_real_fatal_error_invalidates_the_instance_and_answers_503)
{
    ds_err_t err = {0};
    char path[] = "/tmp/ds_ddb_fatal_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(path);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "ATTACH '%s' AS f; CREATE TABLE f.x AS SELECT 1 AS v; SET debug_checkpoint_abort = 'before_header'; "
             "CHECKPOINT f",
             path);
    uint64_t before = ds_ddb_fatal_events();
    cr_assert_eq(ds_ddb_exec(conn, &err, sql), DS_UNAVAILABLE, "%s", err.message);
    cr_assert_str_eq(err.message, DS_DDB_ENGINE_FAILED);
    ds_err_clear(&err);
    cr_assert_eq(ds_ddb_exec(conn, &err, "SELECT 1"), DS_UNAVAILABLE, "every later statement fails: %s", err.message);
    cr_assert_str_eq(err.message, DS_DDB_ENGINE_FAILED);
    assert_client_safe(&err);
    cr_assert_geq(ds_ddb_fatal_events(), before + 2);
    unlink(path);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s.wal", path);
    unlink(wal);
}

Test(ddb, a_statement_over_the_engines_memory_limit_is_resource_exhausted_and_the_engine_serves_on)
{
    ds_err_t err = {0};
    uint64_t before = ds_ddb_fatal_events();
    /* No spilling: the aggregate must fit into 16 MB, which ten million strings in one list do not. */
    cr_assert_eq(ds_ddb_exec(conn, &err, "SET memory_limit = '16MB'; SET temp_directory = ''"), DS_OK, "%s",
                 err.message);
    ds_status_t st = ds_ddb_exec(conn, &err, "SELECT length(list(repeat('x', 20) || range::VARCHAR)) FROM range(10000000)");
    cr_assert_eq(st, DS_RESOURCE_EXHAUSTED, "%s", err.message);
    cr_assert_eq(ds_status_http(st), 503);
    cr_assert_eq(ds_status_grpc(st), 8, "gRPC RESOURCE_EXHAUSTED");
    cr_assert(strstr(err.message, "DUCKSTORE_MEMORY_LIMIT") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "Out of Memory") != NULL, "the engine's own words follow: %s", err.message);
    /* Its sizes ("10.3 MiB/15.2 MiB used") have a slash; its advice to DuckDB's users and any trace are gone. */
    cr_assert(strchr(err.message, '\n') == NULL && strstr(err.message, "temp_directory") == NULL &&
                  strstr(err.message, "SET ") == NULL && strstr(err.message, "Stack Trace") == NULL,
              "%s", err.message);
    cr_assert_eq(ds_ddb_fatal_events(), before, "running out of memory is not an engine failure");
    ds_err_clear(&err);
    cr_assert_eq(rows(), 3, "the same connection serves the next statement");
    cr_assert_eq(ds_ddb_exec(conn, &err, "RESET memory_limit"), DS_OK, "%s", err.message);
}
