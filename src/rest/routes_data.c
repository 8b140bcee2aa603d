/*
 * routes_data.c - REST routes of table data: import, export, preview,
 * profile, delete rows, schema changes.
 *
 * JSON in, command structs out (duckstore/backend.h), one command per route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/files.h"
#include "cmd/workspace.h"
#include "core/buf.h"
#include "rest/rest.h"


/* The request body, owned by the arena (decref'd when the request ends). */
static ds_status_t body_of(ds_rest_req_t *req, bool allow_empty, json_t **out)
{
    TRY(ds_rest_body(req, allow_empty, out));
    ds_arena_on_destroy(CTX->arena, (ds_cleanup_cb)json_decref, *out);
    return DS_OK;
}

#define PROJECT ds_rest_param(req, "id")
#define BUCKET ds_rest_param(req, "bucket")
#define TABLE ds_rest_param(req, "table")

/* Maps a name to its enum value through a NULL-terminated list; case-insensitive. */
static ds_status_t enum_of(ds_rest_req_t *req, json_t *obj, const char *field, const char *const *names, int def,
                           int *out)
{
    const char *v;
    TRY(ds_json_str(req, obj, field, false, &v));
    *out = def;
    if (!v)
        return DS_OK;
    for (int i = 0; names[i]; i++)
        if (strcasecmp(names[i], v) == 0) {
            *out = i;
            return DS_OK;
        }
    ds_buf_t allowed = {0};
    for (int i = 0; names[i]; i++)
        ds_buf_printf(&allowed, "%s%s", i ? ", " : "", names[i]);
    ds_status_t st = ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, field, "field \"%s\": \"%s\" is not one of: %s", field,
                                 v, ds_buf_text(&allowed));
    ds_buf_free(&allowed);
    return st;
}

static const char *const op_names[] = {"eq", "ne", "gt", "ge", "lt", "le", NULL};

/*
 * A filter value: a string as it is, a number as the literal the client wrote
 * (never through a double: 1234567 stays "1234567", 9007199254740993 and
 * 0.1000000000000000000001 stay exact); the backend compares it in the
 * column's type and refuses what that type cannot hold.
 */
static const char *value_text(ds_rest_req_t *req, json_t *v)
{
    if (json_is_string(v))
        return ds_arena_strdup(CTX->arena, json_string_value(v));
    return ds_json_number_text(req, v);
}

/* "values": one string or number, or an array of them. */
static ds_status_t filter_values(ds_rest_req_t *req, json_t *vals, size_t i, ds_filter_t *o)
{
    bool one = json_is_string(vals) || json_is_number(vals);
    size_t n = one ? 1 : json_is_array(vals) ? json_array_size(vals) : 0;
    if (!one && vals && !json_is_null(vals) && !json_is_array(vals))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "values",
                           "where_filters[%zu].values must be a string, a number or an array of them", i);
    o->values = ds_arena_alloc(CTX->arena, sizeof(char *) * (n ? n : 1));
    if (!o->values)
        return ds_err_set(&CTX->err, DS_INTERNAL, "out of memory");
    for (size_t k = 0; k < n; k++) {
        json_t *v = one ? vals : json_array_get(vals, k);
        if (!(o->values[k] = value_text(req, v)))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "values",
                               "where_filters[%zu].values[%zu] must be a string or a number", i, k);
    }
    o->n_values = n;
    return DS_OK;
}

static ds_status_t parse_filters(ds_rest_req_t *req, json_t *arr, ds_where_t *w)
{
    static const char *const allowed[] = {"column", "operator", "values", "data_type", NULL};
    if (!arr || json_is_null(arr))
        return DS_OK;
    if (!json_is_array(arr))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "where_filters", "where_filters must be an array");
    w->n_filters = json_array_size(arr);
    w->filters = ds_arena_alloc(CTX->arena, sizeof(ds_filter_t) * (w->n_filters ? w->n_filters : 1));
    if (!w->filters)
        return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < w->n_filters; i++) {
        json_t *f = json_array_get(arr, i);
        ds_filter_t *o = &w->filters[i];
        int op;
        if (!json_is_object(f))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "where_filters", "where_filters[%zu] must be an object", i);
        TRY(ds_json_only(req, f, allowed));
        TRY(ds_json_str(req, f, "column", true, &o->column));
        TRY(enum_of(req, f, "operator", op_names, 0, &op));
        o->op = (ds_filter_op_t)op;
        TRY(filter_values(req, json_object_get(f, "values"), i, o));
        if (o->n_values == 0)
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "values", "where_filters[%zu]: values must not be empty", i);
        TRY(ds_json_str(req, f, "data_type", false, &o->data_type));
    }
    return DS_OK;
}

