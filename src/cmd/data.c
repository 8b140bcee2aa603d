/*
 * data.c - table-data commands: import, export, preview, profile, delete
 * rows, and schema changes.
 *
 * Each validates its input (names, types, options) before the backend sees
 * it, takes the write slots it needs (table data: the table's queue; schema
 * changes and table creation by import: also the project's catalog queue, in
 * that order), resolves Storage Files through the files layer (which confines
 * every path to the project's area), and calls the backend.
 */
#include <dirent.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/files.h"
#include "cmd/internal.h"
#include "cmd/snapshot.h"
#include "core/types.h"

/* Opens the project and checks bucket and table names. */
/* *project becomes the stored spelling of the project id. */
static ds_status_t open_table(ds_ctx_t *ctx, const char **project, const char *bucket, const char *table, ds_proj_t *p)
{
    ds_status_t st = ds_cmd_open_project(ctx, project, p);
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(table, "table", &ctx->err);
    return st;
}

static ds_status_t check_names(ds_ctx_t *ctx, const char *const *names, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, what, "%s: item %zu is missing", what, i);
        if (strcasecmp(names[i], "_timestamp") == 0)
            continue;
        ds_status_t st = ds_ident_check_name(names[i], "column", &ctx->err);
        if (st != DS_OK)
            return st;
    }
    return DS_OK;
}

ds_status_t ds_cmd_check_dedup(ds_ctx_t *ctx, ds_dedup_t dedup, const char *const *columns, size_t n)
{
    if ((int)dedup < DS_DEDUP_UPDATE || (int)dedup > DS_DEDUP_FAIL)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "dedup", "unknown dedup type");
    return check_names(ctx, columns, n, "dedup_columns");
}

/* Replaces *v (a client's point in time, or NULL) by its UTC text for the backends (core/types.h). */
static ds_status_t utc_time(ds_ctx_t *ctx, int64_t now_us, const char *field, const char **v)
{
    int64_t us;
    if (!*v)
        return DS_OK;
    ds_status_t st = ds_time_parse(*v, now_us, field, &us, &ctx->err);
    if (st != DS_OK)
        return st;
    char text[DS_TIME_TEXT_MAX];
    ds_time_format_utc(us, text);
    if (!(*v = ds_arena_strdup(ctx->arena, text)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    return DS_OK;
}

/*
 * Checks a filter and turns its changed_since/changed_until, whatever form
 * the client used (unix seconds, ISO 8601, "-15 minutes"), into one absolute
 * UTC instant: backends receive only "YYYY-MM-DD HH:MM:SS.ffffff" and parse
 * nothing. Relative forms count from this call.
 */
static ds_status_t check_where(ds_ctx_t *ctx, ds_where_t *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    if (utc_time(ctx, now_us, "changed_since", &w->changed_since) != DS_OK ||
        utc_time(ctx, now_us, "changed_until", &w->changed_until) != DS_OK)
        return ctx->err.status;
    for (size_t i = 0; i < w->n_filters; i++) {
        const ds_filter_t *f = &w->filters[i];
        ds_status_t st = check_names(ctx, &f->column, 1, "where_filters");
        if (st != DS_OK)
            return st;
        if (f->data_type) {
            char t[DS_TYPE_MAX];
            if ((st = ds_type_canonical(f->data_type, f->column, t, &ctx->err)) != DS_OK)
                return st;
        }
    }
    if (w->in_column) {
        ds_status_t st = check_names(ctx, &w->in_column, 1, "where_in");
        if (st == DS_OK && w->in_ref_column)
            st = check_names(ctx, &w->in_ref_column, 1, "where_in");
        if (st == DS_OK)
            st = ds_ident_check_bucket(w->in_bucket, "where_in", &ctx->err);
        if (st == DS_OK)
            st = ds_ident_check_name(w->in_table, "table", &ctx->err);
        if (st != DS_OK)
            return st;
    }
    return DS_OK;
}

ds_status_t ds_cmd_source_window(ds_ctx_t *ctx, int64_t seconds, int64_t limit, ds_where_t *w)
{
    if (seconds < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "seconds",
                           "seconds must be a positive number of seconds (rows changed in the last N seconds)");
    if (limit < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "limit", "limit must not be negative");
    if (seconds == 0)
        return DS_OK;
    if (w->changed_since)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "seconds",
                           "give either seconds or changed_since: both set where the rows begin");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    /* More seconds than since 1970 reach every row: the window starts at the epoch. */
    int64_t since_us = seconds >= now_us / 1000000 ? 0 : now_us - seconds * 1000000;
    char text[DS_TIME_TEXT_MAX];
    ds_time_format_utc(since_us, text);
    if (!(w->changed_since = ds_arena_strdup(ctx->arena, text)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    return DS_OK;
}

static ds_status_t check_order(ds_ctx_t *ctx, const ds_order_t *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ds_status_t st = check_names(ctx, &o[i].column, 1, "order_by");
        if (st != DS_OK)
            return st;
        if (o[i].data_type) {
            char t[DS_TYPE_MAX];
            if ((st = ds_type_canonical(o[i].data_type, o[i].column, t, &ctx->err)) != DS_OK)
                return st;
        }
    }
    return DS_OK;
}

static ds_status_t check_csv(ds_ctx_t *ctx, const ds_csv_opts_t *o)
{
    if (strlen(o->delimiter) != 1)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "delimiter", "delimiter must be exactly one character");
    if (strlen(o->enclosure) > 1)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "enclosure", "enclosure must be one character or empty");
    if (strlen(o->escaped_by) > 1)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "escaped_by", "escaped_by must be one character or empty");
    if (o->enclosure[0] && o->escaped_by[0] && o->enclosure[0] != o->escaped_by[0])
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "escaped_by",
                           "enclosure and escaped_by are mutually exclusive");
    if (o->enclosure[0] && o->enclosure[0] == o->delimiter[0])
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "enclosure", "enclosure and delimiter must differ");
    if (o->skip_lines < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "skip_lines", "number of ignored lines must not be negative");
    return check_names(ctx, o->columns, o->n_columns, "columns");
}

