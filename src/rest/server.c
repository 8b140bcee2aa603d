/*
 * server.c - the HTTP server (libmicrohttpd) and request lifecycle.
 *
 * DESIGN
 * libmicrohttpd runs DUCKSTORE_HTTP_THREADS event-loop threads (epoll, one
 * listening socket shared through its thread pool). They parse requests,
 * collect JSON bodies and send responses; no command runs on them. At the end
 * of a request's body the connection is suspended and the request handed to
 * the worker pool (core/pool.h) under its project (or key) as fairness group;
 * the worker computes the answer into the request state and resumes the
 * connection, and the event thread, called again, queues it. Only routes
 * marked on_loop (/health) and answers that need no command (404, 405, 413)
 * are computed on the event thread. Streaming uploads: the body is gathered
 * into batches of STREAM_BATCH bytes. The first batch (at once, so the upload
 * is authorized before the body is read) and the end of the body run with the
 * connection suspended. Every batch in between is written behind: a worker
 * hashes and writes it (`batch`) while the event thread goes on reading the
 * next one (`pending`), so receiving and storing overlap; when the next batch
 * is full before the worker is done, the connection is suspended until it is
 * (at most two batches per upload in memory, one job at a time per upload).
 *
 * Invariant: while a connection is suspended its request state belongs to the
 * one job running for it; the event threads touch it only after the resume.
 * A connection is suspended before its job is submitted, so the resume can
 * never come first; a failed submit resumes it at once with a 503. While a
 * batch is written behind, the job owns `batch`, the stream state and the
 * request's context (arena, error); the event thread touches only `pending`
 * and the flags under the request's batch_lock. When the connection closes
 * meanwhile, the job frees the request state when it ends (`orphaned`).
 *
 * Slow headers: libmicrohttpd's timeout counts inactivity only, so a client
 * sending a header byte now and then would never time out. Every connection
 * is in a list (conn_t); a sweeper thread looks once a second at those
 * waiting for a request's headers, and closes (shutdown) any that has received
 * bytes since its last request ended (TCP_INFO) for DUCKSTORE_HEADER_TIMEOUT
 * without completing the headers. Connections that send nothing are idle and
 * are closed by libmicrohttpd after DUCKSTORE_IDLE_TIMEOUT.
 *
 * A full batch of events: libmicrohttpd's epoll loop (0.9.75, and 1.0.1
 * still) calls epoll_wait again, with its full timeout, whenever one call
 * returned its maximum of 128 events, before it handles any of them. When 128
 * connections of one loop were ready at once (a burst of new clients, or a
 * loop held up while 128 requests arrived) and nothing else happens on that
 * loop, it slept on them until a connection timed out or the slow-header
 * check cut them. This file defines epoll_wait, which takes the place of
 * libc's for libmicrohttpd (a shared library's calls bind to the executable's
 * definition): on an event-loop thread the call after a full batch does not
 * wait (timeout 0), so the loop handles the batch at once. Every other
 * caller (gRPC's pollers among them) calls through it too and gets libc's
 * behaviour. start_server checks that the definition is the one in effect.
 * Lock order: conns_lock is a leaf; libmicrohttpd's close notification takes
 * it before the socket is closed, so the sweeper never shuts a reused fd.
 * A request's batch_lock is taken before libmicrohttpd's own locks (it is
 * held to suspend or resume the connection, so a resume cannot come before
 * its suspend) and never inside a libmicrohttpd callback for another
 * request; the job resumes only a suspended connection, which libmicrohttpd
 * cannot be completing at the same time.
 *
 * One request state per HTTP request: created on the first callback, fed the
 * body, answered as above, freed in the completion callback (which destroys
 * the arena and so releases any write slot still held). Bodies beyond the
 * limit are read and discarded, then answered with 413.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/tcp.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bodymem.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "rest/rest.h"

/* Upload body gathered per worker hand-over. */
#define STREAM_BATCH (256 * 1024)
/*
 * Per-connection buffer (request line, headers, read buffer). libmicrohttpd
 * mallocs pools of 32 KiB or less and maps larger ones; a mapped pool goes
 * back to the system when its connection closes, while thousands of malloc'd
 * ones leave the heap fragmented and the RSS high after a burst of clients.
 */
#define CONN_MEMORY (36 * 1024)
/* File descriptors kept free of connections for project files, uploads and downloads. */
#define FD_RESERVE 1024

/* One accepted connection (socket context), in the sweeper's list. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;                     /* set at start, never changed (the event thread closes it) */
    atomic_bool waiting;        /* between requests: no request's headers complete yet */
    atomic_ullong mark;         /* bytes received when the wait began (TCP_INFO) */
    bool cut;                   /* sweeper only: already shut down */
    bool seen;                  /* sweeper only: bytes past mark were seen ... */
    struct timespec first_byte; /* ... first at this time ... */
    unsigned long long seen_mark; /* ... in the wait that began with this mark */
    bool url_nul;               /* the request line being parsed decoded a %00 (see unescape_url) */
} conn_t;

typedef struct {
    ds_rest_req_t req;
    const ds_rest_route_t *route;
    bool method_mismatch;
    struct timespec start;
    ds_buf_t body;
    int refused;         /* BODY_*: why the body is not kept (the rest is read and dropped); BODY_KEPT: it is */
    int64_t body_held;   /* bytes of body taken from core/bodymem (event thread; released by free_state) */
    int key_ok;          /* the presented key, checked once the body outgrows that cap: 0 unchecked, 1 valid, -1 not */
    void *stream_state;        /* for streaming routes */
    atomic_bool stream_failed; /* the error is in req.ctx.err; the rest of the body is discarded */
    bool stream_started;
    bool read_oom;              /* the event thread could not keep upload bytes (the error is set at the end) */
    ds_buf_t pending;           /* upload bytes not yet handed to the stream (event thread) */
    ds_buf_t batch;             /* upload bytes a job writes behind (that job) */
    pthread_mutex_t batch_lock; /* guards the three flags below */
    bool batch_running;         /* under batch_lock: a job writes `batch` */
    bool batch_waiting;         /* under batch_lock: the connection is suspended until that job ends */
    bool orphaned;              /* under batch_lock: the connection closed meanwhile; the job frees the state */
    struct MHD_Connection *mconn;
    struct MHD_Response *answer; /* computed answer, queued on the next callback */
    unsigned answer_status;
    bool answer_ready;
    bool logged; /* counted and logged (send_answer, or on_completed for one never answered) */
    atomic_bool busy; /* a job runs for this request; the connection is suspended */
    ds_park_t park;   /* a handler route's request waits for a write slot without a worker */
    atomic_int phase; /* PHASE_*: the hand-over between a parked job and its grant */
    char group[48]; /* fairness group: "p/<project>", "k/<key hash>" or "-" */
    int fd;         /* the connection's socket (read-only peeks from workers), or -1 */
    bool nul_in_url;    /* the URL decodes to a NUL byte: refused before anything runs */
    bool idem_begun;    /* its Idempotency-Key was looked at (once: a parked request runs again) */
    char request_id[40];
} req_state_t;

