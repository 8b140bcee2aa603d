/*
 * project.c - backend and project commands.
 *
 * Project creation writes the catalog row ("creating") before the backend
 * creates storage, and marks it "ready" after; deletion marks "deleting"
 * before the storage goes. A crash between the steps is repaired by the
 * recovery pass in service.c.
 *
 * Lifecycle: each project id that is being created or deleted, or that a
 * request is using, has an in-memory entry with a state (creating, ready,
 * deleting) and a count of the requests using it (pins, taken by
 * ds_cmd_open_project and dropped with the request). A create or delete of an
 * id whose entry is creating or deleting answers 409 at once (a create of an
 * existing id answers 409 from the catalog before it touches the entry, so it
 * never hides a ready project). A delete marks the entry deleting (from then
 * on a request for the project answers 404), waits until its pins are gone
 * (at most DUCKSTORE_DELETE_WAIT; then the delete is given up with 409 and the
 * project is ready again) and only then drops the storage, so no
 * request can reach a project, or a re-created project of the same id,
 * across its deletion. `lives_lock` guards only the entries (short map
 * operations); a delete's wait releases it, so one project's lifecycle never
 * waits for another's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd/files.h"
#include "cmd/snapshot.h"
#include "catalog/apikeys.h"
#include "catalog/shares.h"
#include "cmd/internal.h"
#include "cmd/workspace.h"
#include "core/keys.h"
#include "core/log.h"

typedef enum { LIFE_CREATING, LIFE_READY, LIFE_DELETING } life_state_t;

typedef struct life {
    struct life *next;
    char id[DS_PROJECT_ID_MAX + 1];
    life_state_t state;
    long pins;
} life_t;

static pthread_mutex_t lives_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t unpinned = PTHREAD_COND_INITIALIZER; /* a deleting entry lost its last pin */
static life_t *lives;

static life_t *life_find_locked(const char *id)
{
    /* Ids are unique regardless of case (see the catalog), so entries are found that way too. */
    for (life_t *l = lives; l; l = l->next)
        if (strcasecmp(l->id, id) == 0)
            return l;
    return NULL;
}

static life_t *life_add_locked(const char *id, life_state_t state)
{
    life_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    snprintf(l->id, sizeof(l->id), "%s", id);
    l->state = state;
    l->next = lives;
    lives = l;
    return l;
}

/* Frees a ready entry no request uses. */
static void life_forget_locked(life_t *l)
{
    if (l->state != LIFE_READY || l->pins > 0)
        return;
    life_t **pp = &lives;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp)
        *pp = l->next;
    free(l);
}

static ds_status_t busy_conflict(const char *id, life_state_t state, ds_err_t *err)
{
    return ds_err_set(err, DS_CONFLICT, "project \"%s\" is being %s; retry when that has finished", id,
                      state == LIFE_DELETING ? "deleted" : "created");
}

/*
 * Starts a create (LIFE_CREATING) or delete (LIFE_DELETING) of id. DS_CONFLICT
 * when another create or delete of id is under way. Requests using the
 * project keep their pins (a delete waits for them with life_drain).
 */
