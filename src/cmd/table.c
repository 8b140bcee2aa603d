/*
 * table.c - table commands: create, get, list, drop.
 *
 * Every name is validated and every type canonicalized (core/types.c) before
 * the backend sees the definition, so nothing unchecked reaches SQL.
 */
#include <string.h>
#include <strings.h>

#include "cmd/internal.h"
#include "cmd/snapshot.h"
#include "core/types.h"

/* Validates the definition and builds the backend's form of it. */
static ds_status_t build_def(ds_ctx_t *ctx, const char *bucket, const ds_table_create_t *in, ds_be_table_t *def)
{
    ds_status_t st = ds_ident_check_name(in->name, "table", &ctx->err);
    if (st != DS_OK)
        return st;
    if (in->n_columns == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "a table needs at least one column");
    if (in->n_columns > 4096)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "a table may have at most 4096 columns");
    def->bucket = bucket;
    def->name = in->name;
    def->columns = ds_arena_alloc(ctx->arena, sizeof(ds_be_column_t) * in->n_columns);
    if (!def->columns)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < in->n_columns; i++) {
        const ds_column_in_t *c = &in->columns[i];
        if ((st = ds_ident_check_name(c->name, "column", &ctx->err)) != DS_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(in->columns[j].name, c->name) == 0)
                return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "column \"%s\" is given twice", c->name);
        char *type = ds_arena_alloc(ctx->arena, DS_TYPE_MAX);
        if (!type)
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        if ((st = ds_type_canonical(c->type ? c->type : "VARCHAR", c->name, type, &ctx->err)) != DS_OK)
            return st;
        def->columns[i] = (ds_be_column_t){c->name, type, c->nullable, c->default_value};
    }
    def->n_columns = in->n_columns;
    const char **pks = ds_arena_alloc(ctx->arena, sizeof(char *) * (in->n_primary_key ? in->n_primary_key : 1));
    if (!pks)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    for (size_t k = 0; k < in->n_primary_key; k++) {
        const char *pk = in->primary_key[k];
        size_t i = 0;
        while (i < in->n_columns && strcasecmp(in->columns[i].name, pk ? pk : "") != 0)
            i++;
        if (i == in->n_columns)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "primary_key",
                               "primary key column \"%s\" is not a column of the table", pk ? pk : "");
        for (size_t j = 0; j < k; j++)
            if (strcasecmp(in->primary_key[j], pk) == 0)
                return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "primary_key",
                                   "primary key column \"%s\" is given twice", pk);
        pks[k] = in->columns[i].name; /* the key names its columns as they are spelled */
    }
    def->primary_key = pks;
    def->n_primary_key = in->n_primary_key;
    def->created_at = ds_now();
    return DS_OK;
}

ds_status_t ds_cmd_table_create(ds_ctx_t *ctx, const char *project, const char *bucket,
                                const ds_table_create_t *in, ds_be_table_t *out)
{
    ds_proj_t p;
    ds_be_table_t def = {0};
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket(bucket, "bucket", &ctx->err)) != DS_OK)
        return st;
    if ((st = build_def(ctx, bucket, in, &def)) != DS_OK)
        return st;
    /* The table's metadata records its bucket in the bucket's own spelling. */
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK || (st = ds_cmd_share_refuse_write(ctx, &p)) != DS_OK)
        return st;
    def.bucket = bucket;
    if ((st = ds_cmd_require_types(ctx, &p, def.columns, def.n_columns)) != DS_OK)
        return st;
    /* A repeat of a create the backend recorded as committed before a crash lost its answer. */
    bool applied;
    int64_t count;
    if ((st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count)) != DS_OK)
        return st;
    if (p.branch) {
        /* Created in the branch only: in its own bucket, and not over a table the branch sees. */
        const char *name = in->name;
        bool exists;
        bucket = ds_cmd_branch_logical(&p, bucket);
        const ds_alias_t *a;
        if ((st = ds_cmd_alias_lookup(ctx, &p, bucket, name, &a)) != DS_OK)
            return st;
        if (a && !applied)
            return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "an alias \"%s.%s\" already exists", bucket, name);
        if ((st = ds_cmd_resolve_table(ctx, &p, &bucket, &name, true, NULL, &exists)) != DS_OK)
            return st;
        if (exists && !applied)
            return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "table \"%s.%s\" already exists",
                              ds_cmd_branch_logical(&p, bucket), name);
        /* The branch's own bucket, if made now, is not this write's record: only the create is. */
        const struct ds_be_idem *idem = p.call.idem;
        p.call.idem = NULL;
        st = ds_cmd_branch_write(ctx, &p, &bucket, &name, true);
        p.call.idem = idem;
        if (st != DS_OK)
            return st;
        def.bucket = bucket;
    } else {
        if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
            return st;
        const ds_alias_t *a;
        if ((st = ds_cmd_alias_lookup(ctx, &p, bucket, in->name, &a)) != DS_OK)
            return st;
        if (a && !applied)
            return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "an alias \"%s.%s\" already exists", bucket, in->name);
    }
    if (!applied) {
        if ((st = ds_be_table_create(p.be, &p.call, &def)) != DS_OK)
            return st;
        ds_cmd_test_crash_point("table_create");
    }
    if ((st = ds_be_table_get(p.be, &p.call, bucket, in->name, out)) != DS_OK)
        return st;
    out->bucket = ds_cmd_branch_logical(&p, out->bucket);
    return DS_OK;
}