/* Why a request's body was refused (req_state_t.refused). */
enum { BODY_KEPT = 0, BODY_TOO_LARGE, BODY_UNAUTH, BODY_NO_MEMORY };

static struct MHD_Daemon *daemon_;
static ds_pool_t *pool;
static int64_t max_body;
static int64_t unauth_body;  /* DUCKSTORE_UNAUTH_BODY_BYTES: the body a request without a key may carry */
static int64_t header_timeout_s;
static atomic_ullong next_id;
static unsigned long long id_salt;

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sweeper_cond = PTHREAD_COND_INITIALIZER;
static conn_t *conns;
static int64_t n_conns;
static bool sweeper_stop;
static bool sweeper_running;
static pthread_t sweeper;

/* ---- epoll_wait for libmicrohttpd's loops (see DESIGN: a full batch of events) ---- */

static _Thread_local bool on_event_loop;   /* this thread runs a libmicrohttpd event loop (set by its callbacks) */
static _Thread_local bool after_full_batch; /* its last epoll_wait returned as many events as it could hold */
static atomic_llong full_batches;

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    if (on_event_loop && after_full_batch)
        timeout = 0; /* more events may be ready; the ones in hand come first, so no waiting */
    int n = epoll_pwait(epfd, events, maxevents, timeout, NULL);
    after_full_batch = on_event_loop && n == maxevents;
    if (after_full_batch)
        atomic_fetch_add(&full_batches, 1);
    return n;
}

void ds_rest_mark_event_loop(void) { on_event_loop = true; }

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}


static json_t *error_json(const ds_err_t *err)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(ds_status_code(err->status)));
    json_t *msg = json_string(err->message[0] ? err->message : ds_status_code(err->status));
    json_object_set_new(e, "message", msg ? msg : json_string("(message was not valid UTF-8)"));
    int kbc = ds_err_keboola(err);
    if (kbc)
        json_object_set_new(e, "keboola_code", json_integer(kbc));
    if (err->field[0])
        json_object_set_new(e, "details", json_pack("{s:s}", "field", err->field));
    return json_pack("{s:o}", "error", e);
}

static enum MHD_Result send_answer(req_state_t *rs, struct MHD_Connection *conn);

/*
 * Turns resp into rs->answer (a libmicrohttpd response, built on any thread).
 * False when the response could not be built (out of memory): the connection
 * is then closed.
 */
static bool build_answer(req_state_t *rs, int status, ds_rest_resp_t *resp)
{
    char *data = NULL;
    size_t len = 0;
    const char *ctype = "application/json";
    if (resp->json) {
        data = json_dumps(resp->json, JSON_COMPACT);
        json_decref(resp->json);
        resp->json = NULL;
        if (data) {
            len = strlen(data);
            data[len] = '\n';
            len++;
        }
    } else if (resp->raw) {
        data = resp->raw;
        len = resp->raw_len;
        ctype = resp->content_type ? resp->content_type : "application/octet-stream";
        resp->raw = NULL;
    }
    /* The answer of an idempotent write is kept for its repeats (cmd/idem.c decides what is kept). */
    if (rs->req.idem && rs->req.ctx.answer_has_secret && status < 300) {
        /* A password or key is never stored: a repeat is told so instead (cmd.h). */
        ds_err_t e = {0};
        ds_err_set(&e, DS_CONFLICT, DS_IDEM_SECRET_MESSAGE);
        json_t *j = error_json(&e);
        char *kept = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        ds_cmd_idem_end(&rs->req.idem, kept ? ds_status_http(DS_CONFLICT) : 503, "application/json", kept,
                        kept ? strlen(kept) : 0);
        free(kept);
    } else if (rs->req.idem) {
        ds_cmd_idem_end(&rs->req.idem, status, ctype, resp->fd > 0 ? NULL : data ? data : "", resp->fd > 0 ? 0 : len);
    }
    struct MHD_Response *r;
    if (resp->fd > 0) {
        free(data);
        ctype = resp->content_type ? resp->content_type : "application/octet-stream";
        r = MHD_create_response_from_fd64((uint64_t)resp->fd_size, resp->fd);
        if (!r) {
            close(resp->fd);
            resp->fd = 0;
            return false;
        }
        resp->fd = 0;
        len = 1;
        if (resp->filename) {
            char cd[512];
            snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", resp->filename);
            MHD_add_response_header(r, "Content-Disposition", cd);
        }
    } else {
        r = MHD_create_response_from_buffer(len, data ? data : "", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!r) {
            free(data);
            return false;
        }
    }
    if (len)
        MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Request-Id", rs->request_id);
    for (int i = 0; i < resp->n_headers && i < DS_REST_MAX_HEADERS; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    if (status == 405 && rs->req.allow)
        MHD_add_response_header(r, "Allow", rs->req.allow);
    /* Refused for load (a full queue, a wait longer than the client allows): a moment later it may pass. */
    if (status == 429)
        MHD_add_response_header(r, "Retry-After", "1");
    rs->answer = r;
    rs->answer_status = (unsigned)status;
    rs->answer_ready = true;
    return true;
}

static void build_error(req_state_t *rs, const ds_err_t *err)
{
    ds_rest_resp_t resp = {.json = error_json(err)};
    build_answer(rs, ds_status_http(err->status), &resp);
}

/* Queues the computed answer (event thread only), counts and logs the request. */
static enum MHD_Result send_answer(req_state_t *rs, struct MHD_Connection *conn)
{
    rs->answer_ready = false;
    rs->logged = true;
    const char *route = rs->route ? rs->route->pattern : "unmatched";
    double secs = elapsed_s(&rs->start);
    if (!rs->answer) {
        ds_metrics_request("http", rs->req.method, route, 500, secs);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, rs->answer_status, rs->answer);
    MHD_destroy_response(rs->answer);
    rs->answer = NULL;
    ds_metrics_request("http", rs->req.method, route, (int)rs->answer_status, secs);
    ds_log_request(rs->request_id, rs->req.method, route, (int)rs->answer_status, secs * 1000.0,
                   rs->req.ctx.project_id, "http");
    return ret;
}

static void make_request_id(req_state_t *rs, struct MHD_Connection *conn)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n < sizeof(rs->request_id);
        for (size_t i = 0; ok && i < n; i++)
            ok = (given[i] >= '0' && given[i] <= '9') || (given[i] >= 'a' && given[i] <= 'z') ||
                 (given[i] >= 'A' && given[i] <= 'Z') || given[i] == '-' || given[i] == '_';
        if (ok) {
            memcpy(rs->request_id, given, n + 1);
            return;
        }
    }
    unsigned long long n = atomic_fetch_add(&next_id, 1);
    snprintf(rs->request_id, sizeof(rs->request_id), "%08llx%08llx", id_salt & 0xffffffffull, n);
}

