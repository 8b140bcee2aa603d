/*
 * alias.c - table aliases: read-only views of a table.
 *
 * DESIGN
 * An alias is metadata, nothing else: its source (a table, or an unfiltered
 * auto-sync alias), an optional filter (one column, eq or ne, one or more
 * values) and either "the source's columns, as they are at each read"
 * (auto_sync) or a pinned column list. The backend stores the definition in
 * the project's own storage (ds_be_alias_t, DS_CAP_ALIASES), so an alias
 * lives and dies with its project and survives restarts and detaches; its
 * scope is "" for main or the branch it was made in.
 *
 * Reads: every read command resolves its table through ds_cmd_resolve_read
 * (data.c, table.c, workspace loads through ds_cmd_scan_open). For an alias
 * it follows the chain to the physical table (through the branch resolver,
 * so an alias of main read in a branch reads the branch's view of the
 * source), ANDs the alias's filter into the request's own where and gives
 * the alias's columns as the table definition: preview, export (every
 * format, with the request's filters), profile, ObjectInfo, import from
 * table as a source and workspace loads need no code of their own. Nothing
 * is materialized, so a read through an alias costs the read of the table
 * plus one metadata lookup.
 *
 * Writes: names.c's ds_cmd_resolve_table refuses an alias with a 400, and
 * every writer resolves its table there. A table and an alias never share a
 * name: creating either over the other is 409.
 *
 * Rules: an alias of an alias needs the source alias unfiltered and
 * auto-sync (and such an alias then cannot get a filter or lose its sync
 * while aliases read it); dropping a table, alias or bucket that aliases read
 * needs force (which drops them); dropping a column an alias filters on or
 * pins is 409. In a branch an alias change is written in the branch's scope
 * only (a dropped main alias gets a hidden row there). A merge applies the
 * branch's rows to main in the merge's own transaction, after checking that
 * every alias main would then have still holds (ds_cmd_alias_merge_plan).
 *
 * Everything returned is allocated in the request arena. Changes run in the
 * project's catalog slot (ds_cmd_enter_ddl, which refuses read-only keys).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/internal.h"
#include "core/buf.h"

#define ALIAS_DEPTH_MAX 8
#define ALIAS_VALUES_MAX 1000

static ds_status_t oom(ds_ctx_t *ctx) { return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory"); }

static bool has_aliases(const ds_proj_t *p)
{
    return (p->be->ops->capabilities & DS_CAP_ALIASES) && DS_BE_HAS(p->be->ops, alias_list) &&
           p->be->ops->alias_list;
}

static const char *scope_of(const ds_proj_t *p) { return p->branch ? p->branch : ""; }

static bool same(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

/* ---- the stored definition (JSON text, ds_be_alias_t.def) ---- */

static char *def_text(const ds_alias_t *a)
{
    json_t *j = json_object(), *cols = json_array();
    json_object_set_new(j, "auto_sync", json_boolean(a->auto_sync));
    for (size_t i = 0; i < a->n_columns; i++)
        json_array_append_new(cols, json_string(a->columns[i]));
    json_object_set_new(j, "columns", cols);
    if (a->filter) {
        json_t *vals = json_array();
        for (size_t i = 0; i < a->filter->n_values; i++)
            json_array_append_new(vals, json_string(a->filter->values[i]));
        json_object_set_new(j, "filter",
                            json_pack("{s:s,s:s,s:o}", "column", a->filter->column, "operator",
                                      a->filter->op == DS_OP_NE ? "ne" : "eq", "values", vals));
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

static ds_status_t from_row(ds_ctx_t *ctx, const ds_be_alias_t *r, ds_alias_t *a)
{
    memset(a, 0, sizeof(*a));
    a->bucket = r->bucket;
    a->name = r->name;
    a->source_bucket = r->src_bucket;
    a->source_table = r->src_table;
    a->created_at = r->created_at;
    a->auto_sync = true;
    json_error_t jerr;
    json_t *j = json_loads(r->def ? r->def : "{}", 0, &jerr);
    if (!j)
        return ds_err_set(&ctx->err, DS_INTERNAL, "alias \"%s.%s\": its stored definition cannot be read", r->bucket,
                          r->name);
    a->auto_sync = !json_is_false(json_object_get(j, "auto_sync"));
    json_t *cols = json_object_get(j, "columns");
    a->n_columns = json_array_size(cols);
    if (a->n_columns && !(a->columns = ds_arena_alloc(ctx->arena, sizeof(char *) * a->n_columns)))
        goto fail;
    for (size_t i = 0; i < a->n_columns; i++)
        if (!(a->columns[i] = ds_arena_strdup(ctx->arena, json_string_value(json_array_get(cols, i)))))
            goto fail;
    json_t *f = json_object_get(j, "filter");
    if (json_is_object(f)) {
        ds_filter_t *flt = ds_arena_alloc(ctx->arena, sizeof(*flt));
        json_t *vals = json_object_get(f, "values");
        if (!flt)
            goto fail;
        flt->column = ds_arena_strdup(ctx->arena, json_string_value(json_object_get(f, "column")));
        flt->op = same(json_string_value(json_object_get(f, "operator")), "ne") ? DS_OP_NE : DS_OP_EQ;
        flt->n_values = json_array_size(vals);
        if (!flt->column || !(flt->values = ds_arena_alloc(ctx->arena, sizeof(char *) * (flt->n_values + 1))))
            goto fail;
        for (size_t i = 0; i < flt->n_values; i++)
            if (!(flt->values[i] = ds_arena_strdup(ctx->arena, json_string_value(json_array_get(vals, i)))))
                goto fail;
        a->filter = flt;
    }
    json_decref(j);
    return DS_OK;
fail:
    json_decref(j);
    return oom(ctx);
}

/* ---- the cache of each project's alias rows ----
 * A read must not pay for the aliases it does not use: every read looks its
 * name up here first (names are exclusive: a table and an alias never share
 * one), so a table read costs one hash lookup more, and an alias read skips
 * the table lookup that would find nothing. Entries hold every row of a
 * project (all scopes), loaded on first use. Every change of a project's
 * aliases goes through this file (store, remove_one) or drops them wholesale
 * (a branch or the project deleted, created): each then calls
 * ds_cmd_alias_forget, which bumps the entry's generation; a load that began
 * before a bump is not installed, so no stale rows outlive a change. Lock:
 * cache_lock guards the table and entries, never held across a backend call. */

#define CACHE_SLOTS 1024

typedef struct cache_entry {
    struct cache_entry *next;
    char project[DS_PROJECT_ID_MAX + 1];
    uint64_t gen;
    bool loaded;
    ds_be_alias_t *rows; /* malloc'd, with every string */
    size_t n;
} cache_entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry_t *cache_slots[CACHE_SLOTS];

static size_t cache_slot(const char *project)
{
    size_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)project; *c; c++)
        h = h * 33 + (size_t)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    return h % CACHE_SLOTS;
}

