/*
 * names.c - the one resolver of bucket, table and column names.
 *
 * DESIGN
 * A request may spell a name in any letter case its backend accepts: on a
 * case-insensitive backend (DuckDB) "tables/t" and "tables/T" are one table.
 * Everything duckstore derives from a name (write-queue keys, SQL, cache keys,
 * messages, responses) must therefore start from one spelling, or two
 * spellings of one table would get two write queues and run concurrently.
 *
 * Every command resolves the names it receives here, once, right after it
 * opened the project and before it builds any queue key or calls a backend:
 * a bucket or table becomes its stored spelling (as created), a column the
 * spelling of the table's column it names. The lookup itself is the
 * backend's (bucket_get, table_get), so each backend's own case rule decides
 * which spellings are one name; columns follow the rule the backend declares
 * (ds_be_caps_t.case_rule). A name that names nothing is left as given: the
 * backend then reports it (not found, unknown column) as before. A backend
 * without bucket_get/table_get gets the names as given.
 *
 * Write-queue keys are, in addition, built from the lower-cased resolved
 * names (service.c): a table dropped and re-created with another spelling
 * between two requests' resolutions still maps to one queue.
 *
 * In a development branch (p->branch), the names resolve through the branch
 * (cmd/branch.c) to the physical table the branch sees.
 *
 * A bucket the project (or its branch) does not have may be a linked bucket:
 * cmd/share.c then turns p into the source project for this request, after
 * checking the share again. A p that reads a linked bucket resolves that
 * bucket only.
 * A name that is an alias (cmd/alias.c) is refused here with a clear 400:
 * every write resolves its table through ds_cmd_resolve_table, so no write
 * can reach an alias; reads use ds_cmd_resolve_read, which follows it.
 *
 * Everything returned is allocated in the request arena.
 */
#include <string.h>
#include <strings.h>

#include "cmd/internal.h"

static ds_status_t oom(ds_ctx_t *ctx) { return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory resolving names"); }

bool ds_cmd_names_fold(const ds_proj_t *p)
{
    const ds_backend_ops_t *ops = p->be->ops;
    if (DS_BE_HAS(ops, caps) && DS_BE_CAPS_HAS(ops->caps, case_rule))
        return ops->caps->case_rule != DS_CASE_SENSITIVE;
    return !(ops->capabilities & DS_CAP_CASE_SENSITIVE);
}

/*
 * Before the project's own lookup: a link of that bucket id turns p into the
 * source project (cmd/share.c; the links are held in memory, so this costs no
 * query). A project never has a bucket and a link of one id.
 */
static ds_status_t follow_link(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, bool *linked)
{
    *linked = false;
    if (p->linked_bucket) {
        *linked = true;
        return ds_cmd_share_again(ctx, p, bucket);
    }
    ds_status_t st = ds_cmd_share_follow(ctx, p, bucket);
    if (st == DS_NOT_FOUND)
        return DS_OK; /* no link: ctx->err untouched */
    *linked = st == DS_OK;
    return st;
}

ds_status_t ds_cmd_resolve_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket)
{
    ds_status_t st = ds_ident_check_bucket(*bucket, "bucket", &ctx->err);
    if (st != DS_OK)
        return st;
    ds_be_bucket_t b;
    bool linked;
    if ((st = follow_link(ctx, p, bucket, &linked)) != DS_OK || linked)
        return st; /* the source's bucket, resolved by the link */
    if (p->branch)
        return ds_cmd_branch_resolve_bucket(ctx, p, bucket);
    if (!p->be->ops->bucket_get)
        return DS_OK; /* a backend without lookups keeps names as given and applies its own rule */
    if ((st = ds_be_bucket_get(p->be, &p->call, *bucket, &b)) != DS_OK)
        return st;
    if (!b.id)
        return oom(ctx);
    *bucket = b.id;
    return DS_OK;
}

ds_status_t ds_cmd_resolve_table(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                 bool may_be_missing, ds_be_table_t *def, bool *exists)
{
    const char *b0 = *bucket, *t0 = *table;
    bool found = false;
    ds_status_t st = ds_cmd_resolve_table_only(ctx, p, bucket, table, may_be_missing, def, exists ? exists : &found);
    if (st == DS_NOT_FOUND || (st == DS_OK && may_be_missing && !(exists ? *exists : found))) {
        /*
         * No table of that name: an alias of it is read-only. Every writer
         * resolves its destination here, so no write reaches an alias's source.
         */
        ds_err_t saved = ctx->err;
        const ds_alias_t *a = NULL;
        /* Through a link p is the source project now: its alias goes by the source's bucket id. */
        if (ds_cmd_alias_lookup(ctx, p, p->linked_bucket ? *bucket : b0, t0, &a) != DS_OK)
            return ctx->err.status;
        if (a && p->linked_bucket)
            return ds_cmd_share_refuse_write(ctx, p);
        if (a)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "table",
                               "\"%s.%s\" is an alias of \"%s.%s\": aliases are read-only (import, delete rows and "
                               "column or key changes go to the source table)",
                               a->bucket, a->name, a->source_bucket, a->source_table);
        ctx->err = saved;
    }
    return st;
}