ds_status_t ds_cmd_table_get(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                             ds_be_table_t *out)
{
    return ds_cmd_object_get(ctx, project, bucket, table, out, NULL, NULL);
}

ds_status_t ds_cmd_table_list(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_table_t **items,
                              size_t *n)
{
    return ds_cmd_object_list(ctx, project, bucket, items, n, NULL);
}

ds_status_t ds_cmd_table_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table, bool force)
{
    ds_proj_t p;
    bool applied = false;
    int64_t count;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    /* Before the lookup: the repeat of a drop recorded as committed finds the table gone, and answers 204. */
    if (st == DS_OK && !p.branch && ctx->idem_token && (st = ds_cmd_require_write(ctx)) == DS_OK)
        st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count);
    if (st != DS_OK || applied)
        return st;
    const char *b = bucket, *t = table;
    if ((st = ds_cmd_resolve_table(ctx, &p, &b, &t, false, NULL, NULL)) != DS_OK) {
        /* Not a table: an alias is dropped as one (alias.c). */
        const ds_alias_t *a = NULL;
        if (st != DS_INVALID_ARGUMENT || ds_cmd_alias_lookup(ctx, &p, bucket, table, &a) != DS_OK || !a)
            return ctx->err.status;
        ds_err_clear(&ctx->err);
        if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
            return st;
        return ds_cmd_alias_drop(ctx, &p, a, force);
    }
    bucket = b;
    table = t;
    if ((st = ds_cmd_share_refuse_write(ctx, &p)) != DS_OK)
        return st;
    if (p.branch) {
        /*
         * The branch's drop takes the table's and the catalog slot itself
         * (in that order), and holds them until the request ends: the aliases
         * are checked before and, forced, dropped after it. The snapshot is of
         * the table as the branch sees it now.
         */
        if (!force && (st = ds_cmd_alias_drop_dependents(ctx, &p, bucket, table, false)) != DS_OK)
            return st;
        const char *snap;
        if ((st = ds_cmd_require_write(ctx)) != DS_OK ||
            (st = ds_cmd_snapshot_auto(ctx, &p, bucket, table, NULL, DS_SNAP_DROP_TABLE, &snap)) != DS_OK)
            return st;
        if ((st = ds_cmd_branch_table_drop(ctx, &p, bucket, table)) != DS_OK) {
            ds_cmd_snapshot_discard(ctx, &p, snap);
            return st;
        }
        return force ? ds_cmd_alias_drop_dependents(ctx, &p, bucket, table, true) : DS_OK;
    }
    if ((st = ds_cmd_enter_table(ctx, project, bucket, table)) != DS_OK ||
        (st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    if ((st = ds_cmd_share_check_source(ctx, &p, bucket, "dropped, nor its tables")) != DS_OK ||
        (st = ds_cmd_alias_drop_dependents(ctx, &p, bucket, table, force)) != DS_OK)
        return st;
    const char *snap;
    if ((st = ds_cmd_snapshot_auto(ctx, &p, bucket, table, NULL, DS_SNAP_DROP_TABLE, &snap)) != DS_OK)
        return st;
    if ((st = ds_be_table_drop(p.be, &p.call, bucket, table)) == DS_OK)
        ds_cmd_test_crash_point("table_drop");
    else
        ds_cmd_snapshot_discard(ctx, &p, snap);
    return st;
}