static ds_status_t life_begin(const char *id, life_state_t state, life_t **out, ds_err_t *err)
{
    pthread_mutex_lock(&lives_lock);
    life_t *l = life_find_locked(id);
    if (l && l->state != LIFE_READY) {
        life_state_t busy = l->state;
        pthread_mutex_unlock(&lives_lock);
        return busy_conflict(id, busy, err);
    }
    if (!l && !(l = life_add_locked(id, state))) {
        pthread_mutex_unlock(&lives_lock);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    l->state = state;
    pthread_mutex_unlock(&lives_lock);
    *out = l;
    return DS_OK;
}

/* DS_CONFLICT naming the create or delete of id under way, if one is; else DS_OK. */
static ds_status_t life_check(const char *id, ds_err_t *err)
{
    pthread_mutex_lock(&lives_lock);
    life_t *l = life_find_locked(id);
    life_state_t state = l ? l->state : LIFE_READY;
    pthread_mutex_unlock(&lives_lock);
    return state == LIFE_READY ? DS_OK : busy_conflict(id, state, err);
}

/*
 * Waits until no request uses the project of a deleting entry, at most
 * wait_s seconds (DUCKSTORE_DELETE_WAIT). DS_CONFLICT naming the requests
 * still under way when they outlast it. Holds no lock while it waits.
 */
static ds_status_t life_drain(life_t *l, int64_t wait_s, ds_err_t *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
    until.tv_sec += (time_t)wait_s;
    pthread_mutex_lock(&lives_lock);
    while (l->pins > 0 && pthread_cond_timedwait(&unpinned, &lives_lock, &until) != ETIMEDOUT)
        ;
    long left = l->pins;
    pthread_mutex_unlock(&lives_lock);
    if (left == 0)
        return DS_OK;
    return ds_err_set(err, DS_CONFLICT,
                      "project \"%s\" is still used by %ld request(s) after %llds (DUCKSTORE_DELETE_WAIT), for "
                      "example an upload; it was not deleted, retry when they have finished",
                      l->id, left, (long long)wait_s);
}

/* Makes the entry ready again (requests may pin it) and frees it when none does. */
static void life_end(life_t *l)
{
    pthread_mutex_lock(&lives_lock);
    l->state = LIFE_READY;
    life_forget_locked(l);
    pthread_mutex_unlock(&lives_lock);
}

static void unpin(void *p)
{
    life_t *l = p;
    pthread_mutex_lock(&lives_lock);
    if (--l->pins == 0) {
        if (l->state == LIFE_DELETING)
            pthread_cond_broadcast(&unpinned);
        life_forget_locked(l);
    }
    pthread_mutex_unlock(&lives_lock);
}

int64_t ds_cmd_project_pins(void)
{
    int64_t n = 0;
    pthread_mutex_lock(&lives_lock);
    for (life_t *l = lives; l; l = l->next)
        n += l->pins;
    pthread_mutex_unlock(&lives_lock);
    return n;
}

ds_status_t ds_cmd_project_pin(ds_ctx_t *ctx, const char *id)
{
    pthread_mutex_lock(&lives_lock);
    life_t *l = life_find_locked(id);
    if (l && l->state != LIFE_READY) {
        bool deleting = l->state == LIFE_DELETING;
        pthread_mutex_unlock(&lives_lock);
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found (it is being %s)",
                           id, deleting ? "deleted" : "created");
    }
    if (!l && !(l = life_add_locked(id, LIFE_READY))) {
        pthread_mutex_unlock(&lives_lock);
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    }
    l->pins++;
    pthread_mutex_unlock(&lives_lock);
    /* A hook that cannot be registered runs at once: the pin is dropped (once), and l may be gone. */
    if (ds_arena_on_destroy(ctx->arena, unpin, l) != 0)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    return DS_OK;
}

ds_status_t ds_cmd_backend_init(ds_ctx_t *ctx, ds_backend_info_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    if ((st = ds_service_ready(&ctx->err)) != DS_OK)
        return st;
    out->data_dir = ds_service_config()->data_dir;
    out->engine = DS_DEFAULT_BACKEND;
    out->projects = ds_catalog_project_count();
    return DS_OK;
}

ds_status_t ds_cmd_backend_remove(ds_ctx_t *ctx)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    int64_t n = ds_catalog_project_count();
    if (n > 0)
        return ds_err_set(&ctx->err, DS_CONFLICT, "the backend still holds %lld projects; delete them first",
                          (long long)n);
    return DS_OK;
}

/* A retention in days: 0 (no time travel) to DS_RETENTION_MAX_DAYS. */
static ds_status_t check_retention(ds_ctx_t *ctx, int64_t days)
{
    if (days < 0 || days > DS_RETENTION_MAX_DAYS)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "data_retention_time",
                           "data_retention_time must be a whole number of days from 0 (no time travel) to %d; got %lld",
                           DS_RETENTION_MAX_DAYS, (long long)days);
    return DS_OK;
}

