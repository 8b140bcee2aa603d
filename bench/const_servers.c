/*
 * const_servers.c - the transport limits: the same HTTP and gRPC libraries
 * duckstore uses, answering a constant.
 *
 * DESIGN
 * HTTP: libmicrohttpd with duckstore's own event model (epoll on a pool of
 * two event-loop threads, DUCKSTORE_HTTP_THREADS' default), answering on the
 * event thread (no worker hand-over); every request is answered 200 with a
 * body captured from duckstore's real answer to the same request (the
 * ObjectInfo JSON, or the preview JSON when the path ends in /preview), so
 * the limit moves the same bytes and only the work behind them is missing.
 *
 * gRPC: the gRPC C core with duckstore's poller count; each Execute is read
 * and answered on the poller with a captured DriverResponse (the preview one
 * when the request names PreviewTableCommand). Nothing runs on other threads:
 * this is what the library can do, not a model of duckstore's design.
 */
#include "bench.h"
#include "rest/rest.h"

#include <arpa/inet.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- HTTP ---- */

static struct MHD_Daemon *http_daemon;
static char *http_oi, *http_pv;
static size_t http_oi_len, http_pv_len;

/* libmicrohttpd notifies on the loop that serves the connection: mark it (ds_rest_mark_event_loop). */
static void on_http_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                               enum MHD_ConnectionNotificationCode code)
{
    ds_rest_mark_event_loop();
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*upload_size) { /* a body is read and ignored */
        *upload_size = 0;
        return MHD_YES;
    }
    size_t ul = strlen(url);
    bool preview = ul >= 8 && strcmp(url + ul - 8, "/preview") == 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(preview ? http_pv_len : http_oi_len,
                                                             preview ? http_pv : http_oi, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    (void)con_cls;
    return ret;
}

int bench_const_http_start(const char *objectinfo_body, size_t oi_len, const char *preview_body, size_t pv_len)
{
    http_oi = bench_xmalloc(oi_len);
    memcpy(http_oi, objectinfo_body, oi_len);
    http_oi_len = oi_len;
    http_pv = bench_xmalloc(pv_len);
    memcpy(http_pv, preview_body, pv_len);
    http_pv_len = pv_len;
    int port = bench_free_port();
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
    /* Its loops get duckstore's epoll_wait fix too (src/rest/server.c), so the limit is the same library's. */
    http_daemon = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, on_http, NULL,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_http_connection, NULL,
                                   MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)16384, MHD_OPTION_CONNECTION_TIMEOUT,
                                   (unsigned)60, MHD_OPTION_END);
    if (!http_daemon)
        bench_die("cannot start the constant HTTP server on port %d", port);
    return port;
}

void bench_const_http_stop(void)
{
    if (http_daemon)
        MHD_stop_daemon(http_daemon);
    http_daemon = NULL;
    free(http_oi);
    free(http_pv);
    http_oi = http_pv = NULL;
}

/* ---- gRPC ---- */

#define POLLERS 4 /* duckstore's DS_GRPC_POLLERS */
#define PENDING 16

typedef enum { C_NEW, C_RECV, C_DONE } cphase_t;

typedef struct {
    cphase_t phase;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    int cancelled;
} ccall_t;

static grpc_server *g_server;
static grpc_completion_queue *g_cq;
static pthread_t g_pollers[POLLERS];
static grpc_slice g_oi, g_pv;
static int g_shutdown_tag;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_stopping, g_shutdown_done;

static void cfree(ccall_t *c)
{
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
}

static void arm(void)
{
    ccall_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    c->phase = C_NEW;
    if (grpc_server_request_call(g_server, &c->call, &c->details, &c->md, g_cq, g_cq, c) != GRPC_CALL_OK)
        cfree(c);
}

/* True when the request's bytes name PreviewTableCommand (its Any type URL). */
static bool is_preview(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    bool found = false;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
        return false;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    found = memmem(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), "PreviewTableCommand", 19) != NULL;
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&r);
    return found;
}

static void on_event(ccall_t *c, int success)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    switch (c->phase) {
    case C_NEW:
        if (!success) {
            cfree(c);
            return;
        }
        pthread_mutex_lock(&g_mu);
        bool stopping = g_stopping;
        pthread_mutex_unlock(&g_mu);
        if (!stopping)
            arm();
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &c->payload;
        c->phase = C_RECV;
        if (grpc_call_start_batch(c->call, ops, 1, c, NULL) != GRPC_CALL_OK)
            cfree(c);
        return;
    case C_RECV: {
        if (!success) {
            cfree(c);
            return;
        }
        grpc_slice s = is_preview(c->payload) ? g_pv : g_oi;
        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = c->reply;
        ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
        c->phase = C_DONE;
        if (grpc_call_start_batch(c->call, ops, 4, c, NULL) != GRPC_CALL_OK)
            cfree(c);
        return;
    }
    case C_DONE:
        cfree(c);
        return;
    }
}

static void *poll_loop(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &g_shutdown_tag) {
            pthread_mutex_lock(&g_mu);
            g_shutdown_done = true;
            pthread_cond_broadcast(&g_cv);
            pthread_mutex_unlock(&g_mu);
            continue;
        }
        on_event(ev.tag, ev.success);
    }
}

int bench_const_grpc_start(const uint8_t *objectinfo_resp, size_t oi_len, const uint8_t *preview_resp, size_t pv_len)
{
    g_oi = grpc_slice_from_copied_buffer((const char *)objectinfo_resp, oi_len);
    g_pv = grpc_slice_from_copied_buffer((const char *)preview_resp, pv_len);
    g_stopping = false;
    g_shutdown_done = false;
    g_server = grpc_server_create(NULL, NULL);
    g_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g_server, g_cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(g_server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    if (port == 0)
        bench_die("cannot start the constant gRPC server");
    grpc_server_start(g_server);
    for (int i = 0; i < PENDING; i++)
        arm();
    for (int i = 0; i < POLLERS; i++)
        if (pthread_create(&g_pollers[i], NULL, poll_loop, NULL) != 0)
            bench_die("cannot start the constant gRPC server's threads");
    return port;
}

void bench_const_grpc_stop(void)
{
    if (!g_server)
        return;
    pthread_mutex_lock(&g_mu);
    g_stopping = true;
    pthread_mutex_unlock(&g_mu);
    grpc_server_shutdown_and_notify(g_server, g_cq, &g_shutdown_tag);
    grpc_server_cancel_all_calls(g_server);
    /* The pollers free every call as its completion arrives, the armed requests included. */
    pthread_mutex_lock(&g_mu);
    while (!g_shutdown_done)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    grpc_server_destroy(g_server);
    grpc_completion_queue_shutdown(g_cq);
    for (int i = 0; i < POLLERS; i++)
        pthread_join(g_pollers[i], NULL);
    grpc_completion_queue_destroy(g_cq);
    grpc_slice_unref(g_oi);
    grpc_slice_unref(g_pv);
    g_server = NULL;
    g_cq = NULL;
}
