/*
 * test_ddb_cancel.c - backends/duckdb/ddb.c: an interrupted statement is
 * DS_CANCELLED, and a watched connection whose call was cancelled starts no
 * more statements (an interrupt that arrives between statements is not lost).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../../backends/duckdb/ddb.h"

static duckdb_database db;
static duckdb_connection conn;

static void setup(void)
{
    cr_assert_eq(duckdb_open(NULL, &db), DuckDBSuccess);
    cr_assert_eq(duckdb_connect(db, &conn), DuckDBSuccess);
}

static void teardown(void)
{
    duckdb_disconnect(&conn);
    duckdb_close(&db);
}

static void *interrupt_soon(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    duckdb_interrupt(conn);
    return NULL;
}

Test(ddb, interrupted_statement_is_cancelled, .init = setup, .fini = teardown)
{
    pthread_t t;
    ds_err_t err = {0};
    pthread_create(&t, NULL, interrupt_soon, NULL);
    ds_status_t st = ds_ddb_exec(conn, &err, "SELECT count(*) FROM range(100000000000) a");
    pthread_join(t, NULL);
    cr_assert_eq(st, DS_CANCELLED, "%d %s", st, err.message);
    cr_assert_not_null(strstr(err.message, "cancelled"), "%s", err.message);
    /* The connection itself is fine afterwards. */
    cr_assert_eq(ds_ddb_exec(conn, &err, "SELECT 1"), DS_OK);
}

Test(ddb, watched_connection_refuses_statements_once_cancelled, .init = setup, .fini = teardown)
{
    atomic_bool cancelled;
    atomic_init(&cancelled, false);
    ds_err_t err = {0};
    ds_ddb_watch(conn, &cancelled);
    cr_assert_eq(ds_ddb_exec(conn, &err, "CREATE TEMP TABLE t AS SELECT 1 AS x"), DS_OK, "%s", err.message);
    /* DuckDB forgets an interrupt that arrives while the connection is idle... */
    duckdb_interrupt(conn);
    cr_assert_eq(ds_ddb_exec(conn, &err, "SELECT 1"), DS_OK);
    /* ...the watch does not. */
    atomic_store(&cancelled, true);
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_ddb_exec(conn, &err, "INSERT INTO t VALUES (2)"), DS_CANCELLED);
    cr_assert_eq(err.status, DS_CANCELLED);
    ds_ddb_unwatch(conn);
    duckdb_result r;
    cr_assert_eq(ds_ddb_run(conn, &err, &r, "SELECT count(*) FROM t", 0, NULL), DS_OK);
    cr_assert_eq(ds_ddb_int(&r, 0, 0), 1, "the refused INSERT ran");
    duckdb_destroy_result(&r);
}

Test(ddb, other_connections_and_threads_are_not_affected, .init = setup, .fini = teardown)
{
    atomic_bool cancelled;
    atomic_init(&cancelled, true);
    duckdb_connection other;
    cr_assert_eq(duckdb_connect(db, &other), DuckDBSuccess);
    ds_err_t err = {0};
    ds_ddb_watch(conn, &cancelled);
    cr_assert_eq(ds_ddb_exec(other, &err, "SELECT 1"), DS_OK);
    cr_assert_eq(ds_ddb_exec(conn, &err, "SELECT 1"), DS_CANCELLED);
    ds_ddb_unwatch(conn);
    cr_assert_eq(ds_ddb_exec(conn, &err, "SELECT 1"), DS_OK);
    duckdb_disconnect(&other);
}