/* Reads a changed_since/changed_until value: a string, or a number of unix seconds. */
static ds_status_t time_field(ds_rest_req_t *req, json_t *obj, const char *field, const char **out)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (json_is_integer(v)) {
        int64_t s;
        TRY(ds_json_int64(req, obj, field, 0, &s));
        *out = ds_arena_printf(CTX->arena, "%lld", (long long)s);
        return DS_OK;
    }
    return ds_json_str(req, obj, field, false, out);
}

static ds_status_t parse_where(ds_rest_req_t *req, json_t *body, ds_where_t *w)
{
    TRY(parse_filters(req, json_object_get(body, "where_filters"), w));
    TRY(time_field(req, body, "changed_since", &w->changed_since));
    TRY(time_field(req, body, "changed_until", &w->changed_until));
    return DS_OK;
}

static ds_status_t parse_order(ds_rest_req_t *req, json_t *arr, ds_order_t **order, size_t *n)
{
    static const char *const dirs[] = {"asc", "desc", NULL};
    static const char *const allowed[] = {"column", "order", "data_type", NULL};
    *order = NULL;
    *n = 0;
    if (!arr || json_is_null(arr))
        return DS_OK;
    if (!json_is_array(arr))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "order_by", "order_by must be an array");
    *n = json_array_size(arr);
    *order = ds_arena_alloc(CTX->arena, sizeof(ds_order_t) * (*n ? *n : 1));
    if (!*order)
        return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_t *o = json_array_get(arr, i);
        int dir;
        if (json_is_string(o)) {
            (*order)[i].column = ds_arena_strdup(CTX->arena, json_string_value(o));
            continue;
        }
        if (!json_is_object(o))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "order_by", "order_by[%zu] must be an object", i);
        TRY(ds_json_only(req, o, allowed));
        TRY(ds_json_str(req, o, "column", true, &(*order)[i].column));
        TRY(enum_of(req, o, "order", dirs, 0, &dir));
        (*order)[i].desc = dir == 1;
        TRY(ds_json_str(req, o, "data_type", false, &(*order)[i].data_type));
    }
    return DS_OK;
}

static ds_status_t int_field(ds_rest_req_t *req, json_t *obj, const char *field, int64_t def, int64_t *out)
{
    return ds_json_int64(req, obj, field, def, out);
}

/* One character option ("," or "" ), copied into out. */
static ds_status_t char_opt(ds_rest_req_t *req, json_t *obj, const char *field, const char *def, char out[8])
{
    const char *v;
    TRY(ds_json_str(req, obj, field, false, &v));
    if (!v)
        v = def;
    if (strlen(v) > 1)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be one character or empty", field);
    snprintf(out, 8, "%s", v);
    return DS_OK;
}

ds_status_t ds_rest_parse_dedup(ds_rest_req_t *req, json_t *body, ds_dedup_t *dedup, const char ***columns, size_t *n)
{
    static const char *const dedups[] = {"update_duplicates", "insert_duplicates", "fail_on_duplicates", NULL};
    int v;
    TRY(enum_of(req, body, "dedup", dedups, 0, &v));
    *dedup = (ds_dedup_t)v;
    return ds_json_str_array(req, body, "dedup_columns", columns, n);
}

