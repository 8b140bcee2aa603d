/*
 * test_duckdb_time_travel.c - stamped writes in the DuckDB backend's history
 * (backends/duckdb/history.c). An import whose appended rows all carry one
 * _timestamp above every _timestamp the table had is not copied into the
 * history (only the rows it replaced are); appended rows that cannot be told
 * apart by their _timestamp (a past one from the source, none, a current one
 * after a future one) are copied. Time travel restores every moment of such a
 * mix exactly, _timestamp included.
 */

#include "ddb_fixture.h"

#include <criterion/criterion.h>
#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void setup(void)
{
    ddb_fixture_open("ds_ddb_tt_");
    ds_be_column_t cols[] = {{"id", "INTEGER", false, NULL}, {"v", "VARCHAR", true, NULL}};
    const char *pk[] = {"id"};
    ds_be_table_t t = {.bucket = "in.c-a", .name = "t", .columns = cols, .n_columns = 2, .primary_key = pk,
                       .n_primary_key = 1, .created_at = 1};
    cr_assert_eq(ops->table_create(self, &call, &t), DS_OK, "%s", err.message);
}

static void teardown(void) { ddb_fixture_close(); }

/* Imports csv (header included) into in.c-a.t; returns the moment right after it. */
static int64_t import(const char *csv, bool incremental, ds_ts_mode_t ts)
{
    char path[4200];
    static int seq;
    snprintf(path, sizeof(path), "%s/in%d.csv", dir, seq++);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(csv, f);
    fclose(f);
    ds_import_t in = {.format = DS_FORMAT_CSV, .strategy = DS_STRATEGY_AUTO, .create_mode = DS_CREATE_NONE,
                      .incremental = incremental, .dedup = DS_DEDUP_UPDATE, .timestamp_mode = ts};
    strcpy(in.csv.delimiter, ",");
    strcpy(in.csv.enclosure, "\"");
    in.csv.header = true;
    const char *paths[] = {path};
    ds_import_result_t res;
    cr_assert_eq(ops->table_import(self, &call, "in.c-a", "t", &in, paths, 1, &res), DS_OK, "%s", err.message);
    usleep(2000);
    int64_t t = now_us();
    usleep(2000);
    return t;
}

static void travel(int64_t at, const char *dst)
{
    ds_be_time_travel_t tt = {.bucket = "in.c-a", .table = "t", .at_us = at, .dst_bucket = "in.c-a", .dst_table = dst};
    int64_t rows;
    cr_assert_eq(ops->table_time_travel(self, &call, &tt, &rows), DS_OK, "%s", err.message);
}

static duckdb_database db;
static duckdb_connection conn;

static void db_open(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/duckdb/project_p_main.duckdb", dir);
    cr_assert_eq(duckdb_open(path, &db), DuckDBSuccess);
    cr_assert_eq(duckdb_connect(db, &conn), DuckDBSuccess);
}

static void db_close(void)
{
    duckdb_disconnect(&conn);
    duckdb_close(&db);
}

static char *one(const char *sql)
{
    duckdb_result r;
    cr_assert_eq(duckdb_query(conn, sql, &r), DuckDBSuccess, "%s: %s", sql, duckdb_result_error(&r));
    char *v = duckdb_value_varchar(&r, 0, 0);
    duckdb_destroy_result(&r);
    return v;
}

static void expect_one(const char *sql, const char *want)
{
    char *got = one(sql);
    cr_assert_str_eq(got ? got : "(null)", want, "%s: got %s", sql, got ? got : "(null)");
    duckdb_free(got);
}

/* Restores in.c-a.t as it was at t[1..n] into r1..rn, closes the backend and opens its file here. */
static void travel_all(const int64_t *t, int n)
{
    char name[8];
    for (int k = 1; k <= n; k++) {
        snprintf(name, sizeof(name), "r%d", k);
        travel(t[k], name);
    }
    ops->close(self);
    self = NULL;
    db_open();
}

/* r<k> holds the rows want names: "<id><v>" in id order, space-separated. */
static void expect_values(int k, const char *want)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT string_agg(id || v, ' ' ORDER BY id) FROM \"in.c-a\".r%d", k);
    expect_one(sql, want);
}

TestSuite(duckdb_time_travel, .init = setup, .fini = teardown);