static bool idempotent_stream_start(ds_rest_req_t *req);

/* Hands the upload bytes in bytes to the stream (and empties it); begins the stream first if needed. Worker thread. */
static void stream_feed(req_state_t *rs, ds_buf_t *bytes)
{
    const ds_rest_stream_t *sr = rs->route->stream;
    if (!rs->stream_started) {
        rs->stream_started = true;
        if ((sr->keyed && !idempotent_stream_start(&rs->req)) || sr->begin(&rs->req, &rs->stream_state) != DS_OK)
            rs->stream_failed = true;
    }
    if (!rs->stream_failed && bytes->len && sr->chunk(&rs->req, rs->stream_state, bytes->data, bytes->len) != DS_OK)
        rs->stream_failed = true;
    bytes->len = 0;
    if (rs->stream_failed)
        ds_buf_free(bytes);
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    ds_buf_t *b = cls;
    ds_buf_printf(b, "%s%s=%s", b->len ? "&" : "?", key, value ? value : "");
    return MHD_YES;
}

/* The request's target for its idempotency identity: the path with its query arguments. */
static void request_target(ds_rest_req_t *req, ds_buf_t *target)
{
    ds_buf_puts(target, req->path);
    ds_buf_t args = {0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_arg, &args);
    ds_buf_append_buf(target, &args);
    ds_buf_free(&args);
}

/* resp = the first answer of an idempotent write, marked as replayed. */
static void replay_resp(ds_rest_req_t *req, const ds_idem_answer_t *ans, ds_rest_resp_t *resp)
{
    resp->raw = malloc(ans->body_len ? ans->body_len : 1);
    if (!resp->raw) {
        ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
        resp->json = error_json(&req->ctx.err);
        resp->status = 503;
        return;
    }
    memcpy(resp->raw, ans->body, ans->body_len);
    resp->raw_len = ans->body_len;
    resp->content_type = ans->content_type;
    resp->status = ans->status;
    resp->headers[0][0] = "Idempotent-Replayed";
    resp->headers[0][1] = "true";
    resp->n_headers = 1;
}

/*
 * A streamed write with an Idempotency-Key header: begins it before the
 * stream does (cmd/idem.c, ds_cmd_idem_begin_stream). False with the error in
 * ctx when the stream is not to begin (a bad key, the key still running).
 */
static bool idempotent_stream_start(ds_rest_req_t *req)
{
    const char *key = ds_rest_header(req, "Idempotency-Key");
    if (!key)
        return true;
    ds_buf_t target = {0};
    request_target(req, &target);
    const char *t = ds_buf_cstr(&target);
    ds_status_t st = t ? ds_cmd_idem_begin_stream(&req->ctx, key, req->method, t, &req->idem, &req->idem_repeat)
                       : ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    ds_buf_free(&target);
    return st == DS_OK;
}

/*
 * A write (any method but GET/HEAD) with an Idempotency-Key header: begins it
 * (cmd/idem.c). True when resp holds the answer already: the first answer
 * (replay), a 409 for a reused key, or another error; false when the handler
 * is to run (req->idem then records its answer in build_answer).
 */
