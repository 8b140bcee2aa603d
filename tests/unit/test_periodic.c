/*
 * test_periodic.c - core/periodic.c: the task runs at its interval on its own
 * thread, a stop wakes a sleeping thread at once, and a long task sees the stop.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/periodic.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static atomic_int runs;
static void count(void *ud)
{
    (void)ud;
    atomic_fetch_add(&runs, 1);
}

Test(periodic, runs_at_its_interval_and_stops_at_once)
{
    ds_periodic_t *p = NULL;
    ds_err_t err = {0};
    atomic_store(&runs, 0);
    cr_assert_eq(ds_periodic_start(&p, "test-periodic", 1, count, NULL, &err), DS_OK, "%s", err.message);
    cr_assert_not(ds_periodic_stopping(p));
    double deadline = now_s() + 10;
    while (atomic_load(&runs) < 2 && now_s() < deadline)
        usleep(20 * 1000);
    cr_assert_geq(atomic_load(&runs), 2, "the task ran %d times in 10 s at a 1 s interval", atomic_load(&runs));
    /* A thread asleep for its next interval is woken, not waited for. */
    double t0 = now_s();
    ds_periodic_stop(&p);
    cr_assert_null(p);
    cr_assert_lt(now_s() - t0, 0.9, "stop waited for the interval");
    ds_periodic_stop(&p); /* again: nothing */
    cr_assert_not(ds_periodic_stopping(NULL), "no thread is not a stopping one");
}

static ds_periodic_t *long_p;
static atomic_int saw_stop;
static void long_task(void *ud)
{
    (void)ud;
    double deadline = now_s() + 10;
    while (!ds_periodic_stopping(long_p) && now_s() < deadline)
        usleep(10 * 1000);
    if (ds_periodic_stopping(long_p))
        atomic_store(&saw_stop, 1);
}

Test(periodic, a_long_task_sees_the_stop)
{
    ds_err_t err = {0};
    atomic_store(&saw_stop, 0);
    cr_assert_eq(ds_periodic_start(&long_p, "test-long", 1, long_task, NULL, &err), DS_OK, "%s", err.message);
    usleep(1300 * 1000); /* the task is running now */
    ds_periodic_t *p = long_p;
    ds_periodic_stop(&p);
    long_p = NULL;
    cr_assert_eq(atomic_load(&saw_stop), 1, "the running task did not see the stop");
}
