/*
 * fuzz_rest.c - the REST API end to end, without a network: request line,
 * query string, headers and body of any route, through libmicrohttpd's HTTP
 * parsing, the router (src/rest/router.c), the body parser (json.c), the route
 * handlers' field readers and the commands behind them, which run for real
 * against the service core on a temporary data directory (fuzz_util.h).
 * Uploads take the streaming path, multipart/form-data bodies included
 * (libmicrohttpd's post processor feeding src/rest/files.c).
 *
 * HOW
 * A libmicrohttpd daemon without a listening socket gets one end of a
 * socketpair per input (MHD_add_connection); the harness writes the request
 * to the other end and reads the answer until the daemon closes. The request
 * state, route match, body and stream handling below follow src/rest/server.c
 * (whose functions are static), which this harness replaces at link time: it
 * provides ds_rest_query/header/param the way server.c does.
 *
 * INPUT: "METHOD target\n", then header lines "Name: value\n", an empty line
 * and the body. Host, Connection: close and Content-Length are added; the
 * admin key is sent as a bearer token unless the input carries its own
 * Authorization or X-StorageApi-Token header. FUZZ_VERBOSE=1 prints the
 * start of each answer (to check that seeds reach the handlers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "fuzz_util.h"
#include "rest/rest.h"

typedef struct {
    ds_rest_req_t req;
    const ds_rest_route_t *route;
    bool method_mismatch;
    ds_buf_t body;
    bool too_large;
    void *stream_state;
    bool stream_started, stream_failed;
} fr_state_t;

static struct MHD_Daemon *daemon_;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static unsigned long started, completed;


/* Sends resp (consumed) or, when it is empty, the error in the request's context. */
static enum MHD_Result answer(fr_state_t *rs, struct MHD_Connection *conn, int status, ds_rest_resp_t *resp)
{
    char *data = NULL;
    size_t len = 0;
    if (resp->json) {
        data = json_dumps(resp->json, JSON_COMPACT);
        json_decref(resp->json);
        if (!data)
            abort(); /* a handler built JSON that cannot be written */
        len = strlen(data);
    } else if (resp->raw) {
        data = resp->raw;
        len = resp->raw_len;
    } else if (status >= 400) {
        const ds_err_t *err = &rs->req.ctx.err;
        json_t *msg = json_string(err->message[0] ? err->message : ds_status_code(err->status));
        json_t *e = json_pack("{s:{s:s,s:o}}", "error", "code", ds_status_code(err->status), "message",
                              msg ? msg : json_string("(message was not valid UTF-8)"));
        data = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        len = data ? strlen(data) : 0;
    }
    if (resp->fd > 0)
        close(resp->fd);
    resp->fd = 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, data ? data : "", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fail(fr_state_t *rs, struct MHD_Connection *conn)
{
    ds_rest_resp_t resp = {0};
    if (rs->req.ctx.err.status == DS_OK)
        ds_err_set(&rs->req.ctx.err, DS_INTERNAL, "failed without an error");
    return answer(rs, conn, ds_status_http(rs->req.ctx.err.status), &resp);
}

static enum MHD_Result dispatch(fr_state_t *rs, struct MHD_Connection *conn)
{
    ds_rest_req_t *req = &rs->req;
    ds_err_t *err = &req->ctx.err;
    if (!rs->route) {
        ds_err_set(err, rs->method_mismatch ? DS_METHOD_NOT_ALLOWED : DS_NOT_FOUND, "no route");
        return fail(rs, conn);
    }
    ds_rest_resp_t resp = {0};
    if (rs->route->stream) {
        const ds_rest_stream_t *sr = rs->route->stream;
        if (!rs->stream_started && !rs->stream_failed) {
            rs->stream_started = true;
            if (sr->begin(req, &rs->stream_state) != DS_OK)
                rs->stream_failed = true;
        }
        if (!rs->stream_failed) {
            void *state = rs->stream_state;
            rs->stream_state = NULL;
            if (sr->finish(req, state, &resp) == DS_OK)
                return answer(rs, conn, resp.status ? resp.status : 200, &resp);
            json_decref(resp.json);
            free(resp.raw);
            resp = (ds_rest_resp_t){0};
        }
        return fail(rs, conn);
    }
    if (rs->too_large) {
        ds_err_set(err, DS_PAYLOAD_TOO_LARGE, "request body too large");
        return fail(rs, conn);
    }
    if (ds_buf_failed(&rs->body)) {
        ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the request body");
        return fail(rs, conn);
    }
    req->body = rs->body.data ? rs->body.data : "";
    req->body_len = rs->body.len;
    ds_status_t st = rs->route->handler(req, &resp);
    if (st != DS_OK) {
        json_decref(resp.json);
        free(resp.raw);
        if (resp.fd > 0)
            close(resp.fd);
        if (err->status == DS_OK)
            ds_err_set(err, st, "%s", ds_status_code(st));
        return fail(rs, conn);
    }
    return answer(rs, conn, resp.status ? resp.status : 200, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    fr_state_t *rs = *con_cls;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        rs->req.ctx.arena = ds_arena_create();
        rs->req.ctx.request_id = "fuzz";
        rs->req.ctx.key = ds_rest_presented_key(conn);
        rs->req.method = ds_arena_strdup(rs->req.ctx.arena, method);
        rs->req.path = ds_arena_strdup(rs->req.ctx.arena, url);
        rs->req.conn = conn;
        rs->route = ds_rest_match(method, rs->req.path, &rs->req, &rs->method_mismatch);
        *con_cls = rs;
        return MHD_YES;
    }
    if (*upload_data_size && rs->route && rs->route->stream) {
        const ds_rest_stream_t *sr = rs->route->stream;
        if (!rs->stream_started && !rs->stream_failed) {
            rs->stream_started = true;
            if (sr->begin(&rs->req, &rs->stream_state) != DS_OK)
                rs->stream_failed = true;
        }
        if (!rs->stream_failed && sr->chunk(&rs->req, rs->stream_state, upload_data, *upload_data_size) != DS_OK)
            rs->stream_failed = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_large && (int64_t)(rs->body.len + *upload_data_size) > fz_cfg.max_json_bytes) {
            rs->too_large = true;
            ds_buf_free(&rs->body);
        }
        if (!rs->too_large)
            ds_buf_append(&rs->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(rs, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    fr_state_t *rs = *con_cls;
    if (rs) {
        ds_buf_free(&rs->body);
        if (rs->stream_state && rs->route && rs->route->stream)
            rs->route->stream->abort(rs->stream_state);
        ds_arena_destroy(&rs->req.ctx.arena);
        free(rs);
        *con_cls = NULL;
    }
}

/* Counts connections in and out, so an input ends only when the daemon let go of everything it held. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code != MHD_CONNECTION_NOTIFY_CLOSED)
        return;
    pthread_mutex_lock(&done_mu);
    completed++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void start(void)
{
    signal(SIGPIPE, SIG_IGN);
    fz_service();
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC, 0, NULL,
                               NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                               MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)30, MHD_OPTION_END);
    if (!daemon_) {
        fprintf(stderr, "fuzz: cannot start libmicrohttpd\n");
        abort();
    }
}

/* Appends the input's line [p, end) without CR or LF bytes. */
static void line(ds_buf_t *b, const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != '\r' && *p != '\n')
            ds_buf_append(b, p, 1);
}

/* Builds the HTTP request for the input; returns false when the input has no request line. */
static bool build(const uint8_t *data, size_t size, ds_buf_t *out)
{
    const char *s = (const char *)data, *end = s + size;
    const char *nl = memchr(s, '\n', size);
    if (!nl || nl == s)
        return false;
    line(out, s, nl);
    ds_buf_printf(out, "%s", " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    bool has_key = false;
    const char *p = nl + 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        if (e == p || (e == p + 1 && *p == '\r')) {
            p = e + 1;
            break;
        }
        if (memchr(p, ':', (size_t)(e - p))) {
            if ((e - p > 14 && strncasecmp(p, "Authorization:", 14) == 0) ||
                (e - p > 19 && strncasecmp(p, "X-StorageApi-Token:", 19) == 0))
                has_key = true;
            if (!(e - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)) {
                line(out, p, e);
                ds_buf_printf(out, "%s", "\r\n");
            }
        }
        p = e + 1;
    }
    if (!has_key)
        ds_buf_printf(out, "%s", "Authorization: Bearer " FZ_ADMIN "\r\n");
    size_t body = p < end ? (size_t)(end - p) : 0;
    ds_buf_printf(out, "Content-Length: %zu\r\n\r\n", body);
    if (body)
        ds_buf_append(out, p, body);
    return !ds_buf_failed(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long runs;
    if (runs++ == 0)
        start();
    else if (runs % 32 == 0)
        fz_fixture();
    ds_buf_t http = {0};
    if (!build(data, size, &http)) {
        ds_buf_free(&http);
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pthread_mutex_lock(&done_mu);
    unsigned long want = ++started;
    pthread_mutex_unlock(&done_mu);
    if (MHD_add_connection(daemon_, sv[1], (const struct sockaddr *)&peer, sizeof(peer)) != MHD_YES)
        abort();
    /* Write and read at once: the daemon may answer (and close) before it read the whole body. */
    size_t off = 0, got = 0;
    char buf[65536], head[200];
    bool eof = false;
    while (!eof) {
        struct pollfd pfd = {.fd = sv[0], .events = POLLIN | (off < http.len ? POLLOUT : 0)};
        if (poll(&pfd, 1, 60000) <= 0)
            abort(); /* no answer within a minute: a hang */
        if (pfd.revents & POLLIN || pfd.revents & POLLHUP) {
            ssize_t n = read(sv[0], buf, sizeof(buf));
            if (n <= 0)
                eof = true;
            else if (got < sizeof(head) - 1) {
                size_t k = (size_t)n < sizeof(head) - 1 - got ? (size_t)n : sizeof(head) - 1 - got;
                memcpy(head + got, buf, k);
                got += k;
            }
        }
        if (!eof && off < http.len && pfd.revents & POLLOUT) {
            ssize_t n = send(sv[0], http.data + off, http.len - off, MSG_NOSIGNAL);
            if (n < 0)
                off = http.len; /* the daemon closed its end early: nothing more to send */
            else
                off += (size_t)n;
            if (off >= http.len)
                shutdown(sv[0], SHUT_WR);
        }
        if (pfd.revents & (POLLERR | POLLNVAL))
            eof = true;
    }
    close(sv[0]);
    if (getenv("FUZZ_VERBOSE")) { /* the answer's status line and start, to check seeds reach the handlers */
        head[got] = '\0';
        fprintf(stderr, "fuzz_rest: %s\n", head);
    }
    pthread_mutex_lock(&done_mu);
    while (completed < want)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
    ds_buf_free(&http);
    return 0;
}