/* The entry of project (cache_lock held); created when missing; NULL when out of memory. */
static cache_entry_t *cache_entry(const char *project)
{
    size_t i = cache_slot(project);
    for (cache_entry_t *e = cache_slots[i]; e; e = e->next)
        if (strcasecmp(e->project, project) == 0)
            return e;
    cache_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->project, sizeof(e->project), "%s", project);
    e->next = cache_slots[i];
    cache_slots[i] = e;
    return e;
}

static void rows_free(ds_be_alias_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free((char *)rows[i].scope);
        free((char *)rows[i].bucket);
        free((char *)rows[i].name);
        free((char *)rows[i].src_bucket);
        free((char *)rows[i].src_table);
        free((char *)rows[i].def);
    }
    free(rows);
}

/* A malloc'd deep copy of rows[0..n); NULL when out of memory. */
static ds_be_alias_t *rows_copy(const ds_be_alias_t *rows, size_t n)
{
    ds_be_alias_t *c = calloc(n + 1, sizeof(*c));
    bool ok = c != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        c[i] = rows[i];
        c[i].scope = strdup(rows[i].scope ? rows[i].scope : "");
        c[i].bucket = strdup(rows[i].bucket ? rows[i].bucket : "");
        c[i].name = strdup(rows[i].name ? rows[i].name : "");
        c[i].src_bucket = strdup(rows[i].src_bucket ? rows[i].src_bucket : "");
        c[i].src_table = strdup(rows[i].src_table ? rows[i].src_table : "");
        c[i].def = strdup(rows[i].def ? rows[i].def : "");
        ok = c[i].scope && c[i].bucket && c[i].name && c[i].src_bucket && c[i].src_table && c[i].def;
    }
    if (!ok) {
        rows_free(c, n);
        return NULL;
    }
    return c;
}

void ds_cmd_alias_forget(const char *project)
{
    if (!project)
        return;
    pthread_mutex_lock(&cache_lock);
    cache_entry_t *e = cache_entry(project);
    if (e) {
        e->gen++;
        rows_free(e->rows, e->n);
        e->rows = NULL;
        e->n = 0;
        e->loaded = false;
    }
    pthread_mutex_unlock(&cache_lock);
}

/* True when row r matches bucket and name (NULL: any). */
static bool row_matches(const ds_be_alias_t *r, const char *bucket, const char *name)
{
    return (!bucket || same(r->bucket, bucket)) && (!name || same(r->name, name));
}

/*
 * The alias rows of p's project (all scopes) matching bucket and name (NULL:
 * any), in the request arena: from the cache, else the backend.
 */
static ds_status_t project_rows(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *name,
                                ds_be_alias_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&cache_lock);
    cache_entry_t *e = cache_entry(p->rec.id);
    uint64_t gen = e ? e->gen : 0;
    if (e && e->loaded) {
        size_t k = 0;
        for (size_t i = 0; i < e->n; i++)
            k += row_matches(&e->rows[i], bucket, name);
        ds_be_alias_t *rows = ds_arena_alloc(ctx->arena, sizeof(ds_be_alias_t) * (k + 1));
        if (rows) {
            /* The strings are copied too: a later forget frees the entry's. */
            k = 0;
            for (size_t j = 0; j < e->n; j++) {
                if (!row_matches(&e->rows[j], bucket, name))
                    continue;
                size_t i = k++;
                rows[i] = e->rows[j];
                rows[i].scope = ds_arena_strdup(ctx->arena, e->rows[j].scope);
                rows[i].bucket = ds_arena_strdup(ctx->arena, e->rows[j].bucket);
                rows[i].name = ds_arena_strdup(ctx->arena, e->rows[j].name);
                rows[i].src_bucket = ds_arena_strdup(ctx->arena, e->rows[j].src_bucket);
                rows[i].src_table = ds_arena_strdup(ctx->arena, e->rows[j].src_table);
                rows[i].def = ds_arena_strdup(ctx->arena, e->rows[j].def);
            }
            *out = rows;
            *n = k;
        }
        pthread_mutex_unlock(&cache_lock);
        return rows && !ds_arena_failed(ctx->arena) ? DS_OK : oom(ctx);
    }
    pthread_mutex_unlock(&cache_lock);
    ds_status_t st = ds_be_alias_list(p->be, &p->call, NULL, NULL, NULL, out, n);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&cache_lock);
    if ((e = cache_entry(p->rec.id)) && e->gen == gen && !e->loaded && (e->rows = rows_copy(*out, *n))) {
        e->n = *n;
        e->loaded = true;
    }
    pthread_mutex_unlock(&cache_lock);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (row_matches(&(*out)[i], bucket, name))
            (*out)[k++] = (*out)[i];
    *n = k;
    return DS_OK;
}

/* ---- what p sees ---- */

/*
 * Every alias visible to p (bucket NULL: all buckets): main's, and in a
 * branch the branch's rows over them (a hidden row removes main's).
 */
