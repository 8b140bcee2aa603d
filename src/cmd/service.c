/*
 * service.c - the service core: start/stop, authentication, project opening,
 * write slots, and the startup recovery pass.
 *
 * Recovery (at start, before any request): projects left "creating" by a crash
 * are dropped from their backend and the catalog; projects left "deleting" are
 * finished; stored project data that no catalog row names (an orphan from a
 * crash between the steps) is removed. After it, the catalog and the files agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../backends/duckdb/duckdb_backend.h"
#include "cmd/files.h"
#include "cmd/internal.h"
#include "core/keys.h"
#include "core/log.h"

static ds_config_t config;
static char admin_hash[DS_KEY_HASH_HEX];
static ds_wq_t *queues;
static char *data_dir_abs; /* config.data_dir points here */

int64_t ds_now(void) { return (int64_t)time(NULL); }
const ds_config_t *ds_service_config(void) { return &config; }

/* Loads or creates the admin key; only its hash stays in memory. */
static ds_status_t setup_admin_key(const ds_config_t *cfg, ds_err_t *err)
{
    char path[4200], key[DS_KEY_MAX];
    if (cfg->admin_key && *cfg->admin_key) {
        ds_key_hash(cfg->admin_key, admin_hash);
        return DS_OK;
    }
    snprintf(path, sizeof(path), "%s/admin.key", cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        bool ok = fgets(key, sizeof(key), f) != NULL;
        fclose(f);
        key[strcspn(key, "\r\n")] = '\0';
        if (!ok || !*key)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "admin key file %s is empty", path);
        ds_key_hash(key, admin_hash);
        ds_log(DS_LOG_INFO, "admin key read from %s", path);
        return DS_OK;
    }
    if (!ds_key_generate("admin", key, sizeof(key)))
        return ds_err_set(err, DS_INTERNAL, "cannot generate an admin key");
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        out = fdopen(fd, "w");
    if (!out || fprintf(out, "%s\n", key) < 0 || fflush(out) != 0 || fsync(fileno(out)) != 0) {
        if (out)
            fclose(out);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write admin key file %s: %s", path, strerror(errno));
    }
    fclose(out);
    if (rename(tmp, path) != 0)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write admin key file %s: %s", path, strerror(errno));
    ds_key_hash(key, admin_hash);
    ds_log(DS_LOG_INFO, "generated an admin key into %s (mode 0600)", path);
    return DS_OK;
}

typedef struct {
    ds_arena_t *arena;
    const char **ids;
    size_t n, cap;
} id_list_t;

static void collect_id(const char *id, void *ud)
{
    id_list_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const char **bigger = ds_arena_alloc(l->arena, sizeof(char *) * cap);
        if (!bigger)
            return;
        if (l->n)
            memcpy(bigger, l->ids, sizeof(char *) * l->n);
        l->ids = bigger;
        l->cap = cap;
    }
    l->ids[l->n++] = ds_arena_strdup(l->arena, id);
}

/* Removes stored projects of one backend that the catalog does not name. */
static void drop_orphans(ds_backend_t *be, void *ud)
{
    ds_arena_t *arena = ud;
    id_list_t l = {.arena = arena};
    ds_err_t e = {0};
    if (!be->ops->project_list_stored)
        return;
    /* Collect first: dropping while the backend lists would change what it lists. */
    if (be->ops->project_list_stored(be->self, collect_id, &l, &e) != DS_OK) {
        ds_log(DS_LOG_ERROR, "recovery: cannot list projects of backend %s: %s", be->ops->name, e.message);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        ds_project_rec_t rec;
        if (ds_catalog_project_get(l.ids[i], &rec, &e) == DS_OK && strcmp(rec.backend, be->ops->name) == 0)
            continue;
        ds_be_call_t call = {.arena = arena, .err = &e, .project_id = l.ids[i]};
        ds_log(DS_LOG_WARN, "recovery: removing orphan storage of project %s in backend %s", l.ids[i], be->ops->name);
        if (ds_be_project_drop(be, &call) != DS_OK)
            ds_log(DS_LOG_ERROR, "recovery: cannot remove orphan project %s: %s", l.ids[i], e.message);
    }
}