static bool idempotent_start(req_state_t *rs, ds_rest_resp_t *resp)
{
    ds_rest_req_t *req = &rs->req;
    const char *key = ds_rest_header(req, "Idempotency-Key");
    if (!key || strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        return false;
    /* The request is its method, path with query arguments, and body. */
    ds_buf_t target = {0};
    request_target(req, &target);
    ds_idem_answer_t ans;
    const char *t = ds_buf_cstr(&target);
    ds_status_t st = t ? ds_cmd_idem_begin(&req->ctx, key, req->method, t, req->body, req->body_len, &req->idem, &ans)
                       : ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    ds_buf_free(&target);
    if (st != DS_OK) {
        resp->json = error_json(&req->ctx.err);
        resp->status = ds_status_http(req->ctx.err.status);
        return true;
    }
    if (!ans.replay)
        return false;
    replay_resp(req, &ans, resp);
    return true;
}

/* Computes the answer of a request whose body is complete into rs->answer. */
static void compute(req_state_t *rs)
{
    ds_rest_req_t *req = &rs->req;
    ds_err_t *err = &req->ctx.err;
    if (rs->nul_in_url) {
        build_error(rs, err);
        return;
    }
    if (!rs->route) {
        if (rs->method_mismatch)
            ds_err_set(err, DS_METHOD_NOT_ALLOWED, "method %s is not allowed on %s (allowed: %s)", req->method,
                       req->path, req->allow ? req->allow : "");
        else if (req->branch && strcmp(req->branch, "default") != 0)
            ds_err_set(err, DS_NOT_FOUND, "branch \"%s\" not found (this server has only the default branch)",
                       req->branch);
        else
            ds_err_set(err, DS_NOT_FOUND, "no route for %s %s", req->method, req->path);
        build_error(rs, err);
        return;
    }
    if (rs->route->stream) {
        const ds_rest_stream_t *sr = rs->route->stream;
        ds_rest_resp_t resp = {0};
        stream_feed(rs, &rs->pending);
        if (rs->read_oom && err->status == DS_OK)
            ds_err_set(err, DS_INTERNAL, "out of memory reading the upload");
        if (!rs->stream_failed) {
            void *state = rs->stream_state;
            rs->stream_state = NULL; /* finish owns it now */
            ds_status_t fst = sr->finish(req, state, &resp);
            if (rs->park.parked) {
                /* Parked (rest.h may_park): the state is still finish's to run again with; no answer yet. */
                rs->stream_state = state;
                json_decref(resp.json);
                free(resp.raw);
                return;
            }
            if (fst == DS_OK) {
                if (req->idem_replay.replay) {
                    /* A repeat with the first request's bytes: the first answer, nothing stored. */
                    json_decref(resp.json);
                    free(resp.raw);
                    resp = (ds_rest_resp_t){0};
                    replay_resp(req, &req->idem_replay, &resp);
                }
                build_answer(rs, resp.status ? resp.status : 200, &resp);
                return;
            }
            json_decref(resp.json);
            free(resp.raw);
        }
        if (err->status == DS_OK)
            ds_err_set(err, DS_INTERNAL, "upload failed");
        build_error(rs, err);
        return;
    }
    if (rs->refused != BODY_KEPT) {
        if (rs->refused == BODY_TOO_LARGE)
            ds_err_set(err, DS_PAYLOAD_TOO_LARGE, "request body is larger than DUCKSTORE_MAX_JSON_BYTES (%lld bytes)",
                       (long long)max_body);
        else if (rs->refused == BODY_UNAUTH)
            ds_err_set(err, DS_UNAUTHENTICATED,
                       "%s: send a valid key as \"Authorization: Bearer <key>\" (a request without one may carry at "
                       "most %lld bytes of body, DUCKSTORE_UNAUTH_BODY_BYTES)",
                       rs->req.ctx.key && *rs->req.ctx.key ? "invalid API key" : "no API key", (long long)unauth_body);
        else
            ds_err_set(err, DS_RESOURCE_EXHAUSTED,
                       "the server holds as many request bodies in memory as it may (DUCKSTORE_BODY_MEMORY, %lld "
                       "bytes); nothing was changed, retry",
                       (long long)ds_bodymem_limit());
        build_error(rs, err);
        return;
    }
    if (ds_buf_failed(&rs->body)) {
        ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the request body");
        build_error(rs, err);
        return;
    }
    req->body = rs->body.data ? rs->body.data : "";
    req->body_len = rs->body.len;
    ds_rest_resp_t resp = {0};
    /*
     * Once per request: a parked request that runs again already owns its
     * key's entry, and beginning it again would wait for its own answer.
     */
    bool first = !rs->idem_begun;
    rs->idem_begun = true;
    if (first && idempotent_start(rs, &resp)) {
        build_answer(rs, resp.status, &resp);
        return;
    }
    ds_status_t st = rs->route->handler(req, &resp);
    if (st != DS_OK || rs->park.parked) {
        json_decref(resp.json);
        free(resp.raw);
        if (resp.fd > 0)
            close(resp.fd);
        /* Parked (even if the handler went on regardless): no answer yet; it runs again when granted. */
        if (rs->park.parked)
            return;
        if (err->status == DS_OK)
            ds_err_set(err, st, "%s", ds_status_code(st));
        build_error(rs, err);
        return;
    }
    build_answer(rs, resp.status ? resp.status : 200, &resp);
}

/*
 * Parking hand-over: a job that parked its request moves RUNNING -> PARKED
 * and leaves; the grant, finding PARKED, queues the job again. A grant that
 * comes while the job is still unwinding finds RUNNING and leaves GRANTED, and
 * the job, failing its move to PARKED, runs the request again itself.
 */
enum { PHASE_RUNNING, PHASE_PARKED, PHASE_GRANTED };

/* Requests parked now (at least): ds_rest_stop waits for them before it stops the event loops. */
static atomic_int n_parked;
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parked_cond = PTHREAD_COND_INITIALIZER;

static void parked_done(void)
{
    pthread_mutex_lock(&parked_lock);
    atomic_fetch_sub(&n_parked, 1);
    pthread_cond_broadcast(&parked_cond);
    pthread_mutex_unlock(&parked_lock);
}

static void job_final(void *arg);

/* Ends a request's work: the connection gets the answer (any thread). */
static void finish_job(req_state_t *rs)
{
    /*
     * The answer is built: the command's holds (project pin, write slots,
     * results) go now, not when a slow client has read the answer. A download
     * streams from its open fd and needs none of them.
     */
    ds_arena_run_hooks(rs->req.ctx.arena);
    ds_cmd_park_release(&rs->park);
    atomic_store(&rs->busy, false);
    MHD_resume_connection(rs->mconn);
}

/* The write slot a parked request waited for is held now (called by the queue, any thread). */
static void on_slot_granted(void *arg)
{
    req_state_t *rs = arg;
    int expect = PHASE_RUNNING;
    if (atomic_compare_exchange_strong(&rs->phase, &expect, PHASE_GRANTED))
        return;
    atomic_store(&rs->phase, PHASE_RUNNING);
    /* First in its project's line: it holds a slot others of the project may wait for. */
    ds_err_t e = {0};
    if (ds_pool_submit_first(pool, rs->group, job_final, rs, &e) != DS_OK) {
        /* The server stops: answered with that, its slots let go (which may grant the next one). */
        rs->req.ctx.err = e;
        build_error(rs, &rs->req.ctx.err);
        finish_job(rs);
    }
    parked_done();
}

/*
 * True when the client has closed the connection (end of stream or reset)
 * while its request waited: nobody would read the answer. A client that
 * only half-closes after its request would look the same; HTTP/1.1 clients
 * do not, and its request is then refused like one whose client left.
 */
static bool client_gone(const req_state_t *rs)
{
    if (rs->fd < 0)
        return false;
    char c;
    ssize_t n = recv(rs->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void job_final(void *arg)
{
    req_state_t *rs = arg;
    for (;;) {
        rs->park.parked = false;
        if ((!rs->route->stream || rs->route->stream->may_park) && client_gone(rs)) {
            /* Its work would be lost: a burst of clients that gave up does not keep the workers busy. */
            ds_err_set(&rs->req.ctx.err, DS_CANCELLED, "the client closed the connection before its request ran");
            build_error(rs, &rs->req.ctx.err);
            break;
        }
        compute(rs);
        if (!rs->park.parked)
            break;
        /* Parked: nothing but the slots is held while the request waits without a worker. */
        ds_arena_run_hooks(rs->req.ctx.arena);
        ds_err_clear(&rs->req.ctx.err);
        int expect = PHASE_RUNNING;
        atomic_fetch_add(&n_parked, 1); /* before the move: the count is never below the truth */
        if (atomic_compare_exchange_strong(&rs->phase, &expect, PHASE_PARKED))
            return;
        atomic_fetch_sub(&n_parked, 1);
        atomic_store(&rs->phase, PHASE_RUNNING);
    }
    finish_job(rs);
}

static void job_stream(void *arg)
{
    req_state_t *rs = arg;
    stream_feed(rs, &rs->pending);
    atomic_store(&rs->busy, false);
    MHD_resume_connection(rs->mconn);
}

static void free_state(req_state_t *rs);

/*
 * Whether the request's presented key is valid, checked once (event thread,
 * when its body outgrows DUCKSTORE_UNAUTH_BODY_BYTES; the key tables are in
 * memory, so this is cheap).
 */
static bool key_valid(req_state_t *rs)
{
    if (!rs->key_ok)
        rs->key_ok = ds_cmd_key_valid(rs->req.ctx.arena, rs->req.ctx.key) ? 1 : -1;
    return rs->key_ok > 0;
}

/* Frees a request's buffered body and gives its bytes back to DUCKSTORE_BODY_MEMORY. */
static void release_body(req_state_t *rs)
{
    ds_buf_free(&rs->body);
    if (rs->body_held) {
        ds_bodymem_give(rs->body_held);
        rs->body_held = 0;
    }
}

/* Writes a batch behind the reading event thread (see DESIGN). Worker thread. */
static void job_batch(void *arg)
{
    req_state_t *rs = arg;
    pthread_mutex_lock(&rs->batch_lock);
    bool gone = rs->orphaned;
    pthread_mutex_unlock(&rs->batch_lock);
    if (!gone) /* nobody waits for the bytes of a connection that closed */
        stream_feed(rs, &rs->batch);
    pthread_mutex_lock(&rs->batch_lock);
    rs->batch_running = false;
    bool orphaned = rs->orphaned;
    if (rs->batch_waiting) {
        rs->batch_waiting = false;
        atomic_store(&rs->busy, false);
        MHD_resume_connection(rs->mconn);
    }
    pthread_mutex_unlock(&rs->batch_lock);
    if (orphaned)
        free_state(rs);
}

/*
 * True (and the connection suspended until the job ends) when a batch is
 * still being written behind. Event thread.
 */
static bool wait_for_batch(req_state_t *rs, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&rs->batch_lock);
    bool running = rs->batch_running;
    if (running) {
        rs->batch_waiting = true;
        atomic_store(&rs->busy, true);
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&rs->batch_lock);
    return running;
}

/* Hands the full pending batch to a job that writes it behind, or waits for the one before. Event thread. */
static enum MHD_Result write_behind(req_state_t *rs, struct MHD_Connection *conn)
{
    if (wait_for_batch(rs, conn))
        return MHD_YES;
    /* No job runs for this request now: the buffers and the context are the event thread's. */
    ds_buf_t full = rs->pending;
    rs->pending = rs->batch;
    rs->batch = full;
    pthread_mutex_lock(&rs->batch_lock);
    rs->batch_running = true;
    pthread_mutex_unlock(&rs->batch_lock);
    ds_err_t *err = &rs->req.ctx.err;
    if (ds_pool_submit(pool, rs->group, job_batch, rs, err) != DS_OK) {
        pthread_mutex_lock(&rs->batch_lock);
        rs->batch_running = false;
        pthread_mutex_unlock(&rs->batch_lock);
        rs->stream_failed = true;
        build_error(rs, err);
    }
    return MHD_YES;
}

/*
 * Suspends the connection and queues fn for it. When the pool refuses (out of
 * memory, shutting down) the request is answered with that error instead.
 */
static enum MHD_Result hand_over(req_state_t *rs, struct MHD_Connection *conn, ds_pool_job_cb fn)
{
    MHD_suspend_connection(conn);
    atomic_store(&rs->busy, true);
    ds_err_t *err = &rs->req.ctx.err;
    /* A whole request whose client said how long it waits expires in the line for a worker (job_expired). */
    double deadline = fn == job_final ? rs->req.ctx.wait_deadline : 0;
    if (ds_pool_submit_by(pool, rs->group, fn, rs, deadline, err) != DS_OK) {
        rs->stream_failed = true;
        build_error(rs, err);
        atomic_store(&rs->busy, false);
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

/* The fairness group of a request: its project, else a hash of its key, else one shared group. */
static void set_group(req_state_t *rs)
{
    const char *project = ds_rest_param(&rs->req, "id");
    if (rs->route && project && *project) {
        snprintf(rs->group, sizeof(rs->group), "p/%s", project);
        return;
    }
    const char *key = rs->req.ctx.key;
    if (key && *key) {
        unsigned long long h = 14695981039346656037ull;
        for (const char *k = key; *k; k++)
            h = (h ^ (unsigned char)*k) * 1099511628211ull;
        snprintf(rs->group, sizeof(rs->group), "k/%016llx", h);
        return;
    }
    snprintf(rs->group, sizeof(rs->group), "-");
}

static conn_t *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * MHD's unescaper (%XX decoding, anything else kept as is), noting a decoded
 * NUL on the connection: C strings would silently cut the path or a parameter
 * there ("tables/t%00x" naming table "t"), so such a request is refused as a
 * whole. The request's first call reads and resets the note.
 */
static size_t unescape_url(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0) {
            *w = (char)(hi * 16 + lo);
            if (*w == '\0') {
                conn_t *c = conn_of(conn);
                if (c)
                    c->url_nul = true;
            }
            w++;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static unsigned long long bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return 0;
    return (unsigned long long)ti.tcpi_bytes_received;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    req_state_t *rs = *con_cls;
    if (!rs) {
        conn_t *c = conn_of(conn);
        if (c)
            atomic_store(&c->waiting, false);
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rs->start);
        rs->req.ctx.arena = ds_arena_create();
        if (!rs->req.ctx.arena) {
            free(rs);
            return MHD_NO;
        }
        pthread_mutex_init(&rs->batch_lock, NULL);
        make_request_id(rs, conn);
        rs->mconn = conn;
        rs->fd = c ? c->fd : -1;
        rs->req.ctx.request_id = rs->request_id;
        rs->req.ctx.key = ds_rest_presented_key(conn);
        double wait = ds_rest_prefer_wait(conn);
        if (wait > 0)
            rs->req.ctx.wait_deadline = (double)rs->start.tv_sec + (double)rs->start.tv_nsec / 1e9 + wait;
        rs->req.method = ds_arena_strdup(rs->req.ctx.arena, method);
        rs->req.path = ds_arena_strdup(rs->req.ctx.arena, url);
        rs->req.conn = conn;
        if (c && c->url_nul) {
            c->url_nul = false;
            rs->nul_in_url = true;
            ds_err_set(&rs->req.ctx.err, DS_INVALID_ARGUMENT,
                       "the URL contains an encoded NUL byte (%%00), which no name, key or parameter may contain");
            rs->stream_failed = true;
        }
        rs->route = ds_rest_match(method, rs->req.path, &rs->req, &rs->method_mismatch);
        set_group(rs);
        /*
         * Handler routes run their command from the start when resumed; streaming ones consume their body,
         * and those that may park (the driver bridge) run their finish step again.
         */
        if (rs->route && (!rs->route->stream || rs->route->stream->may_park)) {
            rs->park.resume_cb = on_slot_granted;
            rs->park.arg = rs;
            rs->req.ctx.park = &rs->park;
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > max_body && !(rs->route && rs->route->stream))
            rs->refused = BODY_TOO_LARGE;
        *con_cls = rs;
        return MHD_YES;
    }
    /*
     * libmicrohttpd may call again before it notices the suspension (the next
     * chunk of a chunked body): leave the data unconsumed; it comes back after
     * the resume.
     */
    if (atomic_load(&rs->busy))
        return MHD_YES;
    if (rs->answer_ready)
        return send_answer(rs, conn);
    if (*upload_data_size && rs->route && rs->route->stream) {
        if (!rs->stream_failed)
            ds_buf_append(&rs->pending, upload_data, *upload_data_size);
        if (!rs->stream_failed && rs->pending.oom) {
            /* A job may be writing the context's error now: compute sets this one at the end. */
            rs->read_oom = true;
            rs->stream_failed = true;
        }
        *upload_data_size = 0;
        if (rs->stream_failed)
            return MHD_YES;
        if (!rs->stream_started)
            return hand_over(rs, conn, job_stream);
        if (rs->pending.len >= STREAM_BATCH)
            return write_behind(rs, conn);
        return MHD_YES;
    }
    /* The end of an upload's body waits for its last batch written behind. */
    if (rs->route && rs->route->stream && wait_for_batch(rs, conn))
        return MHD_YES;
    if (*upload_data_size) {
        int64_t n = (int64_t)*upload_data_size;
        *upload_data_size = 0;
        if (rs->refused != BODY_KEPT)
            return MHD_YES; /* refused already: the rest is read and dropped */
        if ((int64_t)rs->body.len + n > max_body)
            rs->refused = BODY_TOO_LARGE;
        else if (rs->route && !rs->route->public_route && (int64_t)rs->body.len + n > unauth_body && !key_valid(rs))
            rs->refused = BODY_UNAUTH;
        else if (!ds_bodymem_take(n))
            rs->refused = BODY_NO_MEMORY;
        if (rs->refused != BODY_KEPT) {
            release_body(rs);
            return MHD_YES;
        }
        rs->body_held += n;
        ds_buf_append(&rs->body, upload_data, (size_t)n);
        return MHD_YES;
    }
    if (!rs->route || rs->route->on_loop ||
        (rs->refused != BODY_KEPT && !rs->route->stream)) {
        compute(rs);
        return send_answer(rs, conn);
    }
    return hand_over(rs, conn, job_final);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_t *c = conn_of(conn);
    if (c) {
        atomic_store(&c->mark, bytes_received(c->fd));
        atomic_store(&c->waiting, true);
    }
    req_state_t *rs = *con_cls;
    if (!rs)
        return;
    *con_cls = NULL;
    /* A batch still written behind: its job frees the state when it ends. */
    pthread_mutex_lock(&rs->batch_lock);
    bool running = rs->batch_running;
    if (running)
        rs->orphaned = true;
    pthread_mutex_unlock(&rs->batch_lock);
    if (!running)
        free_state(rs);
}

/* Frees a request's state: the end of a request whose connection is done (any thread). */
static void free_state(req_state_t *rs)
{
    if (!rs->logged) {
        /* The connection ended before its answer went out: the client left (nginx's 499). */
        const char *route = rs->route ? rs->route->pattern : "unmatched";
        double secs = elapsed_s(&rs->start);
        ds_metrics_request("http", rs->req.method, route, 499, secs);
        ds_log_request(rs->request_id, rs->req.method, route, 499, secs * 1000.0, rs->req.ctx.project_id, "http");
    }
    release_body(rs);
    ds_buf_free(&rs->pending);
    ds_buf_free(&rs->batch);
    if (rs->answer)
        MHD_destroy_response(rs->answer);
    if (rs->stream_state && rs->route && rs->route->stream)
        rs->route->stream->abort(rs->stream_state);
    /* A streamed write whose client left before its answer: its key is free again, nothing kept. */
    ds_cmd_idem_end(&rs->req.idem, 499, NULL, NULL, 0);
    ds_arena_destroy(&rs->req.ctx.arena);
    pthread_mutex_destroy(&rs->batch_lock);
    free(rs);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    ds_rest_mark_event_loop(); /* libmicrohttpd notifies on the loop that serves the connection */
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_t *c = calloc(1, sizeof(*c));
        if (!c)
            return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        atomic_store(&c->waiting, true);
        pthread_mutex_lock(&conns_lock);
        c->next = conns;
        if (conns)
            conns->prev = c;
        conns = c;
        n_conns++;
        pthread_mutex_unlock(&conns_lock);
        *socket_context = c;
        return;
    }
    conn_t *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n_conns--;
    pthread_mutex_unlock(&conns_lock);
    free(c);
    *socket_context = NULL;
}

/*
 * A request that waited for a worker past the wait its client allows
 * (Prefer: wait) is answered 429 without running: the client would give up
 * on it, and its work would only push the requests behind it further back.
 * Sweeper thread; the job never started, so its state is the sweeper's.
 */
static void job_expired(void *arg)
{
    req_state_t *rs = arg;
    ds_err_set(&rs->req.ctx.err, DS_QUEUE_FULL,
               "the server is busy: the request waited %.1f s for a worker, as long as its client allows (Prefer: "
               "wait); nothing was done; retry later",
               elapsed_s(&rs->start));
    build_error(rs, &rs->req.ctx.err);
    finish_job(rs);
}

/* How often the sweeper answers requests whose wait ran out (it checks headers every second). */
#define EXPIRE_EVERY_MS 100

/*
 * Every 100 ms answers the requests whose wait ran out (job_expired); once a
 * second closes connections that began a request but did not finish its
 * headers in time.
 */
static void *sweeper_main(void *arg)
{
    struct timespec last_check = {0};
    pthread_mutex_lock(&conns_lock);
    while (!sweeper_stop) {
        struct timespec now, until;
        clock_gettime(CLOCK_MONOTONIC, &now);
        pthread_mutex_unlock(&conns_lock);
        ds_pool_expire(pool, (double)now.tv_sec + (double)now.tv_nsec / 1e9, job_expired);
        pthread_mutex_lock(&conns_lock);
        if (now.tv_sec == last_check.tv_sec || sweeper_stop)
            goto sleep;
        last_check = now;
        int64_t closed = 0;
        for (conn_t *c = conns; c; c = c->next) {
            if (!atomic_load(&c->waiting) || c->fd < 0 || c->cut) {
                c->seen = false;
                continue;
            }
            /*
             * A busy keep-alive connection is between requests at most looks: the
             * mark tells whether it is still the same wait, or requests ended since.
             */
            unsigned long long mark = atomic_load(&c->mark);
            if (c->seen && mark != c->seen_mark)
                c->seen = false;
            if (!c->seen) {
                if (bytes_received(c->fd) > mark) {
                    c->seen = true;
                    c->seen_mark = mark;
                    c->first_byte = now;
                }
                continue;
            }
            if (now.tv_sec - c->first_byte.tv_sec >= header_timeout_s) {
                /* The event thread sees end-of-stream and closes it; the fd stays its to close. */
                shutdown(c->fd, SHUT_RDWR);
                c->seen = false;
                c->cut = true;
                closed++;
            }
        }
        if (closed)
            ds_log(DS_LOG_INFO, "http: closed %lld connection(s) that did not send their headers within %llds",
                   (long long)closed, (long long)header_timeout_s);
    sleep:
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += EXPIRE_EVERY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sweeper_cond, &conns_lock, &until);
    }
    pthread_mutex_unlock(&conns_lock);
    return NULL;
}

static int64_t gauge_connections(void *ud)
{
    pthread_mutex_lock(&conns_lock);
    int64_t n = n_conns;
    pthread_mutex_unlock(&conns_lock);
    return n;
}

static int64_t gauge_queued(void *ud) { return pool ? ds_pool_queued(pool) : 0; }
static int64_t gauge_bodies(void *ud) { return ds_bodymem_held(); }
static int64_t gauge_busy(void *ud) { return pool ? ds_pool_running(pool) : 0; }
static int64_t gauge_full_batches(void *ud) { return atomic_load(&full_batches); }

/* Set when the server stops: connections accepted from then on are closed at once. */
static atomic_bool refusing_;

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)cls;
    (void)addr;
    (void)addrlen;
    return atomic_load(&refusing_) ? MHD_NO : MHD_YES;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    ds_log(DS_LOG_WARN, "http: %s", msg);
}