static ds_status_t visible(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *name, ds_alias_t **out,
                           size_t *n)
{
    ds_be_alias_t *rows, *m, *b;
    size_t nrows, nm = 0, nb = 0;
    *out = NULL;
    *n = 0;
    if (!has_aliases(p))
        return DS_OK;
    ds_status_t st = project_rows(ctx, p, bucket, name, &rows, &nrows);
    if (st != DS_OK)
        return st;
    /* Main's rows and the branch's. */
    m = ds_arena_alloc(ctx->arena, sizeof(ds_be_alias_t) * (nrows + 1));
    b = ds_arena_alloc(ctx->arena, sizeof(ds_be_alias_t) * (nrows + 1));
    if (!m || !b)
        return oom(ctx);
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].scope[0])
            m[nm++] = rows[i];
        else if (p->branch && same(rows[i].scope, p->branch))
            b[nb++] = rows[i];
    }
    ds_alias_t *items = ds_arena_alloc(ctx->arena, sizeof(ds_alias_t) * (nm + nb + 1));
    if (!items)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < nm; i++) {
        bool shadowed = false;
        for (size_t j = 0; j < nb && !shadowed; j++)
            shadowed = same(b[j].bucket, m[i].bucket) && same(b[j].name, m[i].name);
        if (!shadowed && (st = from_row(ctx, &m[i], &items[k])) == DS_OK)
            k++;
        if (st != DS_OK)
            return st;
    }
    for (size_t j = 0; j < nb; j++)
        if (!b[j].hidden) {
            if ((st = from_row(ctx, &b[j], &items[k])) != DS_OK)
                return st;
            k++;
        }
    *out = items;
    *n = k;
    return DS_OK;
}

ds_status_t ds_cmd_alias_lookup(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *name,
                                const ds_alias_t **out)
{
    ds_alias_t *items;
    size_t n;
    *out = NULL;
    if (!bucket || !name || !has_aliases(p))
        return DS_OK;
    ds_status_t st = visible(ctx, p, ds_cmd_branch_logical(p, bucket), name, &items, &n);
    if (st == DS_OK && n)
        *out = &items[0];
    return st;
}

/* ---- reading through an alias ---- */

/* The alias's view of src (the physical table it reads): its columns, key and times, named as the alias. */
static ds_status_t view_of(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a, const ds_be_table_t *src,
                           ds_be_table_t *view)
{
    *view = *src;
    view->bucket = a->bucket;
    view->name = a->name;
    view->bytes = 0;
    view->created_at = a->created_at;
    if (a->auto_sync)
        return DS_OK;
    ds_be_column_t *cols = ds_arena_alloc(ctx->arena, sizeof(ds_be_column_t) * (a->n_columns + 1));
    const char **pk = ds_arena_alloc(ctx->arena, sizeof(char *) * (src->n_primary_key + 1));
    if (!cols || !pk)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < a->n_columns; i++)
        for (size_t c = 0; c < src->n_columns; c++)
            if (ds_cmd_names_fold(p) ? same(src->columns[c].name, a->columns[i])
                                     : strcmp(src->columns[c].name, a->columns[i]) == 0) {
                cols[k++] = src->columns[c];
                break;
            }
    view->columns = cols;
    view->n_columns = k;
    size_t kp = 0;
    for (size_t i = 0; i < src->n_primary_key; i++)
        for (size_t c = 0; c < k; c++)
            if (same(cols[c].name, src->primary_key[i])) {
                pk[kp++] = src->primary_key[i];
                break;
            }
    view->primary_key = pk;
    view->n_primary_key = kp;
    return DS_OK;
}

/*
 * Follows a to the physical table it reads: *bucket and *table (physical) and
 * *src its definition. Every alias but the first of the chain is unfiltered
 * and auto-sync (the creation rule), so only a's own filter and columns apply.
 */
static ds_status_t follow(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, const char **bucket, const char **table,
                          ds_be_table_t *src)
{
    const ds_alias_t *cur = a;
    for (int depth = 0; depth < ALIAS_DEPTH_MAX; depth++) {
        const char *b = cur->source_bucket, *t = cur->source_table;
        ds_status_t st = ds_cmd_resolve_table_only(ctx, p, &b, &t, false, src, NULL);
        if (st == DS_OK) {
            *bucket = b;
            *table = t;
            return DS_OK;
        }
        if (st != DS_NOT_FOUND)
            return st;
        const ds_alias_t *next = NULL;
        if ((st = ds_cmd_alias_lookup(ctx, p, cur->source_bucket, cur->source_table, &next)) != DS_OK)
            return st;
        if (!next)
            return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND,
                               "alias \"%s.%s\": its source table \"%s.%s\" does not exist", a->bucket, a->name,
                               cur->source_bucket, cur->source_table);
        ds_err_clear(&ctx->err);
        cur = next;
    }
    return ds_err_set(&ctx->err, DS_CONFLICT, "alias \"%s.%s\": its chain of aliases is longer than %d", a->bucket,
                      a->name, ALIAS_DEPTH_MAX);
}

ds_status_t ds_cmd_resolve_read(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                ds_be_table_t *def, const ds_alias_t **alias, ds_where_t *where)
{
    ds_be_table_t t;
    if (!def)
        def = &t;
    if (alias)
        *alias = NULL;
    /* The (cached) alias lookup first: an alias read then costs what its source's read costs. */
    const ds_alias_t *a = NULL;
    ds_status_t st = ds_ident_check_bucket(*bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(*table, "table", &ctx->err);
    if (st == DS_OK)
        st = ds_cmd_alias_lookup(ctx, p, *bucket, *table, &a);
    if (st != DS_OK)
        return st;
    if (!a) {
        const char *t0 = *table;
        bool linked_before = p->linked_bucket != NULL;
        st = ds_cmd_resolve_table_only(ctx, p, bucket, table, false, def, NULL);
        /*
         * Aliases are shared with their bucket: a name a linked bucket's source
         * does not hold as a table may be an alias of the source project's
         * (the link made p the source; its alias is read there, and may read
         * only what that link reaches).
         */
        if (st != DS_NOT_FOUND || linked_before || !p->linked_bucket)
            return st;
        ds_err_t saved = ctx->err;
        const char *sb = *bucket;
        if (ds_cmd_alias_lookup(ctx, p, sb, t0, &a) != DS_OK || !a) {
            ctx->err = saved;
            return st;
        }
        ds_err_clear(&ctx->err);
        *bucket = sb;
        *table = t0;
    }
    ds_be_table_t src;
    if ((st = follow(ctx, p, a, bucket, table, &src)) != DS_OK || (st = view_of(ctx, p, a, &src, def)) != DS_OK)
        return st;
    if (alias)
        *alias = a;
    if (where && a->filter) {
        ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(ds_filter_t) * (where->n_filters + 1));
        if (!f)
            return oom(ctx);
        if (where->n_filters)
            memcpy(f, where->filters, sizeof(ds_filter_t) * where->n_filters);
        f[where->n_filters] = *a->filter;
        f[where->n_filters].column = ds_cmd_column_name(p, &src, a->filter->column);
        f[where->n_filters].data_type = NULL;
        where->filters = f;
        where->n_filters++;
    }
    return DS_OK;
}