/*
 * Resolves the table (which must exist) and the columns a read or delete
 * names. A read (read) of an alias reads its source (alias.c): its filter is
 * ANDed into where, the columns named must be the alias's, and a pinned
 * alias's columns replace "all columns". A delete refuses an alias.
 */
static ds_status_t resolve_read(ds_ctx_t *ctx, ds_proj_t *p, bool read, const char **bucket, const char **table,
                                const char ***columns, size_t *n_columns, ds_order_t **order, size_t n_order,
                                ds_where_t *where)
{
    ds_be_table_t def;
    const ds_alias_t *a = NULL;
    ds_status_t st = read ? ds_cmd_resolve_read(ctx, p, bucket, table, &def, &a, NULL)
                          : ds_cmd_resolve_table(ctx, p, bucket, table, false, &def, NULL);
    if (st == DS_OK && a) {
        for (size_t i = 0; st == DS_OK && order && i < n_order; i++)
            st = ds_cmd_alias_check_column(ctx, p, a, &def, (*order)[i].column, "order_by");
        for (size_t i = 0; st == DS_OK && where && i < where->n_filters; i++)
            st = ds_cmd_alias_check_column(ctx, p, a, &def, where->filters[i].column, "where_filters");
        if (st == DS_OK && columns)
            st = ds_cmd_alias_columns(ctx, p, a, &def, (const char ***)columns, n_columns, "columns");
        if (st == DS_OK && where && a->filter) {
            /* The alias's filter, on the source's column, after the request's own (already checked) filters. */
            ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(ds_filter_t) * (where->n_filters + 1));
            if (!f)
                return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
            if (where->n_filters)
                memcpy(f, where->filters, sizeof(ds_filter_t) * where->n_filters);
            f[where->n_filters] = *a->filter;
            where->filters = f;
            where->n_filters++;
        }
    }
    if (st == DS_OK && columns)
        st = ds_cmd_resolve_columns(ctx, p, &def, (const char **const *)columns, *n_columns, (const char ***)columns);
    if (st == DS_OK && order)
        st = ds_cmd_resolve_order(ctx, p, &def, order, n_order);
    if (st == DS_OK && where)
        st = ds_cmd_resolve_where(ctx, p, &def, where);
    return st;
}

