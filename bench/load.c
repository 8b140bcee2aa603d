/*
 * load.c - N clients sending requests back to back for a fixed time.
 *
 * DESIGN
 * Each client is a thread with its own connection (ops->open). It sends
 * three warm-up requests (connection setup, first-touch costs), waits at a
 * barrier until every client is ready, then loops until the main thread
 * says stop, timing each request. Latency percentiles come from every
 * sample of every client; throughput is completed requests over the time
 * from the start signal until the last client finished its last request.
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WARMUP 3

typedef struct {
    const bench_worker_ops_t *ops;
    void *arg;
    int idx;
    pthread_barrier_t *go;
    atomic_bool *stop;
    bench_lat_t lat;
    int64_t failures;
} worker_t;

static void *worker(void *p)
{
    worker_t *w = p;
    void *state = w->ops->open(w->arg, w->idx);
    for (int i = 0; i < WARMUP; i++)
        w->ops->request(state, w->arg);
    pthread_barrier_wait(w->go);
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        double t0 = bench_now();
        bool ok = w->ops->request(state, w->arg);
        double t1 = bench_now();
        if (ok)
            bench_lat_add(&w->lat, t1 - t0);
        else
            w->failures++;
    }
    w->ops->close(state);
    return NULL;
}

void bench_load_run(const bench_worker_ops_t *ops, void *arg, int clients, double seconds, bench_load_t *out)
{
    memset(out, 0, sizeof(*out));
    out->clients = clients;
    worker_t *ws = calloc((size_t)clients, sizeof(*ws));
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    if (!ws || !th)
        bench_die("out of memory");
    pthread_barrier_t go;
    atomic_bool stop = false;
    pthread_barrier_init(&go, NULL, (unsigned)clients + 1);
    for (int i = 0; i < clients; i++) {
        ws[i] = (worker_t){.ops = ops, .arg = arg, .idx = i, .go = &go, .stop = &stop};
        if (pthread_create(&th[i], NULL, worker, &ws[i]) != 0)
            bench_die("cannot start client thread %d", i);
    }
    pthread_barrier_wait(&go);
    double t0 = bench_now();
    bench_cpu_t cpu;
    bench_cpu_begin(&cpu);
    bench_sleep_ms((int)(seconds * 1000));
    atomic_store(&stop, true);
    bench_lat_t all = {0};
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        bench_lat_merge(&all, &ws[i].lat);
        out->failures += ws[i].failures;
        bench_lat_free(&ws[i].lat);
    }
    out->seconds = bench_now() - t0;
    out->other_cores = bench_cpu_other(&cpu);
    out->requests = (int64_t)all.n;
    out->rps = out->seconds > 0 ? (double)all.n / out->seconds : 0;
    out->p50_ms = bench_lat_pct(&all, 50) * 1000;
    out->p99_ms = bench_lat_pct(&all, 99) * 1000;
    bench_lat_free(&all);
    pthread_barrier_destroy(&go);
    free(ws);
    free(th);
}

void bench_load_seq(const bench_worker_ops_t *ops, void *arg, int n, bench_load_t *out)
{
    memset(out, 0, sizeof(*out));
    out->clients = 1;
    void *state = ops->open(arg, 0);
    ops->request(state, arg);
    bench_lat_t lat = {0};
    double t0 = bench_now();
    bench_cpu_t cpu;
    bench_cpu_begin(&cpu);
    for (int i = 0; i < n; i++) {
        double a = bench_now();
        bool ok = ops->request(state, arg);
        double b = bench_now();
        if (ok)
            bench_lat_add(&lat, b - a);
        else
            out->failures++;
    }
    out->seconds = bench_now() - t0;
    out->other_cores = bench_cpu_other(&cpu);
    ops->close(state);
    out->requests = (int64_t)lat.n;
    out->rps = out->seconds > 0 ? (double)lat.n / out->seconds : 0;
    out->p50_ms = bench_lat_pct(&lat, 50) * 1000;
    out->p99_ms = bench_lat_pct(&lat, 99) * 1000;
    bench_lat_free(&lat);
}