ds_status_t ds_cmd_alias_check_column(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a,
                                      const ds_be_table_t *view, const char *name, const char *field)
{
    if (!a || a->auto_sync || !name || strcasecmp(name, "_timestamp") == 0)
        return DS_OK;
    for (size_t i = 0; i < view->n_columns; i++)
        if (ds_cmd_names_fold(p) ? same(view->columns[i].name, name) : strcmp(view->columns[i].name, name) == 0)
            return DS_OK;
    return ds_err_setk(&ctx->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                       "%s: column \"%s\" is not a column of alias \"%s.%s\"", field, name, a->bucket, a->name);
}

ds_status_t ds_cmd_alias_columns(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a, const ds_be_table_t *view,
                                 const char ***names, size_t *n, const char *field)
{
    if (!a || a->auto_sync)
        return DS_OK;
    for (size_t i = 0; i < *n; i++) {
        ds_status_t st = ds_cmd_alias_check_column(ctx, p, a, view, (*names)[i], field);
        if (st != DS_OK)
            return st;
    }
    if (*n)
        return DS_OK;
    const char **cols = ds_arena_alloc(ctx->arena, sizeof(char *) * (view->n_columns + 1));
    if (!cols)
        return oom(ctx);
    for (size_t i = 0; i < view->n_columns; i++)
        cols[i] = view->columns[i].name;
    *names = cols;
    *n = view->n_columns;
    return DS_OK;
}

/*
 * The exact rows alias a selects of physical bucket.table; view is its view
 * (view_of: the source's row count; the filter's column as stored when the
 * view leaves it out).
 */
static ds_status_t alias_rows(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, const char *bucket, const char *table,
                              const ds_be_table_t *view, int64_t *rows)
{
    *rows = view->rows;
    if (!a->filter)
        return DS_OK;
    ds_filter_t f = *a->filter;
    f.column = ds_cmd_column_name(p, view, f.column);
    ds_where_t w = {.filters = &f, .n_filters = 1};
    return ds_be_table_count(p->be, &p->call, bucket, table, &w, rows);
}

ds_status_t ds_cmd_read_rows(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, int64_t *rows)
{
    ds_be_table_t def;
    const ds_alias_t *a;
    ds_status_t st = ds_cmd_resolve_read(ctx, p, &bucket, &table, &def, &a, NULL);
    if (st != DS_OK)
        return st;
    if (!a) {
        *rows = def.rows;
        return DS_OK;
    }
    return alias_rows(ctx, p, a, bucket, table, &def, rows);
}

/* The table info of alias a as p sees it. */
static ds_status_t alias_info(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, ds_be_table_t *out)
{
    const char *b, *t;
    ds_be_table_t src;
    ds_status_t st = follow(ctx, p, a, &b, &t, &src);
    if (st == DS_OK)
        st = view_of(ctx, p, a, &src, out);
    if (st == DS_OK)
        st = alias_rows(ctx, p, a, b, t, out, &out->rows);
    return st;
}

/* ---- table commands that know aliases ---- */

ds_status_t ds_cmd_object_get(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                              ds_be_table_t *out, ds_alias_t *alias, bool *is_alias)
{
    ds_proj_t p;
    const ds_alias_t *a;
    if (is_alias)
        *is_alias = false;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_ident_check_bucket(bucket, "bucket", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(table, "table", &ctx->err)) != DS_OK)
        return st;
    const char *b = bucket, *t = table;
    if ((st = ds_cmd_resolve_read(ctx, &p, &b, &t, out, &a, NULL)) != DS_OK)
        return st;
    if (!a) {
        /* A linked bucket's table is shown under the link's bucket id (cmd/share.c). */
        out->bucket = p.linked_bucket ? p.linked_bucket : ds_cmd_branch_logical(&p, out->bucket);
        return DS_OK;
    }
    int64_t rows;
    if ((st = alias_rows(ctx, &p, a, b, t, out, &rows)) != DS_OK)
        return st;
    out->rows = rows;
    if (p.linked_bucket)
        out->bucket = p.linked_bucket;
    if (alias)
        *alias = *a;
    if (is_alias)
        *is_alias = true;
    return DS_OK;
}

ds_status_t ds_cmd_object_list(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_table_t **items,
                               size_t *n, const ds_alias_t ***aliases)
{
    ds_proj_t p;
    ds_be_table_t *tables;
    size_t nt;
    ds_alias_t *as;
    size_t na;
    if (aliases)
        *aliases = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK)
        return st;
    if (p.branch)
        st = ds_cmd_branch_table_list(ctx, &p, bucket, &tables, &nt);
    else
        st = ds_be_table_list(p.be, &p.call, bucket, &tables, &nt);
    if (st == DS_OK)
        st = visible(ctx, &p, ds_cmd_branch_logical(&p, bucket), NULL, &as, &na);
    if (st != DS_OK)
        return st;
    ds_be_table_t *all = ds_arena_alloc(ctx->arena, sizeof(ds_be_table_t) * (nt + na + 1));
    const ds_alias_t **which = ds_arena_alloc(ctx->arena, sizeof(ds_alias_t *) * (nt + na + 1));
    if (!all || !which)
        return oom(ctx);
    if (nt)
        memcpy(all, tables, sizeof(ds_be_table_t) * nt);
    size_t k = nt;
    for (size_t i = 0; i < na; i++) {
        /* An alias whose source is gone (dropped in a branch) is not listed: reading it answers 404. */
        ds_status_t ast = alias_info(ctx, &p, &as[i], &all[k]);
        if (ast == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            continue;
        }
        if (ast != DS_OK)
            return ast;
        which[k++] = &as[i];
    }
    for (size_t i = 0; p.linked_bucket && i < k; i++)
        all[i].bucket = p.linked_bucket;
    *items = all;
    *n = k;
    if (aliases)
        *aliases = which;
    return DS_OK;
}

