/*
 * routes_branches.c - REST routes of development branches (REST.md,
 * "Branches"): create, list, get, delete, pull a table, merge.
 *
 * The storage routes of a branch (/projects/{id}/branches/{branch}/buckets/...)
 * are the main routes themselves: the router strips the branch from the path
 * and puts it into the request's context (router.c), and the commands resolve
 * every name through the branch (cmd/branch.c).
 */
#include "rest/rest.h"

static json_t *branch_json(const ds_be_branch_t *b)
{
    return json_pack("{s:s, s:s, s:o}", "id", b->id, "name", b->name ? b->name : b->id, "created_at",
                     ds_json_time(b->created_at));
}

static ds_status_t h_branch_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    const char *id = NULL, *name = NULL;
    ds_be_branch_t out;
    static const char *const allowed[] = {"id", "name", NULL};
    TRY(ds_rest_body(req, true, &body));
    ds_status_t st = ds_json_only(req, body, allowed);
    if (st == DS_OK)
        st = ds_json_str(req, body, "id", false, &id);
    if (st == DS_OK)
        st = ds_json_str(req, body, "name", false, &name);
    if (st == DS_OK)
        st = ds_cmd_branch_create(CTX, ds_rest_param(req, "id"), id, name, &out);
    if (st == DS_OK) {
        resp->status = 201;
        resp->json = branch_json(&out);
    }
    json_decref(body);
    return st;
}

static ds_status_t h_branch_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_branch_t *items;
    size_t n;
    TRY(ds_cmd_branch_list(CTX, ds_rest_param(req, "id"), &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, branch_json(&items[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_branch_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_branch_info_t info;
    TRY(ds_cmd_branch_get(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "branch"), &info));
    json_t *j = branch_json(&info.branch), *tables = json_array();
    for (size_t i = 0; i < info.n_tables; i++)
        json_array_append_new(tables, json_pack("{s:s, s:s}", "id", info.tables[i].id, "source", info.tables[i].source));
    json_object_set_new(j, "tables", tables);
    resp->json = j;
    return DS_OK;
}

static ds_status_t h_branch_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_branch_delete(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "branch")));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_branch_pull(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_be_table_t t;
    TRY(ds_cmd_branch_pull(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "branch"), ds_rest_param(req, "bucket"),
                           ds_rest_param(req, "table"), &t));
    resp->json = ds_rest_table_json(&t);
    return DS_OK;
}

/* 409 merge_conflict with details.tables (REST.md), or 200 with the merged tables. */
static ds_status_t h_branch_merge(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    bool force = false;
    const char **merged, **conflicts;
    size_t n_merged, n_conflicts;
    static const char *const allowed[] = {"force", NULL};
    TRY(ds_rest_body(req, true, &body));
    ds_status_t st = ds_json_only(req, body, allowed);
    if (st == DS_OK)
        st = ds_json_bool(req, body, "force", false, &force);
    json_decref(body);
    if (st != DS_OK)
        return st;
    st = ds_cmd_branch_merge(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "branch"), force, &merged, &n_merged,
                             &conflicts, &n_conflicts);
    if (st == DS_CONFLICT) {
        json_t *tables = json_array();
        for (size_t i = 0; i < n_conflicts; i++)
            json_array_append_new(tables, json_string(conflicts[i]));
        resp->status = 409;
        resp->json = json_pack("{s:{s:s, s:s, s:{s:o}}}", "error", "code", "merge_conflict", "message",
                               CTX->err.message, "details", "tables", tables);
        ds_err_clear(&CTX->err);
        return resp->json ? DS_OK : ds_err_set(&CTX->err, DS_UNAVAILABLE, "out of memory");
    }
    if (st != DS_OK)
        return st;
    json_t *arr = json_array();
    for (size_t i = 0; i < n_merged; i++)
        json_array_append_new(arr, json_string(merged[i]));
    resp->json = json_pack("{s:o}", "merged_tables", arr);
    return DS_OK;
}

#define P "/projects/{id}"
#define BR P "/branches/{branch}"

const ds_rest_route_t ds_rest_branch_routes[] = {
    {.method = "POST", .pattern = P "/branches", .handler = h_branch_create, .summary = "Create a development branch (O(1): nothing is copied)"},
    {.method = "GET", .pattern = P "/branches", .handler = h_branch_list, .summary = "List development branches"},
    {.method = "GET", .pattern = BR, .handler = h_branch_get, .summary = "Get a branch and which tables it owns or reads from main"},
    {.method = "DELETE", .pattern = BR, .handler = h_branch_delete, .summary = "Delete a branch and only its own storage"},
    {.method = "POST", .pattern = BR "/merge", .handler = h_branch_merge, .summary = "Apply the branch's tables to main (409 merge_conflict unless force)"},
    {.method = "POST", .pattern = BR "/tables/{bucket}/{table}/pull", .handler = h_branch_pull, .summary = "The branch's table reads main's current data again"},
};
const size_t ds_rest_n_branch_routes = sizeof(ds_rest_branch_routes) / sizeof(ds_rest_branch_routes[0]);
