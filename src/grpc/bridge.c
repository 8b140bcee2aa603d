/*
 * bridge.c - the HTTP bridge: POST /driver/execute.
 *
 * For clients without gRPC (PHP): the body is a serialized DriverRequest, the
 * answer a serialized DriverResponse (application/x-protobuf), produced by
 * the same dispatcher as the gRPC Execute call (dispatch.c), so both
 * transports behave alike. Credentials come from the DriverRequest, or from
 * an "Authorization: Bearer <key>" header (the bridge's counterpart of gRPC's
 * authorization metadata; both given must agree). Other Authorization forms
 * and X-StorageApi-Token are ignored here.
 *
 * Authentication before work: the route is a streaming route (rest.h), so
 * its body is never buffered by the server. begin, which runs once the
 * headers are in, authenticates the Bearer key when there is one; without a
 * valid one the body may be at most DUCKSTORE_UNAUTH_BODY_BYTES (64 KiB by
 * default), with one DUCKSTORE_MAX_JSON_BYTES. Bytes beyond the cap are
 * discarded as they arrive (nothing is kept), and the answer is 401 (no valid
 * key: send it in the header) or 413. Within the cap, the dispatcher reads
 * the envelope and the credentials and authenticates them before it decodes
 * the command (dispatch.c), so an unauthenticated caller never makes the
 * server decode a command.
 *
 * Parking: a command that waits for a write slot (ds_driver_may_park: an
 * import, a table change) parks instead of holding an HTTP worker, as on the
 * gRPC side (cmd.h "Parking"). The request is prepared once (envelope,
 * credentials); finish runs it and, when it parked, keeps the prepared call
 * and the body in its state and runs it again when the slot is granted.
 *
 * Status: 200 on success; on failure the status's HTTP code (ds_status_http:
 * 400, 401, 403, 404, 409, 413, 429, 501, 503, 500) with a DriverResponse
 * whose messages end with a LogMessage of level Error ("[<keboola code>]
 * message").
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grpc/dispatch.h"
#include "rest/rest.h"

typedef struct {
    ds_buf_t body;
    int64_t cap;        /* bytes accepted */
    bool authenticated; /* a valid Authorization: Bearer key came with the headers */
    bool over;          /* the body exceeded cap: the rest is discarded */
    bool prepared;      /* dc holds the prepared call (it parked once and runs again) */
    ds_driver_call_t dc;
} bridge_state_t;

/* The Authorization header when it is a Bearer value (passed to the dispatcher), else NULL. */
static const char *bearer_header(ds_rest_req_t *req)
{
    const char *v = ds_rest_header(req, "Authorization");
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    return strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t' || v[6] == '\0') ? v : NULL;
}

/* True when the Bearer header carries the admin key or a project's key. */
static bool header_authenticates(ds_rest_req_t *req, const char *bearer)
{
    if (!bearer)
        return false;
    const char *k = bearer + 6;
    while (*k == ' ' || *k == '\t')
        k++;
    size_t n = strlen(k);
    while (n > 0 && (k[n - 1] == ' ' || k[n - 1] == '\t'))
        n--;
    return n && ds_cmd_key_valid(req->ctx.arena, ds_arena_strndup(req->ctx.arena, k, n));
}

static ds_status_t bridge_begin(ds_rest_req_t *req, void **state)
{
    const ds_config_t *cfg = ds_service_config();
    bridge_state_t *s = calloc(1, sizeof(*s));
    if (!s)
        return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    s->authenticated = header_authenticates(req, bearer_header(req));
    s->cap = cfg->max_json_bytes;
    if (!s->authenticated && cfg->unauth_body_bytes < s->cap)
        s->cap = cfg->unauth_body_bytes;
    const char *cl = ds_rest_header(req, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > s->cap)
        s->over = true; /* refused without reading a byte into memory */
    *state = s;
    return DS_OK;
}

static ds_status_t bridge_chunk(ds_rest_req_t *req, void *state, const char *data, size_t n)
{
    (void)req;
    bridge_state_t *s = state;
    if (s->over)
        return DS_OK;
    if ((int64_t)(s->body.len + n) > s->cap) {
        s->over = true;
        ds_buf_free(&s->body);
        return DS_OK;
    }
    ds_buf_append(&s->body, data, n);
    return DS_OK;
}

