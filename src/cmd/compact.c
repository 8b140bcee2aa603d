/*
 * compact.c - project compaction: giving the disk space of dropped branches,
 * merged copies and expired history back to the filesystem.
 *
 * DESIGN
 * The backend does the work (project_compact, DS_CAP_COMPACT; the DuckDB
 * backend rewrites the project's file, backends/duckdb/compact.c). This
 * layer has two ways in:
 * - ds_cmd_project_compact, the REST route POST /projects/{id}/compact: the
 *   admin key or a project key of scope admin; always compacts.
 * - ds_cmd_compact_soon: commands that free storage (branch drop and merge,
 *   the history sweep when it removed rows) name the project; ONE
 *   maintenance thread compacts it later, never on the request's thread,
 *   and only when the free space is worth it: at least
 *   DUCKSTORE_COMPACT_MIN_FREE_RATIO of the file (default 0.25; 0 turns
 *   automatic compaction off) and DUCKSTORE_COMPACT_MIN_FREE_BYTES (default
 *   64MiB). Projects on backends without the capability are skipped.
 * A compaction waits at most DUCKSTORE_COMPACT_WAIT_SECONDS (default 30) for
 * the project's running calls to end (a long export) and then gives up
 * without changing anything; the thread tries again after
 * DUCKSTORE_COMPACT_RETRY_SECONDS (default 60), at most MAX_ATTEMPTS times.
 * The queue holds at most MAX_PENDING projects (each once); a project named
 * while it is full is logged and waits for the next command that frees
 * space. `mu` guards the queue only; no other lock is taken while holding it.
 */
#include "backend/be.h"
#include "cmd/internal.h"
#include "core/config.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_PENDING  64
#define MAX_ATTEMPTS 5

typedef struct {
    char id[DS_PROJECT_ID_MAX + 1];
    int64_t due_ms; /* monotonic */
    int attempts;
} pending_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* on CLOCK_MONOTONIC; signalled on a new entry and on stop */
static pending_t pending[MAX_PENDING];
static size_t n_pending;
static bool running, stopping;
static pthread_t thread;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The settings (defaults until ds_compact_start read the configuration, before any request). */
static ds_be_compact_t settings = {
    .only_if_worth = true, .min_free_ratio = 0.25, .min_free_bytes = 64ll << 20, .wait_ms = 30000};
static int64_t retry_ms = 60000;

/* Reads the settings (the service's configuration checked them: DUCKSTORE_COMPACT_*). */
static void read_settings(void)
{
    const ds_config_t *cfg = ds_service_config();
    settings.min_free_ratio = (double)cfg->compact_min_free_ratio / 1e6;
    settings.min_free_bytes = cfg->compact_min_free_bytes;
    settings.wait_ms = cfg->compact_wait * 1000;
    retry_ms = cfg->compact_retry * 1000;
}

ds_status_t ds_cmd_project_compact(ds_ctx_t *ctx, const char *id, ds_compact_result_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ds_cmd_open_project(ctx, &id, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_project_admin(ctx, "compacting a project")) != DS_OK)
        return st;
    if ((st = ds_cmd_require_cap(ctx, &p, DS_CAP_COMPACT, "compaction")) != DS_OK)
        return st;
    ds_be_compact_t in = {.wait_ms = settings.wait_ms};
    ds_be_compact_result_t r;
    int64_t t0 = mono_ms();
    if ((st = ds_be_project_compact(p.be, &p.call, &in, &r)) != DS_OK)
        return st;
    out->bytes_before = r.bytes_before;
    out->bytes_after = r.bytes_after;
    out->seconds = (double)(mono_ms() - t0) / 1000.0;
    return DS_OK;
}

/* One automatic compaction of id; DS_UNAVAILABLE when the project was busy (try again later). */
static ds_status_t compact_auto(const char *id)
{
    ds_arena_t *arena = ds_arena_create();
    if (!arena)
        return DS_UNAVAILABLE;
    ds_ctx_t ctx = {.arena = arena, .scope = DS_CALLER_ADMIN};
    ds_proj_t p;
    ds_be_compact_t in = settings;
    ds_be_compact_result_t r = {0};
    int64_t t0 = mono_ms();
    ds_status_t st = in.min_free_ratio > 0 ? ds_cmd_open_project_trusted(&ctx, &id, &p) : DS_OK;
    if (st == DS_OK && in.min_free_ratio > 0 && (p.be->ops->capabilities & DS_CAP_COMPACT)) {
        st = ds_be_project_compact(p.be, &p.call, &in, &r);
        if (st != DS_OK)
            ds_log(DS_LOG_WARN, "project %s: automatic compaction failed: %s", id, ctx.err.message);
        else if (!r.skipped)
            ds_log(DS_LOG_INFO, "project %s compacted automatically: %lld -> %lld bytes in %.1fs", id,
                   (long long)r.bytes_before, (long long)r.bytes_after, (double)(mono_ms() - t0) / 1000.0);
        else
            ds_log(DS_LOG_DEBUG, "project %s: not compacted, %lld of %lld bytes free", id, (long long)r.free_bytes,
                   (long long)r.bytes_before);
    }
    ds_arena_destroy(&arena);
    return st;
}

/* Adds or re-adds id to the queue, due in delay_ms. Caller holds mu. */
static void push_locked(const char *id, int64_t delay_ms, int attempts)
{
    for (size_t i = 0; i < n_pending; i++)
        if (strcasecmp(pending[i].id, id) == 0)
            return;
    if (n_pending == MAX_PENDING) {
        ds_log(DS_LOG_WARN, "project %s: the compaction queue is full (%d projects); not queued", id, MAX_PENDING);
        return;
    }
    pending_t *e = &pending[n_pending++];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->due_ms = mono_ms() + delay_ms;
    e->attempts = attempts;
    pthread_cond_broadcast(&cv);
}

void ds_cmd_compact_soon(const char *project_id)
{
    if (!project_id)
        return;
    pthread_mutex_lock(&mu);
    if (running && !stopping)
        push_locked(project_id, 0, 0);
    pthread_mutex_unlock(&mu);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        size_t next = n_pending;
        for (size_t i = 0; i < n_pending; i++)
            if (next == n_pending || pending[i].due_ms < pending[next].due_ms)
                next = i;
        int64_t now = mono_ms();
        if (next == n_pending || pending[next].due_ms > now) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            int64_t wait = next == n_pending ? 3600000 : pending[next].due_ms - now;
            until.tv_sec += wait / 1000;
            until.tv_nsec += (wait % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&cv, &mu, &until);
            continue;
        }
        pending_t e = pending[next];
        pending[next] = pending[--n_pending];
        pthread_mutex_unlock(&mu);
        ds_status_t st = compact_auto(e.id);
        pthread_mutex_lock(&mu);
        if (st == DS_UNAVAILABLE && e.attempts + 1 < MAX_ATTEMPTS && !stopping)
            push_locked(e.id, retry_ms, e.attempts + 1);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

ds_status_t ds_compact_start(ds_err_t *err)
{
    read_settings();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&mu);
    stopping = false;
    n_pending = 0;
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        pthread_mutex_unlock(&mu);
        pthread_cond_destroy(&cv);
        return ds_err_set(err, DS_INTERNAL, "cannot start the compaction thread");
    }
    running = true;
    pthread_mutex_unlock(&mu);
    pthread_setname_np(thread, "compact");
    return DS_OK;
}

void ds_compact_stop(void)
{
    pthread_mutex_lock(&mu);
    if (!running) {
        pthread_mutex_unlock(&mu);
        return;
    }
    stopping = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    running = false;
    n_pending = 0;
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}
