/*
 * request.c - reading a request's query, headers, path parameters and the key
 * it presents. Shared by the server (server.c) and the REST fuzz harness,
 * which has its own front end.
 */
#include <microhttpd.h>
#include <string.h>
#include <strings.h>

#include "rest/rest.h"

const char *ds_rest_query(const ds_rest_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool ds_rest_query_bool(const ds_rest_req_t *req, const char *name)
{
    const char *v = ds_rest_query(req, name);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

const char *ds_rest_header(const ds_rest_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ds_rest_param(const ds_rest_req_t *req, const char *name)
{
    for (int i = 0; i < req->n_params; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return req->params[i];
    return NULL;
}

const char *ds_rest_presented_key(struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ')
            auth++;
        return auth;
    }
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-StorageApi-Token");
}
