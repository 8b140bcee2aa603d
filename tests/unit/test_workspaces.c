/*
 * test_workspaces.c - the workspace records of the global catalog
 * (src/catalog/workspaces.c) on a real catalog in a temporary directory: the
 * records in memory always equal the table, and reading one costs no catalog
 * query (every workspace request reads its record).
 */
#include <criterion/criterion.h>
#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../backends/duckdb/ddb.h"
#include "catalog/catalog.h"
#include "catalog/workspaces.h"

static char dir[] = "/tmp/ds_ws_catalog_XXXXXX";

static void open_catalog(const char *d)
{
    ds_err_t err = {0};
    cr_assert_eq(ds_catalog_open(d, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_init(&err), DS_OK, "%s", err.message);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    open_catalog(dir);
}

static void teardown(void)
{
    ds_catalog_close();
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ws_catalog, .init = setup, .fini = teardown);

static ds_ws_rec_t rec_of(const char *project, const char *id, const char *hash)
{
    ds_ws_rec_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.project, sizeof(r.project), "%s", project);
    snprintf(r.branch, sizeof(r.branch), "default");
    snprintf(r.user, sizeof(r.user), "ws_%s_%s", project, id);
    snprintf(r.password_hash, sizeof(r.password_hash), "%s", hash);
    snprintf(r.object_name, sizeof(r.object_name), "WORKSPACE_%s", id);
    r.created_at = 1700000000;
    return r;
}

/* The table's row count of workspace id of project, read by SQL (not from memory). */
typedef struct {
    const char *project, *id;
    int64_t rows;
} count_t;

static ds_status_t count_rows(void *conn, void *ud, ds_err_t *err)
{
    count_t *c = ud;
    const char *params[] = {c->project, c->id};
    duckdb_result r;
    ds_status_t st = ds_ddb_run(conn, err, &r, "SELECT count(*) FROM workspaces WHERE project = $1 AND id = $2", 2,
                                params);
    if (st == DS_OK) {
        c->rows = ds_ddb_int(&r, 0, 0);
        duckdb_destroy_result(&r);
    }
    return st;
}

static int64_t table_rows(const char *project, const char *id)
{
    ds_err_t err = {0};
    count_t c = {project, id, -1};
    cr_assert_eq(ds_catalog_with_conn(count_rows, &c, &err), DS_OK, "%s", err.message);
    return c.rows;
}

