/*
 * server.c - the gRPC server (gRPC C core) for StorageDriverService/Execute.
 *
 * DESIGN
 * One completion queue, served by DS_GRPC_POLLERS poller threads. Each call is
 * a call_t that moves through three phases, each ended by one completion:
 *   NEW   grpc_server_request_call finished: a call arrived. A fresh request
 *         is armed at once (DS_GRPC_PENDING stay armed), then the method is
 *         checked (anything but Execute: UNIMPLEMENTED) and the request
 *         message is read (RECV_MESSAGE).
 *   RECV  the message is in: the command runs on a thread of its own (an
 *         executor), because commands block (write queues, long imports) and
 *         must never hold a poller; other calls keep flowing. At most
 *         DS_GRPC_MAX_INFLIGHT commands run at once; beyond that a call is
 *         answered RESOURCE_EXHAUSTED instead of waiting.
 *   DONE  the executor sent initial metadata, the DriverResponse, the status
 *         and trailing metadata in one batch; its completion (on a poller)
 *         logs the call and frees it.
 *
 * Shutdown (ds_grpc_stop): stop arming requests, grpc_server_shutdown_and_notify,
 * wait until no executor runs (a command in progress always finishes, as on
 * the REST side), give the remaining calls a grace period, cancel what is
 * left (e.g. a client that never sent its message), then drain and destroy.
 *
 * Invariants: calls_ counts live call_t (including armed requests), inflight_
 * counts running executors; both are guarded by mu_, and ds_grpc_stop returns
 * only when both are 0, so no command runs after it.
 */
#include <grpc/grpc.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "grpc/dispatch.h"

#define DS_GRPC_POLLERS 4
#define DS_GRPC_PENDING 16
#define DS_GRPC_MAX_INFLIGHT 1024
#define DS_GRPC_GRACE_S 5

typedef enum { PHASE_NEW, PHASE_RECV, PHASE_DONE } phase_t;

typedef struct {
    phase_t phase;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    bool has_status_details;
    grpc_metadata initial[1];
    size_t n_initial;
    grpc_metadata trailing[1];
    size_t n_trailing;
    int cancelled;
    struct timespec start;
    /* for the access log and metrics */
    const char *route; /* static: the command's full name, or a fixed label */
    int http_status;   /* the HTTP equivalent of the status, so logs read alike across transports */
    char project[128];
    char request_id[40];
} call_t;

static grpc_server *server_;
static grpc_completion_queue *cq_;
static pthread_t pollers_[DS_GRPC_POLLERS];
static int n_pollers_;
static pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_ = PTHREAD_COND_INITIALIZER;
static int calls_;
static int inflight_;
static bool stopping_;
static bool shutdown_done_;
static int shutdown_tag_;
static atomic_ullong next_id_;
static unsigned long long id_salt_;

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* gRPC's own log lines, as our JSON log lines. */
static void on_grpc_log(gpr_log_func_args *args)
{
    ds_log_level_t level = args->severity == GPR_LOG_SEVERITY_ERROR ? DS_LOG_WARN : DS_LOG_DEBUG;
    ds_log(level, "grpc: %s", args->message ? args->message : "");
}

static void free_call(call_t *c)
{
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    if (c->has_status_details)
        grpc_slice_unref(c->status_details);
    for (size_t i = 0; i < c->n_initial; i++) {
        grpc_slice_unref(c->initial[i].key);
        grpc_slice_unref(c->initial[i].value);
    }
    for (size_t i = 0; i < c->n_trailing; i++) {
        grpc_slice_unref(c->trailing[i].key);
        grpc_slice_unref(c->trailing[i].value);
    }
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
    pthread_mutex_lock(&mu_);
    calls_--;
    pthread_cond_broadcast(&cv_);
    pthread_mutex_unlock(&mu_);
}