ds_status_t ds_cmd_project_create(ds_ctx_t *ctx, const ds_project_create_t *in, ds_project_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_project(in->id, &ctx->err)) != DS_OK)
        return st;
    const char *name = in->name ? in->name : in->id;
    if (strlen(name) >= sizeof(out->rec.name))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "project name is longer than %zu bytes",
                           sizeof(out->rec.name) - 1);
    int64_t retention = in->retention_set ? in->retention_days : DS_RETENTION_DEFAULT_DAYS;
    if ((st = check_retention(ctx, retention)) != DS_OK)
        return st;
    const char *backend = in->backend ? in->backend : DS_DEFAULT_BACKEND;
    ds_backend_t *be = NULL;
    if (ds_registry_get(backend, &be, &ctx->err) != DS_OK)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "backend", "no backend named \"%s\" is registered",
                           backend);
    ctx->project_id = ds_arena_strdup(ctx->arena, in->id);

    char key[DS_KEY_MAX];
    memset(out, 0, sizeof(*out));
    ds_key_generate(in->id, key, sizeof(key));
    ds_project_rec_t *rec = &out->rec;
    snprintf(rec->id, sizeof(rec->id), "%s", in->id);
    snprintf(rec->name, sizeof(rec->name), "%s", name);
    snprintf(rec->backend, sizeof(rec->backend), "%s", backend);
    ds_key_hash(key, rec->key_hash);
    rec->state = DS_PROJECT_CREATING;
    rec->created_at = rec->updated_at = ds_now();
    rec->retention_days = (int32_t)retention;

    /*
     * The catalog row comes first: its insert fails for an id that exists in
     * any state, so requests for an existing project never see it "being
     * created". The entry is taken next; it conflicts only with a delete of
     * the id that is finishing (its row is already gone), and then the new
     * row is taken back.
     */
    life_t *life = NULL;
    ds_err_t e = {0};
    st = ds_catalog_project_insert(rec, &ctx->err);
    if (st == DS_ALREADY_EXISTS && life_check(rec->id, &e) != DS_OK) {
        ctx->err = e; /* the id exists because it is being created or deleted: say so */
        st = e.status;
    } else if (st == DS_OK && (st = life_begin(rec->id, LIFE_CREATING, &life, &ctx->err)) != DS_OK)
        ds_catalog_project_delete(rec->id, &e);
    else if (st == DS_OK) {
        ds_be_call_t call = {.arena = ctx->arena, .err = &ctx->err, .project_id = rec->id};
        st = ds_be_project_create(be, &call);
        ds_cmd_alias_forget(rec->id); /* new storage holds no aliases (cmd/alias.c caches them) */
        /* The project file carries its own catalog record from the start (a lost catalog is rebuilt from it). */
        if (st == DS_OK && (st = ds_service_project_copy_put(be, &call, rec)) != DS_OK) {
            ds_be_call_t undo = {.arena = ctx->arena, .err = &e, .project_id = rec->id};
            ds_be_project_drop(be, &undo);
        }
        if (st != DS_OK)
            ds_catalog_project_delete(rec->id, &e);
        else if ((st = ds_catalog_project_set_state(rec->id, DS_PROJECT_READY, &ctx->err)) != DS_OK)
            ds_log(DS_LOG_ERROR, "project %s: storage created but catalog update failed; recovery will remove it",
                   rec->id);
        life_end(life);
    }
    ds_registry_put(be);
    if (st != DS_OK)
        return st;
    rec->state = DS_PROJECT_READY;
    out->api_key = ds_arena_strdup(ctx->arena, key);
    ctx->answer_has_secret = true;
    return DS_OK;
}

ds_status_t ds_cmd_project_list(ds_ctx_t *ctx, ds_project_rec_t **items, size_t *n)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    return ds_catalog_project_list(ctx->arena, items, n, &ctx->err);
}

ds_status_t ds_cmd_project_get(ds_ctx_t *ctx, const char *id, ds_project_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ds_cmd_open_project(ctx, &id, &p);
    if (st != DS_OK)
        return st;
    out->rec = p.rec;
    if ((st = ds_be_project_stats(p.be, &p.call, &out->stats)) != DS_OK)
        return st;
    /* The backend counts every table it stores: branch storage is reported apart (branch.c), so stats are
     * main's and agree with main's bucket and table listings. */
    if ((st = ds_cmd_branch_storage_stats(&p, &out->branches)) != DS_OK)
        return st;
    out->stats.buckets -= out->branches.buckets;
    out->stats.tables -= out->branches.tables;
    out->stats.rows -= out->branches.rows;
    out->stats.bytes -= out->branches.bytes;
    out->has_stats = true;
    return DS_OK;
}

