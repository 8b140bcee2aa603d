/*
 * test_sandbox.c - the workspace sandbox's configuration, seen from inside
 * the process (src/ws/sandbox.c): statements run with the service's own mode
 * (no statement allow-list), so what stops them is the DuckDB configuration
 * itself: external access off, extensions off, limits set, configuration
 * locked. Also the storage table function: no query may read storage without
 * the hook of the query the service runs, and rows handed over by a scan
 * reach the sandbox intact.
 */
#include "core/arena.h"
#include "core/log.h"
#include "ws/sandbox.h"

#include <criterion/criterion.h>
#include <duckdb.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/ds_ws_sandbox_XXXXXX";
static char path[512];
static ds_arena_t *arena;
static ds_sandbox_t *sb;

static void setup(void)
{
    ds_err_t err = {0};
    ds_log_set_level(DS_LOG_ERROR);
    cr_assert_not_null(mkdtemp(dir));
    ds_sandbox_limits_t lim = {.memory_limit_bytes = (int64_t)64 << 20, .threads = 2, .readers = 2, .max_open = 2,
                               .max_rows = 100, .timeout_s = 30};
    cr_assert_eq(ds_sandbox_start(dir, &lim, &err), DS_OK, "%s", err.message);
    snprintf(path, sizeof(path), "%s/workspaces/ws_p.w.duckdb", dir);
    cr_assert_eq(ds_sandbox_acquire("p/w", path, &sb, &err), DS_OK, "%s", err.message);
    arena = ds_arena_create();
}

