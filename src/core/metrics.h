/*
 * metrics.h - Prometheus counters, one latency histogram and gauges.
 *
 * Request counters are keyed by (transport, method, route pattern, status): the
 * route is the pattern ("/projects/{id}"), never the raw path, so the set
 * stays bounded. Gauges are read from callbacks at render time. Thread-safe.
 */
#ifndef DS_CORE_METRICS_H
#define DS_CORE_METRICS_H

#include <stdint.h>

#include "core/buf.h"

typedef int64_t (*ds_gauge_cb)(void *ud);

void ds_metrics_init(void);
/* Counts one finished request and its latency. */
void ds_metrics_request(const char *transport, const char *method, const char *route, int status,
                        double seconds);
/* Registers a gauge read at render time. name and help must be static strings. */
void ds_metrics_gauge(const char *name, const char *help, ds_gauge_cb cb, void *ud);
/* Appends the Prometheus text exposition to out. */
void ds_metrics_render(ds_buf_t *out);

#endif