Test(ws_catalog, records_follow_every_change)
{
    ds_err_t err = {0};
    ds_ws_rec_t a = rec_of("p1", "Alpha", "hash-a"), b = rec_of("p2", "alpha", "hash-b"), got;
    cr_assert_eq(ds_catalog_ws_insert(&a, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_insert(&b, &err), DS_OK, "%s", err.message);
    /* The id is found in any case, within its own project only. */
    cr_assert_eq(ds_catalog_ws_get("p1", "ALPHA", &got, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(got.id, "Alpha");
    cr_assert_str_eq(got.password_hash, "hash-a");
    cr_assert_str_eq(got.user, "ws_p1_Alpha");
    cr_assert_eq(got.created_at, 1700000000);
    cr_assert_eq(ds_catalog_ws_get("p2", "alpha", &got, &err), DS_OK);
    cr_assert_str_eq(got.password_hash, "hash-b");
    cr_assert_eq(ds_catalog_ws_get("p3", "alpha", &got, &err), DS_NOT_FOUND);

    ds_err_t dup_err = {0};
    ds_ws_rec_t dup = rec_of("p1", "alpha", "hash-x");
    cr_assert_eq(ds_catalog_ws_insert(&dup, &dup_err), DS_ALREADY_EXISTS);
    cr_assert(strstr(dup_err.message, "already exists") != NULL, "%s", dup_err.message);
    cr_assert_eq(table_rows("p1", "alpha"), 0, "a refused insert wrote nothing");

    cr_assert_eq(ds_catalog_ws_set_password("p1", "Alpha", "hash-new", &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_get("p1", "alpha", &got, &err), DS_OK);
    cr_assert_str_eq(got.password_hash, "hash-new");
    cr_assert_eq(ds_catalog_ws_get("p2", "alpha", &got, &err), DS_OK);
    cr_assert_str_eq(got.password_hash, "hash-b", "another project's workspace of the same id is untouched");
    cr_assert_eq(ds_catalog_ws_set_password("p1", "nope", "h", &err), DS_NOT_FOUND);

    cr_assert_eq(ds_catalog_ws_delete("p1", "Alpha", &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_get("p1", "alpha", &got, &err), DS_NOT_FOUND);
    cr_assert_eq(table_rows("p1", "Alpha"), 0);
    cr_assert_eq(ds_catalog_ws_get("p2", "ALPHA", &got, &err), DS_OK);
    /* Deleted, the id can be created again. */
    cr_assert_eq(ds_catalog_ws_insert(&dup, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_get("p1", "Alpha", &got, &err), DS_OK);
    cr_assert_str_eq(got.password_hash, "hash-x");
}

Test(ws_catalog, records_come_back_from_the_file_and_not_from_another_catalog)
{
    ds_err_t err = {0};
    ds_ws_rec_t a = rec_of("p1", "keep", "hash-keep"), gone = rec_of("p1", "gone", "hash-gone"), got;
    cr_assert_eq(ds_catalog_ws_insert(&a, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_insert(&gone, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_ws_set_password("p1", "keep", "hash-2", &err), DS_OK);
    cr_assert_eq(ds_catalog_ws_delete("p1", "gone", &err), DS_OK);
    ds_catalog_close();
    open_catalog(dir);
    cr_assert_eq(ds_catalog_ws_get("p1", "keep", &got, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(got.password_hash, "hash-2");
    cr_assert_eq(ds_catalog_ws_get("p1", "gone", &got, &err), DS_NOT_FOUND);

    /* Another data directory: nothing of the first catalog is known there. */
    char other[] = "/tmp/ds_ws_catalog2_XXXXXX";
    cr_assert_not_null(mkdtemp(other));
    ds_catalog_close();
    open_catalog(other);
    cr_assert_eq(ds_catalog_ws_get("p1", "keep", &got, &err), DS_NOT_FOUND);
    ds_catalog_close();
    char cmd[80];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", other);
    cr_assert_eq(system(cmd), 0);
    open_catalog(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ds_status_t trivial_query(void *conn, void *ud, ds_err_t *err)
{
    (void)ud;
    const char *params[] = {"x"};
    duckdb_result r;
    ds_status_t st = ds_ddb_run(conn, err, &r, "SELECT $1 = 'x'", 1, params);
    if (st == DS_OK)
        duckdb_destroy_result(&r);
    return st;
}

/*
 * Every workspace request reads its record: that must cost far less than
 * the cheapest catalog query (a prepared `SELECT $1 = 'x'`), with 200
 * workspaces in the catalog. Reading it through SQL cost several such
 * queries (0.5-1 ms a request).
 */
Test(ws_catalog, reading_a_record_costs_no_catalog_query)
{
    ds_err_t err = {0};
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "w%d", i);
        ds_ws_rec_t r = rec_of("p1", id, "h");
        cr_assert_eq(ds_catalog_ws_insert(&r, &err), DS_OK, "%s", err.message);
    }
    ds_ws_rec_t got;
    cr_assert_eq(ds_catalog_ws_get("p1", "W199", &got, &err), DS_OK);
    int n_sql = 200, n_get = 2000;
    double t0 = now_s();
    for (int i = 0; i < n_sql; i++)
        cr_assert_eq(ds_catalog_with_conn(trivial_query, NULL, &err), DS_OK, "%s", err.message);
    double per_sql = (now_s() - t0) / n_sql;
    t0 = now_s();
    for (int i = 0; i < n_get; i++) {
        snprintf(id, sizeof(id), "w%d", i % 200);
        cr_assert_eq(ds_catalog_ws_get("p1", id, &got, &err), DS_OK, "%s", err.message);
    }
    double per_get = (now_s() - t0) / n_get;
    cr_assert_lt(per_get * 5, per_sql, "a record read took %.1f us, a trivial catalog query %.1f us", per_get * 1e6,
                 per_sql * 1e6);
}