Test(duckdb_time_travel, stamped_writes_are_not_copied_and_every_moment_restores_exactly)
{
    int64_t t[7];
    /* 1: the first rows (a full write of an empty table). */
    t[1] = import("id,v\n1,a\n2,b\n3,c\n", false, DS_TS_CURRENT_TIME);
    /* 2: an upsert at the current time: stamped (3 appended, 1 of them replacing id 3). */
    t[2] = import("id,v\n3,C\n4,d\n5,e\n", true, DS_TS_CURRENT_TIME);
    /* 3: a _timestamp from the source, in the past: below the bound, so copied. */
    t[3] = import("id,v,_timestamp\n5,E,2020-01-01 00:00:00\n6,f,2020-01-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    /* 4: no _timestamp at all: copied. */
    t[4] = import("id,v\n7,g\n", true, DS_TS_NONE);
    /* 5: one future _timestamp from the source: stamped. */
    t[5] = import("id,v,_timestamp\n8,h,2099-01-01 00:00:00\n2,B,2099-01-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    /* 6: the current time, now below that future one: copied. */
    t[6] = import("id,v\n9,i\n1,A\n", true, DS_TS_CURRENT_TIME);
    travel_all(t, 6);
    /* The generation of t (its first one). */
    char *hid = one("SELECT min(hid) FROM _ds.hist_tables WHERE name = 't'");
    char sql[1024];
    /* Per write, in order: added rows kept in the history, removed rows kept, stamped or not. */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(w.added || '/' || coalesce(h.a, 0) || '/' || coalesce(h.r, 0) || '/' || "
             "(w.stamp_lo IS NOT NULL), ' ' ORDER BY w.ver) FROM _ds.hist_writes w LEFT JOIN (SELECT _h_ver, "
             "count(*) FILTER (WHERE _h_add) AS a, count(*) FILTER (WHERE NOT _h_add) AS r FROM _ds.h_%s GROUP BY "
             "_h_ver) h ON h._h_ver = w.ver WHERE w.hid = %s",
             hid, hid);
    /*
     * The table's registration (nothing), the full write (its rows are never
     * needed), then: stamped 3 appended with none copied and 1 replaced; past
     * 2 copied, 1 replaced; none 1 copied; future stamped 2 with none copied
     * and 1 replaced; current after the future 2 copied, 1 replaced.
     */
    expect_one(sql, "0/0/0/false 0/0/0/false 3/0/1/true 2/2/1/false 1/1/0/false 2/0/1/true 2/2/1/false");

    /* Every moment's values... */
    const char *want[] = {NULL,
                          "1a 2b 3c",
                          "1a 2b 3C 4d 5e",
                          "1a 2b 3C 4d 5E 6f",
                          "1a 2b 3C 4d 5E 6f 7g",
                          "1a 2B 3C 4d 5E 6f 7g 8h",
                          "1A 2B 3C 4d 5E 6f 7g 8h 9i"};
    for (int k = 1; k <= 6; k++) {
        expect_values(k, want[k]);
        /* ...and each row's _timestamp is one the row really had: the table's now or a replaced row's. */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM (SELECT id, v, _timestamp FROM \"in.c-a\".r%d EXCEPT ALL SELECT * FROM "
                 "(SELECT id, v, _timestamp FROM \"in.c-a\".t UNION ALL SELECT c0, c1, _timestamp FROM _ds.h_%s "
                 "WHERE NOT _h_add))",
                 k, hid);
        expect_one(sql, "0");
    }
    /* The source's own and the missing _timestamp came back as they were. */
    expect_one("SELECT CAST(_timestamp AS VARCHAR) FROM \"in.c-a\".r3 WHERE id = 6", "2020-01-01 00:00:00");
    expect_one("SELECT count(*) FROM \"in.c-a\".r4 WHERE _timestamp IS NULL", "1");
    expect_one("SELECT CAST(_timestamp AS VARCHAR) FROM \"in.c-a\".r5 WHERE id = 2", "2099-01-01 00:00:00");
    duckdb_free(hid);
    db_close();
}

/*
 * A file written before the bounds were kept (no ts_hi / stamp_lo) gets them
 * on attach; its first write then takes the bound from the table and from the
 * rows its history holds (a row already removed can carry the largest
 * _timestamp), so a write below that bound is copied, one above is stamped,
 * and every moment, before and after, restores exactly.
 */
Test(duckdb_time_travel, older_file_takes_its_bound_from_the_table_and_the_history)
{
    int64_t t[6];
    t[1] = import("id,v,_timestamp\n1,a,2020-01-01 00:00:00\n", false, DS_TS_FROM_SOURCE);
    t[2] = import("id,v,_timestamp\n2,B,2099-01-01 00:00:00\n3,c,2098-01-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    t[3] = import("id,v,_timestamp\n2,BB,2020-06-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    ops->close(self);
    self = NULL;
    db_open();
    expect_one("SELECT count(*) FROM _ds.hist_writes WHERE stamp_lo IS NOT NULL", "0");
    expect_one("SELECT count(*) FROM \"in.c-a\".t WHERE _timestamp >= '2099-01-01'", "0");
    const char *old_schema[] = {"ALTER TABLE _ds.hist_writes DROP COLUMN ts_hi",
                                "ALTER TABLE _ds.hist_writes DROP COLUMN stamp_lo", "CHECKPOINT"};
    for (size_t i = 0; i < sizeof(old_schema) / sizeof(old_schema[0]); i++)
        free(one(old_schema[i]));
    db_close();
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    /* Below the removed row's 2099: copied. Then one above everything: stamped. */
    t[4] = import("id,v,_timestamp\n4,d,2098-06-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    t[5] = import("id,v,_timestamp\n5,e,2100-01-01 00:00:00\n1,A,2100-01-01 00:00:00\n", true, DS_TS_FROM_SOURCE);
    travel_all(t, 5);
    expect_one("SELECT string_agg(CAST(stamp_lo IS NOT NULL AS VARCHAR), ' ' ORDER BY ver) FROM _ds.hist_writes w "
               "WHERE hid = (SELECT min(hid) FROM _ds.hist_tables WHERE name = 't') AND ts_hi IS NOT NULL",
               "false true");
    const char *want[] = {NULL, "1a", "1a 2B 3c", "1a 2BB 3c", "1a 2BB 3c 4d", "1A 2BB 3c 4d 5e"};
    for (int k = 1; k <= 5; k++)
        expect_values(k, want[k]);
    expect_one("SELECT CAST(_timestamp AS VARCHAR) FROM \"in.c-a\".r2 WHERE id = 2", "2099-01-01 00:00:00");
    db_close();
}

/*
 * 'infinity' and '-infinity' are _timestamps DuckDB accepts (a source may
 * send them) and epoch_us() gives NULL for: the bound must treat them as the
 * largest and the smallest, so rows carrying them are kept at every moment
 * they existed, and nothing is stamped above an infinite one.
 */
Test(duckdb_time_travel, infinite_timestamps_keep_their_rows)
{
    int64_t t[5];
    t[1] = import("id,v,_timestamp\n1,a,2025-01-01 00:00:00\n2,b,-infinity\n", false, DS_TS_FROM_SOURCE);
    /* Stamped (current time, above 2025). */
    t[2] = import("id,v\n3,c\n", true, DS_TS_CURRENT_TIME);
    /* An infinite _timestamp: copied, and the bound becomes infinite. */
    t[3] = import("id,v,_timestamp\n4,d,infinity\n", true, DS_TS_FROM_SOURCE);
    /* Nothing is above it: copied. */
    t[4] = import("id,v\n5,e\n1,A\n", true, DS_TS_CURRENT_TIME);
    travel_all(t, 4);
    expect_one("SELECT string_agg(CAST(stamp_lo IS NOT NULL AS VARCHAR), ' ' ORDER BY ver) FROM _ds.hist_writes w "
               "WHERE hid = (SELECT min(hid) FROM _ds.hist_tables WHERE name = 't') AND ver > (SELECT min(ver) FROM "
               "_ds.hist_writes WHERE hid = w.hid)",
               "false true false false");
    const char *want[] = {NULL, "1a 2b", "1a 2b 3c", "1a 2b 3c 4d", "1A 2b 3c 4d 5e"};
    for (int k = 1; k <= 4; k++)
        expect_values(k, want[k]);
    expect_one("SELECT CAST(_timestamp AS VARCHAR) FROM \"in.c-a\".r3 WHERE id = 4", "infinity");
    expect_one("SELECT CAST(_timestamp AS VARCHAR) FROM \"in.c-a\".r1 WHERE id = 2", "-infinity");
    db_close();
}
