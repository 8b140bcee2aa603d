/* test_pool.c - the fair worker pool: per-group cap, round-robin, FIFO, drain on destroy. */
#include "core/pool.h"
#include "core/memtrim.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* A job that blocks until the test opens its gate, recording the order it started in. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int started;
    atomic_int running_a; /* jobs of group "a" running now */
    atomic_int max_running_a;
    int order[64]; /* ids in the order jobs started */
    atomic_int n_order;
} gate_t;

typedef struct {
    gate_t *gate;
    int id;
    bool group_a;
} job_arg_t;

static void gated_job(void *arg)
{
    job_arg_t *j = arg;
    gate_t *g = j->gate;
    if (j->group_a) {
        int now = atomic_fetch_add(&g->running_a, 1) + 1;
        int prev = atomic_load(&g->max_running_a);
        while (now > prev && !atomic_compare_exchange_weak(&g->max_running_a, &prev, now))
            ;
    }
    g->order[atomic_fetch_add(&g->n_order, 1)] = j->id;
    atomic_fetch_add(&g->started, 1);
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    if (j->group_a)
        atomic_fetch_sub(&g->running_a, 1);
}

static void gate_init(gate_t *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void wait_started(gate_t *g, int n)
{
    for (int i = 0; i < 2000 && atomic_load(&g->started) < n; i++)
        usleep(1000);
}

Test(pool, one_group_never_holds_more_than_its_share)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(4, 2, "t", &err);
    cr_assert_not_null(p, "%s", err.message);
    gate_t g;
    gate_init(&g);
    job_arg_t a[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (job_arg_t){&g, i, true};
        cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[i], &err), DS_OK);
    }
    wait_started(&g, 2);
    usleep(50000);
    cr_assert_eq(atomic_load(&g.started), 2, "group a may run 2 jobs at once, ran %d", atomic_load(&g.started));
    cr_assert_eq(ds_pool_running(p), 2);
    cr_assert_eq(ds_pool_queued(p), 8);

    /* Another group still finds free workers while a's jobs wait. */
    job_arg_t b = {&g, 100, false};
    cr_assert_eq(ds_pool_submit(p, "b", gated_job, &b, &err), DS_OK);
    wait_started(&g, 3);
    cr_assert_eq(atomic_load(&g.started), 3, "group b's job did not start beside group a's");
    gate_open(&g);
    ds_pool_destroy(&p);
    cr_assert_null(p);
    cr_assert_eq(atomic_load(&g.started), 11, "destroy must run every queued job");
    cr_assert_leq(atomic_load(&g.max_running_a), 2);
    /* FIFO within a group is checked with one worker (groups_take_turns): with two, the start order races. */
}

Test(pool, groups_take_turns)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(1, 1, "t", &err);
    cr_assert_not_null(p);
    gate_t g;
    gate_init(&g);
    /* Block the only worker, then queue 4 of a and 2 of b: they must alternate once it frees. */
    job_arg_t blocker = {&g, 50, false};
    cr_assert_eq(ds_pool_submit(p, "x", gated_job, &blocker, &err), DS_OK);
    wait_started(&g, 1);
    job_arg_t a[4], b[2];
    for (int i = 0; i < 4; i++) {
        a[i] = (job_arg_t){&g, i, true};
        cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[i], &err), DS_OK);
    }
    for (int i = 0; i < 2; i++) {
        b[i] = (job_arg_t){&g, 10 + i, false};
        cr_assert_eq(ds_pool_submit(p, "b", gated_job, &b[i], &err), DS_OK);
    }
    gate_open(&g);
    ds_pool_destroy(&p);
    int want[] = {50, 0, 10, 1, 11, 2, 3};
    cr_assert_eq(atomic_load(&g.n_order), 7);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(g.order[i], want[i], "position %d: job %d ran, expected %d", i, g.order[i], want[i]);
}

Test(pool, share_is_clamped_and_destroy_accepts_null)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(2, 99, "t", &err);
    cr_assert_not_null(p);
    gate_t g;
    gate_init(&g);
    job_arg_t a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (job_arg_t){&g, i, true};
        cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[i], &err), DS_OK);
    }
    wait_started(&g, 2);
    cr_assert_eq(ds_pool_running(p), 2);
    gate_open(&g);
    ds_pool_destroy(&p);
    ds_pool_destroy(&p);
    ds_pool_destroy(NULL);
}

