/*
 * routes.c - the REST route table and its handlers.
 *
 * Each handler turns JSON into a command struct, calls one ds_cmd_* function
 * and turns the result into JSON. No storage logic lives here.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "rest/rest.h"

/* Like TRY, but releases the request's JSON body first. */
#define TRYB(expr)                                                                                 \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK) {                                                                        \
            json_decref(body);                                                                     \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- operations ---- */

static ds_status_t h_health(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    resp->json = json_pack("{s:s}", "status", "ok");
    return DS_OK;
}

static ds_status_t h_ready(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_service_ready(&CTX->err));
    resp->json = json_pack("{s:s}", "status", "ready");
    return DS_OK;
}

static ds_status_t h_metrics(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_require_admin(CTX));
    ds_buf_t out = {0};
    ds_metrics_render(&out);
    resp->raw_len = out.len;
    resp->raw = ds_buf_steal(&out);
    resp->content_type = "text/plain; version=0.0.4";
    return DS_OK;
}

static ds_status_t h_openapi(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    const char *doc = ds_rest_openapi();
    resp->raw = strdup(doc);
    resp->raw_len = strlen(doc);
    resp->content_type = "application/json";
    return resp->raw ? DS_OK : ds_err_set(&CTX->err, DS_INTERNAL, "out of memory");
}

/* ---- backend ---- */

static ds_status_t h_backend_init(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_backend_info_t info;
    TRY(ds_cmd_backend_init(CTX, &info));
    resp->json = json_pack("{s:s,s:s,s:s,s:I}", "status", "ok", "data_dir", info.data_dir, "engine", info.engine,
                           "projects", (json_int_t)info.projects);
    return DS_OK;
}

static ds_status_t h_backend_remove(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_backend_remove(CTX));
    resp->json = json_pack("{s:s}", "status", "ok");
    return DS_OK;
}

/* ---- projects ---- */

static json_t *project_json(const ds_project_t *p)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o}", "id", p->rec.id, "name", p->rec.name, "backend", p->rec.backend,
                          "created_at", ds_json_time(p->rec.created_at), "updated_at", ds_json_time(p->rec.updated_at));
    json_object_set_new(j, "data_retention_time", json_integer(p->rec.retention_days));
    if (p->api_key)
        json_object_set_new(j, "api_key", json_string(p->api_key));
    if (p->has_stats)
        json_object_set_new(j, "stats",
                            json_pack("{s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I}}", "buckets", (json_int_t)p->stats.buckets,
                                      "tables", (json_int_t)p->stats.tables, "rows", (json_int_t)p->stats.rows,
                                      "bytes", (json_int_t)p->stats.bytes, "branches", "tables",
                                      (json_int_t)p->branches.tables, "rows", (json_int_t)p->branches.rows, "bytes",
                                      (json_int_t)p->branches.bytes));
    return j;
}

/* data_retention_time (days, 0 = no time travel) into *days; -1 when absent. */
static ds_status_t retention_field(ds_rest_req_t *req, json_t *body, int64_t *days)
{
    ds_status_t st = ds_json_int64(req, body, "data_retention_time", -1, days);
    if (st == DS_OK && json_object_get(body, "data_retention_time") && (*days < 0 || *days > DS_RETENTION_MAX_DAYS))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "data_retention_time",
                           "data_retention_time must be a whole number of days from 0 (no time travel) to %d; got %lld",
                           DS_RETENTION_MAX_DAYS, (long long)*days);
    return st;
}

static ds_status_t h_project_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_project_create_t in = {0};
    ds_project_t out;
    static const char *const allowed[] = {"id", "name", "backend", "data_retention_time", NULL};
    TRY(ds_cmd_require_admin(CTX));
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "id", true, &in.id));
    TRYB(ds_json_str(req, body, "name", false, &in.name));
    TRYB(ds_json_str(req, body, "backend", false, &in.backend));
    TRYB(retention_field(req, body, &in.retention_days));
    in.retention_set = in.retention_days >= 0;
    json_decref(body);
    TRY(ds_cmd_project_create(CTX, &in, &out));
    resp->status = 201;
    resp->json = project_json(&out);
    return DS_OK;
}

static ds_status_t h_project_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_project_rec_t *items;
    size_t n;
    TRY(ds_cmd_project_list(CTX, &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        ds_project_t p = {.rec = items[i]};
        json_array_append_new(arr, project_json(&p));
    }
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_project_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_project_t p;
    TRY(ds_cmd_project_get(CTX, ds_rest_param(req, "id"), &p));
    resp->json = project_json(&p);
    return DS_OK;
}