/* Arms one grpc_server_request_call (a slot for the next incoming call). */
static void request_new(void)
{
    call_t *c = calloc(1, sizeof(*c));
    if (!c) {
        ds_log(DS_LOG_ERROR, "grpc: out of memory arming a call");
        return;
    }
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    c->phase = PHASE_NEW;
    pthread_mutex_lock(&mu_);
    calls_++;
    pthread_mutex_unlock(&mu_);
    grpc_call_error e = grpc_server_request_call(server_, &c->call, &c->details, &c->md, cq_, cq_, c);
    if (e != GRPC_CALL_OK) {
        ds_log(DS_LOG_ERROR, "grpc: cannot arm a call (error %d)", (int)e);
        free_call(c);
    }
}

/* The client's x-request-id when it is safe to log, else a fresh id. */
static void make_request_id(call_t *c)
{
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (grpc_slice_str_cmp(m->key, "x-request-id") != 0)
            continue;
        size_t n = GRPC_SLICE_LENGTH(m->value);
        const unsigned char *v = GRPC_SLICE_START_PTR(m->value);
        bool ok = n > 0 && n < sizeof(c->request_id);
        for (size_t k = 0; ok && k < n; k++)
            ok = (v[k] >= '0' && v[k] <= '9') || (v[k] >= 'a' && v[k] <= 'z') || (v[k] >= 'A' && v[k] <= 'Z') ||
                 v[k] == '-' || v[k] == '_';
        if (ok) {
            memcpy(c->request_id, v, n);
            c->request_id[n] = '\0';
            return;
        }
    }
    unsigned long long n = atomic_fetch_add(&next_id_, 1);
    snprintf(c->request_id, sizeof(c->request_id), "%08llx%08llx", id_salt_ & 0xffffffffull, n);
}

/*
 * Ends the call: initial metadata (x-request-id), the reply when there is one
 * (taken over by c), the status with its message, and keboola-code when kbc > 0.
 */
static void finish_call(call_t *c, grpc_status_code code, const char *message, int kbc)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    c->initial[0].key = grpc_slice_from_static_string("x-request-id");
    c->initial[0].value = grpc_slice_from_copied_string(c->request_id);
    c->n_initial = 1;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = c->n_initial;
    ops[n].data.send_initial_metadata.metadata = c->initial;
    n++;
    if (c->reply) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->reply;
        n++;
    }
    if (kbc > 0) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", kbc);
        c->trailing[0].key = grpc_slice_from_static_string("keboola-code");
        c->trailing[0].value = grpc_slice_from_copied_string(buf);
        c->n_trailing = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.trailing_metadata_count = c->n_trailing;
    ops[n].data.send_status_from_server.trailing_metadata = c->n_trailing ? c->trailing : NULL;
    if (message && *message) {
        c->status_details = grpc_slice_from_copied_string(message);
        c->has_status_details = true;
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;
    c->phase = PHASE_DONE;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        ds_log(DS_LOG_ERROR, "grpc: cannot finish call %s (error %d)", c->request_id, (int)e);
        free_call(c);
    }
}

/* Copies a received message into one malloc'd block (*data NULL for an empty message). */
static bool read_payload(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
    grpc_byte_buffer_reader r;
    *data = NULL;
    *len = 0;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return false;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n) {
        *data = malloc(n);
        if (!*data) {
            grpc_slice_unref(s);
            return false;
        }
        memcpy(*data, GRPC_SLICE_START_PTR(s), n);
    }
    *len = n;
    grpc_slice_unref(s);
    return true;
}

/* An executor: runs one command and sends its answer. */
static void *execute_call(void *arg)
{
    call_t *c = arg;
    ds_ctx_t ctx = {0};
    ds_driver_result_t r;
    grpc_status_code code;
    uint8_t *data = NULL;
    size_t len = 0;
    char message[sizeof(r.message)];
    int kbc = 0;

    ctx.arena = ds_arena_create();
    ctx.request_id = c->request_id;
    if (!ctx.arena || !c->payload || !read_payload(c->payload, &data, &len)) {
        bool empty = ctx.arena && !c->payload;
        code = empty ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_INTERNAL;
        kbc = ds_status_keboola(empty ? DS_INVALID_ARGUMENT : DS_INTERNAL);
        snprintf(message, sizeof(message), "[%d] %s", kbc,
                 empty ? "the call carried no DriverRequest message" : "out of memory reading the request");
        c->route = DS_DRIVER_METHOD;
        c->http_status = ds_status_http(empty ? DS_INVALID_ARGUMENT : DS_INTERNAL);
    } else {
        ds_driver_execute(&ctx, data, len, &r);
        code = (grpc_status_code)ds_status_grpc(r.status);
        kbc = r.keboola_code;
        snprintf(message, sizeof(message), "%s", r.message);
        c->route = r.command ? r.command : "unknown-command";
        c->http_status = ds_status_http(r.status);
        if (ctx.project_id)
            snprintf(c->project, sizeof(c->project), "%s", ctx.project_id);
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)r.response, r.response_len);
        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    }
    free(data);
    ds_arena_destroy(&ctx.arena);
    finish_call(c, code, message, kbc);

    pthread_mutex_lock(&mu_);
    inflight_--;
    pthread_cond_broadcast(&cv_);
    pthread_mutex_unlock(&mu_);
    return NULL;
}