/* ---- changes ---- */

/* Validates a filter given by a client. */
static ds_status_t check_filter(ds_ctx_t *ctx, const ds_filter_t *f)
{
    ds_status_t st = ds_ident_check_name(f->column, "filter.column", &ctx->err);
    if (st != DS_OK)
        return st;
    if (f->op != DS_OP_EQ && f->op != DS_OP_NE)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "filter.operator",
                           "an alias filter's operator must be eq or ne");
    if (f->n_values == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "filter.values", "an alias filter needs at least one value");
    if (f->n_values > ALIAS_VALUES_MAX)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "filter.values", "an alias filter takes at most %d values",
                           ALIAS_VALUES_MAX);
    for (size_t i = 0; i < f->n_values; i++)
        if (!f->values[i])
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "filter.values", "filter.values[%zu] must be a string",
                               i);
    return DS_OK;
}

/* DS_INVALID_ARGUMENT unless name is a column of the source view src. */
static ds_status_t source_column(ds_ctx_t *ctx, const ds_proj_t *p, const ds_be_table_t *src, const char *name,
                                 const char *field)
{
    for (size_t i = 0; i < src->n_columns; i++)
        if (ds_cmd_names_fold(p) ? same(src->columns[i].name, name) : strcmp(src->columns[i].name, name) == 0)
            return DS_OK;
    return ds_err_setk(&ctx->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                       "%s: column \"%s\" is not a column of the source \"%s.%s\"", field, name,
                       ds_cmd_branch_logical(p, src->bucket), src->name);
}

/* The columns alias a would have over source view src: every filter/pinned name must be one of them. */
static ds_status_t check_against(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a, const ds_be_table_t *src)
{
    if (a->filter) {
        ds_status_t st = source_column(ctx, p, src, a->filter->column, "filter.column");
        if (st != DS_OK)
            return st;
    }
    for (size_t i = 0; i < a->n_columns; i++) {
        ds_status_t st = source_column(ctx, p, src, a->columns[i], "columns");
        if (st != DS_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (same(a->columns[i], a->columns[j]))
                return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "column \"%s\" is given twice",
                                   a->columns[i]);
    }
    if (!a->auto_sync && a->n_columns == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "an alias needs at least one column");
    return DS_OK;
}

/* Every visible alias reading bucket.table directly (logical names). */
static ds_status_t readers_of(ds_ctx_t *ctx, ds_alias_t *all, size_t n, const char *bucket, const char *table,
                              const ds_alias_t ***out, size_t *nout)
{
    const ds_alias_t **r = ds_arena_alloc(ctx->arena, sizeof(ds_alias_t *) * (n + 1));
    if (!r)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (same(all[i].source_bucket, bucket) && (!table || same(all[i].source_table, table)))
            r[k++] = &all[i];
    *out = r;
    *nout = k;
    return DS_OK;
}

/* Writes a (its bucket and name as given) into p's scope; p's catalog slot is held. */
static ds_status_t store(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, bool hidden)
{
    char *text = def_text(a);
    if (!text)
        return oom(ctx);
    const char *def = ds_arena_strdup(ctx->arena, text);
    free(text);
    if (!def)
        return oom(ctx);
    ds_be_alias_t row = {.scope = scope_of(p), .bucket = a->bucket, .name = a->name, .src_bucket = a->source_bucket,
                         .src_table = a->source_table, .def = def, .hidden = hidden, .created_at = a->created_at};
    ds_status_t st = ds_be_alias_put(p->be, &p->call, &row);
    ds_cmd_alias_forget(p->rec.id); /* also after a failure: the write may have committed */
    return st;
}

/* Removes a from p's view: main drops its row; a branch writes a hidden row (main's stays for main). */
static ds_status_t remove_one(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a)
{
    if (p->branch)
        return store(ctx, p, a, true);
    ds_status_t st = ds_be_alias_drop(p->be, &p->call, "", a->bucket, a->name);
    ds_cmd_alias_forget(p->rec.id);
    return st;
}

/*
 * The aliases of all[0..n) that read bucket.table (table NULL: anything in
 * bucket), directly or through other aliases, breadth first, into *out (*k).
 */
static ds_status_t readers(ds_ctx_t *ctx, ds_alias_t *all, size_t n, const char *bucket, const char *table,
                           const ds_alias_t ***out, size_t *k)
{
    const ds_alias_t **found = ds_arena_alloc(ctx->arena, sizeof(ds_alias_t *) * (n + 1));
    bool *taken = ds_arena_alloc(ctx->arena, sizeof(bool) * (n + 1));
    if (!found || !taken)
        return oom(ctx);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (same(all[i].source_bucket, bucket) && (!table || same(all[i].source_table, table))) {
            taken[i] = true;
            found[m++] = &all[i];
        }
    for (size_t q = 0; q < m; q++)
        for (size_t i = 0; i < n; i++)
            if (!taken[i] && same(all[i].source_bucket, found[q]->bucket) && same(all[i].source_table, found[q]->name)) {
                taken[i] = true;
                found[m++] = &all[i];
            }
    *out = found;
    *k = m;
    return DS_OK;
}

