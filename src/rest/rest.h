/*
 * rest.h - the REST transport: HTTP server, router and JSON helpers.
 *
 * DESIGN
 * libmicrohttpd runs a few event-loop threads (epoll, DUCKSTORE_HTTP_THREADS)
 * that accept connections, read requests and write responses; they never run
 * a command. A request's work (the handler, which calls ds_cmd_* and may wait
 * for a write queue or run a long import) runs on a fixed worker pool
 * (DUCKSTORE_HTTP_WORKERS, core/pool.h) while its connection is suspended,
 * and the connection is resumed with the answer. One project (or key) holds
 * at most DUCKSTORE_HTTP_PROJECT_WORKERS workers; its further requests wait in
 * its own FIFO without holding a thread. Upload bodies are handed to the
 * workers in batches, so disk writes never run on an event-loop thread.
 * Connections are capped in total and per client address; a request's
 * headers must arrive within DUCKSTORE_HEADER_TIMEOUT of its first byte, and
 * silent connections close after DUCKSTORE_IDLE_TIMEOUT.
 *
 * A request is: route match -> body read (bounded by DUCKSTORE_MAX_JSON_BYTES,
 * 413 beyond) -> handler -> JSON response. Handlers are thin: they turn JSON
 * into the command structs of cmd/cmd.h, call one command, and turn its result
 * into JSON. Errors render as {"error": {...}} from ctx->err.
 */
#ifndef DS_REST_REST_H
#define DS_REST_REST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cmd/cmd.h"
#include "core/buf.h"

#define DS_REST_MAX_PARAMS 8
#define DS_REST_MAX_HEADERS 4

typedef struct ds_rest_req ds_rest_req_t;

typedef struct {
    int status;          /* HTTP status; 0 = 200 */
    json_t *json;        /* body as JSON (stolen), or NULL */
    char *raw;           /* body as bytes (malloc'd, stolen), when json is NULL */
    size_t raw_len;
    const char *content_type; /* for raw and fd; static string */
    int fd;                   /* > 0: stream this file (closed by the server) */
    int64_t fd_size;
    const char *filename; /* for fd: Content-Disposition attachment name, or NULL */
    const char *headers[DS_REST_MAX_HEADERS][2]; /* extra response headers (static or arena strings) */
    int n_headers;
} ds_rest_resp_t;

typedef ds_status_t (*ds_rest_handler_fn)(ds_rest_req_t *req, ds_rest_resp_t *resp);

struct ds_rest_req {
    ds_ctx_t ctx;
    const char *method;
    const char *path;
    const char *route; /* pattern, for logs and metrics */
    const char *param_names[DS_REST_MAX_PARAMS];
    const char *params[DS_REST_MAX_PARAMS];
    int n_params;
    const char *body;
    size_t body_len;
    void *conn; /* struct MHD_Connection * */
    const char *branch; /* branch of a branch-scoped path ("default" = main), or NULL */
    const char *allow;  /* on 405: the methods the path allows */
    /* A write with an Idempotency-Key until its answer is built (server.c ends it). Streamed
     * routes: idem_repeat = read the body without storing it and hand its digest to
     * ds_cmd_idem_stream_digest; a same-bytes repeat leaves the first answer in idem_replay. */
    ds_idem_t *idem;
    bool idem_repeat;
    ds_idem_answer_t idem_replay;
    struct ds_json_num *nums; /* the body's numbers as written (json.c), sorted by node; arena */
    size_t n_nums;
};

/*
 * A route that consumes its body as a stream (uploads): begin runs once the
 * headers are in, chunk for each piece of body, finish at the end. After a
 * failure the rest of the body is discarded and the error answered. abort
 * frees the state whenever finish did not run (also on disconnect).
 */
typedef struct {
    ds_status_t (*begin)(ds_rest_req_t *req, void **state);
    ds_status_t (*chunk)(ds_rest_req_t *req, void *state, const char *data, size_t n);
    ds_status_t (*finish)(ds_rest_req_t *req, void *state, ds_rest_resp_t *resp);
    void (*abort)(void *state);
    /* The server begins an Idempotency-Key for it (ds_cmd_idem_begin_stream; see ds_rest_req_t.idem);
     * false: the route handles the header itself, or takes none. */
    bool keyed;
    /*
     * finish may park the request (cmd.h "Parking": req->ctx.park is set for
     * it): when it returns with req->ctx.park->parked, it has kept its state,
     * nothing is answered, the worker is free, and finish runs again with the
     * same state once the write slot is granted (abort frees the state if
     * that never comes).
     */
    bool may_park;
} ds_rest_stream_t;