/*
 * Resolves every name of an import to its stored spelling: the destination
 * (which an import that creates it may not have yet), the source table and
 * the columns named against either. *x is a copy of in with resolved arrays.
 */
static ds_status_t resolve_import(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                  const ds_import_t *in, ds_import_t *x)
{
    ds_be_table_t dst, src;
    bool exists;
    *x = *in;
    ds_status_t st = ds_cmd_resolve_table(ctx, p, bucket, table, in->create_mode != DS_CREATE_NONE, &dst, &exists);
    const ds_be_table_t *d = exists ? &dst : NULL;
    if (st == DS_OK)
        st = ds_cmd_resolve_columns(ctx, p, d, &in->dedup_columns, in->n_dedup_columns, &x->dedup_columns);
    if (st == DS_OK)
        st = ds_cmd_resolve_columns(ctx, p, d, &in->convert_empty_to_null, in->n_convert_empty_to_null,
                                    &x->convert_empty_to_null);
    if (st != DS_OK || !in->src_table)
        return st;
    if (st == DS_OK && in->dst_columns)
        st = ds_cmd_resolve_columns(ctx, p, d, &in->dst_columns, in->n_mapping, &x->dst_columns);
    /* The source is read: it may be an alias (alias.c), whose filter joins the source filters. */
    const ds_alias_t *a = NULL;
    if (st == DS_OK)
        st = ds_cmd_resolve_read(ctx, p, &x->src_bucket, &x->src_table, &src, &a, NULL);
    for (size_t i = 0; st == DS_OK && a && i < x->src_where.n_filters; i++)
        st = ds_cmd_alias_check_column(ctx, p, a, &src, x->src_where.filters[i].column, "where_filters");
    if (st == DS_OK && a && in->src_columns)
        st = ds_cmd_alias_columns(ctx, p, a, &src, &x->src_columns, &x->n_mapping, "columns_mapping");
    if (st == DS_OK && a && !in->src_columns && !a->auto_sync) {
        /* All of a pinned alias's columns, under the same names. */
        size_t n = 0;
        if ((st = ds_cmd_alias_columns(ctx, p, a, &src, &x->src_columns, &n, "columns_mapping")) == DS_OK) {
            x->dst_columns = x->src_columns;
            x->n_mapping = n;
        }
    }
    if (st == DS_OK && x->src_columns)
        st = ds_cmd_resolve_columns(ctx, p, &src, &x->src_columns, x->n_mapping, &x->src_columns);
    if (st == DS_OK)
        st = ds_cmd_resolve_where(ctx, p, &src, &x->src_where);
    if (st == DS_OK && a && a->filter) {
        ds_where_t *w = &x->src_where;
        ds_filter_t *f = ds_arena_alloc(ctx->arena, sizeof(ds_filter_t) * (w->n_filters + 1));
        if (!f)
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        if (w->n_filters)
            memcpy(f, w->filters, sizeof(ds_filter_t) * w->n_filters);
        f[w->n_filters] = *a->filter;
        w->filters = f;
        w->n_filters++;
    }
    if (st == DS_OK && strcmp(x->src_bucket, *bucket) == 0 && strcmp(x->src_table, *table) == 0)
        st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source", "a table cannot be imported into itself");
    return st;
}