/* Drops the aliases reading bucket.table (table NULL: anything in bucket), transitively; refuses without force. */
static ds_status_t drop_readers(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, bool force,
                                const char *what)
{
    ds_alias_t *all;
    size_t n;
    ds_status_t st = visible(ctx, p, NULL, NULL, &all, &n);
    if (st != DS_OK || n == 0)
        return st;
    /* The closure: direct readers, then readers of those, breadth first. */
    const ds_alias_t **pending;
    size_t k;
    if ((st = readers(ctx, all, n, bucket, table, &pending, &k)) != DS_OK)
        return st;
    if (k == 0)
        return DS_OK;
    if (!force) {
        ds_buf_t names = {0};
        for (size_t i = 0; i < k; i++)
            ds_buf_printf(&names, "%s\"%s.%s\"", i ? ", " : "", pending[i]->bucket, pending[i]->name);
        const char *list = ds_buf_cstr(&names);
        st = ds_err_setf(&ctx->err, DS_CONFLICT, "force",
                         "%s is read by alias%s %s: drop %s first or use force=true (which drops %s)", what,
                         k > 1 ? "es" : "", list ? list : "", k > 1 ? "them" : "it", k > 1 ? "them" : "it");
        ds_buf_free(&names);
        return st;
    }
    for (size_t i = k; i-- > 0 && st == DS_OK;)
        st = remove_one(ctx, p, pending[i]);
    return st;
}

ds_status_t ds_cmd_alias_drop_dependents(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                         bool force)
{
    if (!has_aliases(p))
        return DS_OK;
    bucket = ds_cmd_branch_logical(p, bucket);
    if (table) {
        char what[256];
        snprintf(what, sizeof(what), "table \"%s.%s\"", bucket, table);
        return drop_readers(ctx, p, bucket, table, force, ds_arena_strdup(ctx->arena, what));
    }
    /* A bucket: the aliases in it count as its content; then every reader of what it holds. */
    ds_alias_t *in;
    size_t n;
    ds_status_t st = visible(ctx, p, bucket, NULL, &in, &n);
    if (st != DS_OK)
        return st;
    if (n && !force) {
        ds_buf_t names = {0};
        for (size_t i = 0; i < n; i++)
            ds_buf_printf(&names, "%s\"%s\"", i ? ", " : "", in[i].name);
        const char *list = ds_buf_cstr(&names);
        st = ds_err_setf(&ctx->err, DS_CONFLICT, "force",
                         "bucket \"%s\" is not empty: it holds alias%s %s (use force=true to drop them)", bucket,
                         n > 1 ? "es" : "", list ? list : "");
        ds_buf_free(&names);
        return st;
    }
    char what[256];
    snprintf(what, sizeof(what), "bucket \"%s\"", bucket);
    if ((st = drop_readers(ctx, p, bucket, NULL, force, ds_arena_strdup(ctx->arena, what))) != DS_OK)
        return st;
    for (size_t i = 0; i < n && st == DS_OK; i++)
        st = remove_one(ctx, p, &in[i]);
    return st;
}

ds_status_t ds_cmd_alias_check_column_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                           const char *column)
{
    ds_alias_t *all;
    size_t n;
    if (!has_aliases(p))
        return DS_OK;
    bucket = ds_cmd_branch_logical(p, bucket);
    ds_status_t st = visible(ctx, p, NULL, NULL, &all, &n);
    if (st != DS_OK)
        return st;
    /* Aliases reading the table directly or through auto-sync aliases of it all see its columns. */
    const ds_alias_t **pending;
    size_t k;
    if ((st = readers(ctx, all, n, bucket, table, &pending, &k)) != DS_OK)
        return st;
    for (size_t i = 0; i < k; i++) {
        const ds_alias_t *a = pending[i];
        bool uses = a->filter && same(a->filter->column, column);
        for (size_t c = 0; !a->auto_sync && !uses && c < a->n_columns; c++)
            uses = same(a->columns[c], column);
        if (uses)
            return ds_err_setf(&ctx->err, DS_CONFLICT, "column",
                               "column \"%s\" of \"%s.%s\" is used by alias \"%s.%s\" (%s): change or drop the alias "
                               "first",
                               column, bucket, table, a->bucket, a->name,
                               a->filter && same(a->filter->column, column) ? "its filter" : "a pinned column");
    }
    return DS_OK;
}

ds_status_t ds_cmd_alias_drop(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, bool force)
{
    ds_status_t st = ds_cmd_require_cap(ctx, p, DS_CAP_ALIASES, "aliases");
    if (st == DS_OK) {
        char what[256];
        snprintf(what, sizeof(what), "alias \"%s.%s\"", a->bucket, a->name);
        st = drop_readers(ctx, p, a->bucket, a->name, force, ds_arena_strdup(ctx->arena, what));
    }
    if (st == DS_OK)
        st = remove_one(ctx, p, a);
    if (st == DS_OK)
        ds_cmd_test_crash_point("alias_drop");
    return st;
}

/* The answer of a change: the alias as stored, and its table info. */
static ds_status_t answer(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, ds_be_table_t *out, ds_alias_t *alias)
{
    if (alias)
        *alias = *a;
    return alias_info(ctx, p, a, out);
}

/*
 * The source view a new or changed alias reads: src_bucket.src_table as a
 * table, or as an alias that may be chained (unfiltered, auto-sync).
 */
static ds_status_t source_view(ds_ctx_t *ctx, ds_proj_t *p, const char *src_bucket, const char *src_table,
                               ds_be_table_t *view)
{
    const char *b = src_bucket, *t = src_table;
    const ds_alias_t *sa;
    ds_status_t st = ds_cmd_resolve_read(ctx, p, &b, &t, view, &sa, NULL);
    if (st != DS_OK)
        return st;
    if (sa && (sa->filter || !sa->auto_sync))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source",
                           "\"%s.%s\" is an alias with %s: only unfiltered aliases that sync their columns can be "
                           "aliased",
                           sa->bucket, sa->name, sa->filter ? "a filter" : "pinned columns");
    return DS_OK;
}

/* ---- merging a branch's aliases into main ---- */

static bool stays(const char *const *stay, size_t n_stay, const char *bucket, const char *table)
{
    size_t lb = strlen(bucket);
    for (size_t i = 0; i < n_stay; i++)
        if (strncasecmp(stay[i], bucket, lb) == 0 && stay[i][lb] == '\n' && strcasecmp(stay[i] + lb + 1, table) == 0)
            return true;
    return false;
}

/*
 * Why alias a (as p's branch sees it) would be invalid on main after the
 * merge, into ctx->err as DS_CONFLICT; DS_OK when it is valid. Works on
 * copies of p: resolving may follow a linked bucket, which changes the copy.
 */
