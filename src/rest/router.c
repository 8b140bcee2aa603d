/*
 * router.c - matches a method and path against the route table.
 *
 * Patterns are literal segments and {name} captures; a capture matches one
 * non-empty segment. Matching is a linear scan of the table: it has a few
 * dozen entries, and a scan costs less than the request's JSON work.
 */
#include <string.h>

#include "core/buf.h"
#include "rest/rest.h"

/* Matches path against pattern, capturing {params} into req (arena copies). */
static bool match_path(const char *pattern, const char *path, ds_rest_req_t *req)
{
    const char *p = pattern, *s = path;
    int n = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (pl > 1 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || n == DS_REST_MAX_PARAMS)
                return false;
            if (req) {
                req->param_names[n] = ds_arena_strndup(req->ctx.arena, p + 1, pl - 2);
                req->params[n] = ds_arena_strndup(req->ctx.arena, s, sl);
            }
            n++;
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return false;
        }
        p += pl;
        s += sl;
    }
    if (*p || (*s && strcmp(s, "/") != 0))
        return false;
    if (req)
        req->n_params = n;
    return true;
}

typedef struct {
    const ds_rest_route_t *routes;
    const size_t *n;
} route_table_t;

static const route_table_t tables[] = {
    {ds_rest_routes, &ds_rest_n_routes},
    {ds_rest_data_routes, &ds_rest_n_data_routes},
    {ds_rest_file_routes, &ds_rest_n_file_routes},
    {ds_rest_driver_routes, &ds_rest_n_driver_routes},
    {ds_rest_backend_routes, &ds_rest_n_backend_routes},
    {ds_rest_key_routes, &ds_rest_n_key_routes},
    {ds_rest_ws_routes, &ds_rest_n_ws_routes},
    {ds_rest_branch_routes, &ds_rest_n_branch_routes},
    {ds_rest_share_routes, &ds_rest_n_share_routes},
    {ds_rest_snapshot_routes, &ds_rest_n_snapshot_routes},
};

size_t ds_rest_route_count(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        n += *tables[t].n;
    return n;
}

const ds_rest_route_t *ds_rest_route_at(size_t i)
{
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        if (i < *tables[t].n)
            return &tables[t].routes[i];
        i -= *tables[t].n;
    }
    return NULL;
}

/*
 * Branch-scoped paths: /projects/{id}/branches/{branch}/<rest> is the same
 * route as /projects/{id}/<rest> on that branch. "default" is the main
 * branch. Returns the path to match; req->branch and req->ctx.branch name
 * the branch.
 */
static const char *strip_branch(const char *path, ds_rest_req_t *req)
{
    const char *p = path;
    if (strncmp(p, "/projects/", 10) != 0)
        return path;
    const char *id_end = strchr(p + 10, '/');
    if (!id_end || strncmp(id_end, "/branches/", 10) != 0)
        return path;
    const char *br = id_end + 10;
    const char *br_end = strchr(br, '/');
    /* Only storage paths (and snapshots) are branch-scoped; /branches/{b}, .../merge and .../pull are branch routes. */
    if (!br_end || br_end == br || (strncmp(br_end, "/buckets", 8) != 0 && strncmp(br_end, "/snapshots", 10) != 0))
        return path;
    size_t br_len = (size_t)(br_end - br);
    if (req) {
        req->branch = ds_arena_strndup(req->ctx.arena, br, br_len);
        /* The commands resolve every name through the branch (cmd/branch.c). */
        req->ctx.branch = req->branch;
    }
    if (!req)
        return path;
    return ds_arena_printf(req->ctx.arena, "%.*s%s", (int)(id_end - path), path, br_end);
}

const ds_rest_route_t *ds_rest_match(const char *method, const char *path, ds_rest_req_t *req, bool *method_mismatch)
{
    *method_mismatch = false;
    const char *match = strip_branch(path, req);
    if (!match)
        return NULL;
    size_t count = ds_rest_route_count();
    const ds_rest_route_t *found = NULL;
    ds_buf_t allow = {0};
    for (size_t i = 0; i < count; i++) {
        const ds_rest_route_t *r = ds_rest_route_at(i);
        if (!match_path(r->pattern, match, NULL))
            continue;
        if (strcmp(r->method, method) != 0) {
            *method_mismatch = true;
            if (!strstr(ds_buf_text(&allow), r->method))
                ds_buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
            continue;
        }
        match_path(r->pattern, match, req);
        found = r;
        break;
    }
    if (!found && req && allow.len)
        req->allow = ds_arena_strdup(req->ctx.arena, ds_buf_text(&allow));
    ds_buf_free(&allow);
    return found;
}