/* Removes a scratch directory of a linked-source import and the files in it (arena cleanup). */
static void remove_scratch(void *arg)
{
    const char *dir = arg;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/*
 * Import from a table of a linked bucket (cmd/share.c): the source lives in
 * another project, which the backend's table import cannot read. The source
 * is exported (its columns, filters) as Parquet into a scratch directory of
 * the importing project, the import becomes an import of those files, and
 * the scratch goes with the request. The read through the link ends here: the
 * write that follows is the project's own (ctx->linked_read is cleared).
 * *linked false, nothing changed, when the source is not linked.
 */
static ds_status_t linked_source(ds_ctx_t *ctx, const ds_proj_t *p, const char *project, ds_import_t *in,
                                 const char ***paths, size_t *n_paths, bool *linked)
{
    ds_proj_t sp = *p;
    ds_be_table_t src;
    const char *sb = in->src_bucket, *st_name = in->src_table, *dir;
    const char *before = ctx->linked_read;
    ds_err_t saved = ctx->err;
    *linked = false;
    ds_status_t st = ds_cmd_resolve_table(ctx, &sp, &sb, &st_name, false, &src, NULL);
    if (st != DS_OK || !sp.linked_bucket) {
        /* Not linked (or not found): the import reports it as for any table source. */
        ctx->err = saved;
        ctx->linked_read = before;
        return DS_OK;
    }
    *linked = true;
    /* Nothing is exported for a key that may not write (the write itself checks it again). */
    if ((st = ds_cmd_require_write(ctx)) != DS_OK)
        return st;
    for (size_t i = 0; in->src_columns && in->dst_columns && i < in->n_mapping; i++)
        if (strcasecmp(in->src_columns[i], in->dst_columns[i]) != 0)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns_mapping",
                               "an import from linked bucket \"%s\" keeps column names: \"%s\" cannot become \"%s\"",
                               sp.linked_bucket, in->src_columns[i], in->dst_columns[i]);
    ds_export_t ex = {.format = DS_FORMAT_PARQUET, .where = in->src_where, .limit = in->src_limit};
    if (in->src_columns && in->n_mapping) {
        ex.columns = (const char **)in->src_columns;
        ex.n_columns = in->n_mapping;
        if ((st = ds_cmd_resolve_columns(ctx, &sp, &src, (const char **const *)&ex.columns, ex.n_columns,
                                         (const char ***)&ex.columns)) != DS_OK)
            return st;
    }
    if ((st = ds_cmd_resolve_where(ctx, &sp, &src, &ex.where)) != DS_OK ||
        (st = ds_files_scratch_dir(ctx, project, &dir)) != DS_OK)
        return st;
    char *keep = ds_arena_strdup(ctx->arena, dir);
    if (!keep || ds_arena_on_destroy(ctx->arena, remove_scratch, keep) != 0)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    int64_t rows;
    if ((st = DS_BE_CALL(sp.be, &sp.call, table_export, sb, st_name, &ex, dir, ds_service_config()->export_slice_bytes,
                         paths, n_paths, &rows)) != DS_OK)
        return st;
    in->src_bucket = in->src_table = NULL;
    in->src_columns = in->dst_columns = NULL;
    in->n_mapping = 0;
    memset(&in->src_where, 0, sizeof(in->src_where));
    in->src_limit = 0;
    in->format = DS_FORMAT_PARQUET;
    ctx->linked_read = before;
    return DS_OK;
}