static ds_status_t h_project_update(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    const char *name;
    int64_t retention;
    ds_project_t p;
    static const char *const allowed[] = {"name", "data_retention_time", NULL};
    TRY(ds_cmd_require_admin(CTX));
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "name", false, &name));
    TRYB(retention_field(req, body, &retention));
    json_decref(body);
    TRY(ds_cmd_project_update(CTX, ds_rest_param(req, "id"), name, retention, &p));
    resp->json = project_json(&p);
    return DS_OK;
}

static ds_status_t h_project_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_project_delete(CTX, ds_rest_param(req, "id")));
    resp->status = 204;
    return DS_OK;
}

/* 200 {"bytes_before", "bytes_after", "seconds"}: the project's storage rewritten without its free space. */
static ds_status_t h_project_compact(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_compact_result_t r;
    TRY(ds_cmd_project_compact(CTX, ds_rest_param(req, "id"), &r));
    resp->json = json_pack("{s:I,s:I,s:f}", "bytes_before", (json_int_t)r.bytes_before, "bytes_after",
                           (json_int_t)r.bytes_after, "seconds", r.seconds);
    return DS_OK;
}

/* ---- buckets ---- */

static json_t *bucket_json(const ds_be_bucket_t *b)
{
    return json_pack("{s:s,s:s,s:s,s:s?,s:o,s:I}", "id", b->id, "stage", b->stage, "name", b->name, "description",
                     b->description, "created_at", ds_json_time(b->created_at), "table_count",
                     (json_int_t)b->table_count);
}

static ds_status_t h_bucket_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_bucket_create_t in = {0};
    ds_be_bucket_t out;
    static const char *const allowed[] = {"stage", "name", "description", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "stage", true, &in.stage));
    TRYB(ds_json_str(req, body, "name", true, &in.name));
    TRYB(ds_json_str(req, body, "description", false, &in.description));
    json_decref(body);
    TRY(ds_cmd_bucket_create(CTX, ds_rest_param(req, "id"), &in, &out));
    resp->status = 201;
    resp->json = bucket_json(&out);
    return DS_OK;
}

static ds_status_t h_bucket_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_bucket_t *items;
    size_t n;
    TRY(ds_cmd_bucket_list(CTX, ds_rest_param(req, "id"), &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, bucket_json(&items[i]));
    ds_rest_bucket_annotate(req, arr);
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_bucket_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_bucket_t b;
    TRY(ds_cmd_bucket_get(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), &b));
    resp->json = bucket_json(&b);
    ds_rest_bucket_annotate(req, resp->json);
    return DS_OK;
}

static ds_status_t h_bucket_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_bucket_delete(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"),
                             ds_rest_query_bool(req, "force")));
    resp->status = 204;
    return DS_OK;
}

/* ---- tables ---- */

json_t *ds_rest_table_json(const ds_be_table_t *t)
{
    json_t *cols = json_array(), *pk = json_array();
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        json_array_append_new(cols, json_pack("{s:s,s:s,s:b,s:s?}", "name", c->name, "type", c->type, "nullable",
                                              c->nullable, "default", c->default_value));
    }
    for (size_t i = 0; i < t->n_primary_key; i++)
        json_array_append_new(pk, json_string(t->primary_key[i]));
    char id[256];
    snprintf(id, sizeof(id), "%s.%s", t->bucket, t->name);
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:o,s:o,s:o}", "id", id, "name", t->name, "bucket", t->bucket, "columns", cols, "primary_key", pk, "rows", (json_int_t)t->rows,
                          "bytes", (json_int_t)t->bytes, "created_at", ds_json_time(t->created_at), "last_import_at",
                          ds_json_time(t->last_import_at), "last_change_at", ds_json_time(t->last_change_at));
    return j;
}

/* A column default given as JSON: strings as they are, numbers and booleans as text. */
static ds_status_t default_text(ds_rest_req_t *req, json_t *v, const char *column, const char **out)
{
    *out = NULL;
    if (!v || json_is_null(v))
        return DS_OK;
    if (json_is_string(v))
        *out = ds_arena_strdup(req->ctx.arena, json_string_value(v));
    else if (json_is_number(v))
        *out = ds_json_number_text(req, v);
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, "default",
                           "column \"%s\": default must be a string, number, boolean or null", column);
    return DS_OK;
}

