/*
 * duckdb_backend.c - the built-in DuckDB backend.
 *
 * DESIGN
 * One DuckDB instance (in-memory main database) runs all SQL duckstore
 * generates. Each project is one file, <data>/duckdb/project_<id>_main.duckdb,
 * ATTACHed on first use under the alias p_<id> and DETACHed when idle and more
 * than max_open_projects files are attached (LRU), or when no call used it for
 * idle_detach_s (the reaper thread: memory back when idle). Every file has exactly one
 * owner in the process: this instance (two buffer managers on one file corrupt
 * it, see DESIGN.md).
 *
 * A bucket is a schema of the project file; tables are DuckDB tables with a
 * hidden _timestamp column. Metadata that must change together with the data
 * (bucket descriptions, primary keys, import times) lives in the reserved
 * schema _ds of the same file, so one transaction covers both.
 *
 * Project handles: acquire() attaches the file if needed and pins it (refs);
 * release() unpins and detaches surplus idle files. The cap on attached files
 * is soft: a pinned project is never detached, so when every attached project
 * is pinned one more is attached over the cap, and the surplus is detached
 * when calls release their projects. No call ever waits for a slot.
 *
 * Each project entry moves through detached -> attaching -> attached ->
 * detaching -> detached; ATTACH and DETACH run outside `lock`, and only the
 * call that set attaching/detaching touches the file meanwhile (others wait
 * for that one project on `idle`). Dropping marks the entry `dropping` (new
 * pins answer not found), waits until nothing uses it, detaches, removes the
 * files and only then forgets the entry, so no call can attach a file that is
 * being removed. An entry is freed only by the call that finds it unused.
 *
 * Engine failure: DuckDB invalidates its whole instance after a FATAL or
 * INTERNAL error, and every later statement on any project fails. The backend
 * recovers without a restart of the service. Every call that runs statements
 * holds a "db use" (db_enter .. db_leave) around them. ds_ddb_error answers a
 * fatal error with a fixed 503 (DuckDB's text goes to the log only); the call
 * then probes the instance (note_failure) and, when it is the invalidated
 * one, marks it broken. Calls in flight fail with that 503 and leave; new
 * ones wait in db_enter. The call that finds it broken and unused reopens it
 * (reopen_db): an invalidated DuckDB does not checkpoint on close, a fresh
 * instance is opened and every project entry is marked detached (and
 * forgotten, except a failed creation's, which stays until its call has
 * removed the file), so projects are attached again on demand and each file's
 * WAL replays what was committed. Drops and creates keep their guarantees:
 * nothing pins, attaches or drops a project while no call holds a db use.
 *
 * Locks: `lock` guards the project table, the counters and the LRU, and is
 * held only for those map operations (and the stat of a file about to be
 * attached); never across a DuckDB statement or a wait on another project.
 * No other lock is taken while holding it.
 */
#include <duckdb.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/ident.h"
#include "core/lru.h"
#include "core/periodic.h"
#include "core/status.h"
#include "ddb.h"
#include "duckdb_backend.h"
#include "internal.h"
#include "duckstore/backend.h"

/* Most idle projects one call detaches to bring the attached count back under the cap. */
#define MAX_VICTIMS 8
/* Longest a call waits for a compaction of its project (compact.c) before it answers 503. */
#define COMPACT_BLOCK_S 300

static void project_path(const be_t *be, const char *id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/project_%s_main.duckdb", be->dir, id);
}

static proj_t *find_proj(be_t *be, const char *id)
{
    for (proj_t *p = be->projects; p; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

static proj_t *new_proj(be_t *be, const char *id)
{
    proj_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (!(p->mcat = ddb_mcat_create())) {
        free(p);
        return NULL;
    }
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->alias, sizeof(p->alias), "p_%s", id);
    ddb_data_changed(be, p);
    p->next = be->projects;
    be->projects = p;
    return p;
}

static void forget_proj(be_t *be, proj_t *p)
{
    proj_t **pp = &be->projects;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    ddb_mcat_destroy(&p->mcat);
    free(p);
}

/* True while a call pins p, runs ATTACH/DETACH of it or compacts it: p must stay as it is. */
static bool busy(const proj_t *p)
{
    return p->refs > 0 || p->attaching || p->detaching || p->compacting;
}

/* Frees a detached entry nothing refers to (a dropping one is freed by its dropper). Caller holds be->lock. */
static void forget_if_unused(be_t *be, proj_t *p)
{
    if (!busy(p) && !p->attached && !p->dropping)
        forget_proj(be, p);
}

/* Runs one statement on a short-lived connection (for ATTACH/DETACH/CHECKPOINT). */
static ds_status_t admin_exec(be_t *be, const char *sql, ds_err_t *err)
{
    duckdb_connection c;
    if (duckdb_connect(be->db, &c) == DuckDBError)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot open a DuckDB connection");
    ds_status_t st = ds_ddb_exec(c, err, sql);
    duckdb_disconnect(&c);
    return st;
}

/*
 * DETACH of p's database, and its cached previews freed with its blocks.
 * Runs without be->lock, by the call that set p->detaching.
 */
static ds_status_t run_detach(be_t *be, const proj_t *p, ds_err_t *err)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DETACH DATABASE ");
    ds_buf_ident(&sql, p->alias);
    ds_status_t st = admin_exec(be, ds_buf_cstr(&sql), err);
    ds_buf_free(&sql);
    if (st == DS_OK)
        ddb_pcache_forget(be->pcache, p->id);
    return st;
}

/*
 * Stores the bytes of p's tables that writes left unmeasured
 * (DDB_BYTES_UNMEASURED): the figure the metadata cache measured after the
 * write (so GET table says the same across a detach), or measured now when
 * the cache has none. The next attach then reads them instead of measuring
 * them. Runs before a detach that keeps the file, when no call uses p. The
 * rows are rewritten as DELETE and INSERT (see ddb_meta_write). A failure
 * changes nothing and is logged: the next attach measures them; it is
 * returned, so that a caller can mark p for reopening after one for lack of
 * space (p->reload). Never after a write ran out of space (p->reload): DuckDB's state of the file may not match the disk then,
 * and nothing may commit before it is attached afresh (a test saw rows of
 * _ds.tables lost).
 */
static ds_status_t store_bytes(be_t *be, proj_t *p)
{
    duckdb_connection c;
    if (p->reload || duckdb_connect(be->db, &c) == DuckDBError)
        return DS_OK;
    ds_err_t err = {0};
    ds_buf_t tbl = {0}, q = {0};
    duckdb_result r;
    bool have_r = false;
    ds_buf_ident(&tbl, p->alias);
    ds_buf_puts(&tbl, "." META ".tables");
    ds_status_t st = ds_ddb_exec(c, &err, "BEGIN TRANSACTION");
    bool in_txn = st == DS_OK;
    if (st == DS_OK) {
        /* The version stays: only a write gives a table a new one (a branch merge compares them). */
        ds_buf_printf(&q, "SELECT bucket, name, primary_key, created_at, last_import_at, last_change_at, row_count, "
                          "version FROM %s WHERE byte_count < 0", ds_buf_cstr(&tbl));
        st = ds_ddb_run(c, &err, &r, ds_buf_cstr(&q), 0, NULL);
        have_r = st == DS_OK;
    }
    idx_t n = have_r ? duckdb_row_count(&r) : 0;
    if (st == DS_OK && n > 0) {
        ds_buf_reset(&q);
        ds_buf_printf(&q, "DELETE FROM %s WHERE byte_count < 0", ds_buf_cstr(&tbl));
        st = ds_ddb_exec(c, &err, ds_buf_cstr(&q));
        ds_buf_reset(&q);
        ds_buf_printf(&q, "INSERT INTO %s (bucket, name, primary_key, created_at, last_import_at, last_change_at, "
                          "row_count, version, byte_count) VALUES ($1, $2, $3, CAST($4 AS BIGINT), CAST($5 AS BIGINT), "
                          "CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($8 AS BIGINT), CAST($9 AS BIGINT))",
                      ds_buf_cstr(&tbl));
    }
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        char *v[8], bytes_s[32];
        const char *params[9];
        bool oom = false;
        for (int k = 0; k < 8; k++) {
            params[k] = v[k] = ds_ddb_cell(&r, (idx_t)k, i);
            oom = oom || (!v[k] && !duckdb_value_is_null(&r, (idx_t)k, i));
        }
        int64_t bytes = DDB_BYTES_UNMEASURED, cached_rows;
        if (!oom && v[0] && v[1] && !ddb_mcat_counts(p, v[0], v[1], &cached_rows, &bytes))
            bytes = DDB_BYTES_UNMEASURED;
        st = oom || !v[0] || !v[1] ? ddb_oom(&err) : ddb_bytes_known(c, p->alias, v[0], v[1], &bytes, &err);
        snprintf(bytes_s, sizeof(bytes_s), "%lld", (long long)bytes);
        params[8] = bytes_s;
        if (st == DS_OK)
            st = ds_ddb_run(c, &err, NULL, ds_buf_cstr(&q), 9, params);
        for (int k = 0; k < 8; k++)
            free(v[k]);
    }
    if (have_r)
        duckdb_destroy_result(&r);
    if (in_txn) {
        ds_err_t ignored = {0};
        if (st == DS_OK)
            st = ds_ddb_exec(c, &err, "COMMIT");
        else
            ds_ddb_exec(c, &ignored, "ROLLBACK");
    }
    if (st != DS_OK)
        be->host->log(2, "duckdb", "project %s: the bytes of its written tables were not stored before the detach "
                                   "(the next attach measures them): %s", p->id, err.message);
    ds_buf_free(&tbl);
    ds_buf_free(&q);
    duckdb_disconnect(&c);
    return st;
}

/*
 * A project file that DuckDB cannot open (damaged, not a DuckDB file, unreadable):
 * only that project is unavailable. The log gets DuckDB's words (with the path);
 * the client gets the project and the reason, without host paths.
 */
static ds_status_t unreadable(be_t *be, const char *id, ds_err_t *err)
{
    be->host->log(3, "duckdb", "project %s: its file cannot be opened: %s", id, err->message);
    const char *why = strstr(err->message, "not a valid DuckDB database file") ? "it is not a valid DuckDB file (damaged)"
                      : strstr(err->message, "ermission denied")                 ? "permission denied"
                      : strstr(err->message, "Could not set lock")                ? "another process holds its lock"
                                                                                 : "it is damaged or unreadable";
    return ds_err_set(err, DS_UNAVAILABLE,
                      "project \"%s\" is unavailable: its storage file cannot be opened (%s); the operator's log "
                      "has the details, see \"Recovery and quarantine\" in docs/operations.md",
                      id, why);
}

/* ATTACH of p's file. Runs without be->lock, by the call that set p->attaching. */
static ds_status_t run_attach(be_t *be, const proj_t *p, const char *path, bool create, ds_err_t *err)
{
    ds_status_t st;
    ds_buf_t sql = {0};
    /* A compaction killed before its rename leaves its temporary file: the project's own file is whole. */
    if (!create)
        ddb_compact_leftovers(path);
    ds_buf_puts(&sql, "ATTACH ");
    ds_buf_literal(&sql, path);
    ds_buf_puts(&sql, " AS ");
    ds_buf_ident(&sql, p->alias);
    /*
     * A file detached a moment ago can still be held open by a query that
     * had a reference to its database; DuckDB then refuses to attach it again
     * until that query ends. Wait briefly instead of failing.
     */
    for (int attempt = 0;; attempt++) {
        st = admin_exec(be, ds_buf_cstr(&sql), err);
        if (st == DS_OK || attempt >= 200 || !strstr(err->message, "Unique file handle conflict"))
            break;
        ds_err_clear(err);
        usleep(5000);
    }
    if (st == DS_OK && !create) {
        /*
         * Files written before development branches lack the version column
         * and the branch tables: add them (a no-op once they exist). A file
         * without its _ds tables is reported by the call that reads them.
         */
        ds_err_t merr = {0};
        ds_buf_t mig = {0};
        ds_buf_puts(&mig, "USE ");
        ds_buf_ident(&mig, p->alias);
        ds_buf_puts(&mig, "; " DDB_META_V2_DDL);
        if (admin_exec(be, ds_buf_cstr(&mig), &merr) != DS_OK)
            be->host->log(2, "duckdb", "project %s: cannot add the branch metadata to its file: %s", p->id, merr.message);
        ds_buf_free(&mig);
    }
    if (st != DS_OK && strstr(err->message, "Unique file handle conflict"))
        st = ds_err_set(err, DS_UNAVAILABLE, "project \"%s\" is being reopened; retry", p->id);
    else if (st != DS_OK && !ds_ddb_err_is_engine_failure(err))
        st = unreadable(be, p->id, err);
    ds_buf_free(&sql);
    return st;
}

