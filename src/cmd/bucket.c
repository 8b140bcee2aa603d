/*
 * bucket.c - bucket commands. A bucket id is "<stage>.c-<name>"; the backend
 * keeps it as a schema of the project's storage.
 */
#include <string.h>

#include "cmd/internal.h"

ds_status_t ds_cmd_bucket_create(ds_ctx_t *ctx, const char *project, const ds_bucket_create_t *in,
                                 ds_be_bucket_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_stage(in->stage, &ctx->err)) != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket_name(in->name, &ctx->err)) != DS_OK)
        return st;
    const char *name = strncmp(in->name, "c-", 2) == 0 ? in->name : ds_arena_printf(ctx->arena, "c-%s", in->name);
    if (strlen(name) == 2)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "bucket name \"%s\" has nothing after \"c-\"", in->name);
    if (strlen(name) > DS_NAME_MAX)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "bucket name \"%s\" is longer than %d characters",
                           name, DS_NAME_MAX);
    if (in->description && strlen(in->description) > 4096)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "description", "description is longer than 4096 bytes");
    const char *id = ds_arena_printf(ctx->arena, "%s.%s", in->stage, name);
    if ((st = ds_ident_check_bucket(id, "name", &ctx->err)) != DS_OK)
        return st;
    ds_be_bucket_t b = {.id = id, .stage = in->stage, .name = name, .description = in->description,
                        .created_at = ds_now()};
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    if (p.branch) {
        if ((st = ds_cmd_branch_bucket_create(ctx, &p, &b)) != DS_OK)
            return st;
        return ds_cmd_branch_bucket_get(ctx, &p, id, out);
    }
    /* A repeat of a create the backend recorded as committed before a crash lost its answer. */
    bool applied;
    int64_t count;
    if ((st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count)) != DS_OK)
        return st;
    if (!applied) {
        if ((st = ds_be_bucket_create(p.be, &p.call, &b)) != DS_OK)
            return st;
        ds_cmd_test_crash_point("bucket_create");
    }
    return ds_be_bucket_get(p.be, &p.call, id, out);
}

ds_status_t ds_cmd_bucket_list(ds_ctx_t *ctx, const char *project, ds_be_bucket_t **items, size_t *n)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if (p.branch)
        return ds_cmd_branch_bucket_list(ctx, &p, items, n);
    if ((st = ds_be_bucket_list(p.be, &p.call, items, n)) != DS_OK)
        return st;
    /* Branch storage (ids starting with "_", see cmd/branch.c) is not main's. */
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if ((*items)[i].id && (*items)[i].id[0] != '_')
            (*items)[k++] = (*items)[i];
    *n = k;
    return DS_OK;
}

ds_status_t ds_cmd_bucket_get(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_bucket_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket(bucket, "bucket", &ctx->err)) != DS_OK)
        return st;
    if (p.branch)
        return ds_cmd_branch_bucket_get(ctx, &p, bucket, out);
    return ds_be_bucket_get(p.be, &p.call, bucket, out); /* the backend's lookup returns the stored spelling */
}

ds_status_t ds_cmd_bucket_delete(ds_ctx_t *ctx, const char *project, const char *bucket, bool force)
{
    ds_proj_t p;
    bool applied = false;
    int64_t count;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    /* Before the lookup: the repeat of a drop recorded as committed finds the bucket gone, and answers 204. */
    if (st == DS_OK && !p.branch && ctx->idem_token && (st = ds_cmd_require_write(ctx)) == DS_OK)
        st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count);
    if (st != DS_OK || applied)
        return st;
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK)
        return st;
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    /* Aliases in the bucket, or reading what it holds (cmd/alias.c): refused, or with force dropped first. */
    if ((st = ds_cmd_alias_drop_dependents(ctx, &p, bucket, NULL, force)) != DS_OK)
        return st;
    if (p.branch)
        return ds_cmd_branch_bucket_drop(ctx, &p, bucket, force);
    if ((st = ds_be_bucket_drop(p.be, &p.call, bucket, force)) == DS_OK)
        ds_cmd_test_crash_point("bucket_drop");
    return st;
}
