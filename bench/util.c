/*
 * util.c - small helpers of the benchmark: time, dying with a message,
 * files, free ports, latency percentiles, the machine's description.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    bench_server_kill_all();
    exit(1);
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    fputs("  ... ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        bench_die("out of memory (%zu bytes)", n);
    return p;
}

void *bench_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        bench_die("out of memory (%zu bytes)", n);
    return q;
}

char *bench_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        bench_die("out of memory");
    return p;
}

char *bench_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        bench_die("out of memory");
    return s;
}

void bench_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            bench_die("cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        bench_die("cannot create %s: %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bench_rmtree(const char *path)
{
    if (bench_file_exists(path))
        nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* Copies src to dst in 1 MiB writes, with fdatasync at the end when sync; returns the seconds it took. */
double bench_copy_file(const char *src, const char *dst, bool sync)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        bench_die("cannot read %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        bench_die("cannot create %s: %s", dst, strerror(errno));
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf)
        bench_die("out of memory");
    double t0 = bench_now();
    ssize_t n;
    while ((n = read(in, buf, cap)) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w <= 0 && !(w < 0 && errno == EINTR))
                bench_die("cannot write %s: %s", dst, w < 0 ? strerror(errno) : "nothing written");
            off += w > 0 ? w : 0;
        }
    if (n < 0 || (sync && fdatasync(out) != 0))
        bench_die("cannot copy %s to %s: %s", src, dst, strerror(errno));
    double secs = bench_now() - t0;
    free(buf);
    close(in);
    if (close(out) != 0)
        bench_die("cannot write %s: %s", dst, strerror(errno));
    return secs;
}

/* The disk's side of an upload: src copied to dst and fdatasync'ed, as the server does before it answers. */
double bench_disk_copy(const char *src, const char *dst)
{
    double secs = bench_copy_file(src, dst, true);
    unlink(dst);
    return secs;
}

int64_t bench_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

void bench_remove_db(const char *path)
{
    char *wal = bench_fmt("%s.wal", path);
    remove(path);
    remove(wal);
    free(wal);
}

bool bench_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

char *bench_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = bench_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = bench_xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t sl = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &sl) != 0)
        bench_die("cannot find a free loopback port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- latencies ---- */

void bench_lat_add(bench_lat_t *l, double s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = bench_xrealloc(l->v, l->cap * sizeof(double));
    }
    l->v[l->n++] = s;
}

void bench_lat_merge(bench_lat_t *dst, const bench_lat_t *src)
{
    for (size_t i = 0; i < src->n; i++)
        bench_lat_add(dst, src->v[i]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_lat_pct(bench_lat_t *l, double p)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof(double), cmp_double);
    /* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
    size_t rank = (size_t)((p / 100.0) * (double)l->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return l->v[rank - 1];
}

void bench_lat_free(bench_lat_t *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ---- the machine ---- */

void bench_machine(bench_machine_t *m)
{
    memset(m, 0, sizeof(*m));
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    m->cores = n > 0 ? (int)n : 1;
    m->memory_bytes = (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
    snprintf(m->cpu_model, sizeof(m->cpu_model), "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) != 0)
                continue;
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(m->cpu_model, sizeof(m->cpu_model), "%s", colon);
            break;
        }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%.20s %.100s", u.sysname, u.release);
}

double bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

double bench_ratio(double duckstore_speed, double limit_speed)
{
    if (duckstore_speed <= 0 || limit_speed <= 0)
        return 0;
    return duckstore_speed / limit_speed;
}
