/*
 * history.c - time travel: the command that restores a table as it was at a
 * moment, and the sweep that expires history past each project's retention.
 *
 * DESIGN
 * Backends keep the history (the DuckDB backend: backends/duckdb/history.c);
 * this layer decides which moments a client may ask for. A moment is
 * unix microseconds; one given to the second ("2026-01-02T03:04:05Z",
 * unix seconds) means the end of that second, so it covers every write
 * committed in that second. It must not be in the future and must lie
 * within the project's retention: data_retention_time days (catalog), a day
 * being DUCKSTORE_RETENTION_DAY_SECONDS seconds (86400; tests shorten it).
 * Retention 0 turns time travel off.
 *
 * The sweep thread wakes every DUCKSTORE_HISTORY_SWEEP_SECONDS (default
 * 300) and asks each project's backend to drop what only moments older than
 * the retention would need. It opens projects as any request does (pins), so
 * a project being deleted is skipped. A project whose history the backend
 * said has nothing due before a moment is left alone until that moment is
 * past the retention (sweep_due_t).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/be.h"
#include "catalog/catalog.h"
#include "cmd/internal.h"
#include "core/log.h"
#include "core/periodic.h"
#include "core/types.h"

/* A day of data retention, in seconds (DUCKSTORE_RETENTION_DAY_SECONDS; tests shorten it). */
static int64_t day_seconds(void) { return ds_service_config()->retention_day; }

int64_t ds_cmd_retention_seconds(const ds_project_rec_t *rec) { return (int64_t)rec->retention_days * day_seconds(); }

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The moment of in as unix microseconds (a whole second: its end). */
static ds_status_t moment(ds_ctx_t *ctx, const ds_time_travel_t *in, int64_t now, int64_t *at)
{
    if (!in->timestamp) {
        *at = in->at_s * 1000000 + 999999;
        return DS_OK;
    }
    ds_status_t st = ds_time_parse(in->timestamp, now, "timestamp", at, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!strchr(in->timestamp, '.') && *at % 1000000 == 0)
        *at += 999999;
    return DS_OK;
}

