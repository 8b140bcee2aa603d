/*
 * test_duckdb_compact.c - the DuckDB backend's project_compact against the
 * project state machine: a compaction gives up (changing nothing) when a call
 * keeps the project past its wait, calls that arrive during a compaction wait
 * and then succeed, sequences keep counting upward across it, the file shrinks
 * after a large table is dropped, and a leftover temporary file is removed at
 * the next start.
 */
#include "be_call_fixture.h"
#include "../../backends/duckdb/ddb.h"
#include "../../backends/duckdb/duckdb_backend.h"
#include "../../backends/duckdb/internal.h"
#include "backend/registry.h"
#include "core/arena.h"
#include "core/log.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const ds_backend_ops_t *ops;
static void *self;
static char dir[] = "/tmp/ds_ddb_compact_XXXXXX";

static void open_backend(void)
{
    static bool registry;
    ds_err_t err = {0};
    ds_log_set_level(getenv("DS_TEST_LOG") ? DS_LOG_DEBUG : DS_LOG_ERROR);
    if (!registry)
        cr_assert_eq(ds_registry_init(dir, (int64_t)512 << 20, 2, 8, &err), DS_OK, "%s", err.message);
    registry = true;
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs sql on project id; the first cell of its last result (as a number) into *out when out. */
static ds_status_t sql_on(const char *id, const char *sql, int64_t *out)
{
    call_t c;
    use_t u;
    call_init(&c, id);
    ds_status_t st = ddb_use_begin(self, &c.call, false, &u);
    if (st == DS_OK) {
        duckdb_result r;
        st = ds_ddb_run(u.conn, &c.err, &r, sql, 0, NULL);
        if (st == DS_OK) {
            if (out)
                *out = ds_ddb_int(&r, 0, 0);
            duckdb_destroy_result(&r);
        }
        ddb_use_end(&u);
    }
    ds_arena_destroy(&c.arena);
    return st;
}

static ds_status_t compact(const char *id, int64_t wait_ms, ds_be_compact_result_t *out)
{
    call_t c;
    call_init(&c, id);
    ds_be_compact_t in = {.wait_ms = wait_ms};
    ds_status_t st = ops->project_compact(self, &c.call, &in, out);
    if (st != DS_OK)
        cr_log_info("compaction: %s", c.err.message);
    ds_arena_destroy(&c.arena);
    return st;
}

static void create(const char *id)
{
    call_t c;
    call_init(&c, id);
    cr_assert_eq(ops->project_create(self, &c.call), DS_OK, "%s", c.err.message);
    ds_arena_destroy(&c.arena);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(duckdb_compact, gives_up_while_a_call_keeps_the_project)
{
    cr_assert_not_null(mkdtemp(dir));
    open_backend();
    create("a");
    cr_assert_eq(sql_on("a", "CREATE TABLE t AS SELECT range AS i FROM range(1000)", NULL), DS_OK);
    call_t c;
    use_t u;
    call_init(&c, "a");
    cr_assert_eq(ddb_use_begin(self, &c.call, false, &u), DS_OK);
    ds_be_compact_result_t r;
    double t0 = now_s();
    cr_assert_eq(compact("a", 300, &r), DS_UNAVAILABLE);
    cr_assert_lt(now_s() - t0, 2.0, "the compaction did not keep to its wait");
    ddb_use_end(&u);
    ds_arena_destroy(&c.arena);
    /* Nothing changed, the project serves calls, and a compaction now succeeds. */
    int64_t n = 0;
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM t", &n), DS_OK);
    cr_assert_eq(n, 1000);
    cr_assert_eq(compact("a", 300, &r), DS_OK);
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM t", &n), DS_OK);
    cr_assert_eq(n, 1000);
    ops->close(self);
    remove_dir();
}

Test(duckdb_compact, sequences_keep_counting_and_the_file_shrinks)
{
    cr_assert_not_null(mkdtemp(dir));
    open_backend();
    create("a");
    int64_t v = 0;
    cr_assert_eq(sql_on("a", "CREATE SEQUENCE s; SELECT max(nextval('s')) FROM range(41)", &v), DS_OK);
    cr_assert_eq(v, 41);
    cr_assert_eq(sql_on("a",
                        "CREATE TABLE keep AS SELECT range AS i FROM range(1000); "
                        "CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(400000); "
                        "CHECKPOINT; CREATE TABLE after AS SELECT range AS i, md5(range::VARCHAR) AS s FROM "
                        "range(20000); CHECKPOINT; DROP TABLE big; CHECKPOINT",
                        NULL),
                 DS_OK);
    ds_be_compact_result_t r;
    cr_assert_eq(compact("a", 1000, &r), DS_OK);
    cr_assert_lt(r.bytes_after, r.bytes_before / 2, "%lld -> %lld", (long long)r.bytes_before,
                 (long long)r.bytes_after);
    cr_assert_gt(r.free_bytes, 0);
    cr_assert_eq(sql_on("a", "SELECT nextval('s')", &v), DS_OK);
    cr_assert_gt(v, 41, "the sequence went back to %lld", (long long)v);
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM keep", &v), DS_OK);
    cr_assert_eq(v, 1000);
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM after", &v), DS_OK);
    cr_assert_eq(v, 20000);
    ops->close(self);
    remove_dir();
}

typedef struct {
    ds_status_t st;
    ds_be_compact_result_t r;
} compact_arg_t;

static void *compact_thread(void *p)
{
    compact_arg_t *a = p;
    a->st = compact("a", 5000, &a->r);
    return NULL;
}

Test(duckdb_compact, calls_wait_for_a_compaction_and_succeed)
{
    setenv("DUCKSTORE_TEST_HOOKS", "1", 1);
    setenv("DUCKSTORE_TEST_COMPACT_PAUSE_MS", "600", 1);
    cr_assert_not_null(mkdtemp(dir));
    open_backend();
    create("a");
    create("b");
    cr_assert_eq(sql_on("a", "CREATE TABLE t AS SELECT range AS i FROM range(5000)", NULL), DS_OK);
    compact_arg_t a = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, compact_thread, &a), 0);
    usleep(150000);
    /* Another project is not held up; a call for a waits, then sees all its rows. */
    double t0 = now_s();
    cr_assert_eq(sql_on("b", "SELECT 1", NULL), DS_OK);
    cr_assert_lt(now_s() - t0, 0.3);
    int64_t n = 0;
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM t", &n), DS_OK);
    cr_assert_gt(now_s() - t0, 0.3, "the call did not wait for the compaction");
    cr_assert_eq(n, 5000);
    pthread_join(t, NULL);
    cr_assert_eq(a.st, DS_OK);
    ops->close(self);
    remove_dir();
    unsetenv("DUCKSTORE_TEST_COMPACT_PAUSE_MS");
    unsetenv("DUCKSTORE_TEST_HOOKS");
}

Test(duckdb_compact, leftover_temporary_file_is_removed_at_start)
{
    cr_assert_not_null(mkdtemp(dir));
    open_backend();
    create("a");
    cr_assert_eq(sql_on("a", "CREATE TABLE t AS SELECT range AS i FROM range(10)", NULL), DS_OK);
    ops->close(self);
    char tmp[4300], tmpwal[4400];
    snprintf(tmp, sizeof(tmp), "%s/duckdb/project_a_main.duckdb.compact", dir);
    snprintf(tmpwal, sizeof(tmpwal), "%s.wal", tmp);
    const char *paths[] = {tmp, tmpwal};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "w");
        cr_assert_not_null(f);
        fputs("half a copy", f);
        fclose(f);
    }
    open_backend();
    struct stat sb;
    cr_assert_neq(stat(tmp, &sb), 0, "the leftover stayed");
    cr_assert_neq(stat(tmpwal, &sb), 0, "the leftover's WAL stayed");
    int64_t n = 0;
    cr_assert_eq(sql_on("a", "SELECT count(*) FROM t", &n), DS_OK);
    cr_assert_eq(n, 10);
    ops->close(self);
    remove_dir();
}