/* Hands a received call to a new executor thread, or answers RESOURCE_EXHAUSTED. */
static void start_executor(call_t *c)
{
    pthread_attr_t attr;
    pthread_t t;
    bool full;
    pthread_mutex_lock(&mu_);
    full = inflight_ >= DS_GRPC_MAX_INFLIGHT;
    if (!full)
        inflight_++;
    pthread_mutex_unlock(&mu_);
    if (!full) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, execute_call, c);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            return;
        pthread_mutex_lock(&mu_);
        inflight_--;
        pthread_cond_broadcast(&cv_);
        pthread_mutex_unlock(&mu_);
    }
    char msg[128];
    int kbc = ds_status_keboola(DS_QUEUE_FULL);
    snprintf(msg, sizeof(msg), "[%d] too many calls in progress (%d); retry later", kbc, DS_GRPC_MAX_INFLIGHT);
    c->route = DS_DRIVER_METHOD;
    c->http_status = ds_status_http(DS_QUEUE_FULL);
    finish_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, kbc);
}

static void on_new_call(call_t *c, int success)
{
    if (!success) { /* the server is shutting down: the armed request is returned unused */
        free_call(c);
        return;
    }
    pthread_mutex_lock(&mu_);
    bool stopping = stopping_;
    pthread_mutex_unlock(&mu_);
    if (!stopping)
        request_new();
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    make_request_id(c);
    if (grpc_slice_str_cmp(c->details.method, DS_DRIVER_METHOD) != 0) {
        char msg[512];
        int kbc = ds_status_keboola(DS_UNSUPPORTED);
        size_t n = GRPC_SLICE_LENGTH(c->details.method);
        snprintf(msg, sizeof(msg), "[%d] unknown method \"%.*s\": duckstore serves only %s", kbc,
                 (int)(n > 200 ? 200 : n), (const char *)GRPC_SLICE_START_PTR(c->details.method), DS_DRIVER_METHOD);
        c->route = "unknown-method";
        c->http_status = ds_status_http(DS_UNSUPPORTED);
        finish_call(c, GRPC_STATUS_UNIMPLEMENTED, msg, kbc);
        return;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->payload;
    c->phase = PHASE_RECV;
    if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK)
        free_call(c);
}

static void on_done(call_t *c, int success)
{
    const char *route = c->route ? c->route : DS_DRIVER_METHOD;
    int status = c->cancelled ? 499 : c->http_status; /* 499: the client went away (nginx's convention) */
    double secs = elapsed_s(&c->start);
    ds_metrics_request("grpc", "Execute", route, status, secs);
    ds_log_request(c->request_id, "POST", route, status, secs * 1000.0, c->project[0] ? c->project : NULL, "grpc");
    free_call(c);
}

static void *poll_loop(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq_, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &shutdown_tag_) {
            pthread_mutex_lock(&mu_);
            shutdown_done_ = true;
            pthread_cond_broadcast(&cv_);
            pthread_mutex_unlock(&mu_);
            continue;
        }
        call_t *c = ev.tag;
        switch (c->phase) {
        case PHASE_NEW:
            on_new_call(c, ev.success);
            break;
        case PHASE_RECV:
            if (!ev.success) { /* the client cancelled or the connection broke before the message arrived */
                free_call(c);
                break;
            }
            start_executor(c);
            break;
        case PHASE_DONE:
            on_done(c, ev.success);
            break;
        }
    }
    return NULL;
}

