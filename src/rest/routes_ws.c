/*
 * routes_ws.c - REST routes of workspaces and SQL queries (REST.md,
 * "Workspaces and queries"). JSON in, ds_cmd_ws_* / ds_cmd_project_query out.
 *
 * A workspace's load and query routes also accept the workspace's own login
 * as "Authorization: Basic <base64 user:password>"; every other route needs
 * an API key as usual.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/workspace.h"
#include "rest/rest.h"

#define PROJECT ds_rest_param(req, "id")
#define WS ds_rest_param(req, "workspace")

static ds_status_t body_of(ds_rest_req_t *req, bool allow_empty, json_t **out)
{
    TRY(ds_rest_body(req, allow_empty, out));
    ds_arena_on_destroy(CTX->arena, (ds_cleanup_cb)json_decref, *out);
    return DS_OK;
}

/* The workspace login of an "Authorization: Basic" header into *cred, or NULL when none is presented. */
static ds_status_t basic_cred(ds_rest_req_t *req, ds_ws_cred_t *cred, const ds_ws_cred_t **out)
{
    *out = NULL;
    const char *h = ds_rest_header(req, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return DS_OK;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64), cap = len + 1, n = 0;
    unsigned char *raw = ds_arena_alloc(CTX->arena, cap);
    if (!raw)
        return ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    if (sodium_base642bin(raw, cap - 1, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return ds_err_set(&CTX->err, DS_UNAUTHENTICATED, "invalid Basic credentials: not base64 of user:password");
    raw[n] = '\0';
    char *colon = memchr(raw, ':', n);
    if (!colon || strlen((char *)raw) != n)
        return ds_err_set(&CTX->err, DS_UNAUTHENTICATED, "invalid Basic credentials: expected user:password");
    *colon = '\0';
    cred->user = (const char *)raw;
    cred->password = colon + 1;
    *out = cred;
    return DS_OK;
}

static json_t *ws_json(const ds_ws_rec_t *w, const char *password)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", w->id, "branch", w->branch, "user", w->user, "object_name",
                          w->object_name, "created_at", ds_json_time(w->created_at));
    if (j && password)
        json_object_set_new(j, "password", json_string(password));
    return j;
}

/* The branch of the path (branch routes) or of the body; "default" is the main branch. */
static const char *path_branch(ds_rest_req_t *req)
{
    const char *b = ds_rest_param(req, "branch");
    return b ? b : req->branch;
}

static ds_status_t h_ws_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_ws_create_t in = {0};
    ds_ws_t out;
    static const char *const allowed[] = {"id", "branch", NULL};
    TRY(body_of(req, true, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str(req, body, "id", false, &in.id));
    TRY(ds_json_str(req, body, "branch", false, &in.branch));
    const char *pb = path_branch(req);
    if (pb && in.branch && strcmp(pb, in.branch) != 0)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "branch",
                           "field \"branch\" (\"%s\") differs from the branch of the path (\"%s\")", in.branch, pb);
    if (pb)
        in.branch = pb;
    TRY(ds_cmd_ws_create(CTX, PROJECT, &in, &out));
    resp->status = 201;
    resp->json = ws_json(&out.rec, out.password);
    return DS_OK;
}