ds_status_t ds_cmd_table_import(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_import_t *in, ds_import_result_t *out)
{
    ds_proj_t p;
    ds_import_t x, norm = *in;
    const char **paths = NULL;
    size_t n_paths = 0;
    in = &norm; /* check_where rewrites src_where's times */
    ds_status_t st = open_table(ctx, &project, bucket, table, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_import(ctx, &p, in)) != DS_OK)
        return st;
    if ((st = ds_cmd_check_dedup(ctx, in->dedup, in->dedup_columns, in->n_dedup_columns)) != DS_OK)
        return st;
    if ((int)in->timestamp_mode < DS_TS_CURRENT_TIME || (int)in->timestamp_mode > DS_TS_FROM_SOURCE)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timestamp_mode", "unknown timestamp mode");
    if ((st = check_names(ctx, in->convert_empty_to_null, in->n_convert_empty_to_null, "convert_empty_to_null")) != DS_OK)
        return st;
    if (in->timestamp_column && *in->timestamp_column &&
        (st = check_names(ctx, &in->timestamp_column, 1, "timestamp_column")) != DS_OK)
        return st;
    if (in->src_table) {
        if ((st = ds_ident_check_bucket(in->src_bucket, "source", &ctx->err)) != DS_OK ||
            (st = ds_ident_check_name(in->src_table, "table", &ctx->err)) != DS_OK ||
            (st = check_names(ctx, in->src_columns, in->n_mapping, "columns_mapping")) != DS_OK ||
            (st = check_names(ctx, in->dst_columns, in->n_mapping, "columns_mapping")) != DS_OK ||
            (st = ds_cmd_source_window(ctx, in->src_seconds, in->src_limit, &norm.src_where)) != DS_OK ||
            (st = check_where(ctx, &norm.src_where)) != DS_OK)
            return st;
        norm.src_seconds = 0; /* now in src_where.changed_since */
        if (strcasecmp(in->src_bucket, bucket) == 0 && strcasecmp(in->src_table, table) == 0)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source", "a table cannot be imported into itself");
        bool linked;
        if ((st = linked_source(ctx, &p, project, &norm, &paths, &n_paths, &linked)) != DS_OK)
            return st;
    } else {
        if ((int)in->format != DS_FORMAT_CSV && (int)in->format != DS_FORMAT_PARQUET)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "format", "format must be csv or parquet");
        if (in->format == DS_FORMAT_CSV && (st = check_csv(ctx, &in->csv)) != DS_OK)
            return st;
        if (!in->file_id == !in->file_key)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "file_id", "give exactly one of file_id and file_key");
        if ((st = ds_files_resolve(ctx, project, in->file_id, in->file_key, &paths, &n_paths)) != DS_OK)
            return st;
    }
    if ((st = resolve_import(ctx, &p, &bucket, &table, in, &x)) != DS_OK)
        return st;
    if ((st = ds_cmd_branch_write(ctx, &p, &bucket, &table, in->create_mode != DS_CREATE_NONE)) != DS_OK)
        return st;
    bool applied;
    int64_t count;
    if ((st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count)) != DS_OK)
        return st;
    if (applied) {
        /* Committed before a crash lost its answer: the stored count and the table as it is now. */
        ds_be_table_t t;
        memset(out, 0, sizeof(*out));
        if ((st = DS_BE_CALL(p.be, &p.call, table_get, bucket, table, &t)) != DS_OK)
            return st;
        out->imported_rows = count;
        out->table_rows = t.rows;
        out->table_bytes = t.bytes;
        return DS_OK;
    }
    /* A full load (or a replace) of an existing table removes its rows: keep them first. */
    const char *snap = NULL;
    if (!x.incremental || x.create_mode == DS_CREATE_REPLACE) {
        ds_be_table_t t;
        st = DS_BE_CALL(p.be, &p.call, table_get, bucket, table, &t);
        if (st == DS_OK)
            st = ds_cmd_snapshot_auto(ctx, &p, bucket, table, &t, DS_SNAP_TRUNCATE, &snap);
        else if (st == DS_NOT_FOUND && x.create_mode != DS_CREATE_NONE) {
            ds_err_clear(&ctx->err); /* a table this import creates: nothing to keep */
            st = DS_OK;
        }
        if (st != DS_OK)
            return st;
    }
    st = DS_BE_CALL(p.be, &p.call, table_import, bucket, table, &x, paths, n_paths, out);
    if (st == DS_OK)
        ds_cmd_test_crash_point("import");
    else
        ds_cmd_snapshot_discard(ctx, &p, snap);
    return st;
}

ds_status_t ds_cmd_table_export(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_export_t *in, ds_export_result_t *out)
{
    ds_proj_t p;
    const char *dir;
    const char **paths;
    size_t n_paths;
    int64_t rows;
    ds_file_t file;
    ds_export_t x = *in;
    memset(out, 0, sizeof(*out));
    ds_status_t st = open_table(ctx, &project, bucket, table, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_export(ctx, &p, in)) != DS_OK)
        return st;
    if ((int)in->format != DS_FORMAT_CSV && (int)in->format != DS_FORMAT_PARQUET)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "format", "format must be csv or parquet");
    if (in->limit < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "limit", "limit must not be negative");
    if ((st = check_names(ctx, in->columns, in->n_columns, "columns")) != DS_OK ||
        (st = check_order(ctx, in->order, in->n_order)) != DS_OK || (st = check_where(ctx, &x.where)) != DS_OK)
        return st;
    if ((st = resolve_read(ctx, &p, true, &bucket, &table, &x.columns, &x.n_columns, &x.order, x.n_order, &x.where)) != DS_OK)
        return st;
    in = &x;
    const char *ext = in->format == DS_FORMAT_PARQUET ? "parquet" : in->gzip ? "csv.gz" : "csv";
    const char *name = in->file_name && *in->file_name
                           ? in->file_name
                           : ds_arena_printf(ctx->arena, "exports/%s.%s-%lld-%08x.%s", ds_cmd_branch_logical(&p, bucket), table, (long long)ds_now(),
                                             (unsigned)randombytes_random(), ext);
    if ((st = ds_ident_check_file_key(name, &ctx->err)) != DS_OK)
        return st;
    if ((st = ds_files_scratch_dir(ctx, project, &dir)) != DS_OK)
        return st;
    st = DS_BE_CALL(p.be, &p.call, table_export, bucket, table, in, dir, ds_service_config()->export_slice_bytes, &paths,
                    &n_paths, &rows);
    if (st != DS_OK)
        return st;
    bool sliced = in->sliced || n_paths != 1;
    if ((st = ds_files_adopt(ctx, project, paths, n_paths, name, sliced, false, &file)) != DS_OK)
        return st;
    out->file_id = file.id;
    out->file_name = file.name;
    out->sliced = sliced;
    out->rows = rows;
    out->bytes = file.size;
    return DS_OK;
}