static bool evictable(const char *key, void *ud)
{
    proj_t *p = find_proj(ud, key);
    return p && p->attached && !busy(p) && !p->dropping;
}

/*
 * Marks least-recently-used idle projects `detaching` until the attached
 * count (counting ATTACHes under way, not DETACHes) is back at the cap; the
 * caller detaches them with detach_victims after dropping be->lock. Returns
 * how many it marked (0 when none is idle: then the cap is exceeded for now).
 */
static size_t pick_victims_locked(be_t *be, proj_t **v, size_t max)
{
    size_t n = 0;
    while (n < max && be->n_attached - be->n_detaching + be->n_attaching > be->max_open) {
        const char *key = ds_lru_victim(be->lru, evictable, be);
        if (!key)
            break;
        proj_t *p = find_proj(be, key);
        p->detaching = true;
        be->n_detaching++;
        v[n++] = p;
    }
    return n;
}

/* Detaches the projects pick_victims_locked marked. Called without be->lock. */
static void detach_victims(be_t *be, proj_t **v, size_t n)
{
    ds_status_t st[MAX_VICTIMS];
    ds_err_t e[MAX_VICTIMS];
    for (size_t i = 0; i < n; i++) {
        memset(&e[i], 0, sizeof(e[i]));
        if (store_bytes(be, v[i]) == DS_INSUFFICIENT_STORAGE) {
            /* Nothing may commit before the file is attached afresh, should the detach fail. */
            pthread_mutex_lock(&be->lock);
            v[i]->reload = true;
            pthread_mutex_unlock(&be->lock);
        }
        st[i] = run_detach(be, v[i], &e[i]);
    }
    pthread_mutex_lock(&be->lock);
    for (size_t i = 0; i < n; i++) {
        proj_t *p = v[i];
        p->detaching = false;
        be->n_detaching--;
        if (st[i] == DS_OK) {
            p->attached = false;
            p->reload = false; /* detached: its next attach reads the file afresh */
            be->n_attached--;
            ds_lru_remove(be->lru, p->id);
            ddb_mcat_drop(p->mcat);
        } else {
            be->host->log(2, "duckdb", "cannot detach project %s: %s", p->id, e[i].message);
        }
    }
    pthread_cond_broadcast(&be->idle);
    pthread_mutex_unlock(&be->lock);
}

/*
 * Pins project id, attaching its file first if needed. create: the file may
 * be new (project creation); otherwise a missing file is DS_NOT_FOUND. Waits
 * only for an ATTACH or DETACH of this same project that is under way, never
 * for another project (the cap is soft, see above).
 */
static ds_status_t acquire(be_t *be, const char *id, bool create, proj_t **out, ds_err_t *err)
{
    char path[4200];
    struct timespec compact_deadline;
    project_path(be, id, path, sizeof(path));
    clock_gettime(CLOCK_REALTIME, &compact_deadline);
    compact_deadline.tv_sec += COMPACT_BLOCK_S;
    pthread_mutex_lock(&be->lock);
    proj_t *p;
    for (;;) {
        p = find_proj(be, id);
        if (p && (p->dropping || p->creating)) {
            const char *what = p->dropping ? "deleted" : "created"; /* p may go once the lock is released */
            pthread_mutex_unlock(&be->lock);
            if (create)
                return ds_err_set(err, DS_CONFLICT, "project \"%s\" is being %s", id, what);
            return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found (it is being %s)",
                               id, what);
        }
        if (p && create) {
            pthread_mutex_unlock(&be->lock);
            return ds_err_set(err, DS_ALREADY_EXISTS, "storage for project \"%s\" already exists", id);
        }
        if (p && p->compacting) {
            /* Compaction rewrites the file: the call waits for it (bounded) instead of failing. */
            bool late = pthread_cond_timedwait(&be->idle, &be->lock, &compact_deadline) == ETIMEDOUT;
            /* The entry may be gone once the compaction ended: look it up again. */
            if (late && (p = find_proj(be, id)) && p->compacting) {
                pthread_mutex_unlock(&be->lock);
                return ds_err_set(err, DS_UNAVAILABLE,
                                  "project \"%s\" is being compacted and it took longer than %ds; retry shortly", id,
                                  COMPACT_BLOCK_S);
            }
            continue;
        }
        if (!p && !(p = new_proj(be, id))) {
            pthread_mutex_unlock(&be->lock);
            return ds_err_set(err, DS_INTERNAL, "out of memory");
        }
        /* Until project_create ends, no other call may see the half-made project. */
        p->creating = create;
        if (p->attached && !p->detaching && p->reload && !busy(p)) {
            /* A write ran out of space: reopen the file before its next use (see proj_t.reload). */
            p->detaching = true;
            be->n_detaching++;
            pthread_mutex_unlock(&be->lock);
            detach_victims(be, &p, 1);
            pthread_mutex_lock(&be->lock);
            if (!p->attached)
                p->reload = false;
            continue;
        }
        if (p->attached && !p->detaching) {
            p->refs++;
            ds_lru_touch(be->lru, p->id);
            pthread_mutex_unlock(&be->lock);
            *out = p;
            return DS_OK;
        }
        if (!p->attaching && !p->detaching)
            break;
        pthread_cond_wait(&be->idle, &be->lock);
    }
    /*
     * p is detached and this call attaches it. The file is checked under the
     * lock: a drop of the project starts only after this ATTACH ends, so the
     * ATTACH can never create a file that a drop has just removed.
     */
    struct stat sb;
    if (!create && stat(path, &sb) != 0) {
        forget_if_unused(be, p);
        pthread_mutex_unlock(&be->lock);
        return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" has no storage file", id);
    }
    p->attaching = true;
    be->n_attaching++;
    proj_t *victims[MAX_VICTIMS];
    size_t nv = pick_victims_locked(be, victims, MAX_VICTIMS);
    pthread_mutex_unlock(&be->lock);

    if (nv)
        detach_victims(be, victims, nv);
    ds_status_t st = run_attach(be, p, path, create, err);
    /* Its metadata is read into memory now, before any call can use it (a new file has none yet). */
    if (st == DS_OK && !create)
        ddb_mcat_load(be, p);

    pthread_mutex_lock(&be->lock);
    p->attaching = false;
    be->n_attaching--;
    if (st == DS_OK) {
        p->attached = true;
        be->n_attached++;
        be->attached_since_open = true;
        if (be->n_attached > be->peak_attached)
            be->peak_attached = be->n_attached;
        ds_lru_touch(be->lru, p->id);
        if (p->dropping)
            st = ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", id);
        else
            p->refs++;
    } else {
        forget_if_unused(be, p);
    }
    pthread_cond_broadcast(&be->idle);
    pthread_mutex_unlock(&be->lock);
    if (st == DS_OK)
        *out = p;
    return st;
}

static void release(be_t *be, proj_t *p)
{
    if (!p)
        return;
    proj_t *victims[MAX_VICTIMS];
    pthread_mutex_lock(&be->lock);
    if (--p->refs == 0) {
        p->idle_since = ddb_mono_s();
        pthread_cond_broadcast(&be->idle);
    }
    size_t nv = pick_victims_locked(be, victims, MAX_VICTIMS);
    pthread_mutex_unlock(&be->lock);
    if (nv)
        detach_victims(be, victims, nv);
}

double ddb_idle_save(be_t *be, const char *id)
{
    pthread_mutex_lock(&be->lock);
    proj_t *p = find_proj(be, id);
    double saved = p && p->attached && !p->detaching ? p->idle_since : -1;
    pthread_mutex_unlock(&be->lock);
    return saved;
}

void ddb_idle_restore(be_t *be, const char *id, double saved)
{
    pthread_mutex_lock(&be->lock);
    proj_t *p = find_proj(be, id);
    if (p && p->attached && p->refs == 0)
        p->idle_since = saved >= 0 ? saved : ddb_mono_s() - (double)be->idle_detach_s;
    pthread_mutex_unlock(&be->lock);
}

/* ---- engine failure (see the design note above) ---- */

/* Longest a call waits for the engine to be reopened before it answers 503. */
#define REOPEN_WAIT_S 60

static ds_status_t open_engine(be_t *be, ds_err_t *err);

/*
 * Marks every project entry detached and forgets the plain ones; an entry of
 * a creation that failed (`creating`, its call about to remove the file)
 * stays, so no call attaches the half-made file meanwhile. Caller holds
 * be->lock; no call holds a db use, so nothing is pinned, attached, detached
 * or dropped.
 */
static void detach_all_projects_locked(be_t *be)
{
    proj_t **pp = &be->projects;
    while (*pp) {
        proj_t *p = *pp;
        if (p->attached)
            ds_lru_remove(be->lru, p->id);
        p->attached = false;
        p->reload = false;
        if (p->creating) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        ddb_mcat_destroy(&p->mcat);
        free(p);
    }
    be->n_attached = 0;
    be->n_attaching = 0;
    be->n_detaching = 0;
}

/*
 * Closes the instance (invalidated, or idle: recycle_idle_engine) and opens a
 * fresh one. Runs without be->lock, by the one call that set be->reopening
 * while no call held a db use: no connection is open, no project is pinned,
 * attached or dropped.
 */
static ds_status_t reopen_db(be_t *be, bool fatal, ds_err_t *err)
{
    duckdb_close(&be->db);
    pthread_mutex_lock(&be->lock);
    detach_all_projects_locked(be);
    pthread_mutex_unlock(&be->lock);
    ds_status_t st = open_engine(be, err);
    pthread_mutex_lock(&be->lock);
    be->fatal_seen = ds_ddb_fatal_events();
    be->attached_since_open = false;
    if (st == DS_OK && fatal)
        be->restarts++;
    int64_t n = be->restarts;
    pthread_mutex_unlock(&be->lock);
    if (st == DS_OK && !fatal)
        be->host->log(0, "duckdb",
                      "the DuckDB engine instance was reopened while every project was detached, which gives back the "
                      "memory DuckDB keeps for the life of an instance");
    else if (st == DS_OK)
        be->host->log(3, "duckdb",
                      "the DuckDB engine instance was reopened after a fatal error (reopen %lld since start); projects "
                      "are attached again on demand and replay their committed work from the WAL",
                      (long long)n);
    else
        be->host->log(3, "duckdb", "cannot reopen the DuckDB engine instance: %s", err->message);
    return st;
}

/*
 * Starts a call's use of the instance. While it is broken, waits until it has
 * been reopened, reopening it itself when no call uses it any more.
 */
static ds_status_t db_enter(be_t *be, ds_err_t *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += REOPEN_WAIT_S;
    pthread_mutex_lock(&be->lock);
    while (be->broken) {
        if (!be->reopening && be->db_users == 0) {
            be->reopening = true;
            pthread_mutex_unlock(&be->lock);
            ds_status_t st = reopen_db(be, true, err);
            pthread_mutex_lock(&be->lock);
            be->reopening = false;
            if (st == DS_OK)
                be->broken = false;
            pthread_cond_broadcast(&be->idle);
            if (st != DS_OK) {
                pthread_mutex_unlock(&be->lock);
                return ds_err_set(
                    err, DS_UNAVAILABLE,
                    "the storage engine failed and cannot be restarted; the operator's log has the details");
            }
            continue;
        }
        if (pthread_cond_timedwait(&be->idle, &be->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&be->lock);
            return ds_err_set(err, DS_UNAVAILABLE,
                              "the storage engine is being restarted after an internal failure; "
                              "retry shortly");
        }
    }
    be->db_users++;
    pthread_mutex_unlock(&be->lock);
    return DS_OK;
}

static void db_leave(be_t *be)
{
    pthread_mutex_lock(&be->lock);
    if (--be->db_users == 0 && be->broken)
        pthread_cond_broadcast(&be->idle);
    pthread_mutex_unlock(&be->lock);
}

/*
 * After a call's statements: when DuckDB reported a fatal error since the
 * last look (in this process: the catalog's instance counts too), probes this
 * instance and marks it broken if it is the invalidated one. Caller holds a
 * db use, so the instance cannot be reopened meanwhile.
 */