/* The import options shared by file and table imports. */
static ds_status_t parse_import_options(ds_rest_req_t *req, json_t *body, ds_import_t *in)
{
    static const char *const ts_modes[] = {"current_time", "none", "from_source", NULL};
    static const char *const strategies[] = {"string_table", "user_defined_table", NULL};
    static const char *const create_modes[] = {"create", "replace", NULL};
    int v;
    TRY(ds_json_bool(req, body, "incremental", false, &in->incremental));
    TRY(ds_rest_parse_dedup(req, body, &in->dedup, &in->dedup_columns, &in->n_dedup_columns));
    TRY(enum_of(req, body, "timestamp_mode", ts_modes, 0, &v));
    in->timestamp_mode = (ds_ts_mode_t)v;
    TRY(ds_json_str(req, body, "timestamp_column", false, &in->timestamp_column));
    TRY(ds_json_str_array(req, body, "convert_empty_to_null", &in->convert_empty_to_null, &in->n_convert_empty_to_null));
    TRY(ds_json_str_array(req, body, "import_as_null", &in->import_as_null, &in->n_import_as_null));
    TRY(enum_of(req, body, "strategy", strategies, DS_STRATEGY_AUTO, &v));
    in->strategy = (ds_strategy_t)v;
    TRY(enum_of(req, body, "create_mode", create_modes, DS_CREATE_NONE, &v));
    in->create_mode = (ds_create_mode_t)v;
    return DS_OK;
}

static json_t *str_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, items[i] ? json_string(items[i]) : json_null());
    return a;
}

static json_t *import_json(const ds_import_result_t *r)
{
    json_t *timers = json_array();
    for (size_t i = 0; i < r->n_timers; i++)
        json_array_append_new(timers, json_pack("{s:s,s:f}", "name", r->timers[i].name, "seconds", r->timers[i].seconds));
    return json_pack("{s:I,s:I,s:I,s:o,s:o}", "imported_rows", (json_int_t)r->imported_rows, "table_rows",
                     (json_int_t)r->table_rows, "table_bytes", (json_int_t)r->table_bytes, "imported_columns",
                     str_array(r->imported_columns, r->n_imported_columns), "timers", timers);
}

static ds_status_t h_import_file(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"file_id", "file_key", "format", "csv", "incremental", "dedup",
                                          "dedup_columns", "timestamp_mode", "timestamp_column",
                                          "convert_empty_to_null", "import_as_null", "strategy", "create_mode", NULL};
    static const char *const csv_allowed[] = {"delimiter", "enclosure", "escaped_by", "header", "columns",
                                              "compression", "skip_lines", NULL};
    static const char *const formats[] = {"csv", "parquet", NULL};
    static const char *const compressions[] = {"none", "gzip", NULL};
    json_t *body;
    ds_import_t in = {0};
    ds_import_result_t out;
    int v;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str(req, body, "file_id", false, &in.file_id));
    TRY(ds_json_str(req, body, "file_key", false, &in.file_key));
    TRY(enum_of(req, body, "format", formats, 0, &v));
    in.format = (ds_format_t)v;
    json_t *c = json_object_get(body, "csv");
    if (!c || json_is_null(c)) {
        c = json_object();
        ds_arena_on_destroy(CTX->arena, (ds_cleanup_cb)json_decref, c);
    } else if (!json_is_object(c)) {
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "csv", "field \"csv\" must be an object");
    }
    TRY(ds_json_only(req, c, csv_allowed));
    TRY(char_opt(req, c, "delimiter", ",", in.csv.delimiter));
    /* The enclosure's default is '"' without escaped_by and none with it (the two are mutually exclusive). */
    TRY(char_opt(req, c, "escaped_by", "", in.csv.escaped_by));
    TRY(char_opt(req, c, "enclosure", in.csv.escaped_by[0] ? "" : "\"", in.csv.enclosure));
    TRY(ds_json_str_array(req, c, "columns", &in.csv.columns, &in.csv.n_columns));
    TRY(ds_json_bool(req, c, "header", in.csv.n_columns == 0, &in.csv.header));
    if (in.csv.header && in.csv.n_columns)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "header",
                           "csv.columns names the columns of a headless file; with header true leave it out");
    if (!in.csv.header && !in.csv.n_columns)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "columns", "a file without a header needs csv.columns");
    TRY(enum_of(req, c, "compression", compressions, 0, &v));
    in.csv.gzip = v == 1;
    TRY(int_field(req, c, "skip_lines", 0, &in.csv.skip_lines));
    TRY(parse_import_options(req, body, &in));
    TRY(ds_cmd_table_import(CTX, PROJECT, BUCKET, TABLE, &in, &out));
    resp->json = import_json(&out);
    return DS_OK;
}

