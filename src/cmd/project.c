/*
 * project.c - backend and project commands.
 *
 * Project creation writes the catalog row ("creating") before the backend
 * creates storage, and marks it "ready" after; deletion marks "deleting"
 * before the storage goes. A crash between the steps is repaired by the
 * recovery pass in service.c. Project creation and deletion are serialized
 * (one at a time) so two creates of one id cannot race between the steps.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cmd/files.h"
#include "cmd/internal.h"
#include "core/keys.h"
#include "core/log.h"

static pthread_mutex_t lifecycle = PTHREAD_MUTEX_INITIALIZER;

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

    pthread_mutex_lock(&lifecycle);
    st = ds_catalog_project_insert(rec, &ctx->err);
    if (st == DS_OK) {
        ds_be_call_t call = {.arena = ctx->arena, .err = &ctx->err, .project_id = rec->id};
        st = ds_be_project_create(be, &call);
        ds_err_t e = {0};
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
    }
    pthread_mutex_unlock(&lifecycle);
    ds_registry_put(be);
    if (st != DS_OK)
        return st;
    rec->state = DS_PROJECT_READY;
    out->api_key = ds_arena_strdup(ctx->arena, key);
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
    ds_status_t st = ds_cmd_open_project(ctx, id, &p);
    if (st != DS_OK)
        return st;
    out->rec = p.rec;
    st = ds_be_project_stats(p.be, &p.call, &out->stats);
    out->has_stats = st == DS_OK;
    return st;
}

ds_status_t ds_cmd_project_update(ds_ctx_t *ctx, const char *id, const char *name, ds_project_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    ds_proj_t p;
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_open_project(ctx, id, &p)) != DS_OK)
        return st;
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
    ds_proj_t p;
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_open_project(ctx, id, &p)) != DS_OK)
        return st;
    if ((st = ds_cmd_enter_ddl(ctx, id)) != DS_OK)
        return st;
    pthread_mutex_lock(&lifecycle);
    st = ds_catalog_project_set_state(id, DS_PROJECT_DELETING, &ctx->err);
    if (st == DS_OK)
        st = ds_be_project_drop(p.be, &p.call);
    /* The tables are gone, so the deletion goes on; file leftovers are removed by the files sweep. */
    if (st == DS_OK && ds_files_drop_project(ds_service_config()->data_dir, id, &ctx->err) != DS_OK) {
        ds_log(DS_LOG_ERROR, "project %s: cannot remove its Storage Files: %s", id, ctx->err.message);
        ds_err_clear(&ctx->err);
    }
    if (st == DS_OK)
        st = ds_catalog_project_delete(id, &ctx->err);
    else {
        ds_err_t e = {0};
        ds_catalog_project_set_state(id, DS_PROJECT_READY, &e);
    }
    pthread_mutex_unlock(&lifecycle);
    return st;
}
