/*
 * pool.c - fixed worker pool with per-group fairness. See pool.h.
 *
 * A group lives while it has queued or running jobs and is freed by the last
 * one out, so the table holds only groups in use. The run list holds each
 * group that has a queued job and fewer than per_group running, once
 * (in_run); a worker takes the head group's first job and, when that group can
 * run more, puts it back at the tail: round-robin between groups, FIFO within.
 * Invariant: g->in_run == (g->head != NULL && g->running < per_group).
 *
 * Idle workers wait on a stack, each on its own condition variable, and a
 * new job wakes the one that went idle last: back-to-back requests run on
 * the same warm thread (its stack and caches), and one wake-up wakes exactly
 * one thread. With one shared condition variable the kernel woke idle
 * workers in turn, so a light load visited every thread of the pool.
 */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 256

/* Every pool's jobs, process-wide (ds_pool_activity: the idle memory trim reads them). */
static atomic_int_fast64_t jobs_started, jobs_finished;

typedef struct job {
    struct job *next;
    ds_pool_job_cb fn;
    void *arg;
    double deadline; /* CLOCK_MONOTONIC seconds by which it must start; 0: none */
} job_t;

typedef struct group {
    struct group *next;     /* hash chain */
    struct group *run_next; /* run list */
    char *name;
    job_t *head, *tail;
    int queued; /* jobs in head..tail */
    int running;
    bool in_run;
} group_t;

/* A worker waiting for work (on its own stack while it waits). */
typedef struct idle {
    struct idle *next;
    pthread_cond_t cond;
    bool woken;
} idle_t;

struct ds_pool {
    pthread_mutex_t lock;
    idle_t *idle; /* waiting workers, the last one to go idle first */
    group_t *buckets[N_BUCKETS];
    group_t *run_head, *run_tail;
    int per_group;
    int workers;
    int64_t max_queued;       /* admission bounds (ds_pool_set_bounds); -1 = none */
    int64_t with_deadline;    /* queued jobs that have a deadline (ds_pool_expire looks when > 0) */
    int64_t group_max_queued;
    char *queue_setting, *share_setting;
    int n_threads;
    pthread_t *threads;
    bool stopping;
    int64_t queued;
    int64_t running;
};

static unsigned hash_name(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % N_BUCKETS;
}

static void run_push(ds_pool_t *p, group_t *g)
{
    g->in_run = true;
    g->run_next = NULL;
    if (p->run_tail)
        p->run_tail->run_next = g;
    else
        p->run_head = g;
    p->run_tail = g;
}

static group_t *run_pop(ds_pool_t *p)
{
    group_t *g = p->run_head;
    p->run_head = g->run_next;
    if (!p->run_head)
        p->run_tail = NULL;
    g->in_run = false;
    return g;
}

/* Wakes the worker that went idle last, if any is idle (p->lock held). */
static void wake_one(ds_pool_t *p)
{
    idle_t *w = p->idle;
    if (!w)
        return;
    p->idle = w->next;
    w->woken = true;
    pthread_cond_signal(&w->cond);
}

/* Wakes every idle worker (p->lock held): shutting down. */
static void wake_all(ds_pool_t *p)
{
    while (p->idle)
        wake_one(p);
}

static void group_free_if_unused(ds_pool_t *p, group_t *g)
{
    if (g->head || g->running || g->in_run)
        return;
    group_t **pp = &p->buckets[hash_name(g->name)];
    while (*pp != g)
        pp = &(*pp)->next;
    *pp = g->next;
    free(g->name);
    free(g);
}

static void *worker_main(void *arg)
{
    ds_pool_t *p = arg;
    idle_t self = {0};
    pthread_cond_init(&self.cond, NULL);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->run_head && !(p->stopping && p->queued == 0)) {
            self.woken = false;
            self.next = p->idle;
            p->idle = &self;
            while (!self.woken) /* only a waker takes self off the stack, then sets woken */
                pthread_cond_wait(&self.cond, &p->lock);
        }
        if (!p->run_head)
            break;
        group_t *g = run_pop(p);
        job_t *j = g->head;
        g->head = j->next;
        if (!g->head)
            g->tail = NULL;
        g->queued--;
        g->running++;
        p->queued--;
        p->running++;
        if (g->head && g->running < p->per_group) {
            /* The group may run another job now: wake a worker for it (submit did not, the group was queued). */
            run_push(p, g);
            wake_one(p);
        }
        atomic_fetch_add(&jobs_started, 1);
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        atomic_fetch_add(&jobs_finished, 1);
        pthread_mutex_lock(&p->lock);
        p->running--;
        g->running--;
        if (g->head && !g->in_run) {
            run_push(p, g);
            wake_one(p);
        }
        group_free_if_unused(p, g);
        if (p->stopping && p->queued == 0)
            wake_all(p);
    }
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&self.cond);
    return NULL;
}