static ds_status_t recover(ds_err_t *err)
{
    ds_arena_t *arena = ds_arena_create();
    ds_project_rec_t *all;
    size_t n;
    if (!arena)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    ds_status_t st = ds_catalog_project_list_all(arena, &all, &n, err);
    for (size_t i = 0; st == DS_OK && i < n; i++) {
        if (all[i].state == DS_PROJECT_READY)
            continue;
        ds_backend_t *be = NULL;
        ds_err_t e = {0};
        ds_log(DS_LOG_WARN, "recovery: finishing interrupted %s of project %s",
               all[i].state == DS_PROJECT_CREATING ? "creation" : "deletion", all[i].id);
        if (ds_registry_get(all[i].backend, &be, &e) == DS_OK) {
            ds_be_call_t call = {.arena = arena, .err = &e, .project_id = all[i].id};
            if (ds_be_project_drop(be, &call) != DS_OK) {
                ds_log(DS_LOG_ERROR, "recovery: cannot drop project %s: %s", all[i].id, e.message);
                ds_registry_put(be);
                continue;
            }
            ds_registry_put(be);
        }
        if (ds_catalog_project_delete(all[i].id, &e) != DS_OK)
            ds_log(DS_LOG_ERROR, "recovery: cannot delete catalog row of %s: %s", all[i].id, e.message);
    }
    if (st == DS_OK)
        ds_registry_each(drop_orphans, arena);
    ds_arena_destroy(&arena);
    return st;
}

static int64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : (int64_t)4 << 30;
}

ds_status_t ds_service_start(const ds_config_t *cfg, ds_err_t *err)
{
    config = *cfg;
    if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
    /* Everything below works with the absolute path, so paths compare and confine exactly. */
    data_dir_abs = realpath(cfg->data_dir, NULL);
    if (!data_dir_abs)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot resolve data directory %s: %s", cfg->data_dir, strerror(errno));
    config.data_dir = data_dir_abs;
    cfg = &config;
    if (!ds_keys_init())
        return ds_err_set(err, DS_INTERNAL, "libsodium failed to initialize");
    ds_status_t st = setup_admin_key(cfg, err);
    if (st != DS_OK)
        return st;
    queues = ds_wq_create(cfg->queue_depth);
    if (!queues)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    st = ds_catalog_open(cfg->data_dir, err);
    if (st != DS_OK)
        return st;
    st = ds_registry_init(cfg->data_dir, ds_config_memory_bytes(cfg, physical_memory()), cfg->threads,
                          cfg->max_open_projects, err);
    if (st == DS_OK)
        st = ds_registry_add(ds_be_duckdb_entry, NULL, err);
    if (st == DS_OK && cfg->plugin_dir)
        ds_registry_load_dir(cfg->plugin_dir);
    if (st == DS_OK)
        st = recover(err);
    if (st == DS_OK)
        st = ds_files_start(cfg, err);
    return st;
}

void ds_service_stop(void)
{
    ds_files_stop();
    ds_registry_shutdown();
    ds_catalog_close();
    ds_wq_destroy(&queues);
    free(data_dir_abs);
    data_dir_abs = NULL;
}

int64_t ds_service_queue_waiting(void) { return queues ? ds_wq_waiting(queues) : 0; }

typedef struct {
    int64_t open, peak;
} rt_sum_t;

static void sum_runtime(ds_backend_t *be, void *ud)
{
    rt_sum_t *s = ud;
    ds_be_runtime_stats_t rs = {0};
    if (be->ops->runtime_stats)
        be->ops->runtime_stats(be->self, &rs);
    s->open += rs.open_projects;
    s->peak += rs.open_projects_peak;
}

int64_t ds_service_open_projects(void)
{
    rt_sum_t s = {0};
    ds_registry_each(sum_runtime, &s);
    return s.open;
}

int64_t ds_service_open_projects_peak(void)
{
    rt_sum_t s = {0};
    ds_registry_each(sum_runtime, &s);
    return s.peak;
}

typedef struct {
    ds_status_t st;
    ds_err_t *err;
} health_t;

static void check_health(ds_backend_t *be, void *ud)
{
    health_t *h = ud;
    if (h->st != DS_OK || !be->ops->health)
        return;
    h->st = be->ops->health(be->self, h->err);
}