static ds_status_t h_import_table(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"source", "columns_mapping", "where_filters", "changed_since",
                                          "changed_until", "seconds", "limit", "incremental", "dedup", "dedup_columns", "timestamp_mode",
                                          "timestamp_column", "convert_empty_to_null", "import_as_null", "strategy",
                                          "create_mode", NULL};
    json_t *body;
    ds_import_t in = {0};
    ds_import_result_t out;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    json_t *src = json_object_get(body, "source");
    if (!json_is_object(src))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "source",
                           "field \"source\" must be an object {\"bucket\": ..., \"table\": ...}");
    const char *src_ws = NULL;
    TRY(ds_json_str(req, src, "workspace", false, &src_ws));
    if (!src_ws)
        TRY(ds_json_str(req, src, "bucket", true, &in.src_bucket));
    TRY(ds_json_str(req, src, "table", true, &in.src_table));
    json_t *map = json_object_get(body, "columns_mapping");
    if (map && !json_is_null(map)) {
        if (!json_is_array(map))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "columns_mapping", "columns_mapping must be an array");
        in.n_mapping = json_array_size(map);
        in.src_columns = ds_arena_alloc(CTX->arena, sizeof(char *) * (in.n_mapping ? in.n_mapping : 1));
        in.dst_columns = ds_arena_alloc(CTX->arena, sizeof(char *) * (in.n_mapping ? in.n_mapping : 1));
        if (!in.src_columns || !in.dst_columns)
            return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
        for (size_t i = 0; i < in.n_mapping; i++) {
            json_t *m = json_array_get(map, i);
            if (!json_is_object(m))
                return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "columns_mapping",
                                   "columns_mapping[%zu] must be {\"source\": ..., \"destination\": ...}", i);
            TRY(ds_json_str(req, m, "source", true, &in.src_columns[i]));
            TRY(ds_json_str(req, m, "destination", true, &in.dst_columns[i]));
        }
    }
    TRY(parse_where(req, body, &in.src_where));
    TRY(ds_json_int64(req, body, "seconds", 0, &in.src_seconds));
    TRY(ds_json_int64(req, body, "limit", 0, &in.src_limit));
    TRY(parse_import_options(req, body, &in));
    if (src_ws)
        TRY(ds_cmd_table_import_workspace(CTX, PROJECT, BUCKET, TABLE, src_ws, &in, &out));
    else
        TRY(ds_cmd_table_import(CTX, PROJECT, BUCKET, TABLE, &in, &out));
    resp->json = import_json(&out);
    return DS_OK;
}

static ds_status_t h_export(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"format", "gzip", "columns", "order_by", "limit", "changed_since",
                                          "changed_until", "where_filters", "sliced", "file_name", NULL};
    static const char *const formats[] = {"csv", "parquet", NULL};
    json_t *body;
    ds_export_t in = {0};
    ds_export_result_t out;
    int v;
    TRY(body_of(req, true, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(enum_of(req, body, "format", formats, 0, &v));
    in.format = (ds_format_t)v;
    TRY(ds_json_bool(req, body, "gzip", false, &in.gzip));
    TRY(ds_json_bool(req, body, "sliced", false, &in.sliced));
    TRY(ds_json_str_array(req, body, "columns", &in.columns, &in.n_columns));
    TRY(parse_order(req, json_object_get(body, "order_by"), &in.order, &in.n_order));
    TRY(int_field(req, body, "limit", 0, &in.limit));
    TRY(parse_where(req, body, &in.where));
    TRY(ds_json_str(req, body, "file_name", false, &in.file_name));
    TRY(ds_cmd_table_export(CTX, PROJECT, BUCKET, TABLE, &in, &out));
    resp->status = 201;
    resp->json = json_pack("{s:s,s:s,s:b,s:I,s:I}", "file_id", out.file_id, "file_name", out.file_name, "sliced",
                           out.sliced, "rows", (json_int_t)out.rows, "bytes", (json_int_t)out.bytes);
    return DS_OK;
}

/* Splits s on sep into an arena array (empty items kept). */
static const char **split(ds_rest_req_t *req, const char *s, char sep, size_t *n)
{
    size_t count = 1;
    for (const char *p = s; *p; p++)
        count += *p == sep;
    const char **out = ds_arena_alloc(CTX->arena, sizeof(char *) * count);
    *n = 0;
    if (!out)
        return NULL;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == sep || *p == '\0') {
            if (!(out[(*n)++] = ds_arena_strndup(CTX->arena, start, (size_t)(p - start)))) {
                *n = 0;
                return NULL;
            }
            if (!*p)
                break;
            start = p + 1;
        }
    }
    return out;
}

