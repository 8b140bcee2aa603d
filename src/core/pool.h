/*
 * pool.h - a fixed pool of worker threads with per-group fairness.
 *
 * DESIGN
 * Jobs are submitted under a group name (a project id, or a label for a key).
 * Each group has its own FIFO; groups with runnable jobs take turns
 * (round-robin), so one busy group cannot push another's jobs behind its own.
 * A group runs at most `per_group` jobs at once: its further jobs wait in its
 * FIFO and hold no thread. Submitting never blocks. Without bounds the caller
 * limits how many jobs can be queued (the HTTP server has at most one per
 * connection); with ds_pool_set_bounds the pool refuses (DS_QUEUE_FULL) what
 * would wait beyond a total and a per-group count (gRPC). REST and gRPC each
 * run one instance. A job may carry a deadline: one still queued when it
 * passes is handed back by ds_pool_expire (REST: Prefer: wait) and never runs.
 *
 * Thread-safe. One mutex guards the groups and the run list.
 */
#ifndef DS_CORE_POOL_H
#define DS_CORE_POOL_H

#include "core/status.h"

#include <stdbool.h>
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
 * As ds_pool_submit, for a job that is of no use once deadline (CLOCK_MONOTONIC
 * seconds; 0: none) has passed: ds_pool_expire takes it out if it has not
 * started by then.
 */
ds_status_t ds_pool_submit_by(ds_pool_t *pool, const char *group, ds_pool_job_cb fn, void *arg, double deadline,
                              ds_err_t *err);
/*
 * As ds_pool_submit, but the job goes first in its group's FIFO (it still
 * takes its turn between groups and counts against per_group). For work that
 * resumes a request which already holds something others wait for.
 */
ds_status_t ds_pool_submit_first(ds_pool_t *pool, const char *group, ds_pool_job_cb fn, void *arg, ds_err_t *err);
/*
 * Bounds admission (both -1, the default: unbounded). A job that cannot start
 * at once is refused with DS_QUEUE_FULL when max_queued jobs already wait
 * (beyond those an idle worker is about to take), or when its group already
 * has per_group running plus group_max_queued waiting. The messages name
 * queue_setting and share_setting (the settings an operator would raise).
 */
void ds_pool_set_bounds(ds_pool_t *pool, int64_t max_queued, int64_t group_max_queued, const char *queue_setting,
                        const char *share_setting);
/*
 * Removes the queued job of group whose arg is arg (the first, if several).
 * True when it was queued: fn will never run for it. False when it already
 * runs or ran (or was never submitted).
 */
bool ds_pool_cancel(ds_pool_t *pool, const char *group, void *arg);
/*
 * Takes out every queued job whose deadline is at or before now and calls
 * expired(arg) for each (on this thread, no lock held) instead of its job.
 * Returns how many. Cheap when no queued job has a deadline.
 */
int64_t ds_pool_expire(ds_pool_t *pool, double now, ds_pool_job_cb expired);
/*
 * Refuses further submits and takes every queued job out; dropped(arg) is
 * called for each (on this thread) instead of its job. Running jobs go on;
 * ds_pool_shutdown then joins the workers.
 */
void ds_pool_drop_queued(ds_pool_t *pool, ds_pool_job_cb dropped);
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
/* Over every pool of the process: the jobs started so far and finished so far (the difference runs now). */
void ds_pool_activity(int64_t *started, int64_t *finished);

#endif
