/*
 * caps.c - capability checks for the commands, and the backend management
 * commands (list, load, unload). See caps.h and internal.h.
 *
 * A command that needs something the project's backend cannot do answers
 * DS_UNSUPPORTED (HTTP 501, gRPC UNIMPLEMENTED) with a message naming the
 * backend and the capability, before the backend is called. What a backend
 * can do comes from its capability bits and, when it gives one, its
 * ds_be_caps_t (formats per direction, filter operators it cannot run); the
 * core never looks at a backend's name to decide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/caps.h"
#include "cmd/internal.h"
#include "core/buf.h"
#include "core/log.h"

static const struct {
    uint64_t bit;
    const char *name;
} cap_names[] = {
    {DS_CAP_DRIVER, "driver"},
    {DS_CAP_TYPED_COLUMNS, "typed_columns"},
    {DS_CAP_CASE_SENSITIVE, "case_sensitive"},
    {DS_CAP_WORKSPACES, "workspaces"},
    {DS_CAP_SHARING, "sharing"},
    {DS_CAP_BRANCHES, "branches"},
    {DS_CAP_TIME_TRAVEL, "time_travel"},
    {DS_CAP_FORMAT_CSV, "format_csv"},
    {DS_CAP_FORMAT_PARQUET, "format_parquet"},
    {DS_CAP_IMPORT, "import"},
    {DS_CAP_EXPORT, "export"},
    {DS_CAP_PROFILE, "profile"},
    {DS_CAP_SCHEMA_CHANGES, "schema_changes"},
    {DS_CAP_SNAPSHOTS, "snapshots"},
    {DS_CAP_ALIASES, "aliases"},
    {DS_CAP_COMPACT, "compact"},
};

static const char *const op_names[] = {"eq", "ne", "gt", "ge", "lt", "le"};

const char *ds_cap_name(uint64_t bit)
{
    for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
        if (cap_names[i].bit == bit)
            return cap_names[i].name;
    return NULL;
}

const char *ds_filter_op_name(int op)
{
    return op >= 0 && (size_t)op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : NULL;
}

/* The backend's ds_be_caps_t, zero-extended into out; false when it gives none. */
static bool caps_of(const ds_backend_t *be, ds_be_caps_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!DS_BE_HAS(be->ops, caps) || !be->ops->caps)
        return false;
    const ds_be_caps_t *c = be->ops->caps;
    size_t n = c->struct_size < sizeof(*out) ? c->struct_size : sizeof(*out);
    memcpy(out, c, n);
    out->struct_size = sizeof(*out);
    return true;
}

/* ---- checks used by the commands ---- */

ds_status_t ds_cmd_require_cap(ds_ctx_t *ctx, const ds_proj_t *proj, uint64_t cap, const char *what)
{
    uint64_t missing = cap & ~proj->be->ops->capabilities;
    if (!missing)
        return DS_OK;
    uint64_t bit = missing & (~missing + 1);
    const char *name = ds_cap_name(bit);
    return ds_err_set(&ctx->err, DS_UNSUPPORTED, "%s is not supported by backend \"%s\" (project \"%s\"): it lacks the %s capability",
                      what, proj->be->ops->name, proj->rec.id, name ? name : "required");
}

static ds_status_t require_format(ds_ctx_t *ctx, const ds_proj_t *proj, ds_format_t format, bool import)
{
    ds_be_caps_t caps;
    bool has = caps_of(proj->be, &caps);
    uint32_t mask = has ? (import ? caps.import_formats : caps.export_formats) : 0;
    uint64_t bit = format == DS_FORMAT_PARQUET ? DS_CAP_FORMAT_PARQUET : DS_CAP_FORMAT_CSV;
    const char *fname = format == DS_FORMAT_PARQUET ? "parquet" : "csv";
    bool ok = mask ? (mask & DS_FORMAT_BIT(format)) != 0 : (proj->be->ops->capabilities & bit) != 0;
    if (ok)
        return DS_OK;
    return ds_err_setf(&ctx->err, DS_UNSUPPORTED, "format",
                       "%s %s is not supported by backend \"%s\" (project \"%s\"): it lacks the %s capability",
                       fname, import ? "import" : "export", proj->be->ops->name, proj->rec.id, ds_cap_name(bit));
}