static void note_failure(be_t *be)
{
    uint64_t n = ds_ddb_fatal_events();
    pthread_mutex_lock(&be->lock);
    bool look = n != be->fatal_seen && !be->broken;
    pthread_mutex_unlock(&be->lock);
    if (!look)
        return;
    bool invalid = true;
    char why[DS_ERR_MSG_MAX] = "no connection can be opened";
    duckdb_connection c;
    if (duckdb_connect(be->db, &c) == DuckDBSuccess) {
        duckdb_result r;
        if (duckdb_query(c, "SELECT 1", &r) == DuckDBError)
            snprintf(why, sizeof(why), "%s", duckdb_result_error(&r));
        else
            invalid = false;
        if (invalid)
            invalid = ds_ddb_is_fatal(duckdb_result_error_type(&r), why);
        duckdb_destroy_result(&r);
        duckdb_disconnect(&c);
    }
    pthread_mutex_lock(&be->lock);
    if (n > be->fatal_seen)
        be->fatal_seen = n;
    bool now = invalid && !be->broken;
    if (now)
        be->broken = true;
    pthread_mutex_unlock(&be->lock);
    if (now)
        be->host->log(3, "duckdb",
                      "the DuckDB engine instance is invalidated by a fatal error; calls in flight fail with 503 and "
                      "the instance is reopened once they have ended. DuckDB: %s",
                      why);
}

/*
 * Test hook (DUCKSTORE_TEST_HOOKS=1 only): when the file
 * <data>/test-hooks/engine-fatal exists, the next call consumes it and makes
 * DuckDB raise a real FATAL error (a checkpoint aborted by DuckDB's own debug
 * setting, on a scratch file), which invalidates the instance as any fatal
 * error does; the call then goes on and fails like every call in flight.
 */
static void test_hook(be_t *be, use_t *u)
{
    char trigger[4200], scratch[4200], wal[4300];
    snprintf(trigger, sizeof(trigger), "%s/test-hooks/engine-fatal", be->host->data_dir);
    if (unlink(trigger) != 0)
        return;
    snprintf(scratch, sizeof(scratch), "%s/tmp/engine-fault-%ld.duckdb", be->host->data_dir, (long)getpid());
    snprintf(wal, sizeof(wal), "%s.wal", scratch);
    unlink(scratch);
    unlink(wal);
    ds_buf_t sql = {0};
    ds_err_t e = {0};
    ds_buf_puts(&sql, "ATTACH ");
    ds_buf_literal(&sql, scratch);
    ds_buf_puts(&sql, " AS __ds_fault; CREATE TABLE __ds_fault.t AS SELECT 1 AS x; "
                      "SET debug_checkpoint_abort = 'before_header'; CHECKPOINT __ds_fault");
    ds_status_t st = ds_ddb_exec(u->conn, &e, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    be->host->log(2, "duckdb", "test hook: engine failure provoked (%s)", st == DS_OK ? "no error?" : e.message);
    unlink(scratch);
    unlink(wal);
}

/*
 * Takes project id's storage out of service: no new pin from the start, waits
 * until no call uses it, detaches it, then removes its files (into_dir NULL)
 * or moves them into into_dir (quarantine; *moved says whether there was
 * anything), and forgets the entry last. Waiting holds no lock (the wait
 * releases be->lock).
 */
static ds_status_t retire_project_used(be_t *be, const char *id, const char *into_dir, bool *moved, ds_err_t *err)
{
    pthread_mutex_lock(&be->lock);
    proj_t *p = find_proj(be, id);
    if (p && p->dropping) {
        pthread_mutex_unlock(&be->lock);
        return ds_err_set(err, DS_CONFLICT, "project \"%s\" is already being deleted", id);
    }
    if (!p && !(p = new_proj(be, id))) {
        pthread_mutex_unlock(&be->lock);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    p->dropping = true;
    while (busy(p))
        pthread_cond_wait(&be->idle, &be->lock);
    if (p->attached) {
        p->detaching = true;
        be->n_detaching++;
        pthread_mutex_unlock(&be->lock);
        ds_status_t st = run_detach(be, p, err);
        pthread_mutex_lock(&be->lock);
        p->detaching = false;
        be->n_detaching--;
        pthread_cond_broadcast(&be->idle);
        if (st != DS_OK) {
            p->dropping = false;
            pthread_mutex_unlock(&be->lock);
            return st;
        }
        p->attached = false;
        be->n_attached--;
        ds_lru_remove(be->lru, p->id);
        ddb_mcat_drop(p->mcat);
    }
    pthread_mutex_unlock(&be->lock);
    char path[4200], wal[4300], target[4500];
    project_path(be, id, path, sizeof(path));
    snprintf(wal, sizeof(wal), "%s.wal", path);
    const char *srcs[] = {path, wal};
    ds_status_t st = DS_OK;
    for (int i = 0; i < 2 && st == DS_OK; i++) {
        struct stat sb;
        if (!into_dir) {
            unlink(srcs[i]);
            continue;
        }
        if (lstat(srcs[i], &sb) != 0)
            continue;
        snprintf(target, sizeof(target), "%s/%s", into_dir, strrchr(srcs[i], '/') + 1);
        if (rename(srcs[i], target) != 0)
            st = ds_err_set(err, DS_UNAVAILABLE, "cannot move %s into %s: %s", srcs[i], into_dir, strerror(errno));
        else
            *moved = true;
    }
    pthread_mutex_lock(&be->lock);
    forget_proj(be, p);
    pthread_cond_broadcast(&be->idle);
    pthread_mutex_unlock(&be->lock);
    return st;
}

static ds_status_t retire_project(be_t *be, const char *id, const char *into_dir, bool *moved, ds_err_t *err)
{
    ds_status_t st = db_enter(be, err);
    if (st != DS_OK)
        return st;
    st = retire_project_used(be, id, into_dir, moved, err);
    note_failure(be);
    db_leave(be);
    return st;
}

static ds_status_t drop_project(be_t *be, const char *id, ds_err_t *err)
{
    return retire_project(be, id, NULL, NULL, err);
}

ds_status_t ddb_use_begin_read(be_t *be, ds_be_call_t *call, use_t *u)
{
    ds_status_t st = ddb_use_begin(be, call, false, u);
    u->read_only = true;
    return st;
}

/*
 * ddb_use_begin_read, then a read transaction: the metadata rows a fallback
 * lists and the tables whose bytes it then measures are one snapshot (a table
 * dropped meanwhile is still there; a row measured meanwhile is not counted
 * twice). End with snapshot_end, which ends the use too.
 */
static ds_status_t snapshot_begin(be_t *be, ds_be_call_t *call, use_t *u)
{
    ds_status_t st = ddb_use_begin_read(be, call, u);
    if (st != DS_OK)
        return st;
    if ((st = ds_ddb_exec(u->conn, call->err, "BEGIN TRANSACTION")) != DS_OK)
        ddb_use_end(u);
    return st;
}

static void snapshot_end(use_t *u)
{
    ds_err_t ignored = {0};
    ds_ddb_exec(u->conn, &ignored, "COMMIT");
    ddb_use_end(u);
}

/* The call's cancellation hook: stops the statement running on the connection (it fails INTERRUPT). */
static void interrupt_conn(void *ud)
{
    use_t *u = ud;
    atomic_store(&u->cancelled, true);
    duckdb_interrupt(u->conn);
}

ds_status_t ddb_use_begin(be_t *be, ds_be_call_t *call, bool create, use_t *u)
{
    memset(u, 0, sizeof(*u));
    atomic_init(&u->cancelled, false);
    u->be = be;
    u->err = call->err;
    u->call = call;
    ds_status_t st = db_enter(be, call->err);
    if (st != DS_OK)
        return st;
    st = acquire(be, call->project_id, create, &u->p, call->err);
    if (st != DS_OK)
        goto fail;
    if (duckdb_connect(be->db, &u->conn) == DuckDBError) {
        st = ds_err_set(call->err, DS_UNAVAILABLE, "cannot open a DuckDB connection");
        goto fail;
    }
    if (DS_HOST_HAS(be->host, cancel_hook) && be->host->cancel_hook) {
        if (!be->host->cancel_hook(call, interrupt_conn, u)) {
            st = ds_err_set(call->err, DS_CANCELLED, "the request was cancelled before its work started");
            goto fail;
        }
        u->hooked = true;
        ds_ddb_watch(u->conn, &u->cancelled);
    }
    if (be->test_hooks)
        test_hook(be, u);
    /* Unqualified names resolve inside the project file. */
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "USE ");
    ds_buf_ident(&sql, u->p->alias);
    st = ds_ddb_exec(u->conn, call->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_OK)
        return DS_OK;
fail:
    if (u->hooked) {
        be->host->cancel_unhook(call, u);
        ds_ddb_unwatch(u->conn);
        u->hooked = false;
    }
    if (u->conn)
        duckdb_disconnect(&u->conn);
    release(be, u->p);
    u->p = NULL;
    note_failure(be);
    db_leave(be);
    return st;
}

void ddb_data_changed(be_t *be, proj_t *p) { atomic_store(&p->data_epoch, atomic_fetch_add(&be->epoch_seq, 1) + 1); }

void ddb_use_end(use_t *u)
{
    if (u->hooked) {
        u->be->host->cancel_unhook(u->call, u);
        ds_ddb_unwatch(u->conn);
    }
    u->hooked = false;
    if (u->conn)
        duckdb_disconnect(&u->conn);
    if (u->p && u->err && u->err->status == DS_INSUFFICIENT_STORAGE) {
        pthread_mutex_lock(&u->be->lock);
        u->p->reload = true;
        pthread_mutex_unlock(&u->be->lock);
    }
    /* Before the call returns (and its write is acknowledged): no cached preview shows the data before it. */
    if (u->p && !u->read_only)
        ddb_data_changed(u->be, u->p);
    release(u->be, u->p);
    u->p = NULL;
    note_failure(u->be);
    db_leave(u->be);
}

/* Runs fn inside BEGIN/COMMIT; rolls back when fn fails. */
ds_status_t ddb_in_txn(use_t *u, ds_status_t (*fn)(use_t *, void *), void *ud)
{
    ddb_mcat_notes_clear(u);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, "BEGIN TRANSACTION");
    if (st != DS_OK)
        return st;
    st = fn(u, ud);
    /* A cancel between two statements interrupts nothing: it is caught here, before the commit. */
    if (st == DS_OK && u->hooked && u->be->host->cancelled(u->call))
        st = ds_err_set(u->err, DS_CANCELLED, "the request was cancelled; its changes were rolled back");
    if (st == DS_OK)
        st = ds_ddb_exec(u->conn, u->err, "COMMIT");
    if (st != DS_OK) {
        ds_err_t ignored = {0};
        ds_ddb_exec(u->conn, &ignored, "ROLLBACK");
        ddb_mcat_notes_clear(u);
        return st;
    }
    /*
     * Before the write returns: once it is acknowledged, every read shows it.
     * The cache reads the committed rows again, and measures the bytes of the
     * tables the write changed (now that DuckDB's storage shows its rows).
     */
    ddb_mcat_apply(u);
    return st;
}

/* ---- idle detach: memory back when projects sit idle ---- */

/*
 * Marks attached projects no call used for be->idle_detach_s `detaching` (at
 * most max); the caller detaches them with detach_victims. Caller holds be->lock.
 */
static size_t pick_idle_locked(be_t *be, double now, proj_t **v, size_t max)
{
    size_t n = 0;
    for (proj_t *p = be->projects; p && n < max; p = p->next) {
        if (!p->attached || busy(p) || p->dropping || p->creating || now - p->idle_since < (double)be->idle_detach_s)
            continue;
        p->detaching = true;
        be->n_detaching++;
        v[n++] = p;
    }
    return n;
}

/*
 * Pins (as a call would) attached projects that changed since their last
 * quiet checkpoint and that no call used for be->quiet_checkpoint_s (at most
 * max). Caller holds be->lock.
 */
static size_t pick_quiet_locked(be_t *be, double now, proj_t **v, size_t max)
{
    size_t n = 0;
    for (proj_t *p = be->projects; p && n < max && be->quiet_checkpoint_s > 0; p = p->next) {
        if (!p->attached || busy(p) || p->dropping || p->creating || p->reload ||
            p->quiet_epoch == atomic_load(&p->data_epoch) || now - p->idle_since < (double)be->quiet_checkpoint_s)
            continue;
        p->refs++;
        v[n++] = p;
    }
    return n;
}

/*
 * CHECKPOINT of each pinned project whose WAL holds anything, then unpins
 * them without making them less idle. A pinned project is neither detached
 * nor dropped meanwhile; calls use it as usual (DuckDB lets a checkpoint run
 * beside readers). Not on a nearly full filesystem: the checkpoint writes
 * about the WAL's size into the file, and DuckDB takes a checkpoint that
 * fails to write for a fatal error (the engine would be reopened); the detach
 * or the WAL's own threshold does it later. One try per quiet period: a
 * checkpoint that fails (a write under way) or is skipped is tried after the
 * project's next write.
 */
