/*
 * bucket.c - bucket commands. A bucket id is "<stage>.c-<name>"; the backend
 * keeps it as a schema of the project's storage.
 */
#include <string.h>

#include "catalog/shares.h"
#include "cmd/internal.h"
#include "cmd/snapshot.h"
#include "core/log.h"

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
    /* A linked bucket holds its id in the project (cmd/share.c). */
    if ((st = ds_cmd_share_check_free(ctx, project, id)) != DS_OK)
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
        st = ds_cmd_branch_bucket_list(ctx, &p, items, n);
    else if ((st = ds_be_bucket_list(p.be, &p.call, items, n)) == DS_OK) {
        /* Branch storage (ids starting with "_", see cmd/branch.c) is not main's. */
        size_t k = 0;
        for (size_t i = 0; i < *n; i++)
            if ((*items)[i].id && (*items)[i].id[0] != '_')
                (*items)[k++] = (*items)[i];
        *n = k;
    }
    /* Linked buckets are listed with the project's own (in a branch too: links belong to the project). */
    return st == DS_OK ? ds_cmd_share_list_links(ctx, &p, items, n) : st;
}

ds_status_t ds_cmd_bucket_get(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_bucket_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket(bucket, "bucket", &ctx->err)) != DS_OK)
        return st;
    st = p.branch ? ds_cmd_branch_bucket_get(ctx, &p, bucket, out)
                  : ds_be_bucket_get(p.be, &p.call, bucket, out); /* the backend's lookup returns the stored spelling */
    if (st != DS_NOT_FOUND)
        return st;
    /* A linked bucket: the source's bucket under the link's id. */
    ds_err_t nf = ctx->err;
    const char *id = bucket;
    if ((st = ds_cmd_share_follow(ctx, &p, &id)) == DS_NOT_FOUND)
        ctx->err = nf;
    if (st != DS_OK || (st = ds_be_bucket_get(p.be, &p.call, id, out)) != DS_OK)
        return st;
    const char *dot = strchr(p.linked_bucket, '.');
    out->id = p.linked_bucket;
    out->stage = dot ? ds_arena_strndup(ctx->arena, p.linked_bucket, (size_t)(dot - p.linked_bucket)) : out->stage;
    out->name = dot ? dot + 1 : out->name;
    return DS_OK;
}

/*
 * A forced bucket delete drops its tables: each gets the automatic snapshot
 * a table drop takes. The catalog slot is held, so no table of the bucket is
 * created, dropped or altered meanwhile.
 */
static ds_status_t snapshot_tables(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char ***taken, size_t *n)
{
    const char *logical = ds_cmd_branch_logical(p, bucket);
    ds_be_table_t *items;
    *taken = NULL;
    *n = 0;
    ds_status_t st = p->branch ? ds_cmd_branch_table_list(ctx, p, logical, &items, n)
                               : ds_be_table_list(p->be, &p->call, bucket, &items, n);
    if (st != DS_OK)
        return st;
    if (!(*taken = ds_arena_alloc(ctx->arena, sizeof(char *) * (*n ? *n : 1))))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; st == DS_OK && i < *n; i++) {
        const char *b = logical, *t = items[i].name;
        st = ds_cmd_resolve_table(ctx, p, &b, &t, false, NULL, NULL);
        if (st == DS_OK)
            st = ds_cmd_snapshot_auto(ctx, p, b, t, NULL, DS_SNAP_DROP_TABLE, &(*taken)[i]);
    }
    return st;
}

static void discard_all(ds_ctx_t *ctx, ds_proj_t *p, const char **taken, size_t n)
{
    for (size_t i = 0; taken && i < n; i++)
        ds_cmd_snapshot_discard(ctx, p, taken[i]);
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
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK || (st = ds_cmd_share_refuse_write(ctx, &p)) != DS_OK)
        return st;
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    /* Links read it: refused (before any snapshot is taken). */
    if (!p.branch && (st = ds_cmd_share_check_source(ctx, &p, bucket, "dropped")) != DS_OK)
        return st;
    /* Aliases in the bucket, or reading what it holds (cmd/alias.c): refused, or with force dropped first. */
    if ((st = ds_cmd_alias_drop_dependents(ctx, &p, bucket, NULL, force)) != DS_OK)
        return st;
    const char **snaps = NULL;
    size_t n_snaps = 0;
    if (force && (st = snapshot_tables(ctx, &p, bucket, &snaps, &n_snaps)) != DS_OK) {
        discard_all(ctx, &p, snaps, n_snaps);
        return st;
    }
    if (p.branch) {
        if ((st = ds_cmd_branch_bucket_drop(ctx, &p, bucket, force)) != DS_OK)
            discard_all(ctx, &p, snaps, n_snaps);
        return st;
    }
    /* A share alone goes first (see cmd/share.c), and comes back if the drop fails. */
    ds_share_rec_t share;
    bool shared = false, removed = false;
    if ((st = ds_catalog_share_get(ctx->arena, project, bucket, &share, &shared, &ctx->err)) != DS_OK ||
        (shared && (st = ds_catalog_share_delete(project, bucket, &removed, &ctx->err)) != DS_OK)) {
        discard_all(ctx, &p, snaps, n_snaps);
        return st;
    }
    if (removed)
        ds_cmd_test_crash_point("bucket_drop_unshared");
    if ((st = ds_be_bucket_drop(p.be, &p.call, bucket, force)) == DS_OK) {
        ds_cmd_test_crash_point("bucket_drop");
        return st;
    }
    discard_all(ctx, &p, snaps, n_snaps);
    if (removed) {
        ds_err_t e = {0};
        if (ds_catalog_share_put(&share, &e) != DS_OK)
            ds_log(DS_LOG_ERROR, "project %s: bucket %s stays unshared after a failed drop: %s", project, bucket,
                   e.message);
    }
    return st;
}