ds_status_t ds_cmd_scan_open(ds_ctx_t *ctx, ds_proj_t *caller, const char *bucket, const char *table,
                             const ds_export_t *in, ds_be_scan_t **out)
{
    /* A linked bucket turns the project into its source (cmd/share.c): for this scan only, never the caller's. */
    ds_proj_t *p = ds_arena_alloc(ctx->arena, sizeof(*p));
    if (!p)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    *p = *caller;
    *out = NULL;
    ds_status_t st = ds_cmd_require_cap(ctx, p, DS_CAP_WORKSPACES, "workspaces");
    if (st == DS_OK)
        st = ds_cmd_require_filters(ctx, p, &in->where, in->order, in->n_order);
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(table, "table", &ctx->err);
    if (st == DS_OK && in->limit < 0)
        st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "limit", "limit must not be negative");
    ds_export_t x = *in; /* check_where rewrites the where's times into one UTC form */
    if (st == DS_OK && ((st = check_names(ctx, in->columns, in->n_columns, "columns")) != DS_OK ||
                        (st = check_order(ctx, in->order, in->n_order)) != DS_OK ||
                        (st = check_where(ctx, &x.where)) != DS_OK))
        return st;
    if (st != DS_OK)
        return st;
    if ((st = resolve_read(ctx, p, true, &bucket, &table, &x.columns, &x.n_columns, &x.order, x.n_order, &x.where)) != DS_OK)
        return st;
    ds_be_call_t *call = ds_arena_alloc(ctx->arena, sizeof(*call));
    if (!call)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    *call = p->call;
    call->cancel = NULL;
    return DS_BE_CALL(p->be, call, table_scan_open, bucket, table, &x, out);
}

ds_status_t ds_cmd_table_preview(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 const ds_preview_t *in, ds_preview_result_t *out)
{
    ds_proj_t p;
    ds_preview_t x = *in;
    ds_status_t st = open_table(ctx, &project, bucket, table, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_filters(ctx, &p, &in->where, in->order, in->n_order)) != DS_OK)
        return st;
    if (in->limit < 0 || in->limit > DS_PREVIEW_MAX_ROWS)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "limit", "preview limit must be between 1 and %d",
                           DS_PREVIEW_MAX_ROWS);
    if ((st = check_names(ctx, in->columns, in->n_columns, "columns")) != DS_OK ||
        (st = check_order(ctx, in->order, in->n_order)) != DS_OK || (st = check_where(ctx, &x.where)) != DS_OK)
        return st;
    if ((st = resolve_read(ctx, &p, true, &bucket, &table, &x.columns, &x.n_columns, &x.order, x.n_order, &x.where)) != DS_OK)
        return st;
    return DS_BE_CALL(p.be, &p.call, table_preview, bucket, table, &x, out);
}

