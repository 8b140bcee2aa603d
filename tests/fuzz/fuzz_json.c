/*
 * fuzz_json.c - REST request bodies: ds_rest_body (the number-preserving scan,
 * the placeholder copy, jansson, the pairing of numbers with their literals)
 * and every typed field reader of src/rest/json.c on every field of the
 * result. The input is the body as sent. The route handlers' own use of
 * these readers runs in fuzz_rest.
 */
#include <stdint.h>

#include "fuzz_util.h"
#include "rest/rest.h"

static const char *const allowed[] = {"name", "id", "columns", "limit", "offset", "primaryKey", NULL};

static void walk(ds_rest_req_t *req, json_t *v, int depth)
{
    (void)ds_json_number_text(req, v);
    if (depth > 64)
        return;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) walk(req, e, depth + 1);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        const char *s, **arr;
        size_t n;
        bool b;
        int64_t i;
        ds_err_clear(&req->ctx.err);
        (void)ds_json_str(req, v, k, depth & 1, &s);
        ds_err_clear(&req->ctx.err);
        (void)ds_json_bool(req, v, k, false, &b);
        ds_err_clear(&req->ctx.err);
        (void)ds_json_int64(req, v, k, -1, &i);
        ds_err_clear(&req->ctx.err);
        (void)ds_json_str_array(req, v, k, &arr, &n);
        walk(req, e, depth + 1);
    }
    ds_err_clear(&req->ctx.err);
    (void)ds_json_only(req, v, allowed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a terminator: the parser must respect body_len. */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    if (size)
        memcpy(body, data, size);
    ds_rest_req_t req = {0};
    req.ctx.arena = ds_arena_create();
    req.body = body;
    req.body_len = size;
    json_t *obj = NULL;
    ds_status_t st = ds_rest_body(&req, size % 2 == 0, &obj);
    if (st == DS_OK)
        walk(&req, obj, 0);
    /*
     * A body is the client's to get wrong (400); a 500 is the parser's own
     * failure, and only memory may run out. (This once let "[8-99...98]"
     * through as an error log for 30,000 inputs without stopping the run.)
     */
    if (st == DS_INTERNAL && !strstr(req.ctx.err.message, "out of memory")) {
        fprintf(stderr, "fuzz_json: internal error: %s\n", req.ctx.err.message);
        abort();
    }
    json_decref(obj);
    ds_arena_destroy(&req.ctx.arena);
    free(body);
    return 0;
}