static ds_status_t parse_columns(ds_rest_req_t *req, json_t *body, ds_table_create_t *in)
{
    json_t *cols = json_object_get(body, "columns");
    static const char *const allowed[] = {"name", "type", "nullable", "default", NULL};
    if (!json_is_array(cols))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, "columns", "field \"columns\" must be an array");
    in->n_columns = json_array_size(cols);
    in->columns = ds_arena_alloc(req->ctx.arena, sizeof(ds_column_in_t) * (in->n_columns ? in->n_columns : 1));
    if (!in->columns)
        return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < in->n_columns; i++) {
        json_t *c = json_array_get(cols, i);
        ds_column_in_t *col = &in->columns[i];
        if (json_is_string(c)) {
            col->name = ds_arena_strdup(req->ctx.arena, json_string_value(c));
            col->nullable = true;
            continue;
        }
        if (!json_is_object(c))
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, "columns",
                               "columns[%zu] must be an object or a column name", i);
        TRY(ds_json_only(req, c, allowed));
        TRY(ds_json_str(req, c, "name", true, &col->name));
        TRY(ds_json_str(req, c, "type", false, &col->type));
        TRY(ds_json_bool(req, c, "nullable", true, &col->nullable));
        TRY(default_text(req, json_object_get(c, "default"), col->name, &col->default_value));
    }
    return DS_OK;
}

static ds_status_t h_table_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_table_create_t in = {0};
    ds_be_table_t out;
    static const char *const allowed[] = {"name", "columns", "primary_key", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "name", true, &in.name));
    TRYB(parse_columns(req, body, &in));
    TRYB(ds_json_str_array(req, body, "primary_key", &in.primary_key, &in.n_primary_key));
    json_decref(body);
    TRY(ds_cmd_table_create(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), &in, &out));
    resp->status = 201;
    resp->json = ds_rest_table_json(&out);
    return DS_OK;
}

static void buf_json_time(ds_buf_t *b, int64_t unix_s)
{
    char t[40];
    if (unix_s <= 0) {
        DS_BUF_LIT(b, "null");
        return;
    }
    ds_time_rfc3339(unix_s, t, sizeof(t));
    ds_buf_json_str(b, t);
}

/*
 * A table as ds_rest_table_json describes it, written straight into b. Lists
 * of thousands of tables are written this way: building and freeing a JSON
 * tree per table cost more than the list itself, and so did measuring every
 * constant piece and printf for every number (docs/performance.md).
 */
static void buf_table_json(ds_buf_t *b, const ds_be_table_t *t)
{
    /* "<bucket>.<table>": the halves are escaped like any string. */
    DS_BUF_LIT(b, "{\"id\":\"");
    ds_buf_json_chars(b, t->bucket);
    DS_BUF_LIT(b, ".");
    ds_buf_json_chars(b, t->name);
    DS_BUF_LIT(b, "\",\"name\":");
    ds_buf_json_str(b, t->name);
    DS_BUF_LIT(b, ",\"bucket\":");
    ds_buf_json_str(b, t->bucket);
    DS_BUF_LIT(b, ",\"columns\":[");
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        if (i)
            DS_BUF_LIT(b, ",");
        DS_BUF_LIT(b, "{\"name\":");
        ds_buf_json_str(b, c->name);
        DS_BUF_LIT(b, ",\"type\":");
        ds_buf_json_str(b, c->type);
        if (c->nullable)
            DS_BUF_LIT(b, ",\"nullable\":true,\"default\":");
        else
            DS_BUF_LIT(b, ",\"nullable\":false,\"default\":");
        if (c->default_value)
            ds_buf_json_str(b, c->default_value);
        else
            DS_BUF_LIT(b, "null");
        DS_BUF_LIT(b, "}");
    }
    DS_BUF_LIT(b, "],\"primary_key\":[");
    for (size_t i = 0; i < t->n_primary_key; i++) {
        if (i)
            DS_BUF_LIT(b, ",");
        ds_buf_json_str(b, t->primary_key[i]);
    }
    DS_BUF_LIT(b, "],\"rows\":");
    ds_buf_int(b, t->rows);
    DS_BUF_LIT(b, ",\"bytes\":");
    ds_buf_int(b, t->bytes);
    DS_BUF_LIT(b, ",\"created_at\":");
    buf_json_time(b, t->created_at);
    DS_BUF_LIT(b, ",\"last_import_at\":");
    buf_json_time(b, t->last_import_at);
    DS_BUF_LIT(b, ",\"last_change_at\":");
    buf_json_time(b, t->last_change_at);
    DS_BUF_LIT(b, "}");
}