ds_status_t ds_service_ready(ds_err_t *err)
{
    if (!ds_catalog_ready())
        return ds_err_set(err, DS_UNAVAILABLE, "catalog is not open");
    /*
     * Ready means new projects can be served: the catalog and the default
     * backend answer. A plugin backend that is down fails only its own
     * projects (503) and shows in GET /backends; it does not take the whole
     * service out of rotation.
     */
    ds_backend_t *be = NULL;
    ds_status_t st = ds_registry_get(DS_DEFAULT_BACKEND, &be, err);
    if (st != DS_OK)
        return ds_err_set(err, DS_UNAVAILABLE, "the default backend %s is not registered", DS_DEFAULT_BACKEND);
    health_t h = {DS_OK, err};
    check_health(be, &h);
    ds_registry_put(be);
    return h.st;
}

/* ---- authentication ---- */

static ds_status_t need_key(ds_ctx_t *ctx)
{
    if (!ctx->key || !*ctx->key)
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED,
                          "missing API key: send \"Authorization: Bearer <key>\" or \"X-StorageApi-Token: <key>\"");
    return DS_OK;
}

static bool is_admin(ds_ctx_t *ctx) { return ds_key_matches(ctx->key, admin_hash); }

ds_status_t ds_cmd_require_admin(ds_ctx_t *ctx)
{
    ds_status_t st = need_key(ctx);
    if (st != DS_OK)
        return st;
    if (is_admin(ctx))
        return DS_OK;
    char id[DS_PROJECT_ID_MAX + 1];
    if (ds_catalog_project_by_key(ctx->key, id))
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED, "this operation needs the admin key; a project key was given");
    return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
}

static void put_backend(void *p) { ds_registry_put(p); }

ds_status_t ds_cmd_open_project(ds_ctx_t *ctx, const char *id, ds_proj_t *out)
{
    ds_status_t st = ds_ident_check_project(id, &ctx->err);
    if (st != DS_OK)
        return st;
    if ((st = need_key(ctx)) != DS_OK)
        return st;
    ctx->project_id = ds_arena_strdup(ctx->arena, id);
    if (!is_admin(ctx)) {
        char owner[DS_PROJECT_ID_MAX + 1];
        if (!ds_catalog_project_by_key(ctx->key, owner))
            return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
        if (strcmp(owner, id) != 0)
            return ds_err_set(&ctx->err, DS_PERMISSION_DENIED, "this API key does not give access to project \"%s\"",
                              id);
    }
    if ((st = ds_catalog_project_get(id, &out->rec, &ctx->err)) != DS_OK)
        return st;
    if (out->rec.state != DS_PROJECT_READY)
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", id);
    if ((st = ds_registry_get(out->rec.backend, &out->be, &ctx->err)) != DS_OK)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "backend \"%s\" of project \"%s\" is not loaded", out->rec.backend,
                          id);
    ds_arena_on_destroy(ctx->arena, put_backend, out->be);
    out->call = (ds_be_call_t){
        .arena = ctx->arena, .err = &ctx->err, .project_id = ctx->project_id, .cancel = ctx->cancel};
    return DS_OK;
}

ds_status_t ds_cmd_authorize_project(ds_ctx_t *ctx, const char *id)
{
    ds_proj_t p;
    return ds_cmd_open_project(ctx, id, &p);
}

/* ---- write slots ---- */

static void leave_slot(void *slot) { ds_wq_leave(queues, slot); }

ds_status_t ds_cmd_enter(ds_ctx_t *ctx, const char *key)
{
    ds_wq_slot_t *slot = NULL;
    ds_status_t st = ds_wq_enter(queues, key, ctx->cancel, &slot, &ctx->err);
    if (st == DS_OK && ds_arena_on_destroy(ctx->arena, leave_slot, slot) != 0)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    return st;
}

ds_status_t ds_cmd_enter_ddl(ds_ctx_t *ctx, const char *project)
{
    return ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "p/%s", project));
}

ds_status_t ds_cmd_enter_table(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table)
{
    return ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "t/%s/%s/%s", project, bucket, table));
}