/* Destroys a server no poller serves (a failed start): drains the queue on this thread. */
static void destroy_unstarted(void)
{
    grpc_server_shutdown_and_notify(server_, cq_, &shutdown_tag_);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq_, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN || (ev.type == GRPC_OP_COMPLETE && ev.tag == &shutdown_tag_))
            break;
        if (ev.type == GRPC_OP_COMPLETE) /* an armed request, returned unused */
            free_call(ev.tag);
    }
    grpc_server_destroy(server_);
    grpc_completion_queue_shutdown(cq_);
    while (grpc_completion_queue_next(cq_, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq_);
    server_ = NULL;
    cq_ = NULL;
    grpc_shutdown();
}

ds_status_t ds_grpc_start(const ds_config_t *cfg, ds_err_t *err)
{
    if (!cfg->grpc_addr || strcmp(cfg->grpc_addr, "off") == 0)
        return DS_OK;
    gpr_set_log_function(on_grpc_log);
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    grpc_init();
    id_salt_ = (unsigned long long)time(NULL) * 2654435761ull ^ (unsigned long long)getpid() ^ 0x9e3779b9ull;
    stopping_ = false;
    shutdown_done_ = false;

    grpc_arg args[2];
    memset(args, 0, sizeof(args));
    /* Without this, a second process could bind the same port and silently take half of the calls. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = cfg->max_json_bytes > INT_MAX ? INT_MAX : (int)cfg->max_json_bytes;
    grpc_channel_args ca = {.num_args = 2, .args = args};

    server_ = grpc_server_create(&ca, NULL);
    cq_ = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server_, cq_, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(server_, cfg->grpc_addr, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        destroy_unstarted();
        return ds_err_set(err, DS_UNAVAILABLE, "gRPC: cannot listen on %s (address in use or not permitted)",
                          cfg->grpc_addr);
    }
    grpc_server_start(server_);
    for (int i = 0; i < DS_GRPC_PENDING; i++)
        request_new();
    for (n_pollers_ = 0; n_pollers_ < DS_GRPC_POLLERS; n_pollers_++)
        if (pthread_create(&pollers_[n_pollers_], NULL, poll_loop, NULL) != 0)
            break;
    if (n_pollers_ == 0) {
        destroy_unstarted();
        return ds_err_set(err, DS_INTERNAL, "gRPC: cannot start threads");
    }
    return DS_OK;
}

void ds_grpc_stop(void)
{
    if (!server_)
        return;
    pthread_mutex_lock(&mu_);
    stopping_ = true;
    pthread_mutex_unlock(&mu_);
    grpc_server_shutdown_and_notify(server_, cq_, &shutdown_tag_);

    pthread_mutex_lock(&mu_);
    /* Commands in progress always finish: DuckDB must not close under them. */
    while (inflight_ > 0)
        pthread_cond_wait(&cv_, &mu_);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += DS_GRPC_GRACE_S;
    while (!shutdown_done_ && pthread_cond_timedwait(&cv_, &mu_, &deadline) == 0)
        ;
    bool cancel = !shutdown_done_;
    pthread_mutex_unlock(&mu_);
    if (cancel) {
        ds_log(DS_LOG_WARN, "grpc: cancelling calls still open after %d s of shutdown", DS_GRPC_GRACE_S);
        grpc_server_cancel_all_calls(server_);
    }
    pthread_mutex_lock(&mu_);
    while (!shutdown_done_ || inflight_ > 0 || calls_ > 0)
        pthread_cond_wait(&cv_, &mu_);
    pthread_mutex_unlock(&mu_);

    grpc_completion_queue_shutdown(cq_);
    for (int i = 0; i < n_pollers_; i++)
        pthread_join(pollers_[i], NULL);
    n_pollers_ = 0;
    grpc_server_destroy(server_);
    grpc_completion_queue_destroy(cq_);
    server_ = NULL;
    cq_ = NULL;
    grpc_shutdown();
}