/*
 * Raises the open-file soft limit to the hard limit and returns how many
 * connections fit beside FD_RESERVE other descriptors (at least 16).
 */
static int64_t connections_that_fit(int64_t wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t before = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            ds_log(DS_LOG_INFO, "raised the open-file limit from %llu to %llu", (unsigned long long)before,
                   (unsigned long long)rl.rlim_max);
        else
            rl.rlim_cur = before;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return wanted;
    int64_t fit = (int64_t)rl.rlim_cur > 2 * FD_RESERVE ? (int64_t)rl.rlim_cur - FD_RESERVE : (int64_t)rl.rlim_cur / 2;
    if (fit < 16)
        fit = 16;
    if (wanted > fit) {
        ds_log(DS_LOG_WARN,
               "DUCKSTORE_MAX_CONNECTIONS %lld does not fit the open-file limit %llu (less %d for files); using %lld",
               (long long)wanted, (unsigned long long)rl.rlim_cur, FD_RESERVE, (long long)fit);
        return fit;
    }
    return wanted;
}

/*
 * Starts the workers, the sweeper and the daemon. ss NULL: no listening
 * socket (connections come only through ds_rest_add_connection).
 */
static ds_status_t start_server(const ds_config_t *cfg, unsigned flags, int port, const struct sockaddr_storage *ss,
                                ds_err_t *err)
{
    max_body = cfg->max_json_bytes;
    unauth_body = cfg->unauth_body_bytes;
    ds_bodymem_set_limit(cfg->body_memory);
    header_timeout_s = cfg->header_timeout;
    id_salt = (unsigned long long)time(NULL) * 2654435761ull ^ (unsigned long long)getpid();
    int64_t max_conns = connections_that_fit(cfg->max_connections);
    pool = ds_pool_create((int)cfg->http_workers, (int)cfg->http_project_workers, "http-work", err);
    if (!pool)
        return err->status;
    sweeper_stop = false;
    if (pthread_create(&sweeper, NULL, sweeper_main, NULL) != 0) {
        ds_pool_destroy(&pool);
        return ds_err_set(err, DS_INTERNAL, "cannot start the HTTP connection sweeper thread");
    }
    sweeper_running = true;
    pthread_setname_np(sweeper, "http-sweep");
    /* A pool of one thread is no pool: libmicrohttpd then runs the single event loop itself. */
    unsigned pool_size = cfg->http_threads > 1 ? (unsigned)cfg->http_threads : 0;
    if (!ss)
        flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    atomic_store(&refusing_, false);
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)port, accept_policy, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
        MHD_OPTION_THREAD_POOL_SIZE, pool_size, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
        ss ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, ss, MHD_OPTION_END);
    if (!daemon_) {
        ds_rest_stop();
        return ds_err_set(err, DS_UNAVAILABLE, "cannot listen on %s (address in use or not permitted)",
                          cfg->http_addr);
    }
    ds_metrics_gauge("duckstore_http_connections", "Open HTTP connections.", gauge_connections, NULL);
    ds_metrics_gauge("duckstore_http_requests_queued", "HTTP requests waiting for a worker.", gauge_queued, NULL);
    ds_metrics_gauge("duckstore_http_body_bytes", "Bytes of request bodies held in memory now: REST, bridge and gRPC (DUCKSTORE_BODY_MEMORY).",
                     gauge_bodies, NULL);
    ds_metrics_gauge("duckstore_http_workers_busy", "HTTP workers running a request.", gauge_busy, NULL);
    ds_metrics_gauge("duckstore_http_event_loop_full_batches_total",
                     "Times an HTTP event loop's epoll_wait returned a full batch of events (the next one then does "
                     "not wait).",
                     gauge_full_batches, NULL);
    /* libmicrohttpd binds epoll_wait in the global scope: it must find this file's, or a full batch stalls a loop. */
    if (dlsym(RTLD_DEFAULT, "epoll_wait") != (void *)epoll_wait)
        ds_log(DS_LOG_WARN, "http: libmicrohttpd does not use duckstore's epoll_wait (the executable does not "
                            "export it): an event loop handed 128 ready connections at once may stall until a "
                            "timeout");
    ds_log(DS_LOG_INFO,
           "http: %lld event-loop thread(s), %lld workers (at most %lld per project), up to %lld connections "
           "(%lld per address)",
           (long long)(pool_size ? pool_size : 1), (long long)cfg->http_workers,
           (long long)(cfg->http_project_workers < cfg->http_workers ? cfg->http_project_workers : cfg->http_workers),
           (long long)max_conns, (long long)cfg->max_connections_per_ip);
    return DS_OK;
}