static ds_status_t h_ws_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_ws_rec_t *items;
    size_t n;
    const char *pb = path_branch(req); /* under a branch path: that branch's workspaces only */
    TRY(ds_cmd_ws_list(CTX, PROJECT, &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (!pb || strcmp(items[i].branch, pb) == 0)
            json_array_append_new(arr, ws_json(&items[i], NULL));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_ws_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_ws_t out;
    TRY(ds_cmd_ws_get(CTX, PROJECT, WS, &out));
    resp->json = ws_json(&out.rec, NULL);
    return DS_OK;
}

static ds_status_t h_ws_drop(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_drop(CTX, PROJECT, WS));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_clear(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_clear(CTX, PROJECT, WS, NULL, 0));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_drop_object(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_drop_object(CTX, PROJECT, WS, ds_rest_param(req, "name"), false));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_password(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_ws_t out;
    TRY(ds_cmd_ws_reset_password(CTX, PROJECT, WS, &out));
    resp->json = json_pack("{s:s,s:s,s:s}", "id", out.rec.id, "user", out.rec.user, "password", out.password);
    return DS_OK;
}

/* DropWorkspaceUser's REST form: the login stops working (a password reset gives it a new one). */
static ds_status_t h_ws_login_drop(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_disable_login(CTX, PROJECT, WS));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_grants(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    char **targets = NULL;
    size_t n = 0;
    TRY(ds_cmd_ws_grants(CTX, PROJECT, WS, &targets, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s}", "project", targets[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_ws_grant(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_grant(CTX, PROJECT, WS, ds_rest_param(req, "target"), true));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_revoke(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_ws_grant(CTX, PROJECT, WS, ds_rest_param(req, "target"), false));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_ws_load(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    static const char *const allowed[] = {"source", "destination", "type", "columns", "where_filters",
                                          "changed_since", "changed_until", "seconds", "limit", "dedup",
                                          "dedup_columns", NULL};
    static const char *const types[] = {"full", "incremental", "view", "clone", NULL};
    ds_ws_cred_t cred_buf;
    const ds_ws_cred_t *cred;
    json_t *body;
    ds_ws_load_t in = {0};
    int64_t rows;
    TRY(basic_cred(req, &cred_buf, &cred));
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    json_t *src = json_object_get(body, "source");
    if (!json_is_object(src))
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "source",
                           "field \"source\" must be an object {\"bucket\": ..., \"table\": ...}");
    TRY(ds_json_str(req, src, "bucket", true, &in.bucket));
    TRY(ds_json_str(req, src, "table", true, &in.table));
    TRY(ds_json_str(req, body, "destination", false, &in.destination));
    const char *type;
    TRY(ds_json_str(req, body, "type", false, &type));
    in.type = DS_WS_LOAD_FULL;
    if (type) {
        int i = 0;
        while (types[i] && strcasecmp(types[i], type) != 0)
            i++;
        if (!types[i])
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "type",
                               "field \"type\": \"%s\" is not one of: full, incremental, view, clone", type);
        in.type = (ds_ws_load_type_t)i;
    }
    TRY(ds_json_str_array(req, body, "columns", &in.read.columns, &in.read.n_columns));
    TRY(ds_rest_parse_where(req, body, &in.read.where));
    TRY(ds_json_int64(req, body, "limit", 0, &in.read.limit));
    TRY(ds_json_int64(req, body, "seconds", 0, &in.seconds));
    const char **dedup_columns = NULL;
    TRY(ds_rest_parse_dedup(req, body, &in.dedup, &dedup_columns, &in.n_dedup_columns));
    in.dedup_columns = dedup_columns;
    TRY(ds_cmd_ws_load(CTX, PROJECT, WS, cred, &in, &rows));
    resp->json = json_pack("{s:s,s:I}", "destination", in.destination ? in.destination : in.table, "rows",
                           (json_int_t)rows);
    return DS_OK;
}

static ds_status_t parse_query(ds_rest_req_t *req, ds_query_t *q)
{
    static const char *const allowed[] = {"sql", "timeout", "limit", "format", NULL};
    json_t *body;
    TRY(body_of(req, false, &body));
    TRY(ds_json_only(req, body, allowed));
    TRY(ds_json_str(req, body, "sql", true, &q->sql));
    json_t *t = json_object_get(body, "timeout");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) <= 0)
            return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "timeout",
                               "field \"timeout\" must be a positive number of seconds");
        q->timeout_s = json_number_value(t);
    }
    TRY(ds_json_int64(req, body, "limit", 0, &q->limit));
    if (q->limit < 0)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "limit", "field \"limit\" must not be negative");
    const char *format;
    TRY(ds_json_str(req, body, "format", false, &format));
    if (!format || strcmp(format, "json") == 0)
        q->format = DS_QUERY_JSON;
    else if (strcmp(format, "csv") == 0)
        q->format = DS_QUERY_CSV;
    else if (strcmp(format, "jsonl") == 0)
        q->format = DS_QUERY_JSONL;
    else
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "format",
                           "field \"format\" must be \"json\", \"csv\" or \"jsonl\"");
    if (q->format != DS_QUERY_JSON && q->limit)
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "limit",
                           "a %s answer carries every row: \"limit\" is for JSON answers (use LIMIT in the SQL)",
                           q->format == DS_QUERY_CSV ? "CSV" : "JSON-lines");
    return DS_OK;
}

