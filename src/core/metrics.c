/*
 * metrics.c - Prometheus text metrics. See metrics.h.
 *
 * One mutex guards the counter table and the histogram; a request takes it once,
 * for a few dozen nanoseconds of work. The counter table is a fixed array: the
 * route set is bounded by the router's table, so it cannot overflow in practice;
 * if it ever did, further series are folded into route="other".
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 1024
#define MAX_GAUGES 32

typedef struct {
    char transport[8];
    char method[8];
    char route[96];
    int status;
    uint64_t count;
} series_t;

static const double bucket_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10,   30};
#define N_BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

typedef struct {
    const char *name;
    const char *help;
    ds_gauge_cb cb;
    void *ud;
} gauge_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series_t series[MAX_SERIES];
static int n_series;
static uint64_t buckets[N_BUCKETS + 1];
static double latency_sum;
static uint64_t latency_count;
static gauge_t gauges[MAX_GAUGES];
static int n_gauges;

void ds_metrics_init(void)
{
    pthread_mutex_lock(&lock);
    n_series = 0;
    memset(buckets, 0, sizeof(buckets));
    latency_sum = 0;
    latency_count = 0;
    pthread_mutex_unlock(&lock);
}

static series_t *find_series(const char *transport, const char *method, const char *route, int status)
{
    for (int i = 0; i < n_series; i++) {
        series_t *s = &series[i];
        if (s->status == status && strcmp(s->route, route) == 0 && strcmp(s->method, method) == 0 &&
            strcmp(s->transport, transport) == 0)
            return s;
    }
    if (n_series == MAX_SERIES)
        return NULL;
    series_t *s = &series[n_series++];
    snprintf(s->transport, sizeof(s->transport), "%s", transport);
    snprintf(s->method, sizeof(s->method), "%s", method);
    snprintf(s->route, sizeof(s->route), "%s", route);
    s->status = status;
    s->count = 0;
    return s;
}

void ds_metrics_request(const char *transport, const char *method, const char *route, int status,
                        double seconds)
{
    pthread_mutex_lock(&lock);
    series_t *s = find_series(transport, method, route, status);
    if (!s)
        s = find_series(transport, method, "other", status);
    if (s)
        s->count++;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_bounds[b])
        b++;
    buckets[b]++;
    latency_sum += seconds;
    latency_count++;
    pthread_mutex_unlock(&lock);
}

void ds_metrics_gauge(const char *name, const char *help, ds_gauge_cb cb, void *ud)
{
    pthread_mutex_lock(&lock);
    if (n_gauges < MAX_GAUGES)
        gauges[n_gauges++] = (gauge_t){name, help, cb, ud};
    pthread_mutex_unlock(&lock);
}

void ds_metrics_render(ds_buf_t *out)
{
    gauge_t g[MAX_GAUGES];
    int ng;
    pthread_mutex_lock(&lock);
    ds_buf_puts(out, "# HELP duckstore_http_requests_total Requests served, by transport, method, route and status.\n"
                     "# TYPE duckstore_http_requests_total counter\n");
    for (int i = 0; i < n_series; i++)
        ds_buf_printf(out,
                      "duckstore_http_requests_total{transport=\"%s\",method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                      series[i].transport, series[i].method, series[i].route, series[i].status,
                      (unsigned long long)series[i].count);
    ds_buf_puts(out, "# HELP duckstore_http_request_duration_seconds Request latency.\n"
                     "# TYPE duckstore_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < N_BUCKETS; b++) {
        cum += buckets[b];
        ds_buf_printf(out, "duckstore_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_bounds[b],
                      (unsigned long long)cum);
    }
    cum += buckets[N_BUCKETS];
    ds_buf_printf(out, "duckstore_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                  (unsigned long long)cum);
    ds_buf_printf(out, "duckstore_http_request_duration_seconds_sum %.6f\n", latency_sum);
    ds_buf_printf(out, "duckstore_http_request_duration_seconds_count %llu\n",
                  (unsigned long long)latency_count);
    ng = n_gauges;
    memcpy(g, gauges, sizeof(gauges));
    pthread_mutex_unlock(&lock);
    /* Gauge callbacks take their owners' locks; call them outside ours. */
    for (int i = 0; i < ng; i++)
        ds_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", g[i].name, g[i].help, g[i].name,
                      g[i].name, (long long)g[i].cb(g[i].ud));
}
