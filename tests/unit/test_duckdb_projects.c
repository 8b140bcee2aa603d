/*
 * test_duckdb_projects.c - the DuckDB backend's project handles: the
 * open-project cap is soft (a call for another project never waits for a
 * pinned one, the surplus is detached on release), a drop refuses new pins at
 * once and waits only for its own project's, and drops, creates and uses of
 * the same ids from many threads never touch a freed entry or a removed file.
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
static char dir[] = "/tmp/ds_ddb_projects_XXXXXX";

static void open_backend(int64_t max_open)
{
    ds_err_t err = {0};
    ds_log_set_level(getenv("DS_TEST_LOG") ? DS_LOG_DEBUG : DS_LOG_ERROR);
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ds_registry_init(dir, (int64_t)512 << 20, 2, max_open, &err), DS_OK, "%s", err.message);
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
}

static void close_backend(void)
{
    ops->close(self);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static ds_status_t run(ds_status_t (*fn)(call_t *), const char *id)
{
    call_t c;
    call_init(&c, id);
    ds_status_t st = fn(&c);
    call_done(&c);
    return st;
}

static ds_status_t do_create(call_t *c) { return ops->project_create(self, &c->call); }
static ds_status_t do_drop(call_t *c) { return ops->project_drop(self, &c->call); }

static ds_status_t do_bucket(call_t *c)
{
    char name[32];
    snprintf(name, sizeof(name), "c-%ld", random() % 1000000);
    ds_be_bucket_t b = {.id = c->arena ? ds_arena_printf(c->arena, "in.%s", name) : NULL,
                        .stage = "in",
                        .name = name,
                        .created_at = 1};
    return ops->bucket_create(self, &c->call, &b);
}

static ds_status_t do_list(call_t *c)
{
    ds_be_bucket_t *items;
    size_t n;
    return ops->bucket_list(self, &c->call, &items, &n);
}

static void stats(int64_t *open, int64_t *peak)
{
    ds_be_runtime_stats_t rs = {0};
    ops->runtime_stats(self, &rs);
    *open = rs.open_projects;
    *peak = rs.open_projects_peak;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(duckdb_projects, cap_is_soft)
{
    open_backend(1);
    cr_assert_eq(run(do_create, "a"), DS_OK);
    cr_assert_eq(run(do_create, "b"), DS_OK);
    int64_t open, peak;
    stats(&open, &peak);
    cr_assert_eq(open, 1, "idle: the cap holds (%lld attached)", (long long)open);

    /* A call pins a; a call for b neither waits nor fails: b is attached over the cap. */
    call_t ca, cb;
    use_t ua, ub;
    call_init(&ca, "a");
    call_init(&cb, "b");
    cr_assert_eq(ddb_use_begin(self, &ca.call, false, &ua), DS_OK, "%s", ca.err.message);
    double t0 = now_s();
    cr_assert_eq(ddb_use_begin(self, &cb.call, false, &ub), DS_OK, "%s", cb.err.message);
    cr_assert_lt(now_s() - t0, 1.0, "b waited for a's pin");
    stats(&open, &peak);
    cr_assert_eq(open, 2);
    cr_assert_eq(peak, 2);
    /* Released, b is the idle surplus and goes; a stays while pinned. */
    ddb_use_end(&ub);
    stats(&open, &peak);
    cr_assert_eq(open, 1);
    ddb_use_end(&ua);
    stats(&open, &peak);
    cr_assert_eq(open, 1);
    cr_assert_eq(run(do_list, "a"), DS_OK);
    cr_assert_eq(run(do_list, "b"), DS_OK);
    call_done(&ca);
    call_done(&cb);
    close_backend();
}

typedef struct {
    const char *id;
    ds_status_t st;
    volatile int done;
} drop_arg_t;

static void *drop_thread(void *p)
{
    drop_arg_t *d = p;
    d->st = run(do_drop, d->id);
    d->done = 1;
    return NULL;
}