Test(pool, a_job_submitted_first_goes_before_its_group_but_takes_turns)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(1, 1, "t", &err);
    cr_assert_not_null(p);
    gate_t g;
    gate_init(&g);
    job_arg_t blocker = {&g, 50, false};
    cr_assert_eq(ds_pool_submit(p, "x", gated_job, &blocker, &err), DS_OK);
    wait_started(&g, 1);
    job_arg_t a[3], b = {&g, 10, false}, urgent = {&g, 99, true};
    for (int i = 0; i < 3; i++) {
        a[i] = (job_arg_t){&g, i, true};
        cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[i], &err), DS_OK);
    }
    cr_assert_eq(ds_pool_submit(p, "b", gated_job, &b, &err), DS_OK);
    cr_assert_eq(ds_pool_submit_first(p, "a", gated_job, &urgent, &err), DS_OK);
    gate_open(&g);
    ds_pool_destroy(&p);
    int want[] = {50, 99, 10, 0, 1, 2};
    cr_assert_eq(atomic_load(&g.n_order), 6);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(g.order[i], want[i], "position %d: job %d ran, expected %d", i, g.order[i], want[i]);
}

static atomic_int dropped_;
static void count_dropped(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dropped_, 1);
}

Test(pool, bounds_refuse_what_would_wait_beyond_them_and_queued_jobs_can_be_cancelled_or_dropped)
{
    ds_err_t err = {0};
    /* 2 workers, a group runs at most 1; 3 may wait in all, 1 per group. */
    ds_pool_t *p = ds_pool_create(2, 1, "t", &err);
    cr_assert_not_null(p);
    ds_pool_set_bounds(p, 3, 1, "QUEUE_SETTING", "SHARE_SETTING");
    gate_t g;
    gate_init(&g);
    job_arg_t a[3], b[2], c[2];
    for (int i = 0; i < 3; i++)
        a[i] = (job_arg_t){&g, i, true};
    for (int i = 0; i < 2; i++) {
        b[i] = (job_arg_t){&g, 10 + i, false};
        c[i] = (job_arg_t){&g, 20 + i, false};
    }
    cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[0], &err), DS_OK);
    cr_assert_eq(ds_pool_submit(p, "b", gated_job, &b[0], &err), DS_OK);
    wait_started(&g, 2);
    /* Group a: one running plus one waiting is its share; a third is refused naming the share. */
    cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[1], &err), DS_OK);
    cr_assert_eq(ds_pool_submit(p, "a", gated_job, &a[2], &err), DS_QUEUE_FULL);
    cr_assert(strstr(err.message, "SHARE_SETTING"), "%s", err.message);
    cr_assert_eq(ds_pool_submit(p, "b", gated_job, &b[1], &err), DS_OK);
    cr_assert_eq(ds_pool_submit(p, "c", gated_job, &c[0], &err), DS_OK);
    /* 3 wait, no worker is idle: the pool is full for every group. */
    cr_assert_eq(ds_pool_submit(p, "c", gated_job, &c[1], &err), DS_QUEUE_FULL);
    cr_assert(strstr(err.message, "QUEUE_SETTING"), "%s", err.message);
    cr_assert_eq(ds_pool_queued(p), 3);
    /* A queued job can be taken back (once); a running one cannot. */
    cr_assert(ds_pool_cancel(p, "b", &b[1]));
    cr_assert_not(ds_pool_cancel(p, "b", &b[1]));
    cr_assert_not(ds_pool_cancel(p, "a", &a[0]));
    cr_assert_eq(ds_pool_queued(p), 2);
    /* Shutting down: the waiting jobs are handed back, the running ones finish. */
    atomic_store(&dropped_, 0);
    ds_pool_drop_queued(p, count_dropped);
    cr_assert_eq(atomic_load(&dropped_), 2);
    cr_assert_eq(ds_pool_queued(p), 0);
    cr_assert_eq(ds_pool_submit(p, "d", gated_job, &c[1], &err), DS_UNAVAILABLE);
    gate_open(&g);
    ds_pool_destroy(&p);
    cr_assert_eq(atomic_load(&g.started), 2, "a dropped or cancelled job ran");
}

static job_arg_t *expired_[8];
static atomic_int n_expired_;
static void note_expired(void *arg) { expired_[atomic_fetch_add(&n_expired_, 1)] = arg; }