/* A table's info, and for an alias what it reads: "alias_of", "alias_filter" (or null), "auto_sync". */
static json_t *object_json(const ds_be_table_t *t, const ds_alias_t *a)
{
    json_t *j = ds_rest_table_json(t);
    if (!a)
        return j;
    char src[256];
    snprintf(src, sizeof(src), "%s.%s", a->source_bucket, a->source_table);
    json_object_set_new(j, "alias_of", json_string(src));
    json_object_set_new(j, "auto_sync", json_boolean(a->auto_sync));
    if (a->filter) {
        json_t *vals = json_array();
        for (size_t i = 0; i < a->filter->n_values; i++)
            json_array_append_new(vals, json_string(a->filter->values[i]));
        json_object_set_new(j, "alias_filter", json_pack("{s:s,s:s,s:o}", "column", a->filter->column, "operator",
                                                         a->filter->op == DS_OP_NE ? "ne" : "eq", "values", vals));
    } else {
        json_object_set_new(j, "alias_filter", json_null());
    }
    return j;
}

static ds_status_t h_table_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_table_t *items;
    const ds_alias_t **aliases;
    size_t n;
    TRY(ds_cmd_object_list(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), &items, &n, &aliases));
    ds_buf_t b = {0};
    DS_BUF_LIT(&b, "{\"items\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            DS_BUF_LIT(&b, ",");
        if (!aliases || !aliases[i]) {
            buf_table_json(&b, &items[i]);
            continue;
        }
        /* An alias (a few per bucket at most) goes through the JSON tree for its extra fields. */
        json_t *j = object_json(&items[i], aliases[i]);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text) {
            ds_buf_free(&b);
            return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
        }
        ds_buf_puts(&b, text);
        free(text);
    }
    DS_BUF_LIT(&b, "]}");
    return ds_rest_buf_answer(req, resp, &b);
}

static ds_status_t h_table_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_table_t t;
    ds_alias_t a;
    bool is_alias;
    TRY(ds_cmd_object_get(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), ds_rest_param(req, "table"), &t,
                          &a, &is_alias));
    resp->json = object_json(&t, is_alias ? &a : NULL);
    return DS_OK;
}

static ds_status_t h_table_drop(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_table_drop(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), ds_rest_param(req, "table"),
                          ds_rest_query_bool(req, "force")));
    resp->status = 204;
    return DS_OK;
}

/* ---- aliases (REST.md "Sharing, linking, aliases") ---- */

/* Reads an alias filter {"column", "operator": "eq" | "ne", "values": [...]} (values: strings or numbers). */
static ds_status_t alias_filter(ds_rest_req_t *req, json_t *f, ds_filter_t *out)
{
    static const char *const allowed[] = {"column", "operator", "values", NULL};
    const char *op;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(f))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "filter",
                           "filter must be an object {\"column\", \"operator\", \"values\"}");
    TRY(ds_json_only(req, f, allowed));
    TRY(ds_json_str(req, f, "column", true, &out->column));
    TRY(ds_json_str(req, f, "operator", false, &op));
    if (!op || strcmp(op, "eq") == 0)
        out->op = DS_OP_EQ;
    else if (strcmp(op, "ne") == 0)
        out->op = DS_OP_NE;
    else
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "filter.operator",
                           "filter.operator must be \"eq\" or \"ne\", not \"%s\"", op);
    json_t *vals = json_object_get(f, "values");
    if (json_is_string(vals) || json_is_number(vals)) {
        json_t *one = json_array();
        json_array_append(one, vals);
        json_object_set_new(f, "values", one);
        vals = one;
    }
    if (!json_is_array(vals))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "filter.values",
                           "filter.values must be an array of strings or numbers");
    out->n_values = json_array_size(vals);
    if (!(out->values = ds_arena_alloc(CTX->arena, sizeof(char *) * (out->n_values + 1))))
        return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < out->n_values; i++) {
        json_t *v = json_array_get(vals, i);
        out->values[i] = json_is_string(v)   ? ds_arena_strdup(CTX->arena, json_string_value(v))
                         : json_is_number(v) ? ds_json_number_text(req, v)
                                             : NULL;
        if (!out->values[i])
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "filter.values",
                               "filter.values[%zu] must be a string or a number", i);
    }
    return DS_OK;
}