Test(duckdb_projects, drop_waits_only_for_its_own_pins)
{
    open_backend(4);
    cr_assert_eq(run(do_create, "a"), DS_OK);
    cr_assert_eq(run(do_create, "b"), DS_OK);
    call_t ca;
    use_t ua;
    call_init(&ca, "a");
    cr_assert_eq(ddb_use_begin(self, &ca.call, false, &ua), DS_OK);

    drop_arg_t d = {.id = "a"};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, drop_thread, &d), 0);
    usleep(200000);
    cr_assert_eq(d.done, 0, "the drop did not wait for the pinned call");
    /* While a's drop waits: a refuses new calls at once, b and c work. */
    double t0 = now_s();
    cr_assert_eq(run(do_list, "a"), DS_NOT_FOUND);
    cr_assert_eq(run(do_bucket, "b"), DS_OK);
    cr_assert_eq(run(do_create, "c"), DS_OK);
    cr_assert_eq(run(do_drop, "c"), DS_OK);
    cr_assert_eq(run(do_drop, "a"), DS_CONFLICT, "a second drop of a does not wait too");
    cr_assert_lt(now_s() - t0, 1.0);
    cr_assert_eq(d.done, 0);

    ddb_use_end(&ua);
    call_done(&ca);
    pthread_join(t, NULL);
    cr_assert_eq(d.st, DS_OK);
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/duckdb/project_a_main.duckdb", dir);
    cr_assert_neq(stat(path, &sb), 0, "a's file stayed");
    cr_assert_eq(run(do_list, "a"), DS_NOT_FOUND);
    /* A re-created a starts empty. */
    cr_assert_eq(run(do_create, "a"), DS_OK);
    call_t c;
    call_init(&c, "a");
    ds_be_bucket_t *items;
    size_t n = 99;
    cr_assert_eq(ops->bucket_list(self, &c.call, &items, &n), DS_OK);
    cr_assert_eq(n, 0);
    call_done(&c);
    close_backend();
}

/* ---- many threads on the same ids ---- */

static const char *race_ids[] = {"r0", "r1"};
static volatile int race_stop;
static volatile int race_bad;
static char race_msg[1200];

static void *race_thread(void *p)
{
    long n = (long)(intptr_t)p;
    unsigned seed = (unsigned)n;
    while (!race_stop) {
        const char *id = race_ids[rand_r(&seed) % 2];
        int op = (int)(rand_r(&seed) % 10);
        call_t c;
        call_init(&c, id);
        ds_status_t st = op == 0 ? do_create(&c) : op == 1 ? do_drop(&c) : op < 5 ? do_bucket(&c) : do_list(&c);
        /* A create of a project that exists, a use of one that does not, a drop of one being dropped. */
        if (st != DS_OK && st != DS_ALREADY_EXISTS && st != DS_NOT_FOUND && st != DS_CONFLICT && !race_bad) {
            race_bad = 1;
            snprintf(race_msg, sizeof(race_msg), "op %d on %s: %d %.1000s", op, id, (int)st, c.err.message);
        }
        call_done(&c);
    }
    return NULL;
}

Test(duckdb_projects, create_use_drop_race, .timeout = 60)
{
    open_backend(1);
    pthread_t t[6];
    for (long i = 0; i < 6; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race_thread, (void *)(intptr_t)i), 0);
    sleep(3);
    race_stop = 1;
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(race_bad, 0, "%s", race_msg);
    /* Each id either exists and answers, or is gone with its file. */
    for (int i = 0; i < 2; i++) {
        char path[4200];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/duckdb/project_%s_main.duckdb", dir, race_ids[i]);
        ds_status_t st = run(do_list, race_ids[i]);
        cr_assert_eq(st == DS_OK, stat(path, &sb) == 0, "%s: list %d", race_ids[i], (int)st);
    }
    int64_t open, peak;
    stats(&open, &peak);
    cr_assert_leq(open, 1, "idle: the cap holds");
    close_backend();
}

/* ---- the engine instance fails and is reopened while the same ids are created, used and dropped ---- */

static bool engine_failure(const call_t *c)
{
    return c->err.status == DS_UNAVAILABLE &&
           (ds_ddb_err_is_engine_failure(&c->err) || strstr(c->err.message, "being restarted") != NULL);
}

