/*
 * server.c - the HTTP server (libmicrohttpd) and request lifecycle.
 *
 * One request state per HTTP request: created on the first callback, fed the
 * body, dispatched on the last callback, freed in the completion callback
 * (which destroys the arena and so releases any write slot still held).
 * Bodies beyond the limit are read and discarded, then answered with 413.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "rest/rest.h"

typedef struct {
    ds_rest_req_t req;
    const ds_rest_route_t *route;
    bool method_mismatch;
    struct timespec start;
    ds_buf_t body;
    bool too_large;
    void *stream_state;  /* for streaming routes */
    bool stream_failed;  /* the error is in req.ctx.err; the rest of the body is discarded */
    bool stream_started;
    bool nul_in_url;     /* the URL decodes to a NUL byte: refused before anything runs */
    char request_id[40];
} req_state_t;

static struct MHD_Daemon *daemon_;
static int64_t max_body;
static atomic_ullong next_id;
static unsigned long long id_salt;

/*
 * Set when the URL of the request being parsed on this thread (every
 * connection has its own thread) decoded a %00. C strings would silently cut
 * the path or a parameter there ("tables/t%00x" naming table "t"), so such a
 * request is refused as a whole. Read and reset by the request's first call.
 */
static _Thread_local bool url_had_nul;

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