/* The answer: JSON rows, or the CSV / JSON-lines file streamed from its descriptor. */
static ds_status_t query_answer(ds_rest_req_t *req, ds_rest_resp_t *resp, const ds_query_t *q,
                                const ds_sandbox_result_t *r, const ds_query_file_t *file)
{
    if (q->format != DS_QUERY_JSON) {
        resp->fd = file->fd;
        resp->fd_size = file->size;
        resp->content_type = q->format == DS_QUERY_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson";
        return DS_OK;
    }
    ds_buf_t b = {0};
    DS_BUF_LIT(&b, "{\"columns\":[");
    for (size_t c = 0; c < r->n_columns; c++) {
        if (c)
            DS_BUF_LIT(&b, ",");
        DS_BUF_LIT(&b, "{\"name\":");
        ds_buf_json_str(&b, r->names[c] && ds_utf8_valid(r->names[c]) ? r->names[c] : "");
        DS_BUF_LIT(&b, ",\"type\":");
        ds_buf_json_str(&b, r->types[c] && ds_utf8_valid(r->types[c]) ? r->types[c] : "OTHER");
        DS_BUF_LIT(&b, "}");
    }
    DS_BUF_LIT(&b, "],\"rows\":");
    ds_rest_buf_rows(&b, (const char *const *const *)r->rows, r->n_rows, r->n_columns);
    if (r->truncated)
        DS_BUF_LIT(&b, ",\"truncated\":true,\"rows_affected\":");
    else
        DS_BUF_LIT(&b, ",\"truncated\":false,\"rows_affected\":");
    ds_buf_int(&b, r->rows_affected);
    DS_BUF_LIT(&b, "}");
    return ds_rest_buf_answer(req, resp, &b);
}

static ds_status_t h_ws_query(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_ws_cred_t cred_buf;
    const ds_ws_cred_t *cred;
    ds_query_t q = {0};
    ds_sandbox_result_t out;
    ds_query_file_t file = {.fd = -1};
    TRY(basic_cred(req, &cred_buf, &cred));
    TRY(parse_query(req, &q));
    TRY(ds_cmd_ws_query(CTX, PROJECT, WS, cred, &q, &out, &file));
    return query_answer(req, resp, &q, &out, &file);
}

static ds_status_t h_project_query(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_query_t q = {0};
    ds_sandbox_result_t out;
    ds_query_file_t file = {.fd = -1};
    TRY(parse_query(req, &q));
    const char *pb = ds_rest_param(req, "branch"); /* POST .../branches/{branch}/query: that branch's view */
    if (pb)
        CTX->branch = pb;
    TRY(ds_cmd_project_query(CTX, PROJECT, &q, &out, &file));
    return query_answer(req, resp, &q, &out, &file);
}

#define P "/projects/{id}"
#define W P "/workspaces/{workspace}"

const ds_rest_route_t ds_rest_ws_routes[] = {
    {.method = "POST", .pattern = P "/workspaces", .handler = h_ws_create, .summary = "Create a workspace; returns its password once"},
    {.method = "GET", .pattern = P "/workspaces", .handler = h_ws_list, .summary = "List workspaces"},
    {.method = "POST", .pattern = P "/branches/{branch}/workspaces", .handler = h_ws_create, .summary = "Create a workspace of a branch (it reads the branch's view of storage)"},
    {.method = "GET", .pattern = P "/branches/{branch}/workspaces", .handler = h_ws_list, .summary = "List workspaces of a branch"},
    {.method = "GET", .pattern = W, .handler = h_ws_get, .summary = "Get a workspace (without its password)"},
    {.method = "DELETE", .pattern = W, .handler = h_ws_drop, .summary = "Drop a workspace and its database"},
    {.method = "POST", .pattern = W "/clear", .handler = h_ws_clear, .summary = "Drop every object of a workspace"},
    {.method = "DELETE", .pattern = W "/objects/{name}", .handler = h_ws_drop_object, .summary = "Drop one table or view of a workspace"},
    {.method = "POST", .pattern = W "/password", .handler = h_ws_password, .summary = "Reset a workspace's password; returns it once"},
    {.method = "DELETE", .pattern = W "/password", .handler = h_ws_login_drop, .summary = "Disable a workspace's login (its password stops working; a reset gives a new one)"},
    {.method = "GET", .pattern = W "/grants", .handler = h_ws_grants, .summary = "List the other projects a workspace may read"},
    {.method = "PUT", .pattern = W "/grants/{target}", .handler = h_ws_grant, .summary = "Grant a workspace read-only access to another project's storage"},
    {.method = "DELETE", .pattern = W "/grants/{target}", .handler = h_ws_revoke, .summary = "Revoke a workspace's access to another project's storage"},
    {.method = "POST", .pattern = W "/load", .handler = h_ws_load, .summary = "Load a storage table into a workspace (full, incremental, view, clone)"},
    {.method = "POST", .pattern = W "/query", .handler = h_ws_query, .summary = "Run one SQL statement in a workspace's sandbox"},
    {.method = "POST", .pattern = P "/query", .handler = h_project_query, .summary = "Run one read-only SQL statement over the project's storage"},
    {.method = "POST", .pattern = P "/branches/{branch}/query", .handler = h_project_query, .summary = "Run one read-only SQL statement over a branch's view of the project's storage"},
};
const size_t ds_rest_n_ws_routes = sizeof(ds_rest_ws_routes) / sizeof(ds_rest_ws_routes[0]);
