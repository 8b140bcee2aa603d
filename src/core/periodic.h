/*
 * periodic.h - a background thread that runs one task at a fixed interval.
 *
 * The sweeps (expired Storage Files and snapshots, expired history) each own
 * one: the task runs every interval seconds (the first time one interval
 * after the start) on a monotonic clock, and a stop wakes the thread at once
 * and joins it; a long task looks at ds_periodic_stopping to end early.
 */
#ifndef DS_CORE_PERIODIC_H
#define DS_CORE_PERIODIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

typedef struct ds_periodic ds_periodic_t;

/* Starts the thread (named name, at most 15 characters) running task(ud) every interval_s (>= 1) seconds. */
ds_status_t ds_periodic_start(ds_periodic_t **out, const char *name, int64_t interval_s, void (*task)(void *ud),
                              void *ud, ds_err_t *err);
/* True once ds_periodic_stop began (NULL, no thread: false). Thread-safe. */
bool ds_periodic_stopping(const ds_periodic_t *p);
/* Wakes and joins the thread (a task running finishes first) and frees *p. Accepts NULL and *p NULL. */
void ds_periodic_stop(ds_periodic_t **p);

#endif
