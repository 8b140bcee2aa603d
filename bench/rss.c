/*
 * rss.c - the server's resident memory through every phase.
 *
 * DESIGN
 * VmHWM (the kernel's own peak) cannot be reset, so one thread reads VmRSS
 * from /proc/<pid>/status every 20 ms and keeps the highest value since the
 * current phase began. A phase records RSS before it, its peak, and RSS
 * after it (read after a short pause, so threads that finish right after
 * the last answer are counted as gone).
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define SAMPLE_MS 20

static pthread_t sampler;
static atomic_int watched_pid;
static atomic_llong peak_bytes;
static atomic_bool running;

int64_t bench_rss_read(pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int64_t kb = -1;
    while (fgets(line, sizeof(line), f)) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static void sample(void)
{
    int64_t v = bench_rss_read((pid_t)atomic_load(&watched_pid));
    long long cur = atomic_load(&peak_bytes);
    while (v > cur && !atomic_compare_exchange_weak(&peak_bytes, &cur, v))
        ;
}

static void *sample_loop(void *arg)
{
    (void)arg;
    while (atomic_load(&running)) {
        sample();
        bench_sleep_ms(SAMPLE_MS);
    }
    return NULL;
}

void bench_rss_start(void)
{
    atomic_store(&running, true);
    if (pthread_create(&sampler, NULL, sample_loop, NULL) != 0)
        bench_die("cannot start the RSS sampler");
}

void bench_rss_stop(void)
{
    if (!atomic_load(&running))
        return;
    atomic_store(&running, false);
    pthread_join(sampler, NULL);
}

void bench_rss_watch(pid_t pid)
{
    atomic_store(&watched_pid, (int)pid);
    atomic_store(&peak_bytes, 0);
}

void bench_mem_begin(bench_mem_t *m, const char *phase)
{
    memset(m, 0, sizeof(*m));
    m->phase = phase;
    m->before = bench_rss_read((pid_t)atomic_load(&watched_pid));
    m->load_start = bench_loadavg();
    atomic_store(&peak_bytes, m->before);
}

void bench_mem_end(bench_mem_t *m)
{
    bench_sleep_ms(300);
    sample();
    m->after = bench_rss_read((pid_t)atomic_load(&watched_pid));
    m->peak = atomic_load(&peak_bytes);
    if (m->after > m->peak)
        m->peak = m->after;
}
