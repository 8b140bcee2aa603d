/*
 * routes_backends.c - the /backends routes (admin): list the registered
 * backends with capabilities, health and settings, and the plugins found
 * that did not register (status, required settings, last error); load a
 * plugin from the plugin directory; reload one after its settings were fixed;
 * unload one that no project uses. Handlers only translate
 * JSON to and from the commands in cmd/caps.h.
 */
#include <string.h>

#include "cmd/caps.h"
#include "rest/rest.h"


static json_t *formats_json(uint32_t mask, uint64_t bits)
{
    json_t *a = json_array();
    bool csv = mask ? (mask & DS_FORMAT_BIT(DS_FORMAT_CSV)) != 0 : (bits & DS_CAP_FORMAT_CSV) != 0;
    bool parquet = mask ? (mask & DS_FORMAT_BIT(DS_FORMAT_PARQUET)) != 0 : (bits & DS_CAP_FORMAT_PARQUET) != 0;
    if (csv)
        json_array_append_new(a, json_string("csv"));
    if (parquet)
        json_array_append_new(a, json_string("parquet"));
    return a;
}

static json_t *capabilities_json(const ds_backend_desc_t *d)
{
    json_t *c = json_object();
    for (int i = 0; i < 64; i++) {
        const char *name = ds_cap_name(1ull << i);
        if (name)
            json_object_set_new(c, name, json_boolean((d->capabilities >> i) & 1));
    }
    const ds_be_caps_t *x = &d->caps;
    json_object_set_new(c, "case_sensitive_names",
                        json_boolean(d->has_caps ? x->case_rule == DS_CASE_SENSITIVE
                                                 : (d->capabilities & DS_CAP_CASE_SENSITIVE) != 0));
    json_object_set_new(c, "import_formats", formats_json(x->import_formats, d->capabilities));
    json_object_set_new(c, "export_formats", formats_json(x->export_formats, d->capabilities));
    json_t *ops = json_array();
    for (int op = DS_OP_EQ; op <= DS_OP_LE; op++)
        if (x->unsupported_filter_ops & DS_FILTER_OP_BIT(op))
            json_array_append_new(ops, json_string(ds_filter_op_name(op)));
    json_object_set_new(c, "unsupported_filter_operators", ops);
    json_object_set_new(c, "filter_data_types", json_boolean(!d->has_caps || x->filter_data_types));
    if (x->max_name_length)
        json_object_set_new(c, "max_name_length", json_integer(x->max_name_length));
    else
        json_object_set_new(c, "max_name_length", json_null());
    if (x->notes)
        json_object_set_new(c, "notes", json_string(x->notes));
    return c;
}

static const char *setting_type(ds_setting_type_t t)
{
    return t == DS_SETTING_INT ? "int" : t == DS_SETTING_BOOL ? "bool" : "string";
}

static json_t *backend_json(const ds_backend_desc_t *d)
{
    json_t *j;
    json_t *settings = json_array();
    for (size_t i = 0; i < d->n_settings; i++) {
        const ds_backend_setting_t *s = &d->settings[i];
        json_t *o = json_pack("{s:s,s:s?,s:s,s:b,s:b}", "key", s->def->key, "env", s->env, "type",
                              setting_type(s->def->type), "required", s->def->required, "configured", s->configured);
        json_object_set_new(o, "default", s->def->default_value ? json_string(s->def->default_value) : json_null());
        if (s->def->help)
            json_object_set_new(o, "help", json_string(s->def->help));
        json_array_append_new(settings, o);
    }
    if (!d->loaded) {
        /* A plugin found that did not register: what it needs and why it is not running. */
        j = json_pack("{s:s,s:s,s:n,s:n,s:b,s:s?,s:n,s:n,s:o,s:I,s:n,s:n}", "name", d->name, "status", d->status,
                      "version", "description", "builtin", false, "path", d->meta.path, "capabilities", "health",
                      "settings", settings, "projects", (json_int_t)d->projects, "load_ms", "registered_at");
        json_object_set_new(j, "last_error", d->last_error ? json_string(d->last_error) : json_null());
        json_object_set_new(j, "last_attempt_at", ds_json_time(d->failed_at));
        return j;
    }
    json_t *health = json_pack("{s:s}", "status", d->health == DS_OK ? "ok" : "unavailable");
    json_object_set_new(health, "message", d->health_message ? json_string(d->health_message) : json_null());
    j = json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:s?,s:o,s:o,s:o,s:I}", "name", d->name, "status", d->status, "version",
                  d->version, "description", d->description, "builtin", d->meta.builtin, "path", d->meta.path,
                  "capabilities", capabilities_json(d), "health", health, "settings", settings, "projects",
                  (json_int_t)d->projects);
    json_object_set_new(j, "last_error", d->last_error ? json_string(d->last_error) : json_null());
    json_object_set_new(j, "load_ms", json_real(d->meta.load_ms));
    json_object_set_new(j, "registered_at", ds_json_time(d->meta.registered_at));
    return j;
}

static ds_status_t h_backend_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_backend_desc_t *items;
    size_t n;
    TRY(ds_cmd_backend_list(CTX, &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, backend_json(&items[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_backend_load(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    const char *path = NULL;
    ds_backend_desc_t d;
    static const char *const allowed[] = {"path", NULL};
    TRY(ds_cmd_require_admin(CTX));
    TRY(ds_rest_body(req, false, &body));
    ds_status_t st = ds_json_only(req, body, allowed);
    if (st == DS_OK)
        st = ds_json_str(req, body, "path", true, &path);
    /* The path outlives the body. */
    if (st == DS_OK)
        path = ds_arena_strdup(CTX->arena, path);
    json_decref(body);
    if (st != DS_OK)
        return st;
    TRY(ds_cmd_backend_load(CTX, path, &d));
    resp->status = 201;
    resp->json = backend_json(&d);
    return DS_OK;
}

static ds_status_t h_backend_reload(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_backend_desc_t d;
    TRY(ds_cmd_backend_reload(CTX, ds_rest_param(req, "name"), &d));
    resp->json = backend_json(&d);
    return DS_OK;
}

static ds_status_t h_backend_unload(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_backend_unload(CTX, ds_rest_param(req, "name")));
    resp->status = 204;
    return DS_OK;
}

const ds_rest_route_t ds_rest_backend_routes[] = {
    {.method = "GET", .pattern = "/backends", .handler = h_backend_list, .summary = "List backends: capabilities, version, health, settings"},
    {.method = "POST", .pattern = "/backends", .handler = h_backend_load, .summary = "Load a backend plugin from the plugin directory"},
    {.method = "DELETE", .pattern = "/backends/{name}", .handler = h_backend_unload, .summary = "Unload a backend plugin no project uses"},
    {.method = "POST", .pattern = "/backends/{name}/reload", .handler = h_backend_reload, .summary = "Re-read the backend settings file and load a plugin that did not start"},
};
const size_t ds_rest_n_backend_routes = sizeof(ds_rest_backend_routes) / sizeof(ds_rest_backend_routes[0]);