ds_status_t ds_cmd_table_profile(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 ds_profile_result_t *out)
{
    ds_proj_t p;
    ds_status_t st = open_table(ctx, &project, bucket, table, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_cap(ctx, &p, DS_CAP_PROFILE, "profile")) != DS_OK)
        return st;
    ds_be_table_t def;
    const ds_alias_t *a;
    ds_where_t w = {0};
    if ((st = ds_cmd_resolve_read(ctx, &p, &bucket, &table, &def, &a, &w)) != DS_OK)
        return st;
    if (!a)
        return DS_BE_CALL(p.be, &p.call, table_profile, bucket, table, out);
    /* An alias: its columns, of the rows its filter selects. */
    const char **cols = NULL;
    size_t n = 0;
    if (!a->auto_sync && (st = ds_cmd_alias_columns(ctx, &p, a, &def, &cols, &n, "columns")) != DS_OK)
        return st;
    return ds_be_table_profile_where(p.be, &p.call, bucket, table, cols, n, w.n_filters ? &w : NULL, out);
}

ds_status_t ds_cmd_table_delete_rows(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                     const ds_where_t *where, int64_t *deleted, int64_t *table_rows)
{
    ds_proj_t p;
    ds_status_t st = open_table(ctx, &project, bucket, table, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_cmd_require_filters(ctx, &p, where, NULL, 0)) != DS_OK)
        return st;
    ds_where_t w = *where;
    if ((st = check_where(ctx, &w)) != DS_OK)
        return st;
    if ((st = resolve_read(ctx, &p, false, &bucket, &table, NULL, NULL, NULL, 0, &w)) != DS_OK)
        return st;
    if ((st = ds_cmd_branch_write(ctx, &p, &bucket, &table, false)) != DS_OK)
        return st;
    bool applied;
    int64_t count;
    if ((st = ds_cmd_idem_backend_check(ctx, &p, &applied, &count)) != DS_OK)
        return st;
    if (applied) {
        ds_be_table_t t;
        if ((st = DS_BE_CALL(p.be, &p.call, table_get, bucket, table, &t)) != DS_OK)
            return st;
        *deleted = count;
        *table_rows = t.rows;
        return DS_OK;
    }
    /* Without any filter every row goes: keep them first. */
    const char *snap = NULL;
    if (w.n_filters == 0 && !w.changed_since && !w.changed_until && !w.in_column &&
        (st = ds_cmd_snapshot_auto(ctx, &p, bucket, table, NULL, DS_SNAP_DELETE_ALL_ROWS, &snap)) != DS_OK)
        return st;
    st = DS_BE_CALL(p.be, &p.call, table_delete_rows, bucket, table, &w, deleted, table_rows);
    if (st == DS_OK)
        ds_cmd_test_crash_point("delete_rows");
    else
        ds_cmd_snapshot_discard(ctx, &p, snap);
    return st;
}

/*
 * Opens the table for a schema change (type: the new type or NULL, for the
 * capability check): its data queue, then the project's catalog queue.
 * *applied: an idempotent repeat of a change the backend recorded as
 * committed before a crash lost its answer; the caller applies nothing then.
 */
static ds_status_t open_for_schema(ds_ctx_t *ctx, const char *project, const char **bucket, const char **table,
                                   const char *type, ds_proj_t *p, ds_be_table_t *def, bool *applied)
{
    int64_t count;
    *applied = false;
    ds_status_t st = open_table(ctx, &project, *bucket, *table, p);
    if (st == DS_OK)
        st = ds_cmd_require_schema_change(ctx, p, type);
    if (st == DS_OK)
        st = ds_cmd_resolve_table(ctx, p, bucket, table, false, def, NULL);
    if (st == DS_OK)
        st = ds_cmd_branch_write(ctx, p, bucket, table, true);
    if (st == DS_OK)
        st = ds_cmd_idem_backend_check(ctx, p, applied, &count);
    return st;
}

ds_status_t ds_cmd_column_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                              const ds_column_in_t *col)
{
    ds_proj_t p;
    ds_be_table_t def;
    bool applied;
    char type[DS_TYPE_MAX];
    ds_status_t st = ds_ident_check_name(col->name, "column", &ctx->err);
    if (st == DS_OK)
        st = ds_type_canonical(col->type ? col->type : "VARCHAR", col->name, type, &ctx->err);
    if (st == DS_OK)
        st = open_for_schema(ctx, project, &bucket, &table, type, &p, &def, &applied);
    if (st != DS_OK || applied)
        return st;
    ds_be_column_t c = {col->name, ds_arena_strdup(ctx->arena, type), col->nullable, col->default_value};
    if (!c.type)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    st = DS_BE_CALL(p.be, &p.call, column_add, bucket, table, &c);
    if (st == DS_OK)
        ds_cmd_test_crash_point("column_add");
    return st;
}