static ds_status_t h_alias_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_alias_create_t in = {.auto_sync = -1};
    ds_filter_t filter;
    ds_be_table_t t;
    ds_alias_t a;
    static const char *const allowed[] = {"bucket", "name", "filter", "columns", "auto_sync", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "bucket", true, &in.bucket));
    TRYB(ds_json_str(req, body, "name", true, &in.name));
    json_t *f = json_object_get(body, "filter");
    if (f && !json_is_null(f)) {
        TRYB(alias_filter(req, f, &filter));
        in.filter = &filter;
    }
    TRYB(ds_json_str_array(req, body, "columns", &in.columns, &in.n_columns));
    json_t *sync = json_object_get(body, "auto_sync");
    if (sync && !json_is_null(sync)) {
        bool v;
        TRYB(ds_json_bool(req, body, "auto_sync", true, &v));
        in.auto_sync = v;
    }
    json_decref(body);
    TRY(ds_cmd_alias_create(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), ds_rest_param(req, "table"),
                            &in, &t, &a));
    resp->status = 201;
    resp->json = object_json(&t, &a);
    return DS_OK;
}

static ds_status_t h_alias_filter_put(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_filter_t filter;
    ds_be_table_t t;
    ds_alias_t a;
    TRY(ds_rest_body(req, false, &body));
    /* The filter itself, or {"filter": {...}} as in the create body. */
    json_t *f = json_object_get(body, "filter") ? json_object_get(body, "filter") : body;
    TRYB(alias_filter(req, f, &filter));
    json_decref(body);
    TRY(ds_cmd_alias_filter_set(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"),
                                ds_rest_param(req, "table"), &filter, &t, &a));
    resp->json = object_json(&t, &a);
    return DS_OK;
}

static ds_status_t h_alias_filter_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_table_t t;
    ds_alias_t a;
    TRY(ds_cmd_alias_filter_set(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"),
                                ds_rest_param(req, "table"), NULL, &t, &a));
    resp->json = object_json(&t, &a);
    return DS_OK;
}

static ds_status_t h_alias_sync_put(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    bool sync;
    ds_be_table_t t;
    ds_alias_t a;
    static const char *const allowed[] = {"auto_sync", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    if (!json_is_boolean(json_object_get(body, "auto_sync"))) {
        json_decref(body);
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "auto_sync", "field \"auto_sync\" (true or false) is required");
    }
    TRYB(ds_json_bool(req, body, "auto_sync", true, &sync));
    json_decref(body);
    TRY(ds_cmd_alias_sync_set(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), ds_rest_param(req, "table"),
                              sync, &t, &a));
    resp->json = object_json(&t, &a);
    return DS_OK;
}

/*
 * Time travel: {"timestamp", "destination": {"bucket", "table"}}, plus
 * "table" for a dropped table (POST .../buckets/{b}/time-travel).
 */
static ds_status_t time_travel(ds_rest_req_t *req, ds_rest_resp_t *resp, bool dropped)
{
    json_t *body;
    ds_time_travel_t in = {.bucket = ds_rest_param(req, "bucket"), .dropped = dropped};
    ds_be_table_t out;
    static const char *const live[] = {"timestamp", "destination", NULL};
    static const char *const gone[] = {"table", "timestamp", "destination", NULL};
    static const char *const dest_fields[] = {"bucket", "table", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, dropped ? gone : live));
    if (dropped)
        TRYB(ds_json_str(req, body, "table", true, &in.table));
    else
        in.table = ds_rest_param(req, "table");
    TRYB(ds_json_str(req, body, "timestamp", true, &in.timestamp));
    json_t *dest = json_object_get(body, "destination");
    if (!json_is_object(dest)) {
        json_decref(body);
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "destination",
                           "destination must be an object {\"bucket\": ..., \"table\": ...}");
    }
    TRYB(ds_json_only(req, dest, dest_fields));
    TRYB(ds_json_str(req, dest, "bucket", true, &in.dst_bucket));
    TRYB(ds_json_str(req, dest, "table", true, &in.dst_table));
    json_decref(body);
    TRY(ds_cmd_table_time_travel(CTX, ds_rest_param(req, "id"), &in, &out));
    resp->status = 201;
    resp->json = ds_rest_table_json(&out);
    return DS_OK;
}

static ds_status_t h_table_time_travel(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    return time_travel(req, resp, false);
}