/*
 * Preview query arguments: limit, columns=a,b, order_by=a,b:desc,
 * where=col:op:v1|v2 (several filters separated by ';'), changed_since,
 * changed_until, format=json|csv.
 */
static ds_status_t parse_preview_query(ds_rest_req_t *req, ds_preview_t *in)
{
    const char *v;
    if ((v = ds_rest_query(req, "limit"))) {
        char *end;
        long long l = strtoll(v, &end, 10);
        if (*end || l < 1 || l > 1000)
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "limit", "limit must be an integer from 1 to 1000");
        in->limit = l;
    }
    if ((v = ds_rest_query(req, "columns")) && *v && !(in->columns = split(req, v, ',', &in->n_columns)))
        return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    if ((v = ds_rest_query(req, "order_by")) && *v) {
        size_t n;
        const char **items = split(req, v, ',', &n);
        if (!items || !(in->order = ds_arena_alloc(CTX->arena, sizeof(ds_order_t) * n)))
            return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
        in->n_order = n;
        for (size_t i = 0; i < n; i++) {
            char *colon = strchr(items[i], ':');
            if (colon) {
                *colon = '\0';
                if (strcasecmp(colon + 1, "desc") != 0 && strcasecmp(colon + 1, "asc") != 0)
                    return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "order_by", "order_by direction must be asc or desc");
                in->order[i].desc = strcasecmp(colon + 1, "desc") == 0;
            }
            in->order[i].column = items[i];
        }
    }
    if ((v = ds_rest_query(req, "where")) && *v) {
        size_t n;
        const char **items = split(req, v, ';', &n);
        if (!items || !(in->where.filters = ds_arena_alloc(CTX->arena, sizeof(ds_filter_t) * n)))
            return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
        in->where.n_filters = n;
        for (size_t i = 0; i < n; i++) {
            size_t parts;
            const char **p = split(req, items[i], ':', &parts);
            if (!p)
                return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
            if (parts < 3)
                return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "where", "where must be column:operator:value[|value...]");
            ds_filter_t *f = &in->where.filters[i];
            f->column = p[0];
            int op = -1;
            for (int k = 0; op_names[k]; k++)
                if (strcasecmp(op_names[k], p[1]) == 0)
                    op = k;
            if (op < 0)
                return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "where", "unknown operator \"%s\"", p[1]);
            f->op = (ds_filter_op_t)op;
            /* The value may itself contain ':' (times): rejoin the rest. */
            const char *rest = strchr(strchr(items[i], ':') + 1, ':') + 1;
            if (!(f->values = split(req, rest, '|', &f->n_values)))
                return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
        }
    }
    in->where.changed_since = ds_rest_query(req, "changed_since");
    in->where.changed_until = ds_rest_query(req, "changed_until");
    return DS_OK;
}

/* RFC 4180 field: always enclosed in quotes, quotes doubled. */
static void csv_field(ds_buf_t *b, const char *v)
{
    if (!v)
        return;
    ds_buf_puts(b, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            ds_buf_puts(b, "\"");
        ds_buf_append(b, p, 1);
    }
    ds_buf_puts(b, "\"");
}