ds_pool_t *ds_pool_create(int workers, int per_group, const char *name, ds_err_t *err)
{
    if (workers < 1)
        workers = 1;
    ds_pool_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->threads = calloc((size_t)workers, sizeof(pthread_t)))) {
        free(p);
        ds_err_set(err, DS_INTERNAL, "out of memory creating the %s pool", name);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->per_group = per_group < 1 ? 1 : per_group > workers ? workers : per_group;
    p->workers = workers;
    p->max_queued = p->group_max_queued = -1;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            ds_err_set(err, DS_INTERNAL, "cannot start worker thread %d of the %s pool", i + 1, name);
            ds_pool_destroy(&p);
            return NULL;
        }
        p->n_threads++;
        char tname[32];
        snprintf(tname, sizeof(tname), "%.9s-%d", name, i % 100000);
        tname[15] = '\0';
        pthread_setname_np(p->threads[i], tname);
    }
    return p;
}

static ds_status_t submit(ds_pool_t *p, const char *group, ds_pool_job_cb fn, void *arg, bool first, double deadline,
                          ds_err_t *err)
{
    job_t *j = malloc(sizeof(*j));
    if (!j)
        return ds_err_set(err, DS_INTERNAL, "out of memory queueing a request");
    *j = (job_t){.fn = fn, .arg = arg, .deadline = deadline > 0 ? deadline : 0};
    unsigned h = hash_name(group);
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        return ds_err_set(err, DS_UNAVAILABLE, "the server is shutting down");
    }
    group_t *g = p->buckets[h];
    while (g && strcmp(g->name, group) != 0)
        g = g->next;
    /* Jobs that would wait beyond the bounds are refused; one that can start now is always taken. */
    int64_t idle = p->workers - p->running;
    if (p->max_queued >= 0 && p->queued >= p->max_queued + (idle > 0 ? idle : 0)) {
        ds_status_t st = ds_err_set(err, DS_QUEUE_FULL,
                                    "too many requests in progress (%lld workers busy, %lld requests waiting, %s); "
                                    "retry later",
                                    (long long)p->running, (long long)p->queued, p->queue_setting);
        pthread_mutex_unlock(&p->lock);
        free(j);
        return st;
    }
    if (g && p->group_max_queued >= 0 && g->running + g->queued >= p->per_group + p->group_max_queued) {
        ds_status_t st = ds_err_set(err, DS_QUEUE_FULL,
                                    "this caller has too many requests in progress (%d running, %d waiting; its "
                                    "share is %d workers and %lld waiting, %s); retry later",
                                    g->running, g->queued, p->per_group, (long long)p->group_max_queued,
                                    p->share_setting);
        pthread_mutex_unlock(&p->lock);
        free(j);
        return st;
    }
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g || !(g->name = strdup(group))) {
            free(g);
            pthread_mutex_unlock(&p->lock);
            free(j);
            return ds_err_set(err, DS_INTERNAL, "out of memory queueing a request");
        }
        g->next = p->buckets[h];
        p->buckets[h] = g;
    }
    if (first) {
        j->next = g->head;
        g->head = j;
        if (!g->tail)
            g->tail = j;
    } else {
        if (g->tail)
            g->tail->next = j;
        else
            g->head = j;
        g->tail = j;
    }
    g->queued++;
    p->queued++;
    p->with_deadline += j->deadline > 0;
    if (!g->in_run && g->running < p->per_group) {
        run_push(p, g);
        wake_one(p);
    }
    pthread_mutex_unlock(&p->lock);
    return DS_OK;
}

ds_status_t ds_pool_submit(ds_pool_t *p, const char *group, ds_pool_job_cb fn, void *arg, ds_err_t *err)
{
    return submit(p, group, fn, arg, false, 0, err);
}

ds_status_t ds_pool_submit_by(ds_pool_t *p, const char *group, ds_pool_job_cb fn, void *arg, double deadline,
                              ds_err_t *err)
{
    return submit(p, group, fn, arg, false, deadline, err);
}

ds_status_t ds_pool_submit_first(ds_pool_t *p, const char *group, ds_pool_job_cb fn, void *arg, ds_err_t *err)
{
    return submit(p, group, fn, arg, true, 0, err);
}

void ds_pool_set_bounds(ds_pool_t *p, int64_t max_queued, int64_t group_max_queued, const char *queue_setting,
                        const char *share_setting)
{
    char *qs = strdup(queue_setting ? queue_setting : "the pool's queue");
    char *ss = strdup(share_setting ? share_setting : "the pool's share");
    pthread_mutex_lock(&p->lock);
    free(p->queue_setting);
    free(p->share_setting);
    p->queue_setting = qs;
    p->share_setting = ss;
    /* Without the names (out of memory) the bounds would print NULL: they are not set then. */
    p->max_queued = qs && ss ? max_queued : -1;
    p->group_max_queued = qs && ss ? group_max_queued : -1;
    pthread_mutex_unlock(&p->lock);
}

