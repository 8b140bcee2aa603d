/*
 * routes_keys.c - REST routes for API keys: a project's keys (create, list,
 * delete, rotate) and the rotation of the service's admin key. Thin: each
 * handler calls one ds_cmd_key_* command (cmd/keys.c). A secret appears only
 * in the answers of create and rotate.
 */
#include "rest/rest.h"

static json_t *key_json(const ds_key_t *k)
{
    json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:o}", "id", k->id, "scope", k->scope, "branch",
                          k->branch ? json_string(k->branch) : json_null(), "description",
                          k->description ? k->description : "", "created_at", ds_json_time(k->created_at));
    if (j && k->key)
        json_object_set_new(j, "key", json_string(k->key));
    return j;
}

#define TRYB(expr)                                                                                 \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK) {                                                                        \
            json_decref(body);                                                                     \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

static ds_status_t h_key_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_key_create_t in = {0};
    ds_key_t out;
    static const char *const allowed[] = {"scope", "branch", "description", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "scope", true, &in.scope));
    TRYB(ds_json_str(req, body, "branch", false, &in.branch));
    TRYB(ds_json_str(req, body, "description", false, &in.description));
    /* The strings live in body: the command copies what it keeps. */
    ds_status_t st = ds_cmd_key_create(CTX, ds_rest_param(req, "id"), &in, &out);
    json_decref(body);
    TRY(st);
    resp->status = 201;
    resp->json = key_json(&out);
    return DS_OK;
}

static ds_status_t h_key_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_key_t *items;
    size_t n;
    TRY(ds_cmd_key_list(CTX, ds_rest_param(req, "id"), &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, key_json(&items[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_key_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_key_delete(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "key_id")));
    resp->status = 204;
    return DS_OK;
}

/* Reads {"grace_seconds": n} (optional, default 0) of a rotate body. */
static ds_status_t grace_of(ds_rest_req_t *req, int64_t *grace)
{
    json_t *body;
    static const char *const allowed[] = {"grace_seconds", NULL};
    TRY(ds_rest_body(req, true, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_int64(req, body, "grace_seconds", 0, grace));
    json_decref(body);
    return DS_OK;
}

static ds_status_t h_key_rotate(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    int64_t grace;
    ds_key_t out;
    TRY(grace_of(req, &grace));
    TRY(ds_cmd_key_rotate(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "key_id"), grace, &out));
    resp->json = key_json(&out);
    return DS_OK;
}

static ds_status_t h_admin_key_rotate(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    int64_t grace;
    const char *key;
    TRY(ds_cmd_require_admin(CTX));
    TRY(grace_of(req, &grace));
    TRY(ds_cmd_admin_key_rotate(CTX, grace, &key));
    resp->json = json_pack("{s:s,s:s,s:I}", "id", "admin", "key", key, "grace_seconds", (json_int_t)grace);
    return DS_OK;
}

#define P "/projects/{id}"

const ds_rest_route_t ds_rest_key_routes[] = {
    {.method = "POST", .pattern = P "/keys", .handler = h_key_create, .summary = "Create a project API key (scope admin, read or branch); its secret is shown once"},
    {.method = "GET", .pattern = P "/keys", .handler = h_key_list, .summary = "List a project's API keys (\"main\" first), never their secrets"},
    {.method = "DELETE", .pattern = P "/keys/{key_id}", .handler = h_key_delete, .summary = "Delete a project API key (not \"main\")"},
    {.method = "POST", .pattern = P "/keys/{key_id}/rotate", .handler = h_key_rotate, .summary = "Give a key a new secret; the old one stays valid for grace_seconds"},
    {.method = "POST", .pattern = "/admin/keys/rotate", .handler = h_admin_key_rotate, .summary = "Rotate the admin key without a restart (admin; key kept in <data>/admin.key)"},
};
const size_t ds_rest_n_key_routes = sizeof(ds_rest_key_routes) / sizeof(ds_rest_key_routes[0]);