ds_status_t ds_cmd_column_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                               const char *column)
{
    ds_proj_t p;
    ds_be_table_t def;
    bool applied;
    ds_status_t st = ds_ident_check_name(column, "column", &ctx->err);
    if (st == DS_OK)
        st = open_for_schema(ctx, project, &bucket, &table, NULL, &p, &def, &applied);
    if (st != DS_OK || applied)
        return st;
    if ((st = ds_cmd_share_check_source(ctx, &p, bucket, "dropped, nor its tables or columns")) != DS_OK)
        return st;
    /* Only a column the table has is worth a snapshot: the backend refuses the others. */
    const char *col = ds_cmd_column_name(&p, &def, column);
    if ((st = ds_cmd_alias_check_column_drop(ctx, &p, bucket, table, col)) != DS_OK)
        return st;
    bool known = false;
    for (size_t i = 0; i < def.n_columns; i++)
        known = known || strcmp(def.columns[i].name, col) == 0;
    const char *snap = NULL;
    if (known && (st = ds_cmd_snapshot_auto(ctx, &p, bucket, table, NULL, DS_SNAP_DROP_COLUMN, &snap)) != DS_OK)
        return st;
    if ((st = DS_BE_CALL(p.be, &p.call, column_drop, bucket, table, col)) != DS_OK)
        ds_cmd_snapshot_discard(ctx, &p, snap);
    return st;
}

ds_status_t ds_cmd_column_alter(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const char *column, const ds_column_alter_t *alter)
{
    ds_proj_t p;
    ds_be_table_t def;
    bool applied;
    char type[DS_TYPE_MAX];
    ds_column_alter_t a = *alter;
    ds_status_t st = ds_ident_check_name(column, "column", &ctx->err);
    if (st == DS_OK && a.type) {
        st = ds_type_canonical(a.type, column, type, &ctx->err);
        a.type = type;
    }
    if (st == DS_OK && a.nullable != -1 && a.nullable != 0 && a.nullable != 1)
        st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "nullable", "nullable must be true or false");
    if (st == DS_OK && !a.type && a.nullable == -1 && !a.set_default)
        st = ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "nothing to change: give type, nullable or default");
    if (st == DS_OK)
        st = open_for_schema(ctx, project, &bucket, &table, a.type, &p, &def, &applied);
    if (st != DS_OK || applied)
        return st;
    return DS_BE_CALL(p.be, &p.call, column_alter, bucket, table, ds_cmd_column_name(&p, &def, column), &a);
}

ds_status_t ds_cmd_primary_key_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                   const char **columns, size_t n)
{
    ds_proj_t p;
    ds_be_table_t def;
    bool applied;
    ds_status_t st = n ? check_names(ctx, columns, n, "columns")
                       : ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "a primary key needs at least one column");
    for (size_t i = 0; st == DS_OK && i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(columns[i], columns[j]) == 0)
                st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columns", "column \"%s\" is given twice", columns[i]);
    if (st == DS_OK)
        st = open_for_schema(ctx, project, &bucket, &table, NULL, &p, &def, &applied);
    if (st != DS_OK || applied)
        return st;
    const char **cols;
    if ((st = ds_cmd_resolve_columns(ctx, &p, &def, (const char **const *)&columns, n, &cols)) != DS_OK)
        return st;
    return DS_BE_CALL(p.be, &p.call, primary_key_set, bucket, table, cols, n);
}

ds_status_t ds_cmd_primary_key_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table)
{
    ds_proj_t p;
    ds_be_table_t def;
    bool applied;
    ds_status_t st = open_for_schema(ctx, project, &bucket, &table, NULL, &p, &def, &applied);
    if (st != DS_OK || applied)
        return st;
    return DS_BE_CALL(p.be, &p.call, primary_key_set, bucket, table, NULL, 0);
}
