/*
 * metrics.c - Prometheus text metrics. See metrics.h.
 *
 * One mutex guards the counter table and the histogram; a request takes it once,
 * for a few dozen nanoseconds of work. Label values come from the network (the
 * HTTP method) or from code (route patterns, command names), so none is trusted:
 * - the method is kept only when it is one of KNOWN_METHODS, else "other";
 * - a route longer than the field or outside the route alphabet is "other";
 * - the table is fixed (MAX_SERIES); the last slot is kept for one overflow
 *   series (transport, "other", "other", status 0), so junk can never take a
 *   real request's slot nor grow the output;
 * - every label value is escaped at render time (backslash, quote, newline),
 *   as the Prometheus text format requires.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 1024

static const char *const known_methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "Execute"};
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

static const char *method_label(const char *method)
{
    for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
        if (method && strcmp(method, known_methods[i]) == 0)
            return known_methods[i];
    return "other";
}

/* Route patterns and command names: "/projects/{id}", "keboola.x.CreateTableCommand". */
static const char *route_label(const char *route, size_t max)
{
    if (!route || !*route || strlen(route) >= max)
        return "other";
    for (const char *c = route; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '/' ||
              *c == '{' || *c == '}' || *c == '.' || *c == '-' || *c == '_'))
            return "other";
    return route;
}

static series_t *find_series(const char *transport, const char *method, const char *route, int status)
{
    for (int i = 0; i < n_series; i++) {
        series_t *s = &series[i];
        if (s->status == status && strcmp(s->route, route) == 0 && strcmp(s->method, method) == 0 &&
            strcmp(s->transport, transport) == 0)
            return s;
    }
    return NULL;
}

static series_t *add_series(const char *transport, const char *method, const char *route, int status)
{
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
    transport = transport && (strcmp(transport, "http") == 0 || strcmp(transport, "grpc") == 0) ? transport : "other";
    method = method_label(method);
    route = route_label(route, sizeof(series[0].route));
    if (status < 100 || status > 599)
        status = 0;
    pthread_mutex_lock(&lock);
    series_t *s = find_series(transport, method, route, status);
    if (!s && n_series < MAX_SERIES - 1)
        s = add_series(transport, method, route, status);
    if (!s)
        s = find_series(transport, "other", "other", 0);
    if (!s)
        s = n_series < MAX_SERIES ? add_series(transport, "other", "other", 0) : &series[MAX_SERIES - 1];
    s->count++;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_bounds[b])
        b++;
    buckets[b]++;
    latency_sum += seconds;
    latency_count++;
    pthread_mutex_unlock(&lock);
}

/* Appends v as a label value: backslash, double quote and newline escaped. */
static void put_label(ds_buf_t *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            ds_buf_puts(out, "\\\\");
        else if (*v == '"')
            ds_buf_puts(out, "\\\"");
        else if (*v == '\n')
            ds_buf_puts(out, "\\n");
        else
            ds_buf_append(out, v, 1);
    }
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
    for (int i = 0; i < n_series; i++) {
        ds_buf_puts(out, "duckstore_http_requests_total{transport=\"");
        put_label(out, series[i].transport);
        ds_buf_puts(out, "\",method=\"");
        put_label(out, series[i].method);
        ds_buf_puts(out, "\",route=\"");
        put_label(out, series[i].route);
        ds_buf_printf(out, "\",status=\"%d\"} %llu\n", series[i].status, (unsigned long long)series[i].count);
    }
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