static ds_status_t merge_check(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a, const char *const *stay,
                               size_t n_stay)
{
    ds_proj_t q = *p;
    const char *b = a->bucket, *t = a->name;
    bool exists = false;
    const char *why = NULL;
    ds_status_t st = ds_cmd_resolve_bucket(ctx, &q, &b);
    if (st == DS_NOT_FOUND) {
        why = ds_arena_printf(ctx->arena, "its bucket \"%s\" would not exist", a->bucket);
    } else if (st == DS_OK) {
        q = *p;
        b = a->bucket;
        st = ds_cmd_resolve_table_only(ctx, &q, &b, &t, true, NULL, &exists);
        if (st == DS_OK && exists)
            why = ds_arena_printf(ctx->arena, "a table \"%s.%s\" would have its name", a->bucket, a->name);
    }
    ds_be_table_t src;
    if (st == DS_OK && !why) {
        q = *p;
        st = source_view(ctx, &q, a->source_bucket, a->source_table, &src);
        if (st == DS_OK)
            st = check_against(ctx, &q, a, &src);
        if (st == DS_OK && ds_cmd_branch_owns(p, src.bucket) &&
            stays(stay, n_stay, ds_cmd_branch_logical(p, src.bucket), src.name))
            why = ds_arena_printf(ctx->arena, "the table it reads, \"%s.%s\", was written in the branch after the "
                                  "merge began and stays there",
                                  ds_cmd_branch_logical(p, src.bucket), src.name);
        else if (st == DS_NOT_FOUND)
            why = ds_arena_printf(ctx->arena, "its source \"%s.%s\" would not exist", a->source_bucket,
                                  a->source_table);
        else if (st == DS_INVALID_ARGUMENT || st == DS_CONFLICT)
            why = ds_arena_strdup(ctx->arena, ctx->err.message);
    } else if (st != DS_OK && st != DS_NOT_FOUND) {
        return st;
    }
    if (!why && st != DS_OK)
        return st;
    if (!why)
        return DS_OK;
    ds_err_clear(&ctx->err);
    return ds_err_setf(&ctx->err, DS_CONFLICT, "aliases",
                       "merge of branch \"%s\" refused: alias \"%s.%s\" would be invalid on main after the merge (%s); "
                       "nothing was merged",
                       p->branch, a->bucket, a->name, why);
}

ds_status_t ds_cmd_alias_merge_plan(ds_ctx_t *ctx, ds_proj_t *p, const char *const *stay, size_t n_stay,
                                    ds_be_move_t **moves, size_t *n)
{
    *moves = NULL;
    *n = 0;
    if (!has_aliases(p) || !p->branch)
        return DS_OK;
    ds_be_alias_t *rows;
    size_t n_rows;
    ds_alias_t *all;
    size_t n_all;
    ds_status_t st = project_rows(ctx, p, NULL, NULL, &rows, &n_rows);
    if (st == DS_OK)
        st = visible(ctx, p, NULL, NULL, &all, &n_all);
    if (st != DS_OK)
        return st;
    /* Main after the merge has exactly the aliases the branch sees now: each must hold there. */
    for (size_t i = 0; i < n_all; i++)
        if ((st = merge_check(ctx, p, &all[i], stay, n_stay)) != DS_OK)
            return st;
    ds_be_move_t *m = ds_arena_alloc(ctx->arena, sizeof(*m) * (2 * n_rows + 1));
    if (!m)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const ds_be_alias_t *r = &rows[i];
        if (!same(r->scope, p->branch))
            continue;
        if (!r->hidden) {
            /* A bucket only the branch has is created in main by the same transaction. */
            ds_proj_t q = *p;
            const char *phys = r->bucket;
            if ((st = ds_cmd_branch_resolve_bucket(ctx, &q, &phys)) != DS_OK)
                return st;
            if (ds_cmd_branch_owns(p, phys))
                m[k++] = (ds_be_move_t){.kind = DS_MOVE_BUCKET, .src_bucket = phys, .dst_bucket = r->bucket,
                                        .expect_version = -1};
        }
        m[k++] = (ds_be_move_t){.kind = DS_MOVE_ALIAS, .src_bucket = r->scope, .dst_bucket = r->bucket,
                                .dst_table = r->name, .expect_version = -1};
    }
    *moves = m;
    *n = k;
    return DS_OK;
}

ds_status_t ds_cmd_alias_create(ds_ctx_t *ctx, const char *project, const char *source_bucket,
                                const char *source_table, const ds_alias_create_t *in, ds_be_table_t *out,
                                ds_alias_t *alias)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_ALIASES, "aliases");
    if (st == DS_OK)
        st = ds_ident_check_bucket(source_bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(source_table, "table", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_bucket(in->bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(in->name, "name", &ctx->err);
    if (st == DS_OK && in->filter)
        st = check_filter(ctx, in->filter);
    for (size_t i = 0; st == DS_OK && i < in->n_columns; i++)
        st = ds_ident_check_name(in->columns[i], "column", &ctx->err);
    if (st == DS_OK && in->auto_sync == 1 && in->n_columns)
        st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "auto_sync",
                         "an alias either syncs its columns with the source (auto_sync) or pins the columns given: "
                         "not both");
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    ds_be_table_t src;
    if ((st = source_view(ctx, &p, source_bucket, source_table, &src)) != DS_OK)
        return st;
    /* The alias's bucket must exist (as the branch sees it); its name must be free. */
    const char *bucket = in->bucket, *name = in->name;
    bool exists;
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK)
        return st;
    bucket = ds_cmd_branch_logical(&p, bucket);
    const char *b = bucket, *t = name;
    if ((st = ds_cmd_resolve_table(ctx, &p, &b, &t, true, NULL, &exists)) != DS_OK) {
        if (st == DS_INVALID_ARGUMENT) /* the name is an alias */
            return ds_err_setf(&ctx->err, DS_ALREADY_EXISTS, "name", "alias \"%s.%s\" already exists", bucket, name);
        return st;
    }
    if (exists)
        return ds_err_setf(&ctx->err, DS_ALREADY_EXISTS, "name", "a table \"%s.%s\" already exists", bucket, name);
    ds_alias_t a = {.bucket = bucket,
                    .name = name,
                    .source_bucket = ds_cmd_branch_logical(&p, src.bucket),
                    .source_table = src.name,
                    .filter = in->filter,
                    .auto_sync = in->auto_sync == -1 ? in->n_columns == 0 : in->auto_sync == 1,
                    .columns = in->columns,
                    .n_columns = in->n_columns,
                    .created_at = ds_now()};
    if (!a.auto_sync && a.n_columns == 0) {
        /* Sync off without a list: the source's columns as they are now. */
        if (!(a.columns = ds_arena_alloc(ctx->arena, sizeof(char *) * (src.n_columns + 1))))
            return oom(ctx);
        for (size_t i = 0; i < src.n_columns; i++)
            a.columns[i] = src.columns[i].name;
        a.n_columns = src.n_columns;
    }
    if ((st = check_against(ctx, &p, &a, &src)) != DS_OK)
        return st;
    /* Store names as the source spells them. */
    if (a.n_columns) {
        const char **cols;
        if ((st = ds_cmd_resolve_columns(ctx, &p, &src, (const char **const *)&a.columns, a.n_columns, &cols)) != DS_OK)
            return st;
        a.columns = cols;
    }
    if (a.filter) {
        ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(*f));
        if (!f)
            return oom(ctx);
        *f = *a.filter;
        f->column = ds_cmd_column_name(&p, &src, f->column);
        f->data_type = NULL;
        a.filter = f;
    }
    if ((st = store(ctx, &p, &a, false)) != DS_OK)
        return st;
    ds_cmd_test_crash_point("alias_create");
    return answer(ctx, &p, &a, out, alias);
}