ds_status_t ds_cmd_table_time_travel(ds_ctx_t *ctx, const char *project, const ds_time_travel_t *in,
                                     ds_be_table_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_cap(ctx, &p, DS_CAP_TIME_TRAVEL, "time travel")) != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket(in->bucket, "bucket", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(in->table, "table", &ctx->err)) != DS_OK)
        return st;
    if (!in->dst_bucket || !in->dst_table)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "destination",
                           "destination needs a bucket and a table name");
    if ((st = ds_ident_check_bucket(in->dst_bucket, "destination.bucket", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(in->dst_table, "table", &ctx->err)) != DS_OK)
        return st;
    int64_t now = now_us(), at;
    if (!in->timestamp && in->at_s <= 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timestamp",
                           "timestamp is required: the moment to restore, as unix seconds");
    if ((st = moment(ctx, in, now, &at)) != DS_OK)
        return st;
    char when[40];
    ds_time_rfc3339(at / 1000000, when, sizeof(when));
    if (p.rec.retention_days == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timestamp",
                           "project \"%s\" keeps no history (data_retention_time is 0): time travel is off",
                           p.rec.id);
    /* A second that has not ended yet could still gain writes: its answer would not be final. */
    if (at > now)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timestamp",
                           "timestamp %s is in the future (a moment given to the second counts once that second "
                           "has ended)",
                           when);
    int64_t oldest = now - (int64_t)p.rec.retention_days * day_seconds() * 1000000;
    if (at < oldest) {
        char limit[40];
        ds_time_rfc3339(oldest / 1000000 + 1, limit, sizeof(limit));
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timestamp",
                           "timestamp %s is before the project's data retention (%d days): the oldest moment that "
                           "can be restored is %s",
                           when, (int)p.rec.retention_days, limit);
    }

    /* The source: a live table as the request's branch sees it, or a dropped one in the branch's storage. */
    const char *bucket = in->bucket, *table = in->table;
    if (!in->dropped) {
        if ((st = ds_cmd_resolve_table(ctx, &p, &bucket, &table, false, NULL, NULL)) != DS_OK)
            return st;
    } else if (p.branch) {
        char *phys = ds_arena_alloc(ctx->arena, strlen(p.branch_prefix) + strlen(bucket) + 1);
        if (!phys)
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        strcpy(phys, p.branch_prefix);
        strcat(phys, bucket);
        bucket = phys;
    } else if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK) {
        return st;
    }

    /* The destination: created like a new table (in a branch: in the branch's own bucket). */
    const char *dbucket = in->dst_bucket, *dtable = in->dst_table;
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &dbucket)) != DS_OK)
        return st;
    if (p.branch) {
        bool exists;
        dbucket = ds_cmd_branch_logical(&p, dbucket);
        if ((st = ds_cmd_resolve_table(ctx, &p, &dbucket, &dtable, true, NULL, &exists)) != DS_OK)
            return st;
        if (exists)
            return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "table \"%s.%s\" already exists",
                              ds_cmd_branch_logical(&p, dbucket), dtable);
        if ((st = ds_cmd_branch_write(ctx, &p, &dbucket, &dtable, true)) != DS_OK)
            return st;
    } else if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK) {
        return st;
    }
    ds_be_time_travel_t tt = {.bucket = bucket,
                              .table = table,
                              .dropped = in->dropped,
                              .at_us = at,
                              .dst_bucket = dbucket,
                              .dst_table = dtable};
    int64_t rows = 0;
    if ((st = ds_be_table_time_travel(p.be, &p.call, &tt, &rows)) != DS_OK)
        return st;
    ds_cmd_test_crash_point("time_travel");
    if ((st = ds_be_table_get(p.be, &p.call, dbucket, dtable, out)) != DS_OK)
        return st;
    out->bucket = ds_cmd_branch_logical(&p, out->bucket);
    return DS_OK;
}

/* ---- the sweep ---- */

static ds_periodic_t *sweeper;
static _Atomic int64_t rows_expired;

static _Atomic int64_t projects_swept, projects_left_alone;

int64_t ds_history_rows_expired(void) { return rows_expired; }
int64_t ds_history_projects_swept(void) { return projects_swept; }
int64_t ds_history_projects_left_alone(void) { return projects_left_alone; }

/*
 * When each project's history is next worth a sweep, from its backend's
 * history_expire_next: no history of the project needs expiring before
 * floor_us plus its retention. The sweep leaves a project alone until then,
 * not even attached: with every project swept every period, an idle server
 * attached all its projects every 5 minutes (and with that undid the idle
 * detach's work). Sorted by id; only the sweep's thread touches it. A
 * project it does not know (the first sweep after start, a project created
 * since, a backend without history_expire_next) is swept.
 */
typedef struct {
    char id[DS_PROJECT_ID_MAX + 1];
    int64_t floor_us;
} sweep_due_t;
static sweep_due_t *dues;
static size_t n_dues;

/*
 * A write records its history at a moment taken right before its commit: one
 * that took it before the sweep's call and committed after the call looked
 * is not in next_us. The floor starts this much before the call. Were such a
 * write later still, its history would expire one due sweep late: kept
 * longer, never shorter (what a client may restore is checked against the
 * retention above, not against what is kept).
 */
#define SWEEP_FLOOR_MARGIN_US (10 * INT64_C(1000000))

static int due_cmp(const void *a, const void *b)
{
    return strcmp(((const sweep_due_t *)a)->id, ((const sweep_due_t *)b)->id);
}

static int64_t keep_us(const ds_project_rec_t *rec)
{
    return (int64_t)rec->retention_days * day_seconds() * 1000000;
}

/* Sweeps rec's project; returns its floor (see sweep_due_t): INT64_MAX when its backend keeps no history, -1
 * when unknown. */