typedef struct {
    const char *method;
    const char *pattern; /* "/projects/{id}/buckets/{bucket}" */
    ds_rest_handler_fn handler;
    bool public_route; /* no key needed (health, ready, openapi) */
    const char *summary; /* one line, for the OpenAPI document */
    const ds_rest_stream_t *stream; /* non-NULL: the body is streamed to it (handler unused) */
    bool on_loop; /* cheap and never blocks: answered on the event-loop thread (/health) */
} ds_rest_route_t;

/* For handlers: the request's command context, and "return on failure". */
#define CTX (&req->ctx)
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

/* Starts the HTTP server on cfg->http_addr. */
ds_status_t ds_rest_start(const ds_config_t *cfg, ds_err_t *err);
/* Stops accepting, waits for in-flight requests, frees the server. */
void ds_rest_stop(void);
/*
 * Marks the calling thread as a libmicrohttpd event loop, so that its
 * epoll_wait does not wait right after a full batch of events (server.c's
 * DESIGN). The server marks its own loops; another libmicrohttpd daemon in
 * the process (the benchmark's constant-answer server) calls it from a
 * connection notification.
 */
void ds_rest_mark_event_loop(void);
/*
 * For harnesses (tests/fuzz/fuzz_rest.c): the same server without a
 * listening socket; ds_rest_add_connection hands it one connected socket
 * (taken over: the server closes it) as if accepted from peer.
 * ds_rest_connections counts the connections it still holds (0 once every
 * one was closed and its request state freed); ds_rest_at_work the requests
 * a worker runs or will run (queued, running or parked), so 0 while the
 * server only waits for bytes.
 */
ds_status_t ds_rest_start_unlistened(const ds_config_t *cfg, ds_err_t *err);
ds_status_t ds_rest_add_connection(int fd, const struct sockaddr *peer, socklen_t peer_len, ds_err_t *err);
int64_t ds_rest_connections(void);
int64_t ds_rest_at_work(void);

/*
 * Route tables, one per area, each owned by its file: core (routes.c), table
 * data (routes_data.c), Storage Files (files.c), the driver bridge
 * (grpc/bridge.c). The router and the OpenAPI document walk all of them.
 */
extern const ds_rest_route_t ds_rest_routes[];
extern const size_t ds_rest_n_routes;
extern const ds_rest_route_t ds_rest_data_routes[];
extern const size_t ds_rest_n_data_routes;
extern const ds_rest_route_t ds_rest_file_routes[];
extern const size_t ds_rest_n_file_routes;
extern const ds_rest_route_t ds_rest_driver_routes[];
extern const size_t ds_rest_n_driver_routes;
extern const ds_rest_route_t ds_rest_backend_routes[]; /* /backends (routes_backends.c) */
extern const size_t ds_rest_n_backend_routes;
extern const ds_rest_route_t ds_rest_key_routes[]; /* API keys (routes_keys.c) */
extern const size_t ds_rest_n_key_routes;
extern const ds_rest_route_t ds_rest_ws_routes[]; /* workspaces and queries (routes_ws.c) */
extern const size_t ds_rest_n_ws_routes;
extern const ds_rest_route_t ds_rest_branch_routes[]; /* development branches (routes_branches.c) */
extern const size_t ds_rest_n_branch_routes;
extern const ds_rest_route_t ds_rest_share_routes[]; /* sharing, links, read-only role (routes_share.c) */
extern const size_t ds_rest_n_share_routes;
/* Adds sharing fields ("sharing", "linked_from", "readonly_access") to a bucket object or array (routes_share.c). */
void ds_rest_bucket_annotate(ds_rest_req_t *req, json_t *buckets);
extern const ds_rest_route_t ds_rest_snapshot_routes[]; /* snapshots (routes_snapshots.c) */
extern const size_t ds_rest_n_snapshot_routes;

/* Every route of every table, in order: i from 0 to ds_rest_route_count()-1. */
size_t ds_rest_route_count(void);
const ds_rest_route_t *ds_rest_route_at(size_t i);