/* Unlinks job j (prev: the job before it, or NULL) from g. Caller holds p->lock. */
static void unlink_job(ds_pool_t *p, group_t *g, job_t *prev, job_t *j)
{
    if (prev)
        prev->next = j->next;
    else
        g->head = j->next;
    if (g->tail == j)
        g->tail = prev;
    g->queued--;
    p->queued--;
    p->with_deadline -= j->deadline > 0;
    if (!g->head && g->in_run) {
        /* Keep the invariant: a group with nothing queued is not in the run list. */
        group_t **pp = &p->run_head, *before = NULL;
        while (*pp != g) {
            before = *pp;
            pp = &(*pp)->run_next;
        }
        *pp = g->run_next;
        if (p->run_tail == g)
            p->run_tail = before;
        g->in_run = false;
    }
}

bool ds_pool_cancel(ds_pool_t *p, const char *group, void *arg)
{
    pthread_mutex_lock(&p->lock);
    group_t *g = p->buckets[hash_name(group)];
    while (g && strcmp(g->name, group) != 0)
        g = g->next;
    job_t *found = NULL;
    for (job_t *j = g ? g->head : NULL, *prev = NULL; j; prev = j, j = j->next)
        if (j->arg == arg) {
            unlink_job(p, g, prev, j);
            found = j;
            break;
        }
    if (found) {
        group_free_if_unused(p, g);
        if (p->stopping && p->queued == 0)
            wake_all(p);
    }
    pthread_mutex_unlock(&p->lock);
    free(found);
    return found != NULL;
}

/*
 * Takes out every queued job due at now (all of them when now < 0), in queue
 * order within each group, and returns them as a list; *n counts them.
 * Caller holds p->lock.
 */
static job_t *take_due(ds_pool_t *p, double now, int64_t *n)
{
    job_t *gone = NULL, **tail = &gone;
    *n = 0;
    for (int i = 0; i < N_BUCKETS && (now < 0 || p->with_deadline > 0); i++)
        for (group_t *g = p->buckets[i], *next; g; g = next) {
            next = g->next;
            for (job_t *j = g->head, *prev = NULL, *after; j; j = after) {
                after = j->next;
                if (now >= 0 && !(j->deadline > 0 && j->deadline <= now)) {
                    prev = j;
                    continue;
                }
                unlink_job(p, g, prev, j);
                j->next = NULL;
                *tail = j;
                tail = &j->next;
                (*n)++;
            }
            group_free_if_unused(p, g);
        }
    return gone;
}

/* Calls cb(arg) for each job of list (no lock held) instead of its job, and frees them. */
static void hand_back(job_t *list, ds_pool_job_cb cb)
{
    while (list) {
        job_t *j = list;
        list = j->next;
        cb(j->arg);
        free(j);
    }
}

void ds_pool_drop_queued(ds_pool_t *p, ds_pool_job_cb dropped)
{
    int64_t n;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    while (p->run_head)
        run_pop(p);
    job_t *all = take_due(p, -1, &n);
    wake_all(p);
    pthread_mutex_unlock(&p->lock);
    hand_back(all, dropped);
}

int64_t ds_pool_expire(ds_pool_t *p, double now, ds_pool_job_cb expired)
{
    int64_t n;
    pthread_mutex_lock(&p->lock);
    job_t *gone = take_due(p, now, &n);
    if (n && p->stopping && p->queued == 0)
        wake_all(p);
    pthread_mutex_unlock(&p->lock);
    hand_back(gone, expired);
    return n;
}

void ds_pool_shutdown(ds_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    wake_all(p);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    /* Workers leave only when nothing is queued, so every group is gone. */
    p->n_threads = 0;
}

void ds_pool_destroy(ds_pool_t **pp)
{
    if (!pp || !*pp)
        return;
    ds_pool_t *p = *pp;
    ds_pool_shutdown(p);
    pthread_mutex_destroy(&p->lock);
    free(p->queue_setting);
    free(p->share_setting);
    free(p->threads);
    free(p);
    *pp = NULL;
}

int64_t ds_pool_queued(ds_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t n = p->queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int64_t ds_pool_running(ds_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t n = p->running;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void ds_pool_activity(int64_t *started, int64_t *finished)
{
    *finished = atomic_load(&jobs_finished); /* first: started - finished (the jobs running) is never negative */
    *started = atomic_load(&jobs_started);
}
