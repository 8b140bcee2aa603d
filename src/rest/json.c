/*
 * json.c - request body parsing and typed field access with errors that
 * name the field.
 */
#include <string.h>

#include "core/log.h"
#include "rest/rest.h"

ds_status_t ds_rest_body(ds_rest_req_t *req, bool allow_empty, json_t **out)
{
    *out = NULL;
    size_t n = req->body_len;
    while (n && (req->body[n - 1] == ' ' || req->body[n - 1] == '\n' || req->body[n - 1] == '\r'))
        n--;
    if (n == 0) {
        if (allow_empty) {
            *out = json_object();
            return DS_OK;
        }
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "request body is empty; a JSON object is expected");
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "invalid JSON at line %d, column %d: %s", je.line,
                          je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "request body must be a JSON object");
    }
    *out = j;
    return DS_OK;
}

ds_status_t ds_json_str(ds_rest_req_t *req, json_t *obj, const char *field, bool required, const char **out)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" is required", field);
        return DS_OK;
    }
    if (!json_is_string(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be a string", field);
    *out = ds_arena_strdup(req->ctx.arena, json_string_value(v));
    return DS_OK;
}

ds_status_t ds_json_bool(ds_rest_req_t *req, json_t *obj, const char *field, bool def, bool *out)
{
    json_t *v = json_object_get(obj, field);
    *out = def;
    if (!v || json_is_null(v))
        return DS_OK;
    if (!json_is_boolean(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be true or false", field);
    *out = json_is_true(v);
    return DS_OK;
}

ds_status_t ds_json_str_array(ds_rest_req_t *req, json_t *obj, const char *field, const char ***out, size_t *n)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v))
        return DS_OK;
    if (!json_is_array(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be an array of strings",
                           field);
    size_t len = json_array_size(v);
    const char **arr = ds_arena_alloc(req->ctx.arena, sizeof(char *) * (len ? len : 1));
    if (!arr)
        return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" item %zu must be a string",
                               field, i);
        arr[i] = ds_arena_strdup(req->ctx.arena, json_string_value(e));
    }
    *out = arr;
    *n = len;
    return DS_OK;
}

ds_status_t ds_json_only(ds_rest_req_t *req, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, key, "unknown field \"%s\"", key);
    }
    return DS_OK;
}

json_t *ds_json_time(int64_t unix_s)
{
    if (unix_s <= 0)
        return json_null();
    char buf[40];
    ds_time_rfc3339(unix_s, buf, sizeof(buf));
    return json_string(buf);
}