/*
 * Matches method+path against the table. Returns the route and fills the
 * path parameters into req; *method_mismatch is set when the path matched
 * some route but not with this method.
 */
const ds_rest_route_t *ds_rest_match(const char *method, const char *path, ds_rest_req_t *req, bool *method_mismatch);

/* A request header, or NULL. */
const char *ds_rest_header(const ds_rest_req_t *req, const char *name);
/* A path parameter by name, or NULL. */
const char *ds_rest_param(const ds_rest_req_t *req, const char *name);
/* A query argument, or NULL. */
const char *ds_rest_query(const ds_rest_req_t *req, const char *name);
/* The API key a request presents: "Authorization: Bearer <key>", else X-StorageApi-Token; NULL when none. */
struct MHD_Connection;
const char *ds_rest_presented_key(struct MHD_Connection *conn);
/*
 * How long the client says it will wait, in seconds, from "Prefer: wait=N"
 * (RFC 7240); 0 when it says nothing (or nothing valid). The request's write
 * queue waits are bounded by it, counted from its arrival (ds_ctx_t.wait_deadline).
 */
double ds_rest_prefer_wait(struct MHD_Connection *conn);
/* True when the query argument is "true" or "1". */
bool ds_rest_query_bool(const ds_rest_req_t *req, const char *name);

/*
 * Parses the body as a JSON object into *out (owned by the caller: json_decref).
 * An empty body gives an empty object when allow_empty. Errors name the position.
 */
ds_status_t ds_rest_body(ds_rest_req_t *req, bool allow_empty, json_t **out);
/* Reads optional string field: absent/null -> *out NULL; wrong type -> 400 naming it. */
ds_status_t ds_json_str(ds_rest_req_t *req, json_t *obj, const char *field, bool required, const char **out);
ds_status_t ds_json_bool(ds_rest_req_t *req, json_t *obj, const char *field, bool def, bool *out);
/* Reads an optional array of strings into an arena array. */
ds_status_t ds_json_str_array(ds_rest_req_t *req, json_t *obj, const char *field, const char ***out, size_t *n);
/*
 * The exact text a number of the body was written as ("9007199254740993",
 * "0.10", "1e300", "-0"), in the arena; NULL when v is not a number. JSON
 * numbers reach SQL through this text only, never through a C double or
 * int64 (jansson keeps those, and cannot hold every number).
 */
const char *ds_json_number_text(ds_rest_req_t *req, const json_t *v);
/* Reads an integer field that must fit int64: absent/null -> def; else a 400 naming the field and the value. */
ds_status_t ds_json_int64(ds_rest_req_t *req, json_t *obj, const char *field, int64_t def, int64_t *out);
/* Rejects keys of obj not in the NULL-terminated allowed list, naming the first. */
ds_status_t ds_json_only(ds_rest_req_t *req, json_t *obj, const char *const *allowed);

/* Reads where_filters, changed_since and changed_until of body into w, as table export does (routes_data.c). */
ds_status_t ds_rest_parse_where(ds_rest_req_t *req, json_t *body, ds_where_t *w);
/* "dedup" (update_duplicates | insert_duplicates | fail_on_duplicates) and "dedup_columns" of an import or a
 * workspace load. */
ds_status_t ds_rest_parse_dedup(ds_rest_req_t *req, json_t *body, ds_dedup_t *dedup, const char ***columns, size_t *n);

/* A table's info as the REST API shows it (routes.c). */
json_t *ds_rest_table_json(const ds_be_table_t *t);
/* Writes unix seconds as RFC 3339 (null for 0). */
json_t *ds_json_time(int64_t unix_s);
/*
 * Appends rows[0..n_rows) of n_columns text cells as a JSON array of arrays:
 * NULL as null, text that is not UTF-8 as "(invalid UTF-8)" (what jansson's
 * tree could not hold). Result sets are written this way, not as a JSON tree,
 * which cost more than the queries of small previews and results.
 */
void ds_rest_buf_rows(ds_buf_t *b, const char *const *const *rows, size_t n_rows, size_t n_columns);
/* Makes b (a JSON object without its newline) resp's answer; DS_UNAVAILABLE when b failed (out of memory). */
ds_status_t ds_rest_buf_answer(ds_rest_req_t *req, ds_rest_resp_t *resp, ds_buf_t *b);

/* The OpenAPI document, built once from the route table (static storage). */
const char *ds_rest_openapi(void);

#endif