ds_status_t ds_cmd_require_import(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_import_t *in)
{
    ds_status_t st = ds_cmd_require_cap(ctx, proj, DS_CAP_IMPORT, "import");
    if (st == DS_OK && !in->src_table)
        st = require_format(ctx, proj, in->format, true);
    if (st == DS_OK && in->src_table)
        st = ds_cmd_require_filters(ctx, proj, &in->src_where, NULL, 0);
    /* A backend built before ds_import_t.src_limit was appended would import every row. */
    if (st == DS_OK && in->src_table && in->src_limit && !DS_BE_HAS(proj->be->ops, tables_move_restore))
        st = ds_err_setf(&ctx->err, DS_UNSUPPORTED, "limit",
                         "limit of an import from table is not supported by backend \"%s\" (project \"%s\")",
                         proj->be->ops->name, proj->rec.id);
    return st;
}

ds_status_t ds_cmd_require_export(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_export_t *in)
{
    ds_status_t st = ds_cmd_require_cap(ctx, proj, DS_CAP_EXPORT, "export");
    if (st == DS_OK)
        st = require_format(ctx, proj, in->format, false);
    if (st == DS_OK)
        st = ds_cmd_require_filters(ctx, proj, &in->where, in->order, in->n_order);
    return st;
}

ds_status_t ds_cmd_require_filters(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_where_t *where,
                                   const ds_order_t *order, size_t n_order)
{
    ds_be_caps_t caps;
    if (!caps_of(proj->be, &caps))
        return DS_OK;
    for (size_t i = 0; where && i < where->n_filters; i++) {
        const ds_filter_t *f = &where->filters[i];
        if ((unsigned)f->op < 32 && (caps.unsupported_filter_ops & DS_FILTER_OP_BIT(f->op))) {
            const char *op = ds_filter_op_name((int)f->op);
            return ds_err_setf(&ctx->err, DS_UNSUPPORTED, "where_filters",
                               "filter operator \"%s\" is not supported by backend \"%s\" (project \"%s\")",
                               op ? op : "?", proj->be->ops->name, proj->rec.id);
        }
        if (f->data_type && !caps.filter_data_types)
            return ds_err_setf(&ctx->err, DS_UNSUPPORTED, "where_filters",
                               "filters with a data_type are not supported by backend \"%s\" (project \"%s\")",
                               proj->be->ops->name, proj->rec.id);
    }
    for (size_t i = 0; i < n_order; i++)
        if (order[i].data_type && !caps.filter_data_types)
            return ds_err_setf(&ctx->err, DS_UNSUPPORTED, "order_by",
                               "ordering with a data_type is not supported by backend \"%s\" (project \"%s\")",
                               proj->be->ops->name, proj->rec.id);
    return DS_OK;
}

ds_status_t ds_cmd_require_types(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_be_column_t *columns, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (columns[i].type && strcasecmp(columns[i].type, "VARCHAR") != 0) {
            ds_status_t st = ds_cmd_require_cap(ctx, proj, DS_CAP_TYPED_COLUMNS, "a typed column");
            if (st != DS_OK)
                return ds_err_setf(&ctx->err, DS_UNSUPPORTED, "columns",
                                   "column \"%s\" of type %s: typed columns are not supported by backend \"%s\" "
                                   "(project \"%s\"): it lacks the typed_columns capability",
                                   columns[i].name, columns[i].type, proj->be->ops->name, proj->rec.id);
        }
    return DS_OK;
}

ds_status_t ds_cmd_require_schema_change(ds_ctx_t *ctx, const ds_proj_t *proj, const char *type)
{
    ds_status_t st = ds_cmd_require_cap(ctx, proj, DS_CAP_SCHEMA_CHANGES, "changing a table's schema");
    if (st == DS_OK && type && strcasecmp(type, "VARCHAR") != 0)
        st = ds_cmd_require_cap(ctx, proj, DS_CAP_TYPED_COLUMNS, "a typed column");
    return st;
}