static ds_status_t h_dropped_time_travel(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    return time_travel(req, resp, true);
}

#define P "/projects/{id}"
#define B P "/buckets/{bucket}"
#define T B "/tables/{table}"

const ds_rest_route_t ds_rest_routes[] = {
    {.method = "GET", .pattern = "/health", .handler = h_health, .public_route = true, .on_loop = true, .summary = "Liveness: answers while the process runs"},
    {.method = "GET", .pattern = "/ready", .handler = h_ready, .public_route = true, .summary = "Readiness: the catalog and every backend answer"},
    {.method = "GET", .pattern = "/metrics", .handler = h_metrics, .public_route = false, .summary = "Prometheus metrics (admin key)"},
    {.method = "GET", .pattern = "/openapi.json", .handler = h_openapi, .public_route = true, .on_loop = true, .summary = "This OpenAPI document"},
    {.method = "POST", .pattern = "/backend/init", .handler = h_backend_init, .public_route = false, .summary = "Verify the data directory and engine (admin; idempotent)"},
    {.method = "POST", .pattern = "/backend/remove", .handler = h_backend_remove, .public_route = false, .summary = "Remove the backend (admin; only when no projects exist)"},
    {.method = "POST", .pattern = "/projects", .handler = h_project_create, .public_route = false, .summary = "Create a project; returns its API key once (admin)"},
    {.method = "GET", .pattern = "/projects", .handler = h_project_list, .public_route = false, .summary = "List projects (admin)"},
    {.method = "GET", .pattern = P, .handler = h_project_get, .public_route = false, .summary = "Get a project with stats"},
    {.method = "PUT", .pattern = P, .handler = h_project_update, .public_route = false, .summary = "Rename a project (admin)"},
    {.method = "DELETE", .pattern = P, .handler = h_project_delete, .public_route = false, .summary = "Delete a project and all its files (admin)"},
    {.method = "POST", .pattern = P "/compact", .handler = h_project_compact, .public_route = false, .summary = "Rewrite the project's storage without its free space, returning it to the disk (admin or project admin key)"},
    {.method = "POST", .pattern = P "/buckets", .handler = h_bucket_create, .public_route = false, .summary = "Create a bucket"},
    {.method = "GET", .pattern = P "/buckets", .handler = h_bucket_list, .public_route = false, .summary = "List buckets"},
    {.method = "GET", .pattern = B, .handler = h_bucket_get, .public_route = false, .summary = "Get a bucket"},
    {.method = "DELETE", .pattern = B, .handler = h_bucket_delete, .public_route = false, .summary = "Delete a bucket (force=true drops its tables)"},
    {.method = "POST", .pattern = B "/tables", .handler = h_table_create, .public_route = false, .summary = "Create a table"},
    {.method = "GET", .pattern = B "/tables", .handler = h_table_list, .public_route = false, .summary = "List tables of a bucket"},
    {.method = "GET", .pattern = T, .handler = h_table_get, .public_route = false, .summary = "Get a table: columns, primary key, exact rows, bytes, times"},
    {.method = "DELETE", .pattern = T, .handler = h_table_drop, .public_route = false, .summary = "Drop a table or alias (force=true also drops the aliases reading it)"},
    {.method = "POST", .pattern = T "/time-travel", .handler = h_table_time_travel, .public_route = false, .summary = "Create a table as this table was at a moment within the project's data retention"},
    {.method = "POST", .pattern = B "/time-travel", .handler = h_dropped_time_travel, .public_route = false, .summary = "Create a table as a dropped table of this bucket was at a moment within the data retention"},
    {.method = "POST", .pattern = T "/alias", .handler = h_alias_create, .public_route = false, .summary = "Create an alias of the table (read-only view: optional eq/ne filter, pinned columns or auto-sync)"},
    {.method = "PUT", .pattern = T "/alias-filter", .handler = h_alias_filter_put, .public_route = false, .summary = "Set an alias's filter"},
    {.method = "DELETE", .pattern = T "/alias-filter", .handler = h_alias_filter_delete, .public_route = false, .summary = "Remove an alias's filter"},
    {.method = "PUT", .pattern = T "/alias-sync", .handler = h_alias_sync_put, .public_route = false, .summary = "Turn an alias's column sync on or off (off pins its current columns)"},
};
const size_t ds_rest_n_routes = sizeof(ds_rest_routes) / sizeof(ds_rest_routes[0]);