static void checkpoint_quiet(be_t *be, proj_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        proj_t *p = v[i];
        uint64_t epoch = atomic_load(&p->data_epoch);
        char wal[4200];
        project_path(be, p->id, wal, sizeof(wal) - 4);
        strcat(wal, ".wal");
        struct stat sb;
        struct statvfs vfs;
        bool pending = stat(wal, &sb) == 0 && sb.st_size > 0;
        bool room = !pending || statvfs(be->dir, &vfs) != 0 ||
                    (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize >= 2 * (int64_t)sb.st_size + (64ll << 20);
        if (pending && room) {
            ds_buf_t sql = {0};
            ds_buf_puts(&sql, "CHECKPOINT ");
            ds_buf_ident(&sql, p->alias);
            ds_err_t err = {0};
            if (admin_exec(be, ds_buf_cstr(&sql), &err) != DS_OK) {
                be->host->log(0, "duckdb", "project %s: quiet checkpoint not done: %s", p->id, err.message);
                note_failure(be);
            }
            ds_buf_free(&sql);
        }
        pthread_mutex_lock(&be->lock);
        p->quiet_epoch = epoch; /* one try per quiet period, done or not */
        if (--p->refs == 0)
            pthread_cond_broadcast(&be->idle);
        pthread_mutex_unlock(&be->lock);
    }
}

/*
 * DuckDB keeps memory of its own for as long as its instance lives: the
 * handles of the buffers queries used stay queued for eviction, and that
 * queue gives nothing back until the instance is closed (measured with DuckDB
 * alone: 17 MB of heap after 4,000 small upserts, 46 MB after 40,000, all of
 * it still held after DETACH, none after closing the instance). So once the
 * idle detach has detached every project and no call uses the instance, the
 * reaper closes it and opens a fresh one, as after a fatal error but without
 * one: calls arriving meanwhile wait in db_enter (milliseconds), and the next
 * project is attached as usual. Only when a project was attached since the
 * last open: once per idle period (the history sweep's attaches make one).
 */
static void recycle_idle_engine(be_t *be)
{
    pthread_mutex_lock(&be->lock);
    bool go = be->idle_detach_s > 0 && be->attached_since_open && !be->broken && !be->reopening &&
              be->db_users == 0 && be->n_attached == 0 && be->n_attaching == 0 && be->n_detaching == 0;
    for (proj_t *p = be->projects; go && p; p = p->next)
        go = !busy(p) && !p->dropping && !p->creating;
    if (go) {
        be->broken = true; /* new calls wait in db_enter, which leaves the reopening to this thread */
        be->reopening = true;
    }
    pthread_mutex_unlock(&be->lock);
    if (!go)
        return;
    ds_err_t err = {0};
    ds_status_t st = reopen_db(be, false, &err);
    pthread_mutex_lock(&be->lock);
    be->reopening = false;
    if (st == DS_OK)
        be->broken = false; /* else the next call tries again, as after a fatal error */
    pthread_cond_broadcast(&be->idle);
    pthread_mutex_unlock(&be->lock);
#ifdef __GLIBC__
    malloc_trim(0); /* the heap DuckDB freed, back to the system now: no request may follow for a while */
#endif
}

/*
 * The reaper's task (core/periodic.h, every second): checkpoints the projects
 * written and then quiet for be->quiet_checkpoint_s, and detaches the projects
 * idle for be->idle_detach_s, inside a db use so the engine cannot be reopened
 * meanwhile (and never while it awaits reopening).
 */
static void reap_idle(void *ud)
{
    be_t *be = ud;
    pthread_mutex_lock(&be->lock);
    bool skip = be->broken || be->reopening;
    pthread_mutex_unlock(&be->lock);
    ds_err_t err = {0};
    if (skip || db_enter(be, &err) != DS_OK)
        return;
    proj_t *v[MAX_VICTIMS];
    pthread_mutex_lock(&be->lock);
    size_t n = pick_quiet_locked(be, ddb_mono_s(), v, MAX_VICTIMS);
    pthread_mutex_unlock(&be->lock);
    if (n)
        checkpoint_quiet(be, v, n);
    pthread_mutex_lock(&be->lock);
    n = be->idle_detach_s > 0 ? pick_idle_locked(be, ddb_mono_s(), v, MAX_VICTIMS) : 0;
    pthread_mutex_unlock(&be->lock);
    if (n)
        detach_victims(be, v, n);
    db_leave(be);
    recycle_idle_engine(be);
}

/* ---- backend lifecycle ---- */

/*
 * Defense in depth: the engine runs only SQL duckstore builds, but should a
 * statement ever be built wrong, it still cannot read or write a file outside
 * the data directory (no read_csv('/etc/passwd'), no COPY TO elsewhere, no
 * ATTACH of another file, no extension loading), and the configuration is
 * locked so no statement can lift that. Test hooks (DUCKSTORE_TEST_HOOKS=1)
 * leave the configuration unlocked: their fault injection sets a debug option.
 */
static ds_status_t confine_engine(be_t *be, ds_err_t *err)
{
    duckdb_connection c;
    if (duckdb_connect(be->db, &c) == DuckDBError)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot open a DuckDB connection");
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/", be->host->data_dir);
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "SET allowed_directories = [");
    ds_buf_literal(&sql, dir);
    ds_buf_puts(&sql, "]; SET enable_external_access = false;");
    if (!be->test_hooks)
        ds_buf_puts(&sql, " SET lock_configuration = true;");
    ds_status_t st = ds_ddb_exec(c, err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    duckdb_disconnect(&c);
    return st;
}

/* The duration setting DUCKSTORE_BE_DUCKDB_<key> in seconds (def when unset); zero_means says what 0 does. */
static ds_status_t duration_setting(const ds_host_api_t *host, const char *key, int64_t def, const char *zero_means,
                                    int64_t *out, ds_err_t *err)
{
    const char *v = host->setting ? host->setting("duckdb", key) : NULL;
    *out = def;
    if (v && (!ds_parse_duration(v, out) || *out < 0))
        return ds_err_set(err, DS_INVALID_ARGUMENT,
                          "DUCKSTORE_BE_DUCKDB_%s: \"%s\" is not a duration (seconds, or e.g. 5s, 5m; 0 %s)", key, v,
                          zero_means);
    return DS_OK;
}

/* Opens the DuckDB instance (in-memory main database) into be->db with the host's settings. */
static ds_status_t open_engine(be_t *be, ds_err_t *err)
{
    const ds_host_api_t *host = be->host;
    duckdb_config cfg = NULL;
    char *open_err = NULL;
    char buf[64], tmpdir[4200];
    be->db = NULL;
    if (duckdb_create_config(&cfg) == DuckDBError)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", host->data_dir);
    snprintf(buf, sizeof(buf), "%lldB", (long long)host->memory_limit_bytes);
    duckdb_set_config(cfg, "memory_limit", buf);
    if (host->threads > 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)host->threads);
        duckdb_set_config(cfg, "threads", buf);
    }
    duckdb_set_config(cfg, "temp_directory", tmpdir);
    duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
    duckdb_set_config(cfg, "autoload_known_extensions", "false");
    /* Give memory freed after big imports (staging, sorts) back to the OS instead of keeping it. */
    duckdb_set_config(cfg, "allocator_background_threads", "true");
    duckdb_set_config(cfg, "allocator_flush_threshold", "64MB");
    /*
     * DuckDB's late materialization turns a plain `LIMIT n` with n above this
     * threshold into a semi-join on rowid with a second scan of the whole
     * table and a sort: a 100-row preview of a 100,000-row table cost 2 ms
     * of CPU that way against 0.2 ms for the scan alone. At the preview's
     * largest limit no preview takes that path; an ORDER BY with a limit up
     * to the threshold (a top-n) still gets late materialization, where it
     * saves reading the columns that are not sorted on.
     */
    snprintf(buf, sizeof(buf), "%d", DS_PREVIEW_MAX_ROWS);
    duckdb_set_config(cfg, "late_materialization_max_rows", buf);
    ds_status_t st = DS_OK;
    if (duckdb_open_ext(NULL, &be->db, cfg, &open_err) == DuckDBError) {
        st = ds_err_set(err, DS_UNAVAILABLE, "cannot start DuckDB: %s", open_err ? open_err : "unknown error");
        duckdb_free(open_err);
        be->db = NULL;
    }
    duckdb_destroy_config(&cfg);
    if (st == DS_OK && (st = confine_engine(be, err)) != DS_OK) {
        duckdb_close(&be->db);
        be->db = NULL;
    }
    return st;
}

static ds_status_t be_open(const ds_host_api_t *host, void **self, ds_err_t *err)
{
    be_t *be = calloc(1, sizeof(*be));
    char tmpdir[4200];
    if (!be)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    be->host = host;
    be->max_open = host->max_open_projects > 0 ? host->max_open_projects : 256;
    const char *hooks = getenv("DUCKSTORE_TEST_HOOKS");
    be->test_hooks = hooks && strcmp(hooks, "1") == 0;
    pthread_mutex_init(&be->lock, NULL);
    pthread_cond_init(&be->idle, NULL);
    snprintf(be->dir, sizeof(be->dir), "%s/duckdb", host->data_dir);
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", host->data_dir);
    if ((mkdir(be->dir, 0750) != 0 && errno != EEXIST) || (mkdir(tmpdir, 0750) != 0 && errno != EEXIST)) {
        ds_err_set(err, DS_UNAVAILABLE, "cannot create %s: %s", be->dir, strerror(errno));
        goto fail;
    }
    ddb_compact_leftovers_all(be->dir);
    const char *pcs = host->setting ? host->setting("duckdb", "PREVIEW_CACHE") : NULL;
    int64_t pc_bytes = 64ll << 20;
    if (pcs && !ds_parse_bytes(pcs, &pc_bytes)) {
        ds_err_set(err, DS_INVALID_ARGUMENT,
                   "DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE: \"%s\" is not a size (bytes, or e.g. 64MiB; 0 turns the cache off)",
                   pcs);
        goto fail;
    }
    be->pcache = ddb_pcache_create((size_t)pc_bytes);
    if (duration_setting(host, "IDLE_DETACH", 60, "keeps idle projects attached", &be->idle_detach_s, err) != DS_OK ||
        duration_setting(host, "QUIET_CHECKPOINT", 5, "turns it off", &be->quiet_checkpoint_s, err) != DS_OK)
        goto fail;
    be->lru = ds_lru_create();
    if (!be->lru) {
        ds_err_set(err, DS_INTERNAL, "out of memory");
        goto fail;
    }
    if (open_engine(be, err) != DS_OK)
        goto fail;
    be->fatal_seen = ds_ddb_fatal_events();
    if (be->test_hooks)
        host->log(2, "duckdb", "DUCKSTORE_TEST_HOOKS=1: test hooks are enabled (never in production)");
    ds_err_t rerr = {0};
    if ((be->idle_detach_s > 0 || be->quiet_checkpoint_s > 0) &&
        ds_periodic_start(&be->reaper, "ddb-idle", 1, reap_idle, be, &rerr) != DS_OK)
        host->log(2, "duckdb", "%s: idle projects stay attached and are not checkpointed when quiet", rerr.message);
    *self = be;
    return DS_OK;
fail:
    ds_lru_destroy(&be->lru);
    ddb_pcache_destroy(&be->pcache);
    pthread_mutex_destroy(&be->lock);
    pthread_cond_destroy(&be->idle);
    free(be);
    return err->status;
}

static void be_close(void *self)
{
    be_t *be = self;
    if (!be)
        return;
    ds_periodic_stop(&be->reaper);
    pthread_mutex_lock(&be->lock);
    for (proj_t *p = be->projects; p; p = p->next) {
        if (!p->attached)
            continue;
        /* Shutdown: no call runs any more, so the cache's locks cannot wait for be->lock here. */
        store_bytes(be, p);
        /* A checkpoint folds the WAL into the file, so the next start reads one clean file. */
        ds_buf_t sql = {0};
        ds_err_t e = {0};
        ds_buf_puts(&sql, "CHECKPOINT ");
        ds_buf_ident(&sql, p->alias);
        if (admin_exec(be, ds_buf_cstr(&sql), &e) != DS_OK)
            be->host->log(2, "duckdb", "checkpoint of project %s failed: %s", p->id, e.message);
        ds_buf_free(&sql);
        if (run_detach(be, p, &e) != DS_OK)
            be->host->log(2, "duckdb", "detach of project %s failed: %s", p->id, e.message);
    }
    while (be->projects)
        forget_proj(be, be->projects);
    pthread_mutex_unlock(&be->lock);
    duckdb_close(&be->db);
    ds_lru_destroy(&be->lru);
    ddb_pcache_destroy(&be->pcache);
    pthread_mutex_destroy(&be->lock);
    pthread_cond_destroy(&be->idle);
    free(be);
}

