/*
 * openapi.c - the OpenAPI 3 document at /openapi.json.
 *
 * Built once from the route table, so every route is in it and none can be
 * forgotten: paths, methods, path parameters, the security scheme, and the
 * error shape every route shares. Request and response bodies per route are
 * described in docs/api.md.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *doc;

static json_t *path_params(const char *pattern)
{
    json_t *params = json_array();
    for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
        json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name", name, "in", "path", "required", 1,
                                                "schema", "type", "string"));
    }
    return params;
}

static void build(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; i < ds_rest_route_count(); i++) {
        const ds_rest_route_t *r = ds_rest_route_at(i);
        json_t *item = json_object_get(paths, r->pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, r->pattern, item);
        }
        char method[16];
        size_t k = 0;
        for (; r->method[k] && k < sizeof(method) - 1; k++)
            method[k] = (char)(r->method[k] | 0x20);
        method[k] = '\0';
        json_t *op = json_pack("{s:s,s:o,s:{s:{s:s},s:{s:s}}}", "summary", r->summary ? r->summary : "", "parameters",
                               path_params(r->pattern), "responses", "2XX", "description", "success", "default",
                               "description", "error: see components.schemas.Error");
        if (r->public_route)
            json_object_set_new(op, "security", json_array());
        json_object_set_new(item, method, op);
    }
    json_t *root = json_pack(
        "{s:s,s:{s:s,s:s,s:s},s:o,s:[{s:[]},{s:[]}],"
        "s:{s:{s:{s:s,s:s},s:{s:s,s:s,s:s}},"
        "s:{s:{s:s,s:{s:{s:s,s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}}}}}}",
        "openapi", "3.0.3", "info", "title", "duckstore", "version", "1", "description",
        "On-premise storage backend for Keboola-style data platforms. Errors: {\"error\": {code, message, "
        "keboola_code, details}}.",
        "paths", paths, "security", "bearer", "storageApiToken", "components", "securitySchemes", "bearer", "type",
        "http", "scheme", "bearer", "storageApiToken", "type", "apiKey", "in", "header", "name", "X-StorageApi-Token",
        "schemas", "Error", "type", "object", "properties", "error", "type", "object", "properties", "code", "type",
        "string", "message", "type", "string", "keboola_code", "type", "integer", "details", "type", "object");
    doc = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
}

const char *ds_rest_openapi(void)
{
    pthread_once(&once, build);
    return doc ? doc : "{}";
}
