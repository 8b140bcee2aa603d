/*
 * routes_share.c - REST routes of sharing (REST.md, "Sharing, linking,
 * aliases"): share and unshare a bucket, link and unlink a shared bucket,
 * grant and revoke the workspaces' read-only access to a bucket; and the
 * "sharing" and "linked_from" fields of bucket responses (routes.c calls
 * ds_rest_bucket_annotate). The rules are cmd/share.c's.
 */
#include <string.h>
#include <strings.h>

#include "rest/rest.h"

#define TRYB(expr)                                                                                 \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK) {                                                                        \
            json_decref(body);                                                                     \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

/* Sets the sharing fields of bucket object j from sh. */
static void annotate(json_t *j, const ds_bucket_sharing_t *sh)
{
    if (sh->source_project) {
        json_object_set_new(j, "linked_from",
                            json_pack("{s:s, s:s}", "project", sh->source_project, "bucket", sh->source_bucket));
    }
    if (sh->shared || sh->n_linked_by) {
        json_t *projects = json_array(), *by = json_array();
        for (size_t i = 0; i < sh->n_projects; i++)
            json_array_append_new(projects, json_string(sh->projects[i]));
        for (size_t i = 0; i < sh->n_linked_by; i++) {
            const char *slash = strchr(sh->linked_by[i], '/');
            json_t *l = slash ? json_pack("{s:s%, s:s}", "project", sh->linked_by[i], (size_t)(slash - sh->linked_by[i]),
                                          "bucket", slash + 1)
                              : NULL;
            if (l)
                json_array_append_new(by, l);
        }
        json_object_set_new(j, "sharing",
                            json_pack("{s:s, s:o, s:o}", "type",
                                      !sh->shared        ? "none"
                                      : sh->organization ? "organization"
                                                         : "selected-projects",
                                      "projects", projects, "linked_by", by));
    }
    json_object_set_new(j, "readonly_access", json_boolean(!sh->readonly_revoked));
}

void ds_rest_bucket_annotate(ds_rest_req_t *req, json_t *buckets)
{
    ds_bucket_sharing_t *items;
    size_t n;
    ds_err_t saved = CTX->err;
    if (ds_cmd_bucket_sharing(CTX, ds_rest_param(req, "id"), &items, &n) != DS_OK) {
        CTX->err = saved; /* the buckets were read; their sharing is left out rather than failing the list */
        return;
    }
    size_t count = json_is_array(buckets) ? json_array_size(buckets) : 1;
    for (size_t b = 0; b < count; b++) {
        json_t *j = json_is_array(buckets) ? json_array_get(buckets, b) : buckets;
        const char *id = json_string_value(json_object_get(j, "id"));
        bool found = false;
        for (size_t i = 0; id && i < n && !found; i++)
            if (strcasecmp(items[i].bucket, id) == 0) {
                annotate(j, &items[i]);
                found = true;
            }
        if (!found)
            json_object_set_new(j, "readonly_access", json_true());
    }
}

static json_t *bucket_json(const ds_be_bucket_t *b, const ds_bucket_sharing_t *sh)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s?,s:o,s:I}", "id", b->id, "stage", b->stage, "name", b->name, "description",
                          b->description, "created_at", ds_json_time(b->created_at), "table_count",
                          (json_int_t)b->table_count);
    if (j)
        annotate(j, sh);
    return j;
}

/* POST .../buckets/{bucket}/share {"to": "organization" | ["p2", ...], "force": false} */
static ds_status_t h_share(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_share_in_t in = {0};
    static const char *const allowed[] = {"to", "force", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_bool(req, body, "force", false, &in.force));
    json_t *to = json_object_get(body, "to");
    if (json_is_string(to) && strcmp(json_string_value(to), "organization") == 0) {
        in.organization = true;
    } else if (json_is_array(to)) {
        const char **projects;
        TRYB(ds_json_str_array(req, body, "to", &projects, &in.n_projects));
        in.projects = projects;
    } else {
        json_decref(body);
        return ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "to",
                           "to must be \"organization\" or a list of project ids");
    }
    ds_be_bucket_t b;
    ds_bucket_sharing_t sh;
    TRYB(ds_cmd_bucket_share(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), &in, &b, &sh));
    json_decref(body);
    resp->json = bucket_json(&b, &sh);
    return DS_OK;
}

static ds_status_t h_unshare(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_bucket_unshare(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"),
                              ds_rest_query_bool(req, "force")));
    resp->status = 204;
    return DS_OK;
}

/* POST /projects/{target}/buckets/{new bucket id}/link {"source_project": "p1", "source_bucket": "in.c-x"} */
static ds_status_t h_link(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    const char *project = NULL, *bucket = NULL;
    static const char *const allowed[] = {"source_project", "source_bucket", NULL};
    TRY(ds_rest_body(req, false, &body));
    TRYB(ds_json_only(req, body, allowed));
    TRYB(ds_json_str(req, body, "source_project", true, &project));
    TRYB(ds_json_str(req, body, "source_bucket", true, &bucket));
    ds_be_bucket_t b;
    ds_bucket_sharing_t sh;
    TRYB(ds_cmd_bucket_link(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), project, bucket, &b, &sh));
    json_decref(body);
    resp->status = 201;
    resp->json = bucket_json(&b, &sh);
    return DS_OK;
}

static ds_status_t h_unlink(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_bucket_unlink(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket")));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_grant_readonly(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_bucket_readonly(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), true));
    resp->json = json_pack("{s:s, s:b}", "bucket", ds_rest_param(req, "bucket"), "readonly_access", 1);
    return DS_OK;
}

static ds_status_t h_revoke_readonly(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_bucket_readonly(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "bucket"), false));
    resp->status = 204;
    return DS_OK;
}

#define B "/projects/{id}/buckets/{bucket}"

const ds_rest_route_t ds_rest_share_routes[] = {
    {.method = "POST", .pattern = B "/share", .handler = h_share, .summary = "Share a bucket with the organization or listed projects"},
    {.method = "DELETE", .pattern = B "/share", .handler = h_unshare, .summary = "Unshare a bucket (409 while links read it, unless force=true)"},
    {.method = "POST", .pattern = B "/link", .handler = h_link, .summary = "Link another project's shared bucket under this bucket id (read-only)"},
    {.method = "DELETE", .pattern = B "/link", .handler = h_unlink, .summary = "Remove a linked bucket"},
    {.method = "POST", .pattern = B "/grant-readonly", .handler = h_grant_readonly, .summary = "Let the project's workspaces read the bucket"},
    {.method = "DELETE", .pattern = B "/grant-readonly", .handler = h_revoke_readonly, .summary = "Stop the project's workspaces reading the bucket"},
};
const size_t ds_rest_n_share_routes = sizeof(ds_rest_share_routes) / sizeof(ds_rest_share_routes[0]);