Test(pool, queued_jobs_past_their_deadline_are_handed_back_and_never_run)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(1, 1, "t", &err);
    cr_assert_not_null(p);
    gate_t g;
    gate_init(&g);
    job_arg_t a[5];
    for (int i = 0; i < 5; i++)
        a[i] = (job_arg_t){&g, i, false};
    /* The running job's deadline no longer matters: only queued jobs expire. */
    cr_assert_eq(ds_pool_submit_by(p, "x", gated_job, &a[0], 1.0, &err), DS_OK);
    wait_started(&g, 1);
    cr_assert_eq(ds_pool_submit_by(p, "x", gated_job, &a[1], 10.0, &err), DS_OK);
    cr_assert_eq(ds_pool_submit(p, "x", gated_job, &a[2], &err), DS_OK); /* no deadline */
    cr_assert_eq(ds_pool_submit_by(p, "y", gated_job, &a[3], 20.0, &err), DS_OK);
    cr_assert_eq(ds_pool_submit_by(p, "x", gated_job, &a[4], 5.0, &err), DS_OK);
    atomic_store(&n_expired_, 0);
    cr_assert_eq(ds_pool_expire(p, 4.9, note_expired), 0, "nothing is due before 5.0");
    cr_assert_eq(ds_pool_expire(p, 10.0, note_expired), 2, "the jobs due at 5.0 and 10.0");
    cr_assert_eq(atomic_load(&n_expired_), 2);
    cr_assert_eq(expired_[0], &a[1], "in queue order");
    cr_assert_eq(expired_[1], &a[4]);
    cr_assert_eq(ds_pool_queued(p), 2);
    cr_assert_not(ds_pool_cancel(p, "x", &a[1]), "an expired job is no longer queued");
    cr_assert_eq(ds_pool_expire(p, 1e9, note_expired), 1, "the job without a deadline stays");
    cr_assert_eq(expired_[2], &a[3]);
    gate_open(&g);
    ds_pool_destroy(&p);
    cr_assert_eq(atomic_load(&g.started), 2, "an expired job ran");
    cr_assert_eq(g.order[0], 0);
    cr_assert_eq(g.order[1], 2);
}

/* Records the thread a job ran on. */
typedef struct {
    pthread_t ran_on;
    atomic_int done;
} where_t;

static void where_job(void *arg)
{
    where_t *w = arg;
    w->ran_on = pthread_self();
    atomic_store(&w->done, 1);
}

Test(pool, a_light_load_runs_on_the_worker_that_went_idle_last)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(8, 8, "t", &err);
    cr_assert_not_null(p);
    usleep(50 * 1000); /* every worker is idle */
    pthread_t first = 0;
    for (int i = 0; i < 40; i++) {
        where_t w = {0};
        cr_assert_eq(ds_pool_submit(p, "g", where_job, &w, &err), DS_OK);
        while (!atomic_load(&w.done))
            usleep(100);
        /* running drops to 0 in the same locked step in which the worker goes back on the idle stack */
        while (ds_pool_running(p) != 0)
            usleep(100);
        if (i == 0)
            first = w.ran_on;
        cr_assert(pthread_equal(first, w.ran_on), "job %d ran on another worker than job 0", i);
    }
    ds_pool_destroy(&p);
}

/* The idle memory trim (core/memtrim.c) reads the pools' activity: no trim before any job, while one runs or in
 * the interval a job ended in; one once a whole interval passed without jobs; none again until another job ran.
 * Figures are read as differences, so the test holds whatever ran before it in the process. */
static int64_t trims_since(int64_t base) { return ds_memtrim_count() - base; }

static void wait_idle(void)
{
    int64_t started, finished;
    do {
        usleep(1000);
        ds_pool_activity(&started, &finished);
    } while (started != finished);
}

Test(pool, idle_trim_follows_the_jobs)
{
    ds_err_t err = {0};
    ds_pool_t *p = ds_pool_create(2, 2, "trim", &err);
    cr_assert_not_null(p);
    gate_t g;
    gate_init(&g);
    job_arg_t a = {.gate = &g, .id = 1};
    ds_memtrim_tick(); /* the look before: whatever ran earlier is taken as seen */
    ds_memtrim_tick();
    int64_t base = ds_memtrim_count(), started0, finished0;
    ds_pool_activity(&started0, &finished0);
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 0, "no job since the last look: nothing new to trim");

    cr_assert_eq(ds_pool_submit(p, "x", gated_job, &a, &err), DS_OK);
    while (atomic_load(&g.started) < 1)
        usleep(1000);
    int64_t started, finished;
    ds_pool_activity(&started, &finished);
    cr_assert(started - started0 == 1 && finished == finished0, "started %lld, finished %lld",
              (long long)(started - started0), (long long)(finished - finished0));
    ds_memtrim_tick();
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 0, "a job runs: no trim");
    gate_open(&g);
    wait_idle();
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 0, "the job ended since the last look: the workers did not rest a whole interval");
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 1, "a whole interval without jobs: one trim");
    ds_memtrim_tick();
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 1, "still resting: no second trim");

    /* A job that starts and ends between two looks: the next look waits, the one after trims. */
    job_arg_t b = {.gate = &g, .id = 2};
    cr_assert_eq(ds_pool_submit(p, "x", gated_job, &b, &err), DS_OK);
    while (atomic_load(&g.started) < 2)
        usleep(1000);
    wait_idle();
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 1, "a job ran since the last look: no trim yet");
    ds_memtrim_tick();
    cr_assert_eq(trims_since(base), 2, "then a whole interval without jobs: the second trim");
    ds_pool_destroy(&p);
}