/* ---- backend management ---- */

static void put_backend(void *p) { ds_registry_put(p); }

typedef struct {
    const char *backend;
    int64_t count;
    ds_buf_t ids;
} usage_t;

/* Counts the catalog's projects (any state) on backend u->backend, naming the first few. */
static ds_status_t count_projects(ds_ctx_t *ctx, usage_t *u, ds_err_t *err)
{
    ds_project_rec_t *all;
    size_t n;
    ds_status_t st = ds_catalog_project_list_all(ctx->arena, &all, &n, err);
    if (st != DS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].backend, u->backend) == 0) {
            if (u->count < 5)
                ds_buf_printf(&u->ids, "%s\"%s\"", u->count ? ", " : "", all[i].id);
            u->count++;
        }
    return DS_OK;
}

static void describe(ds_ctx_t *ctx, ds_backend_t *be, ds_backend_desc_t *d)
{
    const ds_backend_ops_t *ops = be->ops;
    memset(d, 0, sizeof(*d));
    d->name = ops->name;
    d->version = ops->version;
    d->description = DS_BE_HAS(ops, description) ? ops->description : NULL;
    d->capabilities = ops->capabilities;
    d->has_caps = caps_of(be, &d->caps);
    ds_registry_meta(be, &d->meta);
    d->settings = ds_arena_alloc(ctx->arena, sizeof(ds_backend_setting_t) * (ops->n_settings ? ops->n_settings : 1));
    for (size_t i = 0; d->settings && i < ops->n_settings; i++) {
        char env[256];
        ds_backend_setting_t *s = &d->settings[i];
        s->def = &ops->settings[i];
        if (ds_registry_setting_env(ops->name, s->def->key, env, sizeof(env))) {
            s->env = ds_arena_strdup(ctx->arena, env);
            s->configured = ds_registry_setting_configured(ops->name, s->def->key);
        }
        d->n_settings++;
    }
    ds_err_t e = {0};
    d->loaded = true;
    d->health = ops->health ? ops->health(be->self, &e) : DS_OK;
    if (d->health != DS_OK)
        d->health_message = ds_arena_strdup(ctx->arena, e.message[0] ? e.message : ds_status_code(d->health));
    d->status = d->health == DS_OK ? "ready" : "unhealthy";
    d->last_error = d->health_message;
    usage_t u = {.backend = ops->name};
    if (count_projects(ctx, &u, &e) == DS_OK)
        d->projects = u.count;
    ds_buf_free(&u.ids);
}

typedef struct {
    ds_ctx_t *ctx;
    ds_backend_desc_t *items;
    size_t n, cap;
} list_t;

static void collect(ds_backend_t *be, void *ud)
{
    list_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        ds_backend_desc_t *bigger = ds_arena_alloc(l->ctx->arena, sizeof(*bigger) * cap);
        if (!bigger)
            return;
        if (l->n)
            memcpy(bigger, l->items, sizeof(*bigger) * l->n);
        l->items = bigger;
        l->cap = cap;
    }
    /* Keep it pinned until the request ends: the description points into the backend. */
    ds_backend_t *pinned = NULL;
    ds_err_t e = {0};
    if (ds_registry_get(be->ops->name, &pinned, &e) != DS_OK)
        return;
    /* A hook that cannot be registered runs at once: the backend is put back, and not described. */
    if (ds_arena_on_destroy(l->ctx->arena, put_backend, pinned) != 0)
        return;
    describe(l->ctx, pinned, &l->items[l->n++]);
}