/* MHD's unescaper (%XX decoding, anything else kept as is), noting a decoded NUL. */
static size_t unescape_url(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0) {
            *w = (char)(hi * 16 + lo);
            if (*w == '\0')
                url_had_nul = true;
            w++;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

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

static const char *presented_key(struct MHD_Connection *conn)
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

static enum MHD_Result send_response(req_state_t *rs, struct MHD_Connection *conn, int status, ds_rest_resp_t *resp)
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
    struct MHD_Response *r;
    if (resp->fd > 0) {
        ctype = resp->content_type ? resp->content_type : "application/octet-stream";
        r = MHD_create_response_from_fd64((uint64_t)resp->fd_size, resp->fd);
        if (!r) {
            close(resp->fd);
            return MHD_NO;
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
            return MHD_NO;
        }
    }
    if (len)
        MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Request-Id", rs->request_id);
    for (int i = 0; i < resp->n_headers && i < DS_REST_MAX_HEADERS; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    if (status == 405 && rs->req.allow)
        MHD_add_response_header(r, "Allow", rs->req.allow);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    const char *route = rs->route ? rs->route->pattern : "unmatched";
    double secs = elapsed_s(&rs->start);
    ds_metrics_request("http", rs->req.method, route, status, secs);
    ds_log_request(rs->request_id, rs->req.method, route, status, secs * 1000.0, rs->req.ctx.project_id, "http");
    return ret;
}

static enum MHD_Result send_error(req_state_t *rs, struct MHD_Connection *conn, const ds_err_t *err)
{
    ds_rest_resp_t resp = {.json = error_json(err)};
    return send_response(rs, conn, ds_status_http(err->status), &resp);
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

static enum MHD_Result dispatch(req_state_t *rs, struct MHD_Connection *conn)
{
    ds_rest_req_t *req = &rs->req;
    ds_err_t *err = &req->ctx.err;
    if (rs->nul_in_url)
        return send_error(rs, conn, err);
    if (!rs->route) {
        if (rs->method_mismatch)
            ds_err_set(err, DS_METHOD_NOT_ALLOWED, "method %s is not allowed on %s (allowed: %s)", req->method,
                       req->path, req->allow ? req->allow : "");
        else if (req->branch && strcmp(req->branch, "default") != 0)
            ds_err_set(err, DS_NOT_FOUND, "branch \"%s\" not found (this server has only the default branch)",
                       req->branch);
        else
            ds_err_set(err, DS_NOT_FOUND, "no route for %s %s", req->method, req->path);
        return send_error(rs, conn, err);
    }
    if (rs->route->stream) {
        const ds_rest_stream_t *sr = rs->route->stream;
        ds_rest_resp_t resp = {0};
        if (!rs->stream_started && !rs->stream_failed) {
            rs->stream_started = true;
            if (sr->begin(req, &rs->stream_state) != DS_OK)
                rs->stream_failed = true;
        }
        if (!rs->stream_failed) {
            void *state = rs->stream_state;
            rs->stream_state = NULL; /* finish owns it now */
            if (sr->finish(req, state, &resp) == DS_OK)
                return send_response(rs, conn, resp.status ? resp.status : 200, &resp);
            json_decref(resp.json);
            free(resp.raw);
        }
        if (err->status == DS_OK)
            ds_err_set(err, DS_INTERNAL, "upload failed");
        return send_error(rs, conn, err);
    }
    if (rs->too_large) {
        ds_err_set(err, DS_PAYLOAD_TOO_LARGE, "request body is larger than DUCKSTORE_MAX_JSON_BYTES (%lld bytes)",
                   (long long)max_body);
        return send_error(rs, conn, err);
    }
    if (ds_buf_failed(&rs->body)) {
        ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the request body");
        return send_error(rs, conn, err);
    }
    req->body = rs->body.data ? rs->body.data : "";
    req->body_len = rs->body.len;
    ds_rest_resp_t resp = {0};
    ds_status_t st = rs->route->handler(req, &resp);
    if (st != DS_OK) {
        json_decref(resp.json);
        free(resp.raw);
        if (err->status == DS_OK)
            ds_err_set(err, st, "%s", ds_status_code(st));
        return send_error(rs, conn, err);
    }
    return send_response(rs, conn, resp.status ? resp.status : 200, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    req_state_t *rs = *con_cls;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rs->start);
        rs->req.ctx.arena = ds_arena_create();
        if (!rs->req.ctx.arena) {
            free(rs);
            return MHD_NO;
        }
        make_request_id(rs, conn);
        rs->req.ctx.request_id = rs->request_id;
        rs->req.ctx.key = presented_key(conn);
        rs->req.method = ds_arena_strdup(rs->req.ctx.arena, method);
        rs->req.path = ds_arena_strdup(rs->req.ctx.arena, url);
        rs->req.conn = conn;
        rs->nul_in_url = url_had_nul;
        url_had_nul = false;
        if (rs->nul_in_url) {
            ds_err_set(&rs->req.ctx.err, DS_INVALID_ARGUMENT,
                       "the URL contains an encoded NUL byte (%%00), which no name, key or parameter may contain");
            rs->stream_failed = true;
        }
        rs->route = ds_rest_match(method, rs->req.path, &rs->req, &rs->method_mismatch);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > max_body && !(rs->route && rs->route->stream))
            rs->too_large = true;
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
        if (!rs->stream_failed &&
            sr->chunk(&rs->req, rs->stream_state, upload_data, *upload_data_size) != DS_OK)
            rs->stream_failed = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_large && (int64_t)(rs->body.len + *upload_data_size) > max_body) {
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state_t *rs = *con_cls;
    if (!rs)
        return;
    ds_buf_free(&rs->body);
    if (rs->stream_state && rs->route && rs->route->stream)
        rs->route->stream->abort(rs->stream_state);
    ds_arena_destroy(&rs->req.ctx.arena);
    free(rs);
    *con_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    ds_log(DS_LOG_WARN, "http: %s", msg);
}

ds_status_t ds_rest_start(const ds_config_t *cfg, ds_err_t *err)
{
    char host[256];
    int port;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!ds_parse_addr(cfg->http_addr, host, sizeof(host), &port))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_HTTP_ADDR: cannot parse \"%s\"", cfg->http_addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    socklen_t sl;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sl = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*in6);
        flags |= MHD_USE_IPv6;
    } else {
        return ds_err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_HTTP_ADDR: \"%s\" is not an IP address", host);
    }
    (void)sl;
    max_body = cfg->max_json_bytes;
    id_salt = (unsigned long long)time(NULL) * 2654435761ull ^ (unsigned long long)getpid();
    daemon_ = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &ss,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
                               (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                               MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
                               unescape_url, NULL, MHD_OPTION_END);
    if (!daemon_)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot listen on %s (address in use or not permitted)",
                          cfg->http_addr);
    return DS_OK;
}

void ds_rest_stop(void)
{
    if (!daemon_)
        return;
    MHD_quiesce_daemon(daemon_);
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