static int64_t sweep_project(const ds_project_rec_t *rec)
{
    ds_arena_t *arena = ds_arena_create();
    if (!arena)
        return -1;
    ds_ctx_t ctx = {.arena = arena, .scope = DS_CALLER_ADMIN};
    const char *id = rec->id;
    ds_proj_t p;
    int64_t floor_us = -1;
    bool opened = ds_cmd_open_project_trusted(&ctx, &id, &p) == DS_OK;
    if (opened && (!DS_BE_HAS(p.be->ops, history_expire) || !p.be->ops->history_expire))
        floor_us = INT64_MAX;
    else if (opened) {
        int64_t t = now_us(), rows = 0, next = INT64_MAX;
        bool with_next = DS_BE_HAS(p.be->ops, history_expire_next) && p.be->ops->history_expire_next;
        ds_status_t st = with_next ? ds_be_history_expire_next(p.be, &p.call, t - keep_us(&p.rec), &rows, &next)
                                   : ds_be_history_expire(p.be, &p.call, t - keep_us(&p.rec), &rows);
        if (st != DS_OK)
            ds_log(DS_LOG_WARN, "project %s: history not expired: %s", rec->id, ctx.err.message);
        else {
            if (with_next)
                floor_us = next < t - SWEEP_FLOOR_MARGIN_US ? next : t - SWEEP_FLOOR_MARGIN_US;
            if (rows) {
                rows_expired += rows;
                ds_log(DS_LOG_INFO, "project %s: %lld history rows past the retention removed", rec->id,
                       (long long)rows);
                ds_cmd_compact_soon(rec->id);
            }
        }
    }
    ds_arena_destroy(&arena);
    return floor_us;
}

static void sweep_once(void *ud)
{
    (void)ud;
    ds_arena_t *arena = ds_arena_create();
    ds_project_rec_t *recs = NULL;
    size_t n = 0, left_alone = 0;
    ds_err_t err = {0};
    if (!arena || ds_catalog_project_list(arena, &recs, &n, &err) != DS_OK) {
        ds_arena_destroy(&arena);
        return;
    }
    /* The next table has this sweep's projects only: deleted ones drop out. */
    sweep_due_t *next = n ? calloc(n, sizeof(*next)) : NULL;
    size_t n_next = 0;
    for (size_t i = 0; i < n && !ds_periodic_stopping(sweeper); i++) {
        sweep_due_t key;
        snprintf(key.id, sizeof(key.id), "%s", recs[i].id);
        const sweep_due_t *known = n_dues ? bsearch(&key, dues, n_dues, sizeof(*dues), due_cmp) : NULL;
        int64_t floor_us = known ? known->floor_us : -1, keep = keep_us(&recs[i]);
        bool not_due = floor_us == INT64_MAX ||
                       (floor_us >= 0 && keep > 0 && floor_us <= INT64_MAX - keep && floor_us + keep > now_us());
        if (not_due) {
            left_alone++;
            projects_left_alone++;
        } else {
            floor_us = sweep_project(&recs[i]);
            projects_swept++;
        }
        if (next && floor_us >= 0) {
            next[n_next] = key;
            next[n_next++].floor_us = floor_us;
        }
    }
    if (next)
        qsort(next, n_next, sizeof(*next), due_cmp);
    free(dues);
    dues = next;
    n_dues = n_next;
    if (left_alone)
        ds_log(DS_LOG_DEBUG, "history sweep: %zu of %zu projects left alone (nothing due before their retention)",
               left_alone, n);
    ds_arena_destroy(&arena);
}

ds_status_t ds_history_sweep_start(ds_err_t *err)
{
    return ds_periodic_start(&sweeper, "history-sweep", ds_service_config()->history_sweep,
                             sweep_once, NULL, err);
}

void ds_history_sweep_stop(void)
{
    ds_periodic_stop(&sweeper);
    free(dues);
    dues = NULL;
    n_dues = 0;
}