static void bridge_abort(void *state)
{
    bridge_state_t *s = state;
    if (!s)
        return;
    /* A parked call that will not run again lets go of its Idempotency-Key (nothing was done). */
    if (s->prepared)
        ds_driver_abandon(&s->dc);
    ds_buf_free(&s->body);
    free(s);
}

static ds_status_t bridge_finish(ds_rest_req_t *req, void *state, ds_rest_resp_t *resp)
{
    bridge_state_t *s = state;
    const ds_config_t *cfg = ds_service_config();
    ds_driver_result_t r;
    ds_ctx_t *ctx = &req->ctx;
    if (s->over && !s->authenticated && s->cap < cfg->max_json_bytes) {
        ds_err_set(&ctx->err, DS_UNAUTHENTICATED,
                   "a /driver/execute body without a valid \"Authorization: Bearer <API key>\" header may be at most "
                   "%lld bytes (DUCKSTORE_UNAUTH_BODY_BYTES): send the API key in that header",
                   (long long)s->cap);
        ds_driver_fail(ctx, &r);
    } else if (s->over) {
        ds_err_set(&ctx->err, DS_PAYLOAD_TOO_LARGE, "request body is larger than DUCKSTORE_MAX_JSON_BYTES (%lld bytes)",
                   (long long)cfg->max_json_bytes);
        ds_driver_fail(ctx, &r);
    } else if (ds_buf_failed(&s->body)) {
        ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory while reading the request body");
        ds_driver_fail(ctx, &r);
    } else {
        ds_park_t *park = ctx->park;
        if (!s->prepared) {
            ctx->idempotency_key = ds_rest_header(req, "Idempotency-Key");
            ds_driver_prepare(&s->dc, ctx, (const uint8_t *)s->body.data, s->body.len, bearer_header(req));
            s->prepared = true;
        }
        /* Only a command that may park is told it can (the others would not run again correctly). */
        if (!ds_driver_may_park(&s->dc))
            ctx->park = NULL;
        ds_driver_run(&s->dc, &r);
        ctx->park = park;
        if (r.parked)
            return DS_OK; /* the server keeps s and calls again when the slot is granted */
    }
    s->prepared = false; /* ran to its answer: nothing to abandon */
    bridge_abort(s);
    resp->raw = malloc(r.response_len ? r.response_len : 1);
    if (!resp->raw)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    if (r.response_len)
        memcpy(resp->raw, r.response, r.response_len);
    resp->raw_len = r.response_len;
    resp->content_type = "application/x-protobuf";
    resp->status = ds_status_http(r.status);
    if (r.status != DS_OK) {
        /* The same status a gRPC client would see, for clients that read headers. */
        resp->headers[0][0] = "grpc-status";
        resp->headers[0][1] = ds_arena_printf(ctx->arena, "%d", ds_status_grpc(r.status));
        resp->headers[1][0] = "grpc-message";
        resp->headers[1][1] = ds_driver_grpc_message(ctx->arena, r.message);
        resp->headers[2][0] = "keboola-code";
        resp->headers[2][1] = ds_arena_printf(ctx->arena, "%d", r.keboola_code);
        resp->n_headers = 3;
    }
    return DS_OK;
}

static const ds_rest_stream_t bridge_stream = {bridge_begin, bridge_chunk, bridge_finish, bridge_abort,
                                                 false /* the Idempotency-Key is the driver layer's */,
                                                 true /* parks while it waits for a write slot */};

const ds_rest_route_t ds_rest_driver_routes[] = {
    {.method = "POST",
     .pattern = "/driver/execute",
     .stream = &bridge_stream,
     .public_route = true, /* the credentials travel inside the DriverRequest (or as a Bearer header) */
     .summary = "Keboola storage driver bridge: serialized DriverRequest in, DriverResponse out (protobuf)"},
};
const size_t ds_rest_n_driver_routes = sizeof(ds_rest_driver_routes) / sizeof(ds_rest_driver_routes[0]);