static ds_status_t h_preview(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_preview_t in = {0};
    ds_preview_result_t out;
    TRY(parse_preview_query(req, &in));
    const char *format = ds_rest_query(req, "format");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "format", "format must be json or csv");
    TRY(ds_cmd_table_preview(CTX, PROJECT, BUCKET, TABLE, &in, &out));
    if (format && strcmp(format, "csv") == 0) {
        ds_buf_t b = {0};
        for (size_t c = 0; c < out.n_columns; c++) {
            if (c)
                ds_buf_puts(&b, ",");
            csv_field(&b, out.columns[c]);
        }
        ds_buf_puts(&b, "\n");
        for (size_t r = 0; r < out.n_rows; r++) {
            for (size_t c = 0; c < out.n_columns; c++) {
                if (c)
                    ds_buf_puts(&b, ",");
                csv_field(&b, out.rows[r][c]);
            }
            ds_buf_puts(&b, "\n");
        }
        resp->raw_len = b.len;
        resp->raw = ds_buf_steal(&b);
        resp->content_type = "text/csv; charset=utf-8";
        return DS_OK;
    }
    /* Written straight into one buffer: a JSON tree of a 1,000-row preview costs more than its query. */
    ds_buf_t b = {0};
    DS_BUF_LIT(&b, "{\"columns\":[");
    for (size_t c = 0; c < out.n_columns; c++) {
        if (c)
            DS_BUF_LIT(&b, ",");
        ds_buf_json_str(&b, out.columns[c]);
    }
    DS_BUF_LIT(&b, "],\"rows\":");
    ds_rest_buf_rows(&b, (const char *const *const *)out.rows, out.n_rows, out.n_columns);
    DS_BUF_LIT(&b, "}");
    return ds_rest_buf_answer(req, resp, &b);
}

static ds_status_t h_profile(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_profile_result_t out;
    TRY(ds_cmd_table_profile(CTX, PROJECT, BUCKET, TABLE, &out));
    json_t *cols = json_array();
    for (size_t i = 0; i < out.n_columns; i++) {
        const ds_column_profile_t *p = &out.columns[i];
        json_t *top = json_array();
        for (size_t k = 0; k < p->n_top; k++)
            json_array_append_new(top, json_pack("{s:s,s:I}", "value", p->top[k].value, "count", (json_int_t)p->top[k].count));
        json_array_append_new(cols, json_pack("{s:s,s:s,s:I,s:I,s:I,s:s?,s:s?,s:s?,s:o}", "name", p->name, "type", p->type,
                                              "count", (json_int_t)p->count, "nulls", (json_int_t)p->nulls, "distinct",
                                              (json_int_t)p->distinct, "min", p->min, "max", p->max, "avg", p->avg,
                                              "top", top));
    }
    resp->json = json_pack("{s:o,s:I}", "columns", cols, "rows", (json_int_t)out.rows);
    return DS_OK;
}

static ds_status_t h_delete_rows(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"where_filters", "changed_since", "changed_until", "where_in", NULL};
    static const char *const in_allowed[] = {"column", "bucket", "table", "ref_column", "negate", NULL};
    json_t *body;
    ds_where_t w = {0};
    int64_t deleted = 0, rows = 0;
    TRY(body_of(req, true, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(parse_where(req, body, &w));
    json_t *in = json_object_get(body, "where_in");
    if (in && !json_is_null(in)) {
        if (!json_is_object(in))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "where_in", "where_in must be an object");
        TRY(ds_json_only(req, in, in_allowed));
        TRY(ds_json_str(req, in, "column", true, &w.in_column));
        TRY(ds_json_str(req, in, "bucket", true, &w.in_bucket));
        TRY(ds_json_str(req, in, "table", true, &w.in_table));
        TRY(ds_json_str(req, in, "ref_column", true, &w.in_ref_column));
        TRY(ds_json_bool(req, in, "negate", false, &w.in_negate));
    }
    TRY(ds_cmd_table_delete_rows(CTX, PROJECT, BUCKET, TABLE, &w, &deleted, &rows));
    resp->json = json_pack("{s:I,s:I}", "deleted_rows", (json_int_t)deleted, "table_rows", (json_int_t)rows);
    return DS_OK;
}

/* A default as JSON: strings as they are, numbers and booleans as text. */
static ds_status_t default_of(ds_rest_req_t *req, json_t *v, const char **out)
{
    *out = NULL;
    if (!v || json_is_null(v))
        return DS_OK;
    if (json_is_string(v))
        *out = ds_arena_strdup(CTX->arena, json_string_value(v));
    else if (json_is_number(v))
        *out = ds_json_number_text(req, v);
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "default", "default must be a string, number, boolean or null");
    return DS_OK;
}