static ds_status_t be_health(void *self, ds_err_t *err)
{
    be_t *be = self;
    duckdb_connection c;
    ds_status_t st = db_enter(be, err);
    if (st != DS_OK)
        return st;
    if (duckdb_connect(be->db, &c) == DuckDBError) {
        st = ds_err_set(err, DS_UNAVAILABLE, "DuckDB does not accept connections");
    } else {
        st = ds_ddb_exec(c, err, "SELECT 1");
        duckdb_disconnect(&c);
    }
    note_failure(be);
    db_leave(be);
    if (st == DS_OK && access(be->dir, W_OK) != 0)
        st = ds_err_set(err, DS_UNAVAILABLE, "project directory is not writable: %s", strerror(errno));
    return st;
}

static void be_runtime_stats(void *self, ds_be_runtime_stats_t *out)
{
    be_t *be = self;
    pthread_mutex_lock(&be->lock);
    out->open_projects = be->n_attached;
    out->open_projects_peak = be->peak_attached;
    out->engine_restarts = be->restarts;
    out->calls_in_use = be->db_users;
    pthread_mutex_unlock(&be->lock);
    ddb_pcache_stats_t pc;
    ddb_pcache_stats(be->pcache, &pc);
    out->preview_cache_hits = (int64_t)pc.hits;
    out->preview_cache_misses = (int64_t)pc.misses;
    out->preview_cache_bytes = (int64_t)pc.bytes;
}

static int64_t be_engine_memory(void *self)
{
    be_t *be = self;
    ds_err_t err = {0};
    pthread_mutex_lock(&be->lock);
    bool broken = be->broken; /* a scrape does not wait for a restart (db_enter would) */
    pthread_mutex_unlock(&be->lock);
    if (broken || db_enter(be, &err) != DS_OK)
        return -1;
    int64_t bytes = -1;
    duckdb_connection c;
    if (duckdb_connect(be->db, &c) != DuckDBError) {
        duckdb_result r;
        if (duckdb_query(c, "SELECT COALESCE(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()", &r) !=
            DuckDBError)
            bytes = ds_ddb_int(&r, 0, 0);
        duckdb_destroy_result(&r);
        duckdb_disconnect(&c);
    }
    db_leave(be);
    return bytes;
}

static ds_status_t be_project_list_stored(void *self, void (*cb)(const char *, void *), void *ud,
                                          ds_err_t *err)
{
    be_t *be = self;
    DIR *d = opendir(be->dir);
    if (!d)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot read %s: %s", be->dir, strerror(errno));
    struct dirent *e;
    const char *prefix = "project_", *suffix = "_main.duckdb";
    size_t pl = strlen(prefix), sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= pl + sl || strncmp(e->d_name, prefix, pl) != 0 || strcmp(e->d_name + n - sl, suffix) != 0)
            continue;
        char id[DS_PROJECT_ID_MAX + 1];
        size_t idl = n - pl - sl;
        if (idl > DS_PROJECT_ID_MAX)
            continue;
        memcpy(id, e->d_name + pl, idl);
        id[idl] = '\0';
        cb(id, ud);
    }
    closedir(d);
    return DS_OK;
}

/* ---- projects ---- */

/* A new file gets the version column in its CREATE TABLE; older files get it from DDB_META_V2_DDL on attach. */
static const char *meta_ddl =
    "CREATE SCHEMA IF NOT EXISTS " META ";"
    "CREATE SEQUENCE IF NOT EXISTS " META ".version_seq;"
    "CREATE TABLE IF NOT EXISTS " META ".buckets (id VARCHAR NOT NULL, stage VARCHAR NOT NULL, "
    "name VARCHAR NOT NULL, description VARCHAR, created_at BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS " META ".tables (bucket VARCHAR NOT NULL, name VARCHAR NOT NULL, "
    "primary_key VARCHAR NOT NULL DEFAULT '', created_at BIGINT NOT NULL, last_import_at BIGINT, "
    "last_change_at BIGINT, row_count BIGINT NOT NULL DEFAULT 0, byte_count BIGINT NOT NULL DEFAULT 0, "
    "version BIGINT DEFAULT nextval('" META ".version_seq'));"
    DDB_META_BRANCH_TABLES_DDL DDB_META_HISTORY_DDL DDB_META_ALIASES_DDL;

static ds_status_t meta_init(use_t *u, void *ud)
{
    (void)ud;
    ddb_mcat_note_all(u);
    return ds_ddb_exec(u->conn, u->err, meta_ddl);
}

static ds_status_t be_project_create(void *self, ds_be_call_t *call)
{
    be_t *be = self;
    use_t u;
    char path[4200];
    struct stat sb;
    project_path(be, call->project_id, path, sizeof(path));
    if (stat(path, &sb) == 0)
        return ds_err_set(call->err, DS_ALREADY_EXISTS, "storage for project \"%s\" already exists",
                          call->project_id);
    ds_status_t st = ddb_use_begin(be, call, true, &u);
    if (st == DS_ALREADY_EXISTS || st == DS_CONFLICT)
        return st; /* another call creates or drops it: not ours to clean up */
    if (st == DS_OK) {
        st = ddb_in_txn(&u, meta_init, NULL);
        /*
         * Best effort: the new file's metadata is committed (the WAL holds
         * it), the checkpoint only writes it into the file now. DuckDB
         * refuses a CHECKPOINT while another connection's write transaction
         * is open (seen with many projects created at once), and that must
         * not fail the creation.
         */
        if (st == DS_OK) {
            ds_err_t ce = {0};
            if (ds_ddb_exec(u.conn, &ce, "CHECKPOINT") != DS_OK)
                be->host->log(2, "duckdb", "project %s: checkpoint after creation skipped: %s", call->project_id,
                              ce.message);
        }
        if (st == DS_OK) {
            pthread_mutex_lock(&be->lock);
            u.p->creating = false;
            pthread_mutex_unlock(&be->lock);
        }
        ddb_use_end(&u);
    }
    if (st != DS_OK) {
        /*
         * The entry stays `creating` (no other call may use the half-made
         * file) until its removal. A removal that meets an engine failure is
         * tried again once the engine has been reopened.
         */
        ds_err_t e = {0};
        ds_status_t dst = DS_OK;
        be->host->log(2, "duckdb", "project %s creation failed (%s), removing its file", call->project_id,
                      call->err->message);
        for (int attempt = 0; attempt < 3; attempt++) {
            ds_err_clear(&e);
            dst = drop_project(be, call->project_id, &e);
            if (dst != DS_UNAVAILABLE)
                break;
        }
        /* DS_CONFLICT: a drop of the id runs already and removes the file. */
        if (dst != DS_OK && dst != DS_CONFLICT) {
            be->host->log(3, "duckdb", "project %s: cannot remove the file of its failed creation: %s",
                          call->project_id, e.message);
            pthread_mutex_lock(&be->lock);
            proj_t *p = find_proj(be, call->project_id);
            if (p && p->creating && !p->dropping)
                p->creating = false;
            pthread_mutex_unlock(&be->lock);
        }
    }
    return st;
}

static ds_status_t be_project_drop(void *self, ds_be_call_t *call)
{
    return drop_project(self, call->project_id, call->err);
}

/* Exact row count of one table. */
ds_status_t ddb_count_rows(use_t *u, const char *bucket, const char *table, int64_t *rows)
{
    ds_buf_t sql = {0};
    duckdb_result r;
    ds_buf_puts(&sql, "SELECT count(*) FROM ");
    ds_buf_ident(&sql, bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, table);
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    *rows = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    return DS_OK;
}

/*
 * Bytes a table's data occupies: the distinct storage blocks its column
 * segments use, times the block size; data not yet checkpointed (still in the
 * WAL) is counted by its in-memory segment size estimate.
 */
ds_status_t ddb_bytes_known(duckdb_connection c, const char *alias, const char *bucket, const char *table,
                            int64_t *bytes, ds_err_t *err)
{
    if (*bytes != DDB_BYTES_UNMEASURED)
        return DS_OK;
    ds_buf_t name = {0}, sql = {0};
    if (alias) {
        ds_buf_ident(&name, alias);
        ds_buf_puts(&name, ".");
    }
    ds_buf_ident(&name, bucket);
    ds_buf_puts(&name, ".");
    ds_buf_ident(&name, table);
    ds_buf_puts(&sql, "SELECT coalesce(count(DISTINCT block_id) FILTER (WHERE persistent), 0) * 262144 "
                      "+ coalesce(sum(count) FILTER (WHERE NOT persistent), 0) * 8 FROM pragma_storage_info(");
    ds_buf_literal(&sql, ds_buf_cstr(&name));
    ds_buf_puts(&sql, ")");
    duckdb_result r;
    ds_status_t st = ds_ddb_run(c, err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&name);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    *bytes = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    return DS_OK;
}

/*
 * Writes bucket.table's metadata row as a DELETE of the row and an INSERT of
 * its new version, never as an UPDATE. DuckDB 1.4 has a race between an
 * UPDATE and rows appended to the same table by another transaction's commit
 * (its update path reads a column's data and its validity separately; an
 * append in between makes them differ and DuckDB raises an INTERNAL error
 * that invalidates the whole instance: duckdb/duckdb#19688, fixed in 1.5).
 * _ds.tables gets rows appended by every table create while imports rewrite
 * their table's row, so no statement of this backend UPDATEs it. A DELETE
 * conflicts like an UPDATE: two transactions rewriting one table's row
 * conflict, and one of them retries.
 */
ds_status_t ddb_meta_write(use_t *u, const char *bucket, const char *table, const ddb_meta_t *m)
{
    char rows_s[32], bytes_s[32];
    if (m->counts) {
        int64_t rows = 0;
        ds_status_t st = ddb_count_rows(u, bucket, table, &rows);
        if (st != DS_OK)
            return st;
        snprintf(rows_s, sizeof(rows_s), "%lld", (long long)rows);
        /*
         * Bytes cannot be measured here: inside the transaction DuckDB's storage
         * does not show its own rows yet. The row says "unmeasured"; readers
         * measure after the commit (the cache at once, ddb_mcat_apply), and the
         * figure is stored when the file is detached (store_bytes).
         */
        snprintf(bytes_s, sizeof(bytes_s), "%d", DDB_BYTES_UNMEASURED);
    }
    ddb_mcat_note_table(u, bucket, table);
    /*
     * Read, delete, insert: all in the caller's transaction, so what is read
     * is the row being deleted (DuckDB's DELETE ... RETURNING returns nothing
     * for rows this transaction wrote itself, so it cannot be used here).
     */
    duckdb_result r;
    const char *key[] = {bucket, table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT bucket, name, primary_key, created_at, last_import_at, last_change_at, "
                                "row_count, byte_count FROM " META ".tables "
                                "WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                                2, key);
    if (st != DS_OK)
        return st;
    st = ds_ddb_run(u->conn, u->err, NULL,
                    "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2, key);
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        char *v[8];
        const char *params[8];
        for (int c = 0; c < 8; c++) {
            v[c] = ds_ddb_cell(&r, (idx_t)c, i);
            params[c] = v[c];
            if (!v[c] && !duckdb_value_is_null(&r, (idx_t)c, i))
                st = ddb_oom(u->err);
        }
        if (m->primary_key)
            params[2] = m->primary_key;
        if (m->import_at)
            params[4] = m->import_at;
        if (m->change_at)
            params[5] = m->change_at;
        if (m->counts) {
            params[6] = rows_s;
            params[7] = bytes_s;
        }
        if (st == DS_OK)
            st = ds_ddb_run(u->conn, u->err, NULL,
                            "INSERT INTO " META ".tables (bucket, name, primary_key, created_at, last_import_at, "
                            "last_change_at, row_count, byte_count) VALUES ($1, $2, $3, CAST($4 AS BIGINT), "
                            "CAST($5 AS BIGINT), CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($8 AS BIGINT))",
                            8, params);
        for (int c = 0; c < 8; c++)
            free(v[c]);
    }
    duckdb_destroy_result(&r);
    return st;
}

ds_status_t ddb_check_value(use_t *u, const char *field, const char *what, const char *value, const char *type)
{
    duckdb_result r;
    ds_buf_t q = {0};
    /* type is canonical (core/types.h grammar), never client text. */
    ds_buf_printf(&q, "SELECT TRY_CAST($1 AS %s) IS NULL", type);
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&q), 1, &value);
    ds_buf_free(&q);
    if (st != DS_OK)
        return st;
    bool bad = duckdb_value_boolean(&r, 0, 0);
    duckdb_destroy_result(&r);
    if (bad)
        return ds_err_setf(u->err, DS_INVALID_ARGUMENT, field, "%s: \"%.100s\" is not a valid %s value", what, value,
                           type);
    return DS_OK;
}

