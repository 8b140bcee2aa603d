/*
 * bridge.c - the HTTP bridge: POST /driver/execute.
 *
 * For clients without gRPC (PHP): the body is a serialized DriverRequest, the
 * answer a serialized DriverResponse (application/x-protobuf), produced by
 * the same dispatcher as the gRPC Execute call (dispatch.c), so both
 * transports behave alike. Credentials come only from the DriverRequest; the
 * server's Authorization / X-StorageApi-Token headers are ignored here.
 *
 * Status: 200 on success; on failure the status's HTTP code (ds_status_http:
 * 400, 401, 403, 404, 409, 429, 501, 503, 500) with a DriverResponse whose
 * messages end with a LogMessage of level Error ("[<keboola code>] message").
 * The body is bounded by DUCKSTORE_MAX_JSON_BYTES like every buffered body:
 * a larger one is answered 413 (JSON error) before it reaches the dispatcher.
 */
#include <stdlib.h>
#include <string.h>

#include "grpc/dispatch.h"
#include "rest/rest.h"

static ds_status_t h_driver_execute(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_driver_result_t r;
    ds_driver_execute(&req->ctx, (const uint8_t *)req->body, req->body_len, NULL, &r);
    resp->raw = malloc(r.response_len ? r.response_len : 1);
    if (!resp->raw)
        return ds_err_set(&req->ctx.err, DS_INTERNAL, "out of memory");
    if (r.response_len)
        memcpy(resp->raw, r.response, r.response_len);
    resp->raw_len = r.response_len;
    resp->content_type = "application/x-protobuf";
    resp->status = ds_status_http(r.status);
    if (r.status != DS_OK) {
        /* The same status a gRPC client would see, for clients that read headers. */
        resp->headers[0][0] = "grpc-status";
        resp->headers[0][1] = ds_arena_printf(req->ctx.arena, "%d", ds_status_grpc(r.status));
        resp->headers[1][0] = "grpc-message";
        resp->headers[1][1] = ds_driver_grpc_message(req->ctx.arena, r.message);
        resp->headers[2][0] = "keboola-code";
        resp->headers[2][1] = ds_arena_printf(req->ctx.arena, "%d", r.keboola_code);
        resp->n_headers = 3;
    }
    return DS_OK;
}

const ds_rest_route_t ds_rest_driver_routes[] = {
    {.method = "POST",
     .pattern = "/driver/execute",
     .handler = h_driver_execute,
     .public_route = true, /* the credentials travel inside the DriverRequest, not in HTTP headers */
     .summary = "Keboola storage driver bridge: serialized DriverRequest in, DriverResponse out (protobuf)"},
};
const size_t ds_rest_n_driver_routes = sizeof(ds_rest_driver_routes) / sizeof(ds_rest_driver_routes[0]);