/* A plugin that did not register, as GET /backends shows it. */
static void describe_problem(ds_ctx_t *ctx, const ds_registry_problem_t *p, ds_backend_desc_t *d)
{
    memset(d, 0, sizeof(*d));
    d->name = p->name;
    d->status = p->unconfigured ? "unconfigured" : "failed";
    d->last_error = p->error;
    d->failed_at = p->at;
    d->meta.path = p->path;
    d->health = DS_UNAVAILABLE;
    d->settings = ds_arena_alloc(ctx->arena, sizeof(ds_backend_setting_t) * (p->n_settings ? p->n_settings : 1));
    for (size_t i = 0; d->settings && i < p->n_settings; i++) {
        char env[256];
        ds_backend_setting_t *s = &d->settings[i];
        s->def = &p->settings[i];
        if (p->declared_name && ds_registry_setting_env(p->name, s->def->key, env, sizeof(env))) {
            s->env = ds_arena_strdup(ctx->arena, env);
            s->configured = ds_registry_setting_configured(p->name, s->def->key);
        }
        d->n_settings++;
    }
    if (p->declared_name) {
        usage_t u = {.backend = p->name};
        ds_err_t e = {0};
        if (count_projects(ctx, &u, &e) == DS_OK)
            d->projects = u.count;
        ds_buf_free(&u.ids);
    }
}

ds_status_t ds_cmd_backend_list(ds_ctx_t *ctx, ds_backend_desc_t **items, size_t *n)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    list_t l = {.ctx = ctx};
    ds_registry_each(collect, &l);
    ds_registry_problem_t *probs;
    size_t n_probs;
    ds_registry_problems(ctx->arena, &probs, &n_probs);
    if (n_probs) {
        ds_backend_desc_t *all = ds_arena_alloc(ctx->arena, sizeof(*all) * (l.n + n_probs));
        if (!all)
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        if (l.n)
            memcpy(all, l.items, sizeof(*all) * l.n);
        for (size_t i = 0; i < n_probs; i++)
            describe_problem(ctx, &probs[i], &all[l.n++]);
        l.items = all;
    }
    *items = l.items;
    *n = l.n;
    return DS_OK;
}

ds_status_t ds_cmd_backend_reload(ds_ctx_t *ctx, const char *name, ds_backend_desc_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    const char *registered = NULL;
    ds_backend_t *be = NULL;
    if (st != DS_OK)
        return st;
    if ((st = ds_registry_reload(name, &registered, &ctx->err)) != DS_OK)
        return st;
    if ((st = ds_registry_get(registered, &be, &ctx->err)) != DS_OK)
        return st; /* unloaded again in between */
    if (ds_arena_on_destroy(ctx->arena, put_backend, be) != 0) /* it ran at once: be is put back */
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    describe(ctx, be, out);
    return DS_OK;
}

ds_status_t ds_cmd_backend_load(ds_ctx_t *ctx, const char *path, ds_backend_desc_t *out)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    const char *name = NULL;
    ds_backend_t *be = NULL;
    if (st != DS_OK)
        return st;
    if (!path)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "path", "path is required");
    if ((st = ds_registry_load_file(path, &name, &ctx->err)) != DS_OK)
        return st;
    if ((st = ds_registry_get(name, &be, &ctx->err)) != DS_OK)
        return st; /* unloaded again in between */
    if (ds_arena_on_destroy(ctx->arena, put_backend, be) != 0) /* it ran at once: be is put back */
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    describe(ctx, be, out);
    return DS_OK;
}

static ds_status_t unload_check(const char *name, void *ud, ds_err_t *err)
{
    ds_ctx_t *ctx = ud;
    usage_t u = {.backend = name};
    ds_status_t st = count_projects(ctx, &u, err);
    if (st == DS_OK && u.count > 0)
        st = ds_err_set(err, DS_CONFLICT, "backend \"%s\" holds %lld project%s (%s%s); delete them first", name,
                        (long long)u.count, u.count == 1 ? "" : "s", ds_buf_text(&u.ids), u.count > 5 ? ", ..." : "");
    ds_buf_free(&u.ids);
    return st;
}

ds_status_t ds_cmd_backend_unload(ds_ctx_t *ctx, const char *name)
{
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    return ds_registry_unload(name, unload_check, ctx, 5000, &ctx->err);
}