ds_status_t ddb_meta_counts(use_t *u, const char *bucket, const char *table, int64_t *rows, int64_t *bytes)
{
    /* The cache read them right after the write committed (ddb_in_txn): what GET table says. */
    if (ddb_mcat_counts(u->p, bucket, table, rows, bytes))
        return DS_OK;
    duckdb_result r;
    const char *key[] = {bucket, table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT row_count, byte_count FROM " META ".tables "
                                "WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                                2, key);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) == 0)
        st = ds_err_set(u->err, DS_NOT_FOUND, "table %s.%s has no metadata row", bucket, table);
    *rows = st == DS_OK ? ds_ddb_int(&r, 0, 0) : 0;
    *bytes = st == DS_OK ? ds_ddb_int(&r, 1, 0) : 0;
    duckdb_destroy_result(&r);
    return st == DS_OK ? ddb_bytes_known(u->conn, NULL, bucket, table, bytes, u->err) : st;
}

ds_status_t ddb_refresh_counts(use_t *u, const char *bucket, const char *table)
{
    ddb_meta_t m = {.counts = true};
    return ddb_meta_write(u, bucket, table, &m);
}

ds_status_t ddb_sql_project_stats(void *self, ds_be_call_t *call, ds_be_project_stats_t *out)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    memset(out, 0, sizeof(*out));
    ds_status_t st = snapshot_begin(be, call, &u);
    if (st != DS_OK)
        return st;
    st = ds_ddb_run(u.conn, call->err, &r, "SELECT (SELECT count(*) FROM " META ".buckets)", 0, NULL);
    if (st != DS_OK)
        goto done;
    out->buckets = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    /* The sums of what each table reports (GET table), so the project's figures agree with its tables'. */
    st = ds_ddb_run(u.conn, call->err, &r,
                    "SELECT count(*), coalesce(sum(row_count), 0), coalesce(sum(byte_count) FILTER (WHERE byte_count "
                    ">= 0), 0) FROM " META ".tables",
                    0, NULL);
    if (st != DS_OK)
        goto done;
    out->tables = ds_ddb_int(&r, 0, 0);
    out->rows = ds_ddb_int(&r, 1, 0);
    out->bytes = ds_ddb_int(&r, 2, 0);
    duckdb_destroy_result(&r);
    /* Tables whose bytes a write left unmeasured: measured one by one. */
    st = ds_ddb_run(u.conn, call->err, &r, "SELECT bucket, name FROM " META ".tables WHERE byte_count < 0", 0, NULL);
    if (st != DS_OK)
        goto done;
    for (idx_t i = 0; i < duckdb_row_count(&r) && st == DS_OK; i++) {
        char *b = ds_ddb_cell(&r, 0, i), *n = ds_ddb_cell(&r, 1, i);
        int64_t bytes = DDB_BYTES_UNMEASURED;
        st = b && n ? ddb_bytes_known(u.conn, NULL, b, n, &bytes, call->err) : ddb_oom(call->err);
        out->bytes += st == DS_OK ? bytes : 0;
        free(b);
        free(n);
    }
    duckdb_destroy_result(&r);
done:
    snapshot_end(&u);
    return st;
}

/* ---- buckets ---- */

ds_status_t ddb_bucket_create_txn(use_t *u, void *ud)
{
    const ds_be_bucket_t *b = ud;
    ds_buf_t sql = {0};
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)b->created_at);
    ds_buf_puts(&sql, "CREATE SCHEMA ");
    ds_buf_ident(&sql, b->id);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_ALREADY_EXISTS)
        return ds_err_set(u->err, DS_ALREADY_EXISTS, "bucket \"%s\" already exists", b->id);
    if (st != DS_OK)
        return st;
    ddb_mcat_note_bucket(u, b->id);
    const char *params[] = {b->id, b->stage, b->name, b->description, created};
    return ds_ddb_run(u->conn, u->err, NULL,
                      "INSERT INTO " META ".buckets VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT))", 5, params);
}

static ds_status_t be_bucket_create(void *self, ds_be_call_t *call, const ds_be_bucket_t *bucket)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    st = ddb_in_txn_recorded(&u, ddb_bucket_create_txn, (void *)bucket);
    ddb_use_end(&u);
    return st;
}

/* Buckets with their table counts; where is "" or a WHERE clause over b. */
static void bucket_query(ds_buf_t *sql, const char *where)
{
    ds_buf_printf(sql,
                  "SELECT b.id, b.stage, b.name, b.description, b.created_at, count(t.name) FROM " META ".buckets b "
                  "LEFT JOIN " META ".tables t ON lower(t.bucket) = lower(b.id) %s "
                  "GROUP BY b.id, b.stage, b.name, b.description, b.created_at ORDER BY b.id",
                  where);
}

static void bucket_from_row(ds_be_call_t *call, const ds_host_api_t *host, duckdb_result *r, idx_t row,
                            ds_be_bucket_t *out)
{
    char *v[4];
    for (int c = 0; c < 4; c++)
        v[c] = ds_ddb_cell(r, (idx_t)c, row);
    out->id = host->strdup(call, v[0]);
    out->stage = host->strdup(call, v[1]);
    out->name = host->strdup(call, v[2]);
    out->description = v[3] ? host->strdup(call, v[3]) : NULL;
    out->created_at = ds_ddb_int(r, 4, row);
    out->table_count = ds_ddb_int(r, 5, row);
    for (int c = 0; c < 4; c++)
        free(v[c]);
}

ds_status_t ddb_sql_bucket_get(void *self, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    ds_buf_t sql = {0};
    bucket_query(&sql, "WHERE lower(b.id) = lower($1)");
    const char *params[] = {bucket};
    st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 1, params);
    ds_buf_free(&sql);
    if (st == DS_OK) {
        if (duckdb_row_count(&r) == 0)
            st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", bucket);
        else
            bucket_from_row(call, be->host, &r, 0, out);
        duckdb_destroy_result(&r);
    }
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_sql_bucket_list(void *self, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    *items = NULL;
    *n = 0;
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    ds_buf_t sql = {0};
    bucket_query(&sql, "");
    st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st == DS_OK) {
        idx_t rows = duckdb_row_count(&r);
        *items = be->host->alloc(call, sizeof(ds_be_bucket_t) * (rows ? rows : 1));
        if (!*items) {
            rows = 0;
            st = ddb_oom(call->err);
        }
        for (idx_t i = 0; i < rows; i++)
            bucket_from_row(call, be->host, &r, i, &(*items)[i]);
        *n = rows;
        duckdb_destroy_result(&r);
    }
    ddb_use_end(&u);
    return st;
}

typedef struct {
    const char *bucket;
    bool force;
} bucket_drop_t;

static ds_status_t bucket_drop_txn(use_t *u, void *ud)
{
    bucket_drop_t *d = ud;
    duckdb_result r;
    const char *params[] = {d->bucket};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT (SELECT count(*) FROM " META ".buckets WHERE lower(id) = lower($1)), "
                                "(SELECT count(*) FROM " META ".tables WHERE lower(bucket) = lower($1))",
                                1, params);
    if (st != DS_OK)
        return st;
    int64_t exists = ds_ddb_int(&r, 0, 0), tables = ds_ddb_int(&r, 1, 0);
    duckdb_destroy_result(&r);
    if (!exists)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", d->bucket);
    if (tables > 0 && !d->force)
        return ds_err_set(u->err, DS_CONFLICT,
                          "bucket \"%s\" is not empty (%lld tables); delete with force=true to drop its tables too",
                          d->bucket, (long long)tables);
    /* Each table's history keeps its last rows, so a table dropped with its bucket can be brought back. */
    if (tables > 0) {
        if ((st = ds_ddb_run(u->conn, u->err, &r,
                             "SELECT bucket, name FROM " META ".tables WHERE lower(bucket) = lower($1)", 1, params)) !=
            DS_OK)
            return st;
        for (idx_t i = 0; i < duckdb_row_count(&r) && st == DS_OK; i++) {
            char *b = ds_ddb_cell(&r, 0, i), *t = ds_ddb_cell(&r, 1, i);
            st = b && t ? ddb_hist_drop(u, b, t) : ddb_oom(u->err);
            free(b);
            free(t);
        }
        duckdb_destroy_result(&r);
        if (st != DS_OK)
            return st;
    }
    ds_buf_t sql = {0};
    ddb_mcat_note_bucket(u, d->bucket);
    ds_buf_puts(&sql, "DROP SCHEMA ");
    ds_buf_ident(&sql, d->bucket);
    ds_buf_puts(&sql, " CASCADE");
    st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1)", 1, params);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".buckets WHERE lower(id) = lower($1)", 1, params);
    return st;
}

ds_status_t ddb_bucket_drop_txn(use_t *u, const char *bucket, bool force)
{
    bucket_drop_t d = {bucket, force};
    return bucket_drop_txn(u, &d);
}

static ds_status_t be_bucket_drop(void *self, ds_be_call_t *call, const char *bucket, bool force)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    bucket_drop_t d = {bucket, force};
    st = ddb_in_txn_recorded(&u, bucket_drop_txn, &d);
    ddb_use_end(&u);
    return st;
}

/* ---- tables ---- */

ds_status_t ddb_table_create_txn(use_t *u, void *ud)
{
    const ds_be_table_t *t = ud;
    duckdb_result r;
    const char *bp[] = {t->bucket};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, "SELECT count(*) FROM " META ".buckets WHERE lower(id) = lower($1)", 1, bp);
    if (st != DS_OK)
        return st;
    int64_t exists = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    if (!exists)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", t->bucket);
    ds_buf_t sql = {0}, pk = {0};
    ds_buf_puts(&sql, "CREATE TABLE ");
    ds_buf_ident(&sql, t->bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, t->name);
    ds_buf_puts(&sql, " (");
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        ds_buf_ident(&sql, c->name);
        /* The type was canonicalized by the core against a fixed grammar. */
        ds_buf_printf(&sql, " %s", c->type);
        if (c->default_value) {
            char what[128];
            snprintf(what, sizeof(what), "column \"%s\": default", c->name);
            if ((st = ddb_check_value(u, "default", what, c->default_value, c->type)) != DS_OK) {
                ds_buf_free(&sql);
                return st;
            }
            ds_buf_puts(&sql, " DEFAULT CAST(");
            ds_buf_literal(&sql, c->default_value);
            ds_buf_printf(&sql, " AS %s)", c->type);
        }
        if (!c->nullable)
            ds_buf_puts(&sql, " NOT NULL");
        ds_buf_puts(&sql, ", ");
    }
    ds_buf_puts(&sql, "\"_timestamp\" TIMESTAMP)");
    st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_ALREADY_EXISTS)
        return ds_err_set(u->err, DS_ALREADY_EXISTS, "table \"%s.%s\" already exists", t->bucket, t->name);
    if (st != DS_OK)
        return st;
    ddb_mcat_note_table(u, t->bucket, t->name);
    for (size_t i = 0; i < t->n_primary_key; i++) {
        if (i)
            ds_buf_puts(&pk, ",");
        ds_buf_puts(&pk, t->primary_key[i]);
    }
    if (ds_buf_failed(&pk)) {
        ds_buf_free(&pk);
        return ds_err_set(u->err, DS_UNAVAILABLE, "out of memory while building the primary key; nothing was changed");
    }
    char created[32];
    snprintf(created, sizeof(created), "%lld", (long long)t->created_at);
    const char *params[] = {t->bucket, t->name, ds_buf_cstr(&pk), created};
    st = ds_ddb_run(u->conn, u->err, NULL,
                    "INSERT INTO " META ".tables (bucket, name, primary_key, created_at) "
                    "VALUES ($1, $2, $3, CAST($4 AS BIGINT))",
                    4, params);
    ds_buf_free(&pk);
    return st;
}

/* ddb_table_create_txn, and the new table's history begins with it. */
static ds_status_t table_create_hist_txn(use_t *u, void *ud)
{
    const ds_be_table_t *t = ud;
    ds_status_t st = ddb_table_create_txn(u, ud);
    return st == DS_OK ? ddb_hist_register(u, t->bucket, t->name) : st;
}

static ds_status_t be_table_create(void *self, ds_be_call_t *call, const ds_be_table_t *def)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    st = ddb_in_txn_recorded(&u, table_create_hist_txn, (void *)def);
    ddb_use_end(&u);
    return st;
}