ds_status_t ds_rest_start(const ds_config_t *cfg, ds_err_t *err)
{
    char host[256];
    int port;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!ds_parse_addr(cfg->http_addr, host, sizeof(host), &port))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_HTTP_ADDR: cannot parse \"%s\"", cfg->http_addr);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        return ds_err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_HTTP_ADDR: \"%s\" is not an IP address", host);
    }
    return start_server(cfg, flags, port, &ss, err);
}

ds_status_t ds_rest_start_unlistened(const ds_config_t *cfg, ds_err_t *err)
{
    return start_server(cfg, MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
                        err);
}

ds_status_t ds_rest_add_connection(int fd, const struct sockaddr *peer, socklen_t peer_len, ds_err_t *err)
{
    if (!daemon_ || MHD_add_connection(daemon_, fd, peer, peer_len) != MHD_YES)
        return ds_err_set(err, DS_UNAVAILABLE, "the HTTP server did not take the connection");
    return DS_OK;
}

int64_t ds_rest_connections(void) { return gauge_connections(NULL); }

int64_t ds_rest_at_work(void) { return gauge_queued(NULL) + gauge_busy(NULL) + atomic_load(&n_parked); }

void ds_rest_stop(void)
{
    /*
     * Order matters: stop accepting; let every queued and running request
     * finish and resume its connection (later ones are refused with 503), and
     * every parked one be answered; only then stop the event loops, which
     * must find no suspended connection.
     */
    /*
     * Not MHD_quiesce_daemon: with epoll event loops it takes the listening
     * socket out of each loop's epoll set from this thread, racing a loop
     * that does the same at its connection limit, and libmicrohttpd aborts
     * the process when that removal fails. New connections are refused by
     * the accept policy instead.
     */
    atomic_store(&refusing_, true);
    /* The sweeper first: it may take a queued request out of the pool to answer it. */
    if (sweeper_running) {
        pthread_mutex_lock(&conns_lock);
        sweeper_stop = true;
        pthread_cond_signal(&sweeper_cond);
        pthread_mutex_unlock(&conns_lock);
        pthread_join(sweeper, NULL);
        sweeper_running = false;
    }
    ds_pool_shutdown(pool);
    /*
     * A parked request's connection is suspended too: its grant comes when
     * the slot's holder (a gRPC call, say) leaves, and, the pool refusing it
     * now, answers it 503 and resumes it.
     */
    pthread_mutex_lock(&parked_lock);
    while (atomic_load(&n_parked) > 0)
        pthread_cond_wait(&parked_cond, &parked_lock);
    pthread_mutex_unlock(&parked_lock);
    if (daemon_) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
    }
    ds_pool_destroy(&pool);
}