ds_status_t ds_cmd_project_update(ds_ctx_t *ctx, const char *id, const char *name, int64_t retention_days,
                                  ds_project_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    ds_proj_t p;
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_open_project(ctx, &id, &p)) != DS_OK)
        return st;
    if (retention_days >= 0 || retention_days < -1) {
        if ((st = check_retention(ctx, retention_days)) != DS_OK)
            return st;
    }
    if (name && (!*name || strlen(name) >= sizeof(p.rec.name)))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "project name must be 1-%zu bytes",
                           sizeof(p.rec.name) - 1);
    if (retention_days >= 0 && retention_days != p.rec.retention_days) {
        ds_project_rec_t next = p.rec;
        next.retention_days = (int32_t)retention_days;
        next.updated_at = ds_now();
        if ((st = ds_service_project_copy_put(p.be, &p.call, &next)) != DS_OK)
            return st;
        if ((st = ds_catalog_project_set_retention(id, next.retention_days, next.updated_at, &ctx->err)) != DS_OK)
            return st;
        p.rec = next;
    }
    if (name) {
        if (!*name || strlen(name) >= sizeof(p.rec.name))
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "project name must be 1-%zu bytes",
                               sizeof(p.rec.name) - 1);
        /* The project file's copy first: if the catalog then fails, the catalog (which wins) is unchanged. */
        ds_project_rec_t next = p.rec;
        snprintf(next.name, sizeof(next.name), "%s", name);
        next.updated_at = ds_now();
        if ((st = ds_service_project_copy_put(p.be, &p.call, &next)) != DS_OK)
            return st;
        if ((st = ds_catalog_project_set_name(id, name, next.updated_at, &ctx->err)) != DS_OK)
            return st;
    }
    return ds_cmd_project_get(ctx, id, out);
}

ds_status_t ds_cmd_project_delete(ds_ctx_t *ctx, const char *id)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_project(id, &ctx->err)) != DS_OK)
        return st;
    if (!(id = ds_cmd_project_spelling(ctx, id)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ctx->project_id = id;
    life_t *life;
    if ((st = life_begin(id, LIFE_DELETING, &life, &ctx->err)) != DS_OK)
        return st;
    ds_project_rec_t rec;
    ds_backend_t *be = NULL;
    st = ds_catalog_project_get(id, &rec, &ctx->err);
    if (st == DS_OK && rec.state != DS_PROJECT_READY)
        st = ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", id);
    if (st == DS_OK && ds_registry_get(rec.backend, &be, &ctx->err) != DS_OK)
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "backend \"%s\" of project \"%s\" is not loaded", rec.backend, id);
    if (st == DS_OK)
        st = ds_catalog_project_set_state(id, DS_PROJECT_DELETING, &ctx->err);
    if (st == DS_OK) {
        /* New requests answer 404 from here; the ones under way finish first (for a bounded time). */
        st = life_drain(life, ds_service_config()->delete_wait, &ctx->err);
        if (st == DS_OK) {
            ds_be_call_t call = {.arena = ctx->arena, .err = &ctx->err, .project_id = ctx->project_id};
            st = ds_be_project_drop(be, &call);
            ds_cmd_alias_forget(id); /* its aliases went with its storage (cmd/alias.c caches them) */
        }
        if (st != DS_OK) {
            ds_err_t e = {0};
            ds_catalog_project_set_state(id, DS_PROJECT_READY, &e);
        }
    }
    /* The tables are gone, so the deletion goes on; file leftovers are removed by the files sweep. */
    if (st == DS_OK && ds_files_drop_project(ds_service_config()->data_dir, id, &ctx->err) != DS_OK) {
        ds_log(DS_LOG_ERROR, "project %s: cannot remove its Storage Files: %s", id, ctx->err.message);
        ds_err_clear(&ctx->err);
    }
    if (st == DS_OK)
        ds_snapshots_drop_project(id);
    /* Its other keys go first: a project later created with the same id must not accept them. */
    if (st == DS_OK)
        st = ds_catalog_apikeys_drop_project(id, &ctx->err);
    if (st == DS_OK)
        ds_cmd_ws_drop_all(ctx, id, NULL);
    /* Its shares and links go, and other projects' links to its buckets: a later project of that id is another. */
    if (st == DS_OK && ds_catalog_shares_forget(id, &ctx->err) != DS_OK) {
        ds_log(DS_LOG_ERROR, "project %s: shares and links not removed: %s", id, ctx->err.message);
        ds_err_clear(&ctx->err);
    }
    if (st == DS_OK)
        st = ds_catalog_project_delete(id, &ctx->err);
    ds_registry_put(be);
    life_end(life);
    return st;
}
