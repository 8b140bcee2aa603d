/*
 * pool.h - a fixed pool of worker threads with per-group fairness.
 *
 * DESIGN
 * Jobs are submitted under a group name (a project id, or a label for a key).
 * Each group has its own FIFO; groups with runnable jobs take turns
 * (round-robin), so one busy group cannot push another's jobs behind its own.
 * A group runs at most `per_group` jobs at once: its further jobs wait in its
 * FIFO and hold no thread. Submitting never blocks; the caller bounds how many
 * jobs can be queued (the HTTP server has at most one per connection).
 *
 * Thread-safe. One mutex guards the groups and the run list.
 */
#ifndef DS_CORE_POOL_H
#define DS_CORE_POOL_H

#include "core/status.h"

#include <stdint.h>

typedef struct ds_pool ds_pool_t;
typedef void (*ds_pool_job_cb)(void *arg);

/*
 * Starts `workers` threads (named name-N); a group runs at most per_group jobs
 * at once (clamped to 1..workers). NULL with err set on failure.
 */
ds_pool_t *ds_pool_create(int workers, int per_group, const char *name, ds_err_t *err);
/*
 * Queues fn(arg) under group (copied). Never blocks. DS_INTERNAL only when out
 * of memory or the pool is stopping; then fn is not called.
 */
ds_status_t ds_pool_submit(ds_pool_t *pool, const char *group, ds_pool_job_cb fn, void *arg, ds_err_t *err);
/*
 * Refuses further submits (DS_UNAVAILABLE), runs every job already queued and
 * joins the workers. The pool stays valid for submit (which now fails) and
 * the counters until ds_pool_destroy. Idempotent.
 */
void ds_pool_shutdown(ds_pool_t *pool);
/* Shuts the pool down if it is not yet, then frees it; *pool set to NULL. Accepts NULL. */
void ds_pool_destroy(ds_pool_t **pool);
/* Jobs queued and not yet running. */
int64_t ds_pool_queued(ds_pool_t *pool);
/* Jobs running now. */
int64_t ds_pool_running(ds_pool_t *pool);

#endif