/* Splits a comma list into an arena array. */
static void split_pk(ds_be_call_t *call, const ds_host_api_t *host, const char *list, const char ***out, size_t *n)
{
    *n = 0;
    *out = NULL;
    if (!list || !*list)
        return;
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    *out = host->alloc(call, sizeof(char *) * count);
    char *copy = host->strdup(call, list);
    if (!*out || !copy) {
        *out = NULL; /* the arena's failure fails the request (see be.h) */
        return;
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        (*out)[(*n)++] = tok;
}

/*
 * The literal inside a default DuckDB reports as "CAST('x' AS T)" (the way
 * table_create_txn writes defaults), unescaped; other expressions as they are.
 */
static char *default_literal(ds_be_call_t *call, const ds_host_api_t *host, const char *expr)
{
    size_t n = strlen(expr);
    if (strncmp(expr, "CAST('", 6) != 0)
        return host->strdup(call, expr);
    char *out = host->alloc(call, n);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = expr + 6; *p; p++) {
        if (*p == '\'') {
            if (p[1] != '\'')
                return out;
            p++;
        }
        out[o++] = *p;
    }
    return host->strdup(call, expr);
}

/* Fills columns (without _timestamp) of bucket.table from DuckDB's catalog. */
ds_status_t ddb_load_columns(use_t *u, ds_be_call_t *call, ds_be_table_t *t)
{
    /*
     * pragma_table_info reads one table. duckdb_columns() would scan every
     * attached database, holding a reference to each while it runs, and a
     * database detached meanwhile would keep its file open behind our back.
     */
    duckdb_result r;
    ds_buf_t name = {0}, sql = {0};
    ds_buf_ident(&name, u->p->alias);
    ds_buf_puts(&name, ".");
    ds_buf_ident(&name, t->bucket);
    ds_buf_puts(&name, ".");
    ds_buf_ident(&name, t->name);
    ds_buf_puts(&sql, "SELECT name, type, CASE WHEN \"notnull\" THEN 'false' ELSE 'true' END, dflt_value "
                      "FROM pragma_table_info(");
    ds_buf_literal(&sql, ds_buf_cstr(&name));
    ds_buf_puts(&sql, ") WHERE name <> '_timestamp' ORDER BY cid");
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&name);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    t->columns = u->be->host->alloc(call, sizeof(ds_be_column_t) * (n ? n : 1));
    if (!t->columns) {
        duckdb_destroy_result(&r);
        return ddb_oom(u->err);
    }
    for (idx_t i = 0; i < n; i++) {
        char *v[4];
        for (int c = 0; c < 4; c++)
            v[c] = ds_ddb_cell(&r, (idx_t)c, i);
        ds_be_column_t *c = &t->columns[i];
        c->name = u->be->host->strdup(call, v[0]);
        c->type = u->be->host->strdup(call, v[1]);
        c->nullable = v[2] && strcmp(v[2], "true") == 0;
        c->default_value = v[3] ? default_literal(call, u->be->host, v[3]) : NULL;
        for (int k = 0; k < 4; k++)
            free(v[k]);
    }
    t->n_columns = n;
    duckdb_destroy_result(&r);
    for (idx_t i = 0; i < n; i++)
        if (!t->columns[i].name || !t->columns[i].type)
            return ddb_oom(u->err);
    return DS_OK;
}

static const char *table_select = "SELECT bucket, name, primary_key, created_at, last_import_at, last_change_at, "
                                  "row_count, byte_count FROM " META ".tables";

/* Fills one table's metadata (and, when with_columns, its columns) from a row of table_select. */
static ds_status_t table_meta_from_row(use_t *u, ds_be_call_t *call, duckdb_result *r, idx_t row, ds_be_table_t *t,
                                       bool with_columns)
{
    const ds_host_api_t *host = u->be->host;
    char *b = ds_ddb_cell(r, 0, row), *n = ds_ddb_cell(r, 1, row), *pk = ds_ddb_cell(r, 2, row);
    t->bucket = host->strdup(call, b);
    t->name = host->strdup(call, n);
    if (!t->bucket || !t->name) {
        free(b);
        free(n);
        free(pk);
        return ddb_oom(u->err);
    }
    split_pk(call, host, pk, &t->primary_key, &t->n_primary_key);
    free(b);
    free(n);
    free(pk);
    t->created_at = ds_ddb_int(r, 3, row);
    t->last_import_at = ds_ddb_int(r, 4, row);
    t->last_change_at = ds_ddb_int(r, 5, row);
    return with_columns ? ddb_load_columns(u, call, t) : DS_OK;
}

ds_status_t ddb_table_describe(use_t *u, ds_be_call_t *call, const char *bucket, const char *table, ds_be_table_t *t)
{
    duckdb_result r;
    ds_buf_t sql = {0};
    ds_buf_printf(&sql, "%s WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", table_select);
    const char *params[] = {bucket, table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 2, params);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) == 0)
        st = ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found", bucket, table);
    else
        st = table_meta_from_row(u, call, &r, 0, t, true);
    duckdb_destroy_result(&r);
    return st;
}

ds_status_t ddb_table_describe_read(use_t *u, ds_be_call_t *call, const char *bucket, const char *table,
                                    ds_be_table_t *t)
{
    ds_status_t st;
    if (ddb_mcat_table_get(u->be, u->p, call, bucket, table, t, &st))
        return st;
    return ddb_table_describe(u, call, bucket, table, t);
}

/*
 * Fills one table's info from a row of table_select. Row counts are the ones
 * every write stores with the table's metadata in the same transaction
 * (ddb_refresh_counts), so they are exact without a scan; bytes a write left
 * unmeasured are measured here.
 */
static ds_status_t table_from_row(use_t *u, ds_be_call_t *call, duckdb_result *r, idx_t row, ds_be_table_t *t,
                                  bool with_columns)
{
    t->rows = ds_ddb_int(r, 6, row);
    t->bytes = ds_ddb_int(r, 7, row);
    ds_status_t st = table_meta_from_row(u, call, r, row, t, with_columns);
    return st == DS_OK ? ddb_bytes_known(u->conn, NULL, t->bucket, t->name, &t->bytes, u->err) : st;
}

/*
 * Fills the columns of every table in items (sorted by name, all of one
 * bucket) with one catalog query, instead of one query per table.
 */
static ds_status_t load_columns_of_bucket(use_t *u, ds_be_call_t *call, ds_be_table_t *items, size_t n)
{
    if (n == 0)
        return DS_OK;
    duckdb_result r;
    const char *params[] = {u->p->alias, items[0].bucket};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                                "FROM duckdb_columns() WHERE database_name = $1 AND schema_name = $2 "
                                "AND column_name <> '_timestamp' ORDER BY table_name, column_index",
                                2, params);
    if (st != DS_OK)
        return st;
    const ds_host_api_t *host = u->be->host;
    idx_t rows = duckdb_row_count(&r), k = 0;
    for (size_t i = 0; i < n; i++) {
        ds_be_table_t *t = &items[i];
        /* Skip catalog rows of tables the metadata does not list (none in practice). */
        while (k < rows) {
            char *tn = ds_ddb_cell(&r, 0, k);
            bool before = !tn || strcmp(tn, t->name) < 0;
            free(tn);
            if (!before)
                break;
            k++;
        }
        idx_t start = k;
        while (k < rows) {
            char *tn = ds_ddb_cell(&r, 0, k);
            bool same = tn && strcmp(tn, t->name) == 0;
            free(tn);
            if (!same)
                break;
            k++;
        }
        t->n_columns = k - start;
        t->columns = host->alloc(call, sizeof(ds_be_column_t) * (t->n_columns ? t->n_columns : 1));
        if (!t->columns) {
            duckdb_destroy_result(&r);
            return ddb_oom(u->err);
        }
        for (idx_t j = start; j < k; j++) {
            char *v[4];
            for (int c = 0; c < 4; c++)
                v[c] = ds_ddb_cell(&r, (idx_t)c + 1, j);
            ds_be_column_t *c = &t->columns[j - start];
            c->name = host->strdup(call, v[0]);
            c->type = host->strdup(call, v[1]);
            c->nullable = v[2] && strcmp(v[2], "true") == 0;
            c->default_value = v[3] ? default_literal(call, host, v[3]) : NULL;
            for (int c2 = 0; c2 < 4; c2++)
                free(v[c2]);
        }
    }
    duckdb_destroy_result(&r);
    return DS_OK;
}

ds_status_t ddb_sql_table_get(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              ds_be_table_t *out)
{
    use_t u;
    duckdb_result r;
    ds_status_t st = snapshot_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    ds_buf_t sql = {0};
    ds_buf_printf(&sql, "%s WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", table_select);
    const char *params[] = {bucket, table};
    st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 2, params);
    ds_buf_free(&sql);
    if (st == DS_OK) {
        if (duckdb_row_count(&r) == 0)
            st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found", bucket, table);
        else
            st = table_from_row(&u, call, &r, 0, out, true);
        duckdb_destroy_result(&r);
    }
    snapshot_end(&u);
    return st;
}

ds_status_t ddb_sql_table_list(void *self, ds_be_call_t *call, const char *bucket, ds_be_table_t **items, size_t *n)
{
    be_t *be = self;
    use_t u;
    duckdb_result r;
    *items = NULL;
    *n = 0;
    ds_status_t st = snapshot_begin(be, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {bucket};
    st = ds_ddb_run(u.conn, call->err, &r, "SELECT count(*) FROM " META ".buckets WHERE lower(id) = lower($1)", 1, params);
    if (st == DS_OK) {
        int64_t exists = ds_ddb_int(&r, 0, 0);
        duckdb_destroy_result(&r);
        if (!exists)
            st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", bucket);
    }
    if (st == DS_OK) {
        ds_buf_t sql = {0};
        ds_buf_printf(&sql, "%s WHERE lower(bucket) = lower($1) ORDER BY name", table_select);
        st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 1, params);
        ds_buf_free(&sql);
    }
    if (st == DS_OK) {
        idx_t rows = duckdb_row_count(&r);
        *items = be->host->alloc(call, sizeof(ds_be_table_t) * (rows ? rows : 1));
        if (!*items) {
            rows = 0;
            st = ddb_oom(call->err);
        }
        for (idx_t i = 0; i < rows && st == DS_OK; i++)
            st = table_from_row(&u, call, &r, i, &(*items)[i], false);
        *n = rows;
        duckdb_destroy_result(&r);
        if (st == DS_OK)
            st = load_columns_of_bucket(&u, call, *items, *n);
    }
    snapshot_end(&u);
    return st;
}

typedef struct {
    const char *bucket;
    const char *table;
} table_ref_t;

static ds_status_t table_drop_txn(use_t *u, void *ud)
{
    table_ref_t *t = ud;
    duckdb_result r;
    const char *params[] = {t->bucket, t->table};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT count(*) FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2, params);
    if (st != DS_OK)
        return st;
    int64_t exists = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    if (!exists)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found", t->bucket, t->table);
    ddb_mcat_note_table(u, t->bucket, t->table);
    /* The history keeps the table's last rows, so time travel can bring the dropped table back. */
    if ((st = ddb_hist_drop(u, t->bucket, t->table)) != DS_OK)
        return st;
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DROP TABLE ");
    ds_buf_ident(&sql, t->bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, t->table);
    st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2,
                        params);
    return st;
}

static ds_status_t be_table_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    table_ref_t t = {bucket, table};
    st = ddb_in_txn_recorded(&u, table_drop_txn, &t);
    ddb_use_end(&u);
    return st;
}

/* ---- metadata reads: from the in-memory catalog (meta_cache.c), else SQL ---- */

/*
 * Pins the call's project without opening a connection, for an answer from
 * its metadata cache. False (nothing held, call->err untouched unless the
 * project cannot be had) when SQL must answer: with test hooks on, a pending
 * engine-failure trigger is consumed by the SQL path as before.
 */
bool ddb_pin_begin(be_t *be, ds_be_call_t *call, proj_t **p, ds_status_t *st)
{
    *p = NULL;
    *st = DS_OK;
    if (be->test_hooks) {
        char trigger[4200];
        snprintf(trigger, sizeof(trigger), "%s/test-hooks/engine-fatal", be->host->data_dir);
        if (access(trigger, F_OK) == 0)
            return false;
    }
    if ((*st = db_enter(be, call->err)) != DS_OK)
        return true;
    if ((*st = acquire(be, call->project_id, false, p, call->err)) != DS_OK) {
        *p = NULL;
        note_failure(be);
        db_leave(be);
    }
    return true;
}

/* Ends pin_begin's use; an ATTACH or a cache load it made may have met a fatal error (see note_failure). */
void ddb_pin_end(be_t *be, proj_t *p)
{
    release(be, p);
    note_failure(be);
    db_leave(be);
}

static ds_status_t be_table_get(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                ds_be_table_t *out)
{
    proj_t *p;
    ds_status_t st;
    if (!ddb_pin_begin(self, call, &p, &st))
        return ddb_sql_table_get(self, call, bucket, table, out);
    if (!p)
        return st;
    bool cached = ddb_mcat_table_get(self, p, call, bucket, table, out, &st);
    ddb_pin_end(self, p);
    return cached ? st : ddb_sql_table_get(self, call, bucket, table, out);
}