static void *race_with_failures_thread(void *p)
{
    long n = (long)(intptr_t)p;
    unsigned seed = (unsigned)n;
    while (!race_stop) {
        const char *id = race_ids[rand_r(&seed) % 2];
        int op = (int)(rand_r(&seed) % 10);
        call_t c;
        call_init(&c, id);
        ds_status_t st = op == 0 ? do_create(&c) : op == 1 ? do_drop(&c) : op < 5 ? do_bucket(&c) : do_list(&c);
        if (st != DS_OK && st != DS_ALREADY_EXISTS && st != DS_NOT_FOUND && st != DS_CONFLICT && !engine_failure(&c) &&
            !race_bad) {
            race_bad = 1;
            snprintf(race_msg, sizeof(race_msg), "op %d on %s: %d %.1000s", op, id, (int)st, c.err.message);
        }
        call_done(&c);
    }
    return NULL;
}

/*
 * Lists the buckets of "keep", which no thread creates or drops: a call that
 * reliably reaches the test hook and provokes each failure. The racing ids
 * churn (created and dropped by six threads), and a run where their calls all
 * met a create or a drop in progress never provoked one (seen with debug logs).
 */
static void *keep_user_thread(void *p)
{
    (void)p;
    while (!race_stop) {
        call_t c;
        call_init(&c, "keep");
        ds_status_t st = do_list(&c);
        if (st != DS_OK && !engine_failure(&c) && !race_bad) {
            race_bad = 1;
            snprintf(race_msg, sizeof(race_msg), "list on keep: %d %.1000s", (int)st, c.err.message);
        }
        call_done(&c);
        usleep(2000);
    }
    return NULL;
}

Test(duckdb_projects, engine_failures_during_create_use_drop_race, .timeout = 120)
{
    setenv("DUCKSTORE_TEST_HOOKS", "1", 1);
    open_backend(1);
    unsetenv("DUCKSTORE_TEST_HOOKS");
    /* A project with a bucket made before any failure keeps it. */
    cr_assert_eq(run(do_create, "keep"), DS_OK);
    cr_assert_eq(run(do_bucket, "keep"), DS_OK);
    char hooks[4200], trigger[4300];
    snprintf(hooks, sizeof(hooks), "%s/test-hooks", dir);
    snprintf(trigger, sizeof(trigger), "%s/engine-fatal", hooks);
    cr_assert_eq(mkdir(hooks, 0750), 0);
    race_stop = 0;
    race_bad = 0;
    pthread_t t[7];
    for (long i = 0; i < 6; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race_with_failures_thread, (void *)(intptr_t)i), 0);
    cr_assert_eq(pthread_create(&t[6], NULL, keep_user_thread, NULL), 0);
    for (int k = 0; k < 4; k++) {
        FILE *f = fopen(trigger, "w");
        cr_assert_not_null(f);
        fclose(f);
        usleep(800000);
    }
    race_stop = 1;
    for (int i = 0; i < 7; i++)
        pthread_join(t[i], NULL);
    unlink(trigger);
    cr_assert_eq(race_bad, 0, "%s", race_msg);
    ds_be_runtime_stats_t rs = {0};
    ops->runtime_stats(self, &rs);
    cr_assert_geq(rs.engine_restarts, 1, "the engine was never reopened");
    /* Each id either exists and answers, or is gone with its file; the kept project has its bucket. */
    for (int i = 0; i < 2; i++) {
        char path[4200];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/duckdb/project_%s_main.duckdb", dir, race_ids[i]);
        ds_status_t st = run(do_list, race_ids[i]);
        cr_assert_eq(st == DS_OK, stat(path, &sb) == 0, "%s: list %d", race_ids[i], (int)st);
    }
    call_t c;
    call_init(&c, "keep");
    ds_be_bucket_t *items;
    size_t n = 0;
    cr_assert_eq(ops->bucket_list(self, &c.call, &items, &n), DS_OK, "%s", c.err.message);
    cr_assert_eq(n, 1, "the bucket acknowledged before the failures is there");
    call_done(&c);
    close_backend();
}