/* Opens the project for a change of alias bucket.name: *a is a copy the caller may change. */
static ds_status_t open_alias(ds_ctx_t *ctx, const char **project, const char *bucket, const char *name, ds_proj_t *p,
                              ds_alias_t *a, ds_be_table_t *src, ds_alias_t **all, size_t *n_all)
{
    ds_status_t st = ds_cmd_open_project(ctx, project, p);
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, p, DS_CAP_ALIASES, "aliases");
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(name, "table", &ctx->err);
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, *project);
    if (st != DS_OK)
        return st;
    const ds_alias_t *found;
    if ((st = ds_cmd_alias_lookup(ctx, p, bucket, name, &found)) != DS_OK)
        return st;
    if (!found) {
        const char *b = bucket, *t = name;
        if ((st = ds_cmd_resolve_table(ctx, p, &b, &t, false, NULL, NULL)) != DS_OK)
            return st;
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "table", "\"%s.%s\" is a table, not an alias", bucket,
                           name);
    }
    *a = *found;
    if ((st = source_view(ctx, p, a->source_bucket, a->source_table, src)) != DS_OK)
        return st;
    return visible(ctx, p, NULL, NULL, all, n_all);
}

ds_status_t ds_cmd_alias_filter_set(ds_ctx_t *ctx, const char *project, const char *bucket, const char *name,
                                    const ds_filter_t *filter, ds_be_table_t *out, ds_alias_t *alias)
{
    ds_proj_t p;
    ds_alias_t a, *all;
    size_t n_all;
    ds_be_table_t src;
    ds_status_t st = filter ? check_filter(ctx, filter) : DS_OK;
    if (st == DS_OK)
        st = open_alias(ctx, &project, bucket, name, &p, &a, &src, &all, &n_all);
    if (st != DS_OK)
        return st;
    if (filter) {
        const ds_alias_t **readers;
        size_t nr;
        if ((st = readers_of(ctx, all, n_all, a.bucket, a.name, &readers, &nr)) != DS_OK)
            return st;
        if (nr)
            return ds_err_setf(&ctx->err, DS_CONFLICT, "filter",
                               "alias \"%s.%s\" is read by alias \"%s.%s\": an alias that aliases read cannot get a "
                               "filter",
                               a.bucket, a.name, readers[0]->bucket, readers[0]->name);
        ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(*f));
        if (!f)
            return oom(ctx);
        *f = *filter;
        f->data_type = NULL;
        a.filter = f;
        if ((st = check_against(ctx, &p, &a, &src)) != DS_OK)
            return st;
        f->column = ds_cmd_column_name(&p, &src, f->column);
    } else {
        a.filter = NULL;
    }
    if ((st = store(ctx, &p, &a, false)) != DS_OK)
        return st;
    return answer(ctx, &p, &a, out, alias);
}

ds_status_t ds_cmd_alias_sync_set(ds_ctx_t *ctx, const char *project, const char *bucket, const char *name,
                                  bool auto_sync, ds_be_table_t *out, ds_alias_t *alias)
{
    ds_proj_t p;
    ds_alias_t a, *all;
    size_t n_all;
    ds_be_table_t src;
    ds_status_t st = open_alias(ctx, &project, bucket, name, &p, &a, &src, &all, &n_all);
    if (st != DS_OK)
        return st;
    if (auto_sync) {
        a.auto_sync = true;
        a.columns = NULL;
        a.n_columns = 0;
    } else if (a.auto_sync) {
        const ds_alias_t **readers;
        size_t nr;
        if ((st = readers_of(ctx, all, n_all, a.bucket, a.name, &readers, &nr)) != DS_OK)
            return st;
        if (nr)
            return ds_err_setf(&ctx->err, DS_CONFLICT, "auto_sync",
                               "alias \"%s.%s\" is read by alias \"%s.%s\": an alias that aliases read must keep "
                               "syncing its columns",
                               a.bucket, a.name, readers[0]->bucket, readers[0]->name);
        /* Pinned from now on: the columns it has now. */
        a.auto_sync = false;
        if (!(a.columns = ds_arena_alloc(ctx->arena, sizeof(char *) * (src.n_columns + 1))))
            return oom(ctx);
        for (size_t i = 0; i < src.n_columns; i++)
            a.columns[i] = src.columns[i].name;
        a.n_columns = src.n_columns;
    }
    if ((st = store(ctx, &p, &a, false)) != DS_OK)
        return st;
    return answer(ctx, &p, &a, out, alias);
}