ds_status_t ds_cmd_resolve_table_only(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                      bool may_be_missing, ds_be_table_t *def, bool *exists)
{
    ds_be_table_t t;
    if (!def)
        def = &t;
    memset(def, 0, sizeof(*def));
    if (exists)
        *exists = false;
    ds_status_t st = ds_ident_check_bucket(*bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(*table, "table", &ctx->err);
    if (st != DS_OK)
        return st;
    bool linked;
    if ((st = follow_link(ctx, p, bucket, &linked)) != DS_OK)
        return st;
    /* A linked bucket's table is the source's main table (below); a branch resolves its own names. */
    if (p->branch && !linked)
        return ds_cmd_branch_resolve_table(ctx, p, bucket, table, may_be_missing, def, exists);
    if (!p->be->ops->table_get) {
        if (exists)
            *exists = true; /* unknown: the backend decides */
        return DS_OK;
    }
    st = ds_be_table_get(p->be, &p->call, *bucket, *table, def);
    if (st == DS_NOT_FOUND && may_be_missing) {
        /* The table is created by this request: its bucket must exist, and gives its spelling. */
        ds_err_clear(&ctx->err);
        memset(def, 0, sizeof(*def));
        return ds_cmd_resolve_bucket(ctx, p, bucket);
    }
    if (st != DS_OK)
        return st;
    if (!def->bucket || !def->name)
        return oom(ctx);
    *bucket = def->bucket;
    *table = def->name;
    if (exists)
        *exists = true;
    return DS_OK;
}

const char *ds_cmd_column_name(const ds_proj_t *p, const ds_be_table_t *t, const char *name)
{
    if (!name || !t)
        return name;
    bool fold = ds_cmd_names_fold(p);
    for (size_t i = 0; i < t->n_columns; i++) {
        const char *c = t->columns[i].name;
        if (c && (fold ? strcasecmp(c, name) : strcmp(c, name)) == 0)
            return c;
    }
    return name;
}

ds_status_t ds_cmd_resolve_columns(ds_ctx_t *ctx, const ds_proj_t *p, const ds_be_table_t *t, const char **const *names,
                                   size_t n, const char ***out)
{
    *out = (const char **)*names;
    if (!*names || n == 0)
        return DS_OK;
    const char **copy = ds_arena_alloc(ctx->arena, sizeof(char *) * n);
    if (!copy)
        return oom(ctx);
    for (size_t i = 0; i < n; i++)
        copy[i] = ds_cmd_column_name(p, t, (*names)[i]);
    *out = copy;
    return DS_OK;
}

ds_status_t ds_cmd_resolve_where(ds_ctx_t *ctx, ds_proj_t *p, const ds_be_table_t *t, ds_where_t *w)
{
    if (w->n_filters) {
        ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(ds_filter_t) * w->n_filters);
        if (!f)
            return oom(ctx);
        for (size_t i = 0; i < w->n_filters; i++) {
            f[i] = w->filters[i];
            f[i].column = ds_cmd_column_name(p, t, f[i].column);
        }
        w->filters = f;
    }
    if (w->in_column) {
        w->in_column = ds_cmd_column_name(p, t, w->in_column);
        if (w->in_bucket && w->in_table) {
            ds_be_table_t ref;
            ds_status_t st = ds_cmd_resolve_table(ctx, p, &w->in_bucket, &w->in_table, false, &ref, NULL);
            if (st != DS_OK)
                return st;
            w->in_ref_column = ds_cmd_column_name(p, &ref, w->in_ref_column);
        }
    }
    return DS_OK;
}

ds_status_t ds_cmd_resolve_order(ds_ctx_t *ctx, const ds_proj_t *p, const ds_be_table_t *t, ds_order_t **order,
                                 size_t n)
{
    if (!n)
        return DS_OK;
    ds_order_t *o = ds_arena_alloc(ctx->arena, sizeof(ds_order_t) * n);
    if (!o)
        return oom(ctx);
    for (size_t i = 0; i < n; i++) {
        o[i] = (*order)[i];
        o[i].column = ds_cmd_column_name(p, t, o[i].column);
    }
    *order = o;
    return DS_OK;
}