static void teardown(void)
{
    ds_sandbox_release(&sb);
    ds_sandbox_stop();
    ds_arena_destroy(&arena);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static ds_status_t run(const char *sql, ds_sandbox_result_t *out, ds_err_t *err)
{
    ds_sandbox_query_t q = {.sql = sql, .mode = DS_SANDBOX_SERVICE};
    return ds_sandbox_query(sb, arena, &q, out, err);
}

static const char *one(const char *sql)
{
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(run(sql, &r, &err), DS_OK, "%s: %s", sql, err.message);
    cr_assert_eq(r.n_rows, 1);
    return r.rows[0][0];
}

TestSuite(sandbox, .init = setup, .fini = teardown);

Test(sandbox, opens_with_limits_and_locked_configuration)
{
    cr_assert_str_eq(one("SELECT current_setting('enable_external_access')::VARCHAR"), "false");
    cr_assert_str_eq(one("SELECT current_setting('lock_configuration')::VARCHAR"), "true");
    cr_assert_str_eq(one("SELECT current_setting('autoload_known_extensions')::VARCHAR"), "false");
    cr_assert_str_eq(one("SELECT current_setting('autoinstall_known_extensions')::VARCHAR"), "false");
    cr_assert_str_eq(one("SELECT current_setting('threads')::VARCHAR"), "2");
    cr_assert_str_eq(one("SELECT current_setting('memory_limit')"), "64.0 MiB");
}

Test(sandbox, configuration_cannot_be_loosened_even_without_the_allow_list)
{
    const char *refused[] = {
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET memory_limit = '8GB'",
        "SET threads = 32",
        "RESET memory_limit",
        "SET allowed_directories = ['/']",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "COPY (SELECT 1) TO '/tmp/ds_ws_sandbox_leak.csv'",
        "EXPORT DATABASE '/tmp/ds_ws_sandbox_export'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
        "SELECT getenv('HOME')",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ds_sandbox_result_t r;
        ds_err_t err = {0};
        cr_expect_eq(run(refused[i], &r, &err), DS_QUERY_FAILED, "not refused: %s", refused[i]);
    }
    char attach[700];
    snprintf(attach, sizeof(attach), "ATTACH '%s/other.duckdb' AS o", dir);
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_expect_eq(run(attach, &r, &err), DS_QUERY_FAILED);
    cr_expect_eq(access("/tmp/ds_ws_sandbox_leak.csv", F_OK), -1);
    cr_assert_str_eq(one("SELECT current_setting('memory_limit')"), "64.0 MiB");
}

Test(sandbox, storage_is_unreadable_without_the_running_query_hook)
{
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(run("SELECT * FROM ds_storage_scan('in.c-a', 't')", &r, &err), DS_QUERY_FAILED);
    cr_assert(strstr(err.message, "no access") != NULL, "%s", err.message);
}

/* A scan that hands over two chunks of (id BIGINT, name VARCHAR) made here. */
typedef struct {
    ds_be_scan_t pub;
    duckdb_logical_type types[2];
    const char *names[2];
    int sent;
    int *closed;
} fake_scan_t;

static ds_status_t fake_next(ds_be_scan_t *s, void **chunk, ds_err_t *err)
{
    fake_scan_t *f = (fake_scan_t *)s;
    (void)err;
    *chunk = NULL;
    if (f->sent == 2)
        return DS_OK;
    duckdb_data_chunk c = duckdb_create_data_chunk(f->types, 2);
    int64_t *ids = duckdb_vector_get_data(duckdb_data_chunk_get_vector(c, 0));
    duckdb_vector names = duckdb_data_chunk_get_vector(c, 1);
    for (int i = 0; i < 1000; i++) {
        char v[64];
        ids[i] = f->sent * 1000 + i;
        snprintf(v, sizeof(v), "a name long enough not to be inlined %d", f->sent * 1000 + i);
        duckdb_vector_assign_string_element(names, (idx_t)i, v);
    }
    duckdb_data_chunk_set_size(c, 1000);
    f->sent++;
    *chunk = c;
    return DS_OK;
}

static void fake_close(ds_be_scan_t *s)
{
    fake_scan_t *f = (fake_scan_t *)s;
    (*f->closed)++;
    duckdb_destroy_logical_type(&f->types[0]);
    duckdb_destroy_logical_type(&f->types[1]);
    free(f);
}

static ds_status_t fake_hook(void *ud, const char *project, const char *bucket, const char *table, const char *const *columns, size_t n,
                             int64_t spec, ds_be_scan_t **out, ds_err_t *err)
{
    (void)project;
    (void)columns;
    (void)n;
    (void)spec;
    if (strcmp(bucket, "in.c-a") != 0 || strcmp(table, "t") != 0)
        return ds_err_set(err, DS_NOT_FOUND, "table %s.%s not found", bucket, table);
    fake_scan_t *f = calloc(1, sizeof(*f));
    f->types[0] = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    f->types[1] = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    f->names[0] = "id";
    f->names[1] = "name";
    f->closed = ud;
    f->pub.n_columns = 2;
    f->pub.names = f->names;
    f->pub.types = (void **)f->types;
    f->pub.next = fake_next;
    f->pub.close = fake_close;
    *out = &f->pub;
    return DS_OK;
}

Test(sandbox, scan_rows_reach_the_sandbox_intact_and_every_scan_is_closed)
{
    int closed = 0;
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    ds_sandbox_query_t q = {.sql = "CREATE TABLE copy AS SELECT * FROM ds_storage_scan('in.c-a', 't')",
                            .mode = DS_SANDBOX_SERVICE,
                            .scan = fake_hook,
                            .scan_ud = &closed};
    cr_assert_eq(ds_sandbox_query(sb, arena, &q, &r, &err), DS_OK, "%s", err.message);
    cr_assert_eq(r.rows_affected, 2000);
    cr_assert_eq(closed, 1);
    cr_assert_str_eq(one("SELECT count(DISTINCT id)::VARCHAR || '/' || sum(id)::VARCHAR FROM copy"), "2000/1999000");
    cr_assert_str_eq(one("SELECT name FROM copy WHERE id = 1500"), "a name long enough not to be inlined 1500");
    q.sql = "SELECT * FROM ds_storage_scan('in.c-a', 'missing')";
    q.mode = DS_SANDBOX_USER;
    cr_assert_eq(ds_sandbox_query(sb, arena, &q, &r, &err), DS_QUERY_FAILED);
    cr_assert(strstr(err.message, "missing") != NULL, "%s", err.message);
}

/* A user's SELECT (the statement allow-list and the result cap apply). */
static ds_status_t user(const char *sql, ds_sandbox_result_t *out, ds_err_t *err)
{
    ds_sandbox_query_t q = {.sql = sql, .mode = DS_SANDBOX_USER};
    return ds_sandbox_query(sb, arena, &q, out, err);
}

Test(sandbox, user_select_values_are_the_text_duckdb_casts_them_to)
{
    /* Each value next to DuckDB's own CAST of it to VARCHAR; extremes, signs, scales and NULLs. */
    static const char *const values[] = {"true",
                                         "false",
                                         "NULL::BOOLEAN",
                                         "(-128)::TINYINT",
                                         "127::TINYINT",
                                         "(-32768)::SMALLINT",
                                         "(-2147483648)::INTEGER",
                                         "2147483647::INTEGER",
                                         "(-9223372036854775808)::BIGINT",
                                         "0::BIGINT",
                                         "255::UTINYINT",
                                         "65535::USMALLINT",
                                         "4294967295::UINTEGER",
                                         "18446744073709551615::UBIGINT",
                                         "(-170141183460469231731687303715884105728)::HUGEINT",
                                         "170141183460469231731687303715884105727::HUGEINT",
                                         "(-1)::HUGEINT",
                                         "340282366920938463463374607431768211455::UHUGEINT",
                                         "0::UHUGEINT",
                                         "(-0.05)::DECIMAL(4,2)",
                                         "99.99::DECIMAL(4,2)",
                                         "(-12345.678)::DECIMAL(9,3)",
                                         "0.000001::DECIMAL(18,6)",
                                         "(-123456789012.345678)::DECIMAL(18,6)",
                                         "12::DECIMAL(5,0)",
                                         "(-7)::DECIMAL(3,0)",
                                         "(-0.00000000000000000000000000000000000001)::DECIMAL(38,38)",
                                         "0.5::DECIMAL(4,4)",
                                         "0::DECIMAL(2,2)",
                                         "0::DECIMAL(5,4)",
                                         "99999999999999999999999999999999999999::DECIMAL(38,0)",
                                         "(-1234567890123456789.1234567890)::DECIMAL(38,10)",
                                         "NULL::DECIMAL(38,2)",
                                         "'text with ''quotes'', ünïcödé and a long tail past the inline size'",
                                         "''",
                                         "NULL::VARCHAR"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char sql[400];
        snprintf(sql, sizeof(sql), "SELECT %s AS v, CAST(%s AS VARCHAR) AS want", values[i], values[i]);
        ds_sandbox_result_t r;
        ds_err_t err = {0};
        cr_assert_eq(user(sql, &r, &err), DS_OK, "%s: %s", sql, err.message);
        cr_assert_eq(r.n_rows, 1);
        if (!r.rows[0][1])
            cr_expect_null(r.rows[0][0], "%s: %s instead of NULL", values[i], r.rows[0][0]);
        else
            cr_expect(r.rows[0][0] && strcmp(r.rows[0][0], r.rows[0][1]) == 0, "%s: \"%s\", DuckDB says \"%s\"",
                      values[i], r.rows[0][0] ? r.rows[0][0] : "(NULL)", r.rows[0][1]);
    }
    /* Names and types stay the statement's own. */
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(user("SELECT 1::BIGINT AS \"a b\", 2.50::DECIMAL(10,2) AS d, 'x' AS s", &r, &err), DS_OK, "%s",
                 err.message);
    cr_assert_str_eq(r.names[0], "a b");
    cr_assert_str_eq(r.types[0], "BIGINT");
    cr_assert_str_eq(r.types[1], "DECIMAL(10,2)");
    cr_assert_str_eq(r.types[2], "VARCHAR");
    cr_assert_str_eq(r.rows[0][1], "2.50");
}

Test(sandbox, user_select_of_other_types_is_text_too)
{
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(user("SELECT 1.5::DOUBLE AS d, DATE '2024-01-02' AS t, [1, NULL] AS l, {'a': 1} AS s, 7::BIGINT AS n",
                      &r, &err),
                 DS_OK, "%s", err.message);
    cr_assert_eq(r.n_columns, 5);
    cr_assert_str_eq(r.types[0], "DOUBLE");
    cr_assert_str_eq(r.types[1], "DATE");
    cr_assert_str_eq(r.rows[0][0], "1.5");
    cr_assert_str_eq(r.rows[0][1], "2024-01-02");
    cr_assert_str_eq(r.rows[0][2], "[1, NULL]");
    cr_assert_str_eq(r.rows[0][3], "{'a': 1}");
    cr_assert_str_eq(r.rows[0][4], "7");
}

Test(sandbox, user_select_stops_at_the_cap_and_says_so)
{
    /* setup's cap is 100 rows; more rows than one chunk of 2048 too. */
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(user("SELECT range AS i FROM range(100000)", &r, &err), DS_OK, "%s", err.message);
    cr_assert_eq(r.n_rows, 100);
    cr_assert(r.truncated);
    cr_assert_str_eq(r.rows[0][0], "0");
    cr_assert_str_eq(r.rows[99][0], "99");
    cr_assert_eq(user("SELECT range AS i FROM range(100)", &r, &err), DS_OK, "%s", err.message);
    cr_assert_eq(r.n_rows, 100);
    cr_assert_not(r.truncated);
    cr_assert_eq(user("SELECT range AS i FROM range(0)", &r, &err), DS_OK, "%s", err.message);
    cr_assert_eq(r.n_rows, 0);
    cr_assert_eq(r.n_columns, 1);
    cr_assert_not(r.truncated);
    ds_sandbox_query_t q = {.sql = "SELECT range AS i FROM range(10)", .mode = DS_SANDBOX_USER, .max_rows = 3};
    cr_assert_eq(ds_sandbox_query(sb, arena, &q, &r, &err), DS_OK, "%s", err.message);
    cr_assert_eq(r.n_rows, 3);
    cr_assert(r.truncated);
}

Test(sandbox, user_select_failing_while_it_runs_is_an_error)
{
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    cr_assert_eq(user("SELECT CAST('a' || range AS INTEGER) AS i FROM range(3)", &r, &err), DS_QUERY_FAILED);
    cr_assert(strstr(err.message, "Could not convert string 'a0'") != NULL, "%s", err.message);
    /* Past the first chunks: rows were streamed before the failure, and none of them is the answer. */
    cr_assert_eq(user("SELECT CAST(CASE WHEN range = 50000 THEN 'x' ELSE '1' END AS INTEGER) AS i FROM range(60000) "
                      "WHERE range % 1000 = 0",
                      &r, &err),
                 DS_QUERY_FAILED);
    cr_assert(strstr(err.message, "Could not convert string 'x'") != NULL, "%s", err.message);
}

Test(sandbox, user_select_over_storage_opens_one_scan)
{
    /* Binding the statement opens a scan; the statement is bound once, so one scan opens and closes. */
    int closed = 0;
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    ds_sandbox_query_t q = {.sql = "SELECT count(*) AS n, sum(id) AS s FROM ds_storage_scan('in.c-a', 't')",
                            .mode = DS_SANDBOX_USER,
                            .scan = fake_hook,
                            .scan_ud = &closed};
    cr_assert_eq(ds_sandbox_query(sb, arena, &q, &r, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(r.rows[0][0], "2000");
    cr_assert_str_eq(r.rows[0][1], "1999000");
    cr_assert_eq(closed, 1, "%d scans opened for one statement", closed);
}

Test(sandbox, user_select_column_names_are_not_leaked)
{
    /* DuckDB hands each column's name over as a copy; 1,000 queries with an 8,000-byte name leaked 8 MB. */
    char *sql = malloc(8100);
    cr_assert_not_null(sql);
    strcpy(sql, "SELECT 1 AS \"");
    memset(sql + strlen(sql), 'n', 8000);
    strcpy(sql + 13 + 8000, "\"");
    ds_sandbox_result_t r;
    ds_err_t err = {0};
    for (int i = 0; i < 20; i++) /* DuckDB's own caches settle first */
        cr_assert_eq(user(sql, &r, &err), DS_OK, "%s", err.message);
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 1000; i++) {
        ds_arena_destroy(&arena);
        arena = ds_arena_create();
        cr_assert_eq(user(sql, &r, &err), DS_OK, "%s", err.message);
        cr_assert_eq(strlen(r.names[0]), 8000);
    }
    size_t after = mallinfo2().uordblks;
    cr_assert_lt(after, before + ((size_t)2 << 20), "the heap grew by %zu bytes over 1,000 queries", after - before);
    /* The same through the answer written as a file of rows. */
    char file[600];
    snprintf(file, sizeof(file), "%s/rows.csv", dir);
    ds_sandbox_query_t q = {.sql = sql, .mode = DS_SANDBOX_USER};
    before = mallinfo2().uordblks;
    for (int i = 0; i < 1000; i++) {
        ds_arena_destroy(&arena);
        arena = ds_arena_create();
        cr_assert_eq(ds_sandbox_query_file(sb, arena, &q, DS_SANDBOX_CSV, file, &r, &err), DS_OK, "%s", err.message);
        cr_assert_eq(unlink(file), 0);
    }
    after = mallinfo2().uordblks;
    free(sql);
    cr_assert_lt(after, before + ((size_t)2 << 20), "the heap grew by %zu bytes over 1,000 file answers",
                 after - before);
}

Test(sandbox, user_mode_refuses_statement_types_and_several_statements)
{
    const char *refused[] = {"PRAGMA enable_profiling", "ATTACH ':memory:' AS m", "SET VARIABLE x = 1",
                             "SELECT 1; SELECT 2", "BEGIN TRANSACTION", "CHECKPOINT"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ds_sandbox_result_t r;
        ds_err_t err = {0};
        ds_sandbox_query_t q = {.sql = refused[i], .mode = DS_SANDBOX_USER};
        cr_expect_eq(ds_sandbox_query(sb, arena, &q, &r, &err), DS_QUERY_FAILED, "not refused: %s", refused[i]);
    }
    cr_assert_str_eq(one("SELECT current_setting('enable_profiling')::VARCHAR IS NULL OR true"), "true");
}

Test(sandbox, idle_instances_close_under_the_cap_and_keep_their_data)
{
    ds_err_t err = {0};
    ds_sandbox_result_t r;
    cr_assert_eq(run("CREATE TABLE keep AS SELECT 42 AS v", &r, &err), DS_OK, "%s", err.message);
    ds_sandbox_release(&sb);
    for (int i = 0; i < 3; i++) {
        char key[16], p[600];
        ds_sandbox_t *other = NULL;
        snprintf(key, sizeof(key), "p/o%d", i);
        snprintf(p, sizeof(p), "%s/workspaces/ws_p.o%d.duckdb", dir, i);
        cr_assert_eq(ds_sandbox_acquire(key, p, &other, &err), DS_OK, "%s", err.message);
        ds_sandbox_release(&other);
        cr_assert_leq(ds_sandbox_open_count(), 2);
    }
    cr_assert_eq(ds_sandbox_acquire("p/w", path, &sb, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(one("SELECT v::VARCHAR FROM keep"), "42");
    cr_assert_leq(ds_sandbox_open_count(), 2);
}