static ds_status_t be_table_list(void *self, ds_be_call_t *call, const char *bucket, ds_be_table_t **items,
                                 size_t *n)
{
    proj_t *p;
    ds_status_t st;
    if (!ddb_pin_begin(self, call, &p, &st))
        return ddb_sql_table_list(self, call, bucket, items, n);
    if (!p)
        return st;
    bool cached = ddb_mcat_table_list(self, p, call, bucket, items, n, &st);
    ddb_pin_end(self, p);
    return cached ? st : ddb_sql_table_list(self, call, bucket, items, n);
}

static ds_status_t be_bucket_get(void *self, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out)
{
    proj_t *p;
    ds_status_t st;
    if (!ddb_pin_begin(self, call, &p, &st))
        return ddb_sql_bucket_get(self, call, bucket, out);
    if (!p)
        return st;
    bool cached = ddb_mcat_bucket_get(self, p, call, bucket, out, &st);
    ddb_pin_end(self, p);
    return cached ? st : ddb_sql_bucket_get(self, call, bucket, out);
}

static ds_status_t be_bucket_list(void *self, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n)
{
    proj_t *p;
    ds_status_t st;
    if (!ddb_pin_begin(self, call, &p, &st))
        return ddb_sql_bucket_list(self, call, items, n);
    if (!p)
        return st;
    bool cached = ddb_mcat_bucket_list(self, p, call, items, n, &st);
    ddb_pin_end(self, p);
    return cached ? st : ddb_sql_bucket_list(self, call, items, n);
}

static ds_status_t be_project_stats(void *self, ds_be_call_t *call, ds_be_project_stats_t *out)
{
    proj_t *p;
    ds_status_t st;
    memset(out, 0, sizeof(*out));
    if (!ddb_pin_begin(self, call, &p, &st))
        return ddb_sql_project_stats(self, call, out);
    if (!p)
        return st;
    bool cached = ddb_mcat_project_stats(self, p, out);
    ddb_pin_end(self, p);
    return cached ? DS_OK : ddb_sql_project_stats(self, call, out);
}

/* ---- crash recovery: the catalog's copy, quarantine ---- */

/*
 * The catalog's record of the project lives in _ds.catalog_copy (one row), so
 * a lost catalog can be rebuilt from the project files (src/cmd/service.c).
 */
static ds_status_t meta_put_txn(use_t *u, void *ud)
{
    const char *params[] = {ud};
    ds_status_t st = ds_ddb_exec(u->conn, u->err,
                                 "CREATE TABLE IF NOT EXISTS " META ".catalog_copy (doc VARCHAR NOT NULL);"
                                 "DELETE FROM " META ".catalog_copy");
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "INSERT INTO " META ".catalog_copy VALUES ($1)", 1, params);
    return st;
}

static ds_status_t be_project_meta_put(void *self, ds_be_call_t *call, const char *doc)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    st = ddb_in_txn(&u, meta_put_txn, (void *)doc);
    ddb_use_end(&u);
    return st;
}

static ds_status_t no_copy(ds_be_call_t *call)
{
    return ds_err_set(call->err, DS_NOT_FOUND, "project \"%s\" holds no copy of its catalog record",
                      call->project_id);
}

static ds_status_t be_project_meta_get(void *self, ds_be_call_t *call, char **doc)
{
    use_t u;
    duckdb_result r;
    ds_status_t st = ddb_use_begin_read(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {u.p->alias};
    st = ds_ddb_run(u.conn, call->err, &r,
                    "SELECT count(*) FROM duckdb_tables() WHERE database_name = $1 AND schema_name = '" META
                    "' AND table_name = 'catalog_copy'",
                    1, params);
    if (st == DS_OK) {
        bool has = ds_ddb_int(&r, 0, 0) > 0;
        duckdb_destroy_result(&r);
        if (!has)
            st = no_copy(call);
    }
    if (st == DS_OK)
        st = ds_ddb_run(u.conn, call->err, &r, "SELECT doc FROM " META ".catalog_copy LIMIT 1", 0, NULL);
    if (st == DS_OK) {
        char *v = duckdb_row_count(&r) ? ds_ddb_cell(&r, 0, 0) : NULL;
        duckdb_destroy_result(&r);
        if (!v)
            st = no_copy(call);
        else if (!(*doc = ((be_t *)self)->host->strdup(call, v)))
            st = ds_err_set(call->err, DS_INTERNAL, "out of memory");
        free(v);
    }
    ddb_use_end(&u);
    return st;
}

static ds_status_t be_project_quarantine(void *self, ds_be_call_t *call, const char *dir, bool *moved)
{
    *moved = false;
    return retire_project(self, call->project_id, dir, moved, call->err);
}

/* ---- what compaction (compact.c) needs of the project state ---- */

ds_status_t ddb_db_enter(be_t *be, ds_err_t *err) { return db_enter(be, err); }

void ddb_db_leave(be_t *be)
{
    note_failure(be);
    db_leave(be);
}

ds_status_t ddb_admin_exec(be_t *be, const char *sql, ds_err_t *err) { return admin_exec(be, sql, err); }

void ddb_project_path(const be_t *be, const char *id, char *out, size_t outsz) { project_path(be, id, out, outsz); }

/* Marks p attached (its file was just attached) and reads its metadata into the cache. */
static void compact_attached(be_t *be, proj_t *p)
{
    ddb_mcat_load(be, p);
    pthread_mutex_lock(&be->lock);
    p->attached = true;
    be->n_attached++;
    if (be->n_attached > be->peak_attached)
        be->peak_attached = be->n_attached;
    ds_lru_touch(be->lru, p->id);
    pthread_mutex_unlock(&be->lock);
}

ds_status_t ddb_compact_take(be_t *be, const char *id, int64_t wait_ms, proj_t **out, ds_err_t *err)
{
    char path[4200];
    struct timespec deadline;
    project_path(be, id, path, sizeof(path));
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (wait_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&be->lock);
    proj_t *p = find_proj(be, id);
    if (p && (p->dropping || p->creating)) {
        const char *what = p->dropping ? "deleted" : "created";
        pthread_mutex_unlock(&be->lock);
        return ds_err_set(err, DS_CONFLICT, "project \"%s\" is being %s; it was not compacted", id, what);
    }
    if (p && p->compacting) {
        pthread_mutex_unlock(&be->lock);
        return ds_err_set(err, DS_CONFLICT, "project \"%s\" is being compacted already", id);
    }
    if (!p && !(p = new_proj(be, id))) {
        pthread_mutex_unlock(&be->lock);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    /* From here on new calls for the project wait (acquire), so the running ones can only end. */
    p->compacting = true;
    int64_t running = 0;
    while (p->refs > 0 || p->attaching || p->detaching) {
        running = p->refs;
        if (pthread_cond_timedwait(&be->idle, &be->lock, &deadline) == ETIMEDOUT &&
            (p->refs > 0 || p->attaching || p->detaching)) {
            p->compacting = false;
            pthread_cond_broadcast(&be->idle);
            forget_if_unused(be, p);
            pthread_mutex_unlock(&be->lock);
            return ds_err_set(err, DS_UNAVAILABLE,
                              "project \"%s\" was not compacted: %lld call(s) still used it after %lld ms; nothing "
                              "changed, retry later",
                              id, (long long)running, (long long)wait_ms);
        }
    }
    bool attached = p->attached;
    struct stat sb;
    if (!attached && stat(path, &sb) != 0) {
        p->compacting = false;
        pthread_cond_broadcast(&be->idle);
        forget_if_unused(be, p);
        pthread_mutex_unlock(&be->lock);
        return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" has no storage file", id);
    }
    pthread_mutex_unlock(&be->lock);
    if (!attached) {
        ds_status_t st = run_attach(be, p, path, false, err);
        if (st != DS_OK) {
            ddb_compact_give(be, p);
            return st;
        }
        compact_attached(be, p);
    }
    *out = p;
    return DS_OK;
}

ds_status_t ddb_compact_detach(be_t *be, proj_t *p, ds_err_t *err)
{
    ds_status_t st = run_detach(be, p, err);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&be->lock);
    p->attached = false;
    be->n_attached--;
    ds_lru_remove(be->lru, p->id);
    ddb_mcat_drop(p->mcat);
    pthread_mutex_unlock(&be->lock);
    return DS_OK;
}

ds_status_t ddb_compact_attach(be_t *be, proj_t *p, ds_err_t *err)
{
    char path[4200];
    project_path(be, p->id, path, sizeof(path));
    ds_status_t st = run_attach(be, p, path, false, err);
    if (st == DS_OK)
        compact_attached(be, p);
    return st;
}

void ddb_compact_give(be_t *be, proj_t *p)
{
    proj_t *victims[MAX_VICTIMS];
    pthread_mutex_lock(&be->lock);
    p->compacting = false;
    pthread_cond_broadcast(&be->idle);
    size_t nv = pick_victims_locked(be, victims, MAX_VICTIMS);
    forget_if_unused(be, p);
    pthread_mutex_unlock(&be->lock);
    if (nv)
        detach_victims(be, victims, nv);
}

static const ds_be_setting_t settings[] = {
    {"IDLE_DETACH", DS_SETTING_STRING, false, "60s",
     "a project file no request used for this long is detached, which gives its share of DuckDB's buffer pool "
     "back (attached again on its next use, about a millisecond); 0 keeps idle projects attached"},
    {"QUIET_CHECKPOINT", DS_SETTING_STRING, false, "5s",
     "a project written and then unused for this long is checkpointed: its new rows move from DuckDB's memory and "
     "WAL into its file, so the memory of a burst of writes is given back (0: only when the WAL is large, and at the "
     "detach)"},
    {"PREVIEW_CACHE", DS_SETTING_STRING, false, "64MiB",
     "memory for recent table previews, answered again until the project's data changes (bytes or e.g. 64MiB; 0: "
     "off)"},
};

static ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "duckdb",
    .version = "1.4.4",
    .capabilities = DS_CAP_DRIVER | DS_CAP_TYPED_COLUMNS | DS_CAP_FORMAT_CSV | DS_CAP_FORMAT_PARQUET |
                    DS_CAP_IMPORT | DS_CAP_EXPORT | DS_CAP_PROFILE | DS_CAP_SCHEMA_CHANGES | DS_CAP_WORKSPACES |
                    DS_CAP_BRANCHES | DS_CAP_SHARING | DS_CAP_SNAPSHOTS | DS_CAP_TIME_TRAVEL | DS_CAP_ALIASES |
                    DS_CAP_COMPACT,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .open = be_open,
    .close = be_close,
    .health = be_health,
    .runtime_stats = be_runtime_stats,
    .project_list_stored = be_project_list_stored,
    .project_create = be_project_create,
    .project_drop = be_project_drop,
    .project_stats = be_project_stats,
    .bucket_create = be_bucket_create,
    .bucket_get = be_bucket_get,
    .bucket_list = be_bucket_list,
    .bucket_drop = be_bucket_drop,
    .table_create = be_table_create,
    .table_get = be_table_get,
    .table_list = be_table_list,
    .table_drop = be_table_drop,
    .table_import = ddb_table_import,
    .table_export = ddb_table_export,
    .table_preview = ddb_table_preview,
    .table_profile = ddb_table_profile,
    .table_delete_rows = ddb_table_delete_rows,
    .column_add = ddb_column_add,
    .column_drop = ddb_column_drop,
    .column_alter = ddb_column_alter,
    .primary_key_set = ddb_primary_key_set,
    .project_meta_put = be_project_meta_put,
    .project_meta_get = be_project_meta_get,
    .project_quarantine = be_project_quarantine,
    .idem_lookup = ddb_idem_lookup,
    .table_scan_open = ddb_table_scan_open,
    .table_version = ddb_table_version,
    .branch_create = ddb_branch_create,
    .branch_list = ddb_branch_list,
    .branch_drop = ddb_branch_drop,
    .marks_list = ddb_marks_list,
    .tables_move = ddb_tables_move,
    .tables_restore = ddb_tables_restore,
    .table_time_travel = ddb_table_time_travel,
    .history_expire = ddb_history_expire,
    .alias_put = ddb_alias_put,
    .alias_list = ddb_alias_list,
    .alias_drop = ddb_alias_drop,
    .table_count = ddb_table_count,
    .table_profile_where = ddb_table_profile_where,
    .tables_move_restore = ddb_tables_move_restore,
    .project_compact = ddb_project_compact,
    .engine_memory = be_engine_memory,
    .history_expire_next = ddb_history_expire_next,
};

const ds_backend_ops_t *ds_be_duckdb_entry(const ds_host_api_t *host)
{
    (void)host;
    return &ops;
}
