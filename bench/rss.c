/*
 * rss.c - the server's resident memory through every phase.
 *
 * DESIGN
 * VmHWM (the kernel's own peak) cannot be reset, so one thread reads VmRSS
 * from /proc/<pid>/status every 20 ms and keeps the highest value since the
 * current phase began. A phase records RSS before it, its peak, and RSS
 * after it (read after a short pause, so threads that finish right after
 * the last answer are counted as gone).
 *
 * Other work on the machine skews every figure, so each phase also measures
 * the CPU time nobody in the benchmark used: the machine's busy time
 * (/proc/stat) minus this process's and the server's (/proc/<pid>/stat),
 * over the phase's wall time, in cores.
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Busy clock ticks of the whole machine. */
static int64_t machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    long long v[10] = {0};
    int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal (guest time is already in user) */
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

/* utime + stime of a process (all its threads), in clock ticks; 0 when unknown. */
static int64_t process_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    long long ut = 0, st = 0;
    /* After ") ": state(3) ... utime is field 14, stime 15. */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) != 2)
        return 0;
    return ut + st;
}

double bench_process_cpu_seconds(pid_t pid)
{
    return (double)process_ticks(pid) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t ours_ticks(void)
{
    pid_t srv = (pid_t)atomic_load(&watched_pid);
    return process_ticks(getpid()) + (srv > 0 ? process_ticks(srv) : 0);
}

void bench_cpu_begin(bench_cpu_t *c)
{
    c->t = bench_now();
    c->busy = machine_busy_ticks();
    c->ours = ours_ticks();
}

double bench_cpu_other(const bench_cpu_t *c)
{
    int64_t busy = machine_busy_ticks(), ours = ours_ticks();
    double secs = bench_now() - c->t;
    /* Clock ticks are 10 ms: over less than half a second the figure is mostly rounding. */
    if (busy < 0 || c->busy < 0 || secs < 0.5)
        return -1;
    double other = (double)((busy - c->busy) - (ours - c->ours)) / (double)sysconf(_SC_CLK_TCK) / secs;
    return other < 0 ? 0 : other;
}

void bench_mem_begin(bench_mem_t *m, const char *phase)
{
    memset(m, 0, sizeof(*m));
    m->phase = phase;
    m->idle = m->idle_first = -1;
    m->idle_open_projects = -1;
    m->before = bench_rss_read((pid_t)atomic_load(&watched_pid));
    bench_cpu_begin(&m->cpu);
    atomic_store(&peak_bytes, m->before);
}

bool bench_settle_add(bench_settle_t *s, int64_t rss)
{
    int cap = (int)(sizeof(s->seen) / sizeof(s->seen[0]));
    if (s->n == cap)
        memmove(s->seen, s->seen + 1, sizeof(s->seen) - sizeof(s->seen[0]));
    else
        s->n++;
    s->seen[s->n - 1] = rss;
    return s->n == cap && s->seen[0] > 0 && (double)(s->seen[0] - rss) < 0.01 * (double)s->seen[0];
}

int64_t bench_idle_settle(pid_t pid, int http_port, const char *key, int64_t *open_projects)
{
    bench_http_t *h = bench_http_open(http_port);
    bench_settle_t st = {0};
    int64_t rss = -1;
    for (int i = 0;; i++) {
        rss = bench_rss_read(pid);
        *open_projects = (int64_t)bench_metric(h, key, "duckstore_open_projects");
        bool settled = bench_settle_add(&st, rss);
        if ((*open_projects == 0 && settled) || i >= BENCH_IDLE_SETTLE_S)
            break;
        bench_sleep_ms(1000);
    }
    bench_http_close(&h);
    return rss;
}

void bench_mem_idle(bench_mem_t *m, bool quick, int http_port, const char *key)
{
    if (quick)
        return;
    pid_t pid = (pid_t)atomic_load(&watched_pid);
    bench_sleep_ms(BENCH_IDLE_DETACH_S * 1000 + 1500);
    m->idle_first = bench_rss_read(pid);
    /*
     * The reading above races the detach (the reaper looks once a second, and the server's own
     * background work after the phase restarts a project's idle clock) and the allocator's giving
     * back what the detach freed, which takes seconds: bench_idle_settle.
     */
    m->idle = bench_idle_settle(pid, http_port, key, &m->idle_open_projects);
    m->idle_after_s = bench_now() - m->end_t;
}

void bench_mem_end(bench_mem_t *m)
{
    bench_sleep_ms(300);
    m->end_t = bench_now();
    sample();
    m->after = bench_rss_read((pid_t)atomic_load(&watched_pid));
    m->peak = atomic_load(&peak_bytes);
    if (m->after > m->peak)
        m->peak = m->after;
    m->other_cores = bench_cpu_other(&m->cpu);
}