static ds_status_t h_column_add(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"name", "type", "nullable", "default", NULL};
    json_t *body;
    ds_column_in_t c = {0};
    ds_be_table_t t;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str(req, body, "name", true, &c.name));
    TRY(ds_json_str(req, body, "type", false, &c.type));
    TRY(ds_json_bool(req, body, "nullable", true, &c.nullable));
    TRY(default_of(req, json_object_get(body, "default"), &c.default_value));
    TRY(ds_cmd_column_add(CTX, PROJECT, BUCKET, TABLE, &c));
    TRY(ds_cmd_table_get(CTX, PROJECT, BUCKET, TABLE, &t));
    resp->status = 201;
    resp->json = ds_rest_table_json(&t);
    return DS_OK;
}

static ds_status_t h_column_alter(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"type", "nullable", "default", NULL};
    json_t *body;
    ds_column_alter_t a = {.nullable = -1};
    ds_be_table_t t;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str(req, body, "type", false, &a.type));
    json_t *n = json_object_get(body, "nullable");
    if (n && !json_is_null(n)) {
        if (!json_is_boolean(n))
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "nullable", "field \"nullable\" must be true or false");
        a.nullable = json_is_true(n);
    }
    if (json_object_get(body, "default")) {
        a.set_default = true;
        TRY(default_of(req, json_object_get(body, "default"), &a.default_value));
    }
    TRY(ds_cmd_column_alter(CTX, PROJECT, BUCKET, TABLE, ds_rest_param(req, "column"), &a));
    TRY(ds_cmd_table_get(CTX, PROJECT, BUCKET, TABLE, &t));
    resp->json = ds_rest_table_json(&t);
    return DS_OK;
}

static ds_status_t h_column_drop(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_column_drop(CTX, PROJECT, BUCKET, TABLE, ds_rest_param(req, "column")));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_pk_add(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"columns", NULL};
    json_t *body;
    const char **cols;
    size_t n;
    ds_be_table_t t;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str_array(req, body, "columns", &cols, &n));
    TRY(ds_cmd_primary_key_add(CTX, PROJECT, BUCKET, TABLE, cols, n));
    TRY(ds_cmd_table_get(CTX, PROJECT, BUCKET, TABLE, &t));
    resp->json = ds_rest_table_json(&t);
    return DS_OK;
}

static ds_status_t h_pk_drop(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_primary_key_drop(CTX, PROJECT, BUCKET, TABLE));
    resp->status = 204;
    return DS_OK;
}

#define T "/projects/{id}/buckets/{bucket}/tables/{table}"

const ds_rest_route_t ds_rest_data_routes[] = {
    {.method = "POST", .pattern = T "/import/file", .handler = h_import_file,
     .summary = "Import a Storage File (CSV or Parquet) into the table"},
    {.method = "POST", .pattern = T "/import/table", .handler = h_import_table,
     .summary = "Import another table of the project into the table"},
    {.method = "POST", .pattern = T "/export", .handler = h_export, .summary = "Export the table to a Storage File"},
    {.method = "GET", .pattern = T "/preview", .handler = h_preview, .summary = "Preview up to 1000 rows (JSON or CSV)"},
    {.method = "POST", .pattern = T "/profile", .handler = h_profile, .summary = "Per-column statistics"},
    {.method = "DELETE", .pattern = T "/rows", .handler = h_delete_rows, .summary = "Delete rows matching filters"},
    {.method = "POST", .pattern = T "/columns", .handler = h_column_add, .summary = "Add a column"},
    {.method = "PUT", .pattern = T "/columns/{column}", .handler = h_column_alter,
     .summary = "Alter a column: type, nullable, default"},
    {.method = "DELETE", .pattern = T "/columns/{column}", .handler = h_column_drop, .summary = "Drop a column"},
    {.method = "POST", .pattern = T "/primary-key", .handler = h_pk_add, .summary = "Add a primary key"},
    {.method = "DELETE", .pattern = T "/primary-key", .handler = h_pk_drop, .summary = "Drop the primary key"},
};
const size_t ds_rest_n_data_routes = sizeof(ds_rest_data_routes) / sizeof(ds_rest_data_routes[0]);

/* For other route files: where_filters, changed_since and changed_until of body (rest.h). */
ds_status_t ds_rest_parse_where(ds_rest_req_t *req, json_t *body, ds_where_t *w)
{
    return parse_where(req, body, w);
}
