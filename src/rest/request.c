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

double ds_rest_prefer_wait(struct MHD_Connection *conn)
{
    const char *p = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Prefer");
    /* Preferences are comma-separated, each a token with an optional value and parameters (RFC 7240). */
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, "wait", 4) == 0) {
            const char *v = p + 4;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                bool quoted = *v == '"';
                v += quoted;
                double secs = 0;
                int digits = 0;
                for (; *v >= '0' && *v <= '9' && digits < 9; v++, digits++)
                    secs = secs * 10 + (*v - '0');
                bool ends = !quoted || *v == '"';
                v += quoted && *v == '"';
                /* A malformed value is ignored, as a preference the server cannot apply. */
                if (digits && ends && (*v == '\0' || *v == ',' || *v == ';' || *v == ' ' || *v == '\t'))
                    return secs > 0 ? secs : 0.001; /* wait=0: not willing to wait at all */
            }
        }
        p = strchr(p, ',');
    }
    return 0;
}
