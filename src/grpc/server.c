/*
 * server.c - the gRPC server (gRPC C core): StorageDriverService/Execute, the
 * standard health protocol and server reflection.
 *
 * DESIGN
 * One completion queue, served by DS_GRPC_POLLERS poller threads. Every
 * operation batch started on a call carries a tag_t naming the call and the
 * function to run when the batch completes; each started batch holds a
 * reference on the call, dropped after its function ran, and the call is
 * logged and freed when the last reference goes. A call that arrives gets at
 * once a second, independent batch: RECV_CLOSE_ON_SERVER, which completes
 * when the call ends, with cancelled = 1 when the client cancelled or its
 * deadline passed (the core enforces the deadline: nothing is sent after it).
 * Then, by method (methods[]):
 *   Execute   RECV the DriverRequest. On the poller: ds_driver_prepare reads
 *             the envelope and the credentials and authenticates the key
 *             without decoding the command (a refused call is answered at
 *             once, no worker involved). An authenticated call joins the wait
 *             queue, or gets RESOURCE_EXHAUSTED when the queue is full or its
 *             caller (a project's key; the admin key per project) already
 *             holds its share. The workers are the same fair pool REST uses
 *             (core/pool.h), DUCKSTORE_GRPC_WORKERS threads with each caller
 *             as a group: callers take turns, and one runs at most its share
 *             of workers (DUCKSTORE_GRPC_CALLER_SHARE percent) and has at most
 *             its share of the queue waiting, so one caller never holds every
 *             worker and the others keep their latency. Commands block on write queues and long imports,
 *             which is why they run on workers and never on a poller. The
 *             worker sends initial metadata, the DriverResponse and the
 *             status in one batch. A cancel or deadline fires the call's
 *             ds_cancel_t, which interrupts the command's DuckDB work
 *             (core/cancel.h): it fails and rolls back; a call still waiting
 *             in the queue is removed and answered without running.
 *   Health    Check answers at once on the poller; Watch sends the status,
 *             then every change (a health thread re-evaluates every
 *             DS_GRPC_WATCH_PERIOD_MS while somebody watches). The status of
 *             every served service and of "" is the one /ready answers;
 *             NOT_SERVING once shutdown began.
 *   Reflection  a stream: RECV a request, SEND its answer (grpc/reflection.h),
 *             RECV the next, until the client half-closes; then status OK.
 * Anything else is UNIMPLEMENTED.
 *
 * Shutdown (ds_grpc_stop): stop arming requests, tell watchers NOT_SERVING and
 * end their streams, grpc_server_shutdown_and_notify, answer the queued calls
 * UNAVAILABLE, wait until no command runs (a command in progress always
 * finishes, as on the REST side) and join the workers, give the remaining
 * calls a grace period, cancel what is left, then drain and destroy.
 *
 * Threads: DS_GRPC_POLLERS pollers + DUCKSTORE_GRPC_WORKERS workers + one
 * health thread, whatever the number of calls; health Watch and reflection
 * streams live on the pollers between messages and hold no thread.
 *
 * Invariants: calls_ counts live call_t (including armed requests), guarded
 * by mu_. A queued call holds a reference (the pool's), dropped by the worker
 * that ran it or by whoever removed it unrun (ds_pool_cancel,
 * ds_pool_drop_queued). ds_grpc_stop joins the pool's workers and returns
 * only when calls_ is 0, so no command runs after it. Watchers are listed
 * under wmu_, which also guards each watcher's send state. pool_ is set and
 * taken away under mu_, and is submitted to and cancelled in under it. Lock
 * order: wmu_, then mu_, then the pool's own lock.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bodymem.h"
#include "core/cancel.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "grpc/dispatch.h"
#include "grpc/ds_grpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection.h"

#define DS_GRPC_POLLERS 4
#define DS_GRPC_PENDING 16
#define DS_GRPC_GRACE_S 5
#define DS_GRPC_WATCH_PERIOD_MS 1000
/* Longest authorization metadata value read ("Bearer " + key). */
#define DS_GRPC_MAX_AUTH 1024

typedef enum { M_EXECUTE, M_HEALTH_CHECK, M_HEALTH_WATCH, M_REFLECTION, M_UNKNOWN } method_t;

/* Every method served: path, its service, the label for logs and metrics. */
static const struct {
    const char *path;
    const char *service;
    const char *name;
    method_t method;
} methods[] = {
    {DS_DRIVER_METHOD, "keboola.storageDriver.service.StorageDriverService", "Execute", M_EXECUTE},
    {"/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check", M_HEALTH_CHECK},
    {"/grpc.health.v1.Health/Watch", "grpc.health.v1.Health", "Watch", M_HEALTH_WATCH},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "grpc.reflection.v1.ServerReflection",
     "ServerReflectionInfo", M_REFLECTION},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "grpc.reflection.v1alpha.ServerReflection",
     "ServerReflectionInfo", M_REFLECTION},
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

/* The distinct service names of methods[], in order. */
static const char *services_[N_METHODS];
static size_t n_services_;

typedef struct call call_t;
typedef void (*step_fn)(call_t *c, int ok);

/* The tag of one batch: which call, and what to do when the batch completes. */
typedef struct {
    call_t *call;
    step_fn fn;
} tag_t;

/* Health serving statuses (grpc.health.v1.HealthCheckResponse.ServingStatus). */
#define H_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define H_NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define H_SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

struct call {
    tag_t step;  /* the call's sequential batches: request, receive, send, finish */
    tag_t close; /* RECV_CLOSE_ON_SERVER, in flight from arrival to the end */
    atomic_int refs;
    method_t method;
    const char *method_name;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;      /* the message sent with the status (unary methods) */
    grpc_byte_buffer *stream_msg; /* the message of the last stream send */
    grpc_slice status_details;
    bool has_status_details;
    grpc_metadata initial[1];
    size_t n_initial;
    grpc_metadata trailing[1];
    size_t n_trailing;
    bool sent_initial;
    bool finished; /* a status was sent */
    int cancelled; /* written by RECV_CLOSE_ON_SERVER */
    ds_cancel_t *cancel; /* Execute: interrupts the command */
    /* Execute: the request, from arrival on the poller to the end of its command on a worker */
    ds_ctx_t ctx;          /* its arena holds the decoded request and the answer until sent */
    ds_driver_call_t dc;   /* the prepared (authenticated, not yet decoded) command */
    grpc_slice *slices;    /* the DriverRequest as received, in pieces (dc points into them) */
    ds_driver_piece_t *pieces;
    size_t n_slices;
    int64_t body_held;     /* the DriverRequest's bytes taken from DUCKSTORE_BODY_MEMORY (core/bodymem.h) */
    char group[160];       /* its caller (grpc/dispatch.h), the pool group; set before it is queued */
    atomic_bool queued;    /* submitted to the pool (it may have started since) */
    ds_park_t park;        /* a command that waits for a write slot holds no worker (cmd.h "Parking") */
    atomic_int phase;      /* PHASE_*: the hand-over between a parked run and its grant */
    struct timespec start;
    /* Watch (guarded by wmu_) */
    call_t *watch_next;
    bool watching;
    bool watch_sending;
    bool watch_ending;
    bool watch_known; /* the service is served (else SERVICE_UNKNOWN, forever) */
    int watch_sent;   /* last status sent; -1 none */
    int watch_want;   /* status to send */
    /* for the access log and metrics */
    const char *route; /* static: the command's full name, or a fixed label */
    int http_status;   /* the HTTP equivalent of the status, so logs read alike across transports */
    char project[128];
    char request_id[40];
};

static grpc_server *server_;
static grpc_completion_queue *cq_;
static pthread_t pollers_[DS_GRPC_POLLERS];
static int n_pollers_;
static pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_ = PTHREAD_COND_INITIALIZER;
static int calls_;
static ds_pool_t *pool_; /* the workers (core/pool.h), one group per caller */
static atomic_bool stopping_;
static bool shutdown_done_;
static int shutdown_tag_;
static atomic_ullong next_id_;
static unsigned long long id_salt_;
static size_t max_send_;
/* Watchers and the health thread. */
static pthread_mutex_t wmu_ = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv_ = PTHREAD_COND_INITIALIZER;
static call_t *watchers_;
static pthread_t health_thread_;
static bool health_running_;
static bool health_quit_;

static void finish_call(call_t *c, grpc_status_code code, const char *message, int kbc);

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

/* ---- call lifetime ---- */

static void ref_call(call_t *c) { atomic_fetch_add(&c->refs, 1); }

/* Frees the request memory of an Execute call (its arena and bytes) once it needs them no more. */
static void release_request(call_t *c)
{
    /* The command's slots (their records live in the arena) and an idempotency record never completed. */
    ds_cmd_park_release(&c->park);
    ds_driver_abandon(&c->dc);
    ds_arena_destroy(&c->ctx.arena);
    for (size_t i = 0; i < c->n_slices; i++)
        grpc_slice_unref(c->slices[i]);
    free(c->slices);
    free(c->pieces);
    c->slices = NULL;
    c->pieces = NULL;
    c->n_slices = 0;
    ds_bodymem_give(c->body_held);
    c->body_held = 0;
}

/* Logs a call that reached a method (not an armed request returned at shutdown), then frees it. */
static void unref_call(call_t *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->route) {
        int status = c->cancelled ? 499 : c->http_status; /* 499: the client went away (nginx's convention) */
        double secs = elapsed_s(&c->start);
        ds_metrics_request("grpc", c->method_name ? c->method_name : "unknown", c->route, status, secs);
        ds_log_request(c->request_id, "POST", c->route, status, secs * 1000.0, c->project[0] ? c->project : NULL,
                       "grpc");
    }
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    if (c->stream_msg)
        grpc_byte_buffer_destroy(c->stream_msg);
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
    release_request(c);
    ds_cancel_free(&c->cancel);
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
    pthread_mutex_lock(&mu_);
    calls_--;
    pthread_cond_broadcast(&cv_);
    pthread_mutex_unlock(&mu_);
}

/* Starts a batch whose completion runs tag->fn; the batch holds a reference. */
static bool start_batch(call_t *c, tag_t *tag, const grpc_op *ops, size_t n)
{
    ref_call(c);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        ds_log(DS_LOG_ERROR, "grpc: cannot start a batch on call %s (error %d)", c->request_id, (int)e);
        unref_call(c);
        return false;
    }
    return true;
}

static void on_new_call(call_t *c, int ok);

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
    c->step = (tag_t){c, on_new_call};
    atomic_init(&c->refs, 1);
    c->watch_sent = -1;
    pthread_mutex_lock(&mu_);
    calls_++;
    pthread_mutex_unlock(&mu_);
    grpc_call_error e = grpc_server_request_call(server_, &c->call, &c->details, &c->md, cq_, cq_, &c->step);
    if (e != GRPC_CALL_OK) {
        ds_log(DS_LOG_ERROR, "grpc: cannot arm a call (error %d)", (int)e);
        unref_call(c);
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

/* Fills ops[*n] with SEND_INITIAL_METADATA (x-request-id) unless it was sent. */
static void add_initial_metadata(call_t *c, grpc_op *ops, size_t *n)
{
    if (c->sent_initial)
        return;
    c->sent_initial = true;
    c->initial[0].key = grpc_slice_from_static_string("x-request-id");
    c->initial[0].value = grpc_slice_from_copied_string(c->request_id);
    c->n_initial = 1;
    memset(&ops[*n], 0, sizeof(ops[*n]));
    ops[*n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[*n].data.send_initial_metadata.count = c->n_initial;
    ops[*n].data.send_initial_metadata.metadata = c->initial;
    (*n)++;
}

static void on_finished(call_t *c, int ok)
{
    (void)c;
    (void)ok; /* the last reference logs the call */
}

/*
 * Ends the call: initial metadata (x-request-id) unless sent, the reply when
 * there is one (taken over by c), the status with its message, and
 * keboola-code when kbc > 0.
 */
static void finish_call(call_t *c, grpc_status_code code, const char *message, int kbc)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (c->finished)
        return;
    c->finished = true;
    add_initial_metadata(c, ops, &n);
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
    c->step.fn = on_finished;
    start_batch(c, &c->step, ops, n);
}

/* Sends one message (bytes copied) on a stream; tag's function runs when it went out. */
static bool send_message(call_t *c, const uint8_t *data, size_t len, step_fn then)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    add_initial_metadata(c, ops, &n);
    if (c->stream_msg)
        grpc_byte_buffer_destroy(c->stream_msg);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    c->stream_msg = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->stream_msg;
    n++;
    c->step.fn = then;
    return start_batch(c, &c->step, ops, n);
}

/* Receives the next message into c->payload; then(c, ok) runs when it arrived (payload NULL: half-closed). */
static bool recv_message(call_t *c, step_fn then)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    if (c->payload) {
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
    }
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->payload;
    c->step.fn = then;
    return start_batch(c, &c->step, &op, 1);
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

/* Answers a request that cannot be served with status st (an InvalidArgument-like failure). */
static void fail_call(call_t *c, ds_status_t st, const char *message)
{
    char msg[DS_ERR_MSG_MAX + 16];
    /* Keboola's codes belong to the driver protocol, not to health or reflection. */
    bool driver = c->method == M_EXECUTE || c->method == M_UNKNOWN;
    int kbc = driver ? ds_status_keboola(st) : 0;
    if (driver)
        snprintf(msg, sizeof(msg), "[%d] %s", kbc, message);
    else
        snprintf(msg, sizeof(msg), "%s", message);
    c->http_status = ds_status_http(st);
    finish_call(c, (grpc_status_code)ds_status_grpc(st), msg, kbc);
}

/* ---- Execute ---- */

/* The value of the call's authorization metadata (arena copy), or NULL when absent. */
static const char *authorization(call_t *c, ds_arena_t *arena)
{
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (grpc_slice_str_cmp(m->key, "authorization") != 0)
            continue;
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (n > DS_GRPC_MAX_AUTH) /* not a key of ours; dispatch says what is wrong */
            n = DS_GRPC_MAX_AUTH;
        return ds_arena_strndup(arena, (const char *)GRPC_SLICE_START_PTR(m->value), n);
    }
    return NULL;
}

/* The call's idempotency-key metadata (arena copy), or NULL when absent. */
static const char *idempotency_key(call_t *c, ds_arena_t *arena)
{
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (grpc_slice_str_cmp(m->key, "idempotency-key") == 0)
            return ds_arena_strndup(arena, (const char *)GRPC_SLICE_START_PTR(m->value), GRPC_SLICE_LENGTH(m->value));
    }
    return NULL;
}

/* ---- the worker pool ---- */

/* Sends the DriverResponse of a call whose command ran (or was refused) and releases its request memory. */
static void answer_driver_call(call_t *c, ds_driver_result_t *r)
{
    char message[sizeof(r->message) + 128];
    grpc_status_code code = (grpc_status_code)ds_status_grpc(r->status);
    int kbc = r->keboola_code;
    snprintf(message, sizeof(message), "%s", r->message);
    c->route = r->command ? r->command : "unknown-command";
    c->http_status = ds_status_http(r->status);
    if (c->ctx.project_id)
        snprintf(c->project, sizeof(c->project), "%s", c->ctx.project_id);
    if (r->response_len > max_send_) {
        /* Say why, rather than letting the transport fail the call with a generic error. */
        kbc = ds_status_keboola(DS_QUEUE_FULL);
        snprintf(message, sizeof(message),
                 "[%d] the DriverResponse of %zu bytes exceeds the largest message this server sends (%zu bytes, "
                 "DUCKSTORE_GRPC_MAX_SEND_BYTES)",
                 kbc, r->response_len, max_send_);
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        c->http_status = ds_status_http(DS_QUEUE_FULL);
    } else {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)r->response, r->response_len);
        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    }
    release_request(c);
    finish_call(c, code, message, kbc);
}

/* Answers a queued call that will not run (cancelled, past its deadline, or the server stops). */
static void answer_unrun(call_t *c, ds_status_t st, const char *why)
{
    char msg[256];
    release_request(c);
    if (st == DS_CANCELLED) {
        snprintf(msg, sizeof(msg), "[0] %s before the command started", why);
        c->http_status = ds_status_http(DS_CANCELLED);
        finish_call(c, GRPC_STATUS_CANCELLED, msg, 0);
    } else {
        fail_call(c, st, why);
    }
}

/*
 * Parking hand-over (as in the REST server): a run that parked its command
 * moves RUNNING -> PARKED and leaves the worker; the grant, finding PARKED,
 * queues the call again. A grant that comes while the run is still unwinding
 * finds RUNNING and leaves GRANTED, and the run, failing its move to PARKED,
 * runs the command again itself.
 */
enum { PHASE_RUNNING, PHASE_PARKED, PHASE_GRANTED };

/* Calls parked now (at least): ds_grpc_stop lets them be answered before it stops the workers. */
static int n_parked_;

static void call_job(void *arg);

static int64_t gauge_busy(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&mu_);
    int64_t n = pool_ ? ds_pool_running(pool_) : 0;
    pthread_mutex_unlock(&mu_);
    return n;
}

static int64_t gauge_parked(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&mu_);
    int64_t n = n_parked_;
    pthread_mutex_unlock(&mu_);
    return n;
}

/*
 * Runs one prepared command on the calling worker and answers it. False when
 * it parked: the call is neither answered nor released, and the pool's
 * reference stays with it until its grant queues it again.
 */
static bool run_call(call_t *c)
{
    ds_driver_result_t r;
    for (;;) {
        if (ds_cancel_is_set(c->cancel)) {
            /* The client gave up while the call waited for its worker or its slot: do not start the work. */
            answer_unrun(c, DS_CANCELLED, ds_cancel_reason(c->cancel));
            return true;
        }
        c->park.parked = false;
        ds_driver_run(&c->dc, &r);
        if (!r.parked)
            break;
        /* Parked: nothing but the slots is held while the command waits without a worker. */
        ds_arena_run_hooks(c->ctx.arena);
        int expect = PHASE_RUNNING;
        pthread_mutex_lock(&mu_);
        n_parked_++;
        pthread_mutex_unlock(&mu_);
        if (atomic_compare_exchange_strong(&c->phase, &expect, PHASE_PARKED))
            return false;
        pthread_mutex_lock(&mu_);
        n_parked_--;
        pthread_mutex_unlock(&mu_);
        atomic_store(&c->phase, PHASE_RUNNING);
    }
    answer_driver_call(c, &r);
    return true;
}

/* Queues a parked call again, first in its caller's line (it holds a slot others may wait for). */
static void requeue(call_t *c)
{
    ds_err_t e = {0};
    atomic_store(&c->queued, true);
    pthread_mutex_lock(&mu_);
    ds_status_t st = pool_ ? ds_pool_submit_first(pool_, c->group, call_job, c, &e)
                           : ds_err_set(&e, DS_UNAVAILABLE, "the server is shutting down");
    n_parked_--;
    pthread_cond_broadcast(&cv_);
    pthread_mutex_unlock(&mu_);
    if (st != DS_OK) {
        /* Answered with that; its slots go with the request (which may grant the next one). */
        atomic_store(&c->queued, false);
        answer_unrun(c, DS_UNAVAILABLE, e.message);
        unref_call(c); /* the pool's reference */
    }
}

/* The write slot a parked command waited for is held now (called by the queue, any thread). */
static void on_slot_granted(void *arg)
{
    call_t *c = arg;
    int expect = PHASE_RUNNING;
    if (atomic_compare_exchange_strong(&c->phase, &expect, PHASE_GRANTED))
        return;
    atomic_store(&c->phase, PHASE_RUNNING);
    requeue(c);
}

/*
 * The client of a parked call gave up: the call leaves the write queue and is
 * answered now (not when its turn would have come). Taking the phase from
 * PARKED keeps a grant that races with this from queueing the call: the
 * grant then leaves GRANTED, and this queues it instead (it is answered as
 * cancelled when it runs).
 */
static void abandon_parked(call_t *c, const char *why)
{
    int expect = PHASE_PARKED;
    if (!atomic_compare_exchange_strong(&c->phase, &expect, PHASE_RUNNING))
        return; /* running (or queued again): it sees the cancellation itself */
    if (ds_cmd_park_abandon(&c->park)) {
        pthread_mutex_lock(&mu_);
        n_parked_--;
        pthread_cond_broadcast(&cv_);
        pthread_mutex_unlock(&mu_);
        answer_unrun(c, DS_CANCELLED, why);
        unref_call(c); /* the pool's reference */
        return;
    }
    expect = PHASE_RUNNING;
    if (atomic_compare_exchange_strong(&c->phase, &expect, PHASE_PARKED))
        return; /* the grant, still on its way, finds PARKED and queues it */
    atomic_store(&c->phase, PHASE_RUNNING);
    requeue(c);
}

/* A pool job: runs one queued call and drops the pool's reference (unless it parked: its grant has it). */
static void call_job(void *arg)
{
    call_t *c = arg;
    atomic_store(&c->queued, false);
    if (run_call(c))
        unref_call(c); /* the pool's reference */
}

/* A queued call the pool will not run (the server stops): answered, and the pool's reference dropped. */
static void call_dropped(void *arg)
{
    call_t *c = arg;
    atomic_store(&c->queued, false);
    answer_unrun(c, DS_UNAVAILABLE, "the server is shutting down before the command started");
    unref_call(c);
}

/*
 * Takes the received message's slices as they are (no flat copy: the
 * dispatcher reads the envelope across them, and joins the command's bytes
 * only once the caller is authenticated). False when out of memory.
 */
static bool take_pieces(call_t *c)
{
    grpc_byte_buffer_reader rd;
    grpc_slice s;
    size_t cap = 0;
    bool ok = grpc_byte_buffer_reader_init(&rd, c->payload);
    if (ok) {
        while (grpc_byte_buffer_reader_next(&rd, &s)) {
            if (c->n_slices == cap) {
                cap = cap ? cap * 2 : 16;
                grpc_slice *more = realloc(c->slices, cap * sizeof(*more));
                if (!more) {
                    grpc_slice_unref(s);
                    ok = false;
                    break;
                }
                c->slices = more;
            }
            c->slices[c->n_slices++] = s;
        }
        grpc_byte_buffer_reader_destroy(&rd);
    }
    /* Pointers into the slices only now: a small slice keeps its bytes inside the array entry. */
    if (ok && !(c->pieces = malloc((c->n_slices ? c->n_slices : 1) * sizeof(*c->pieces))))
        ok = false;
    for (size_t i = 0; ok && i < c->n_slices; i++)
        c->pieces[i] = (ds_driver_piece_t){GRPC_SLICE_START_PTR(c->slices[i]), GRPC_SLICE_LENGTH(c->slices[i])};
    grpc_byte_buffer_destroy(c->payload); /* the slices hold their own references */
    c->payload = NULL;
    return ok;
}

/* Seconds until the call's deadline (a little above 0 once it passed); 0 when it has none. */
static double deadline_left(const call_t *c)
{
    gpr_timespec d = c->details.deadline;
    if (gpr_time_cmp(d, gpr_inf_future(d.clock_type)) == 0)
        return 0;
    gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC), gpr_now(GPR_CLOCK_MONOTONIC));
    double s = (double)gpr_timespec_to_micros(left) / 1e6;
    return s > 0.001 ? s : 0.001;
}

/*
 * A DriverRequest arrived: on the poller, read the envelope and the
 * credentials and authenticate the key (cheap, nothing of the command is
 * decoded); a refused call is answered here. An authenticated call is
 * queued for the workers if its caller and the queue have room, else it gets
 * RESOURCE_EXHAUSTED.
 */
static void on_execute_message(call_t *c, int ok)
{
    if (!ok) /* the client cancelled or the connection broke before the message arrived */
        return;
    c->route = DS_DRIVER_METHOD;
    if (!c->payload) {
        fail_call(c, DS_INVALID_ARGUMENT, "the call carried no DriverRequest message");
        return;
    }
    /* Held until the answer, so it counts against the budget all request bodies share. */
    int64_t size = (int64_t)grpc_byte_buffer_length(c->payload);
    if (!ds_bodymem_take(size)) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "the server holds as many request bodies in memory as it may (DUCKSTORE_BODY_MEMORY, %lld bytes); "
                 "nothing was changed, retry",
                 (long long)ds_bodymem_limit());
        fail_call(c, DS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    c->body_held = size;
    if (!(c->ctx.arena = ds_arena_create()) || !take_pieces(c)) {
        fail_call(c, DS_INTERNAL, "out of memory reading the request");
        return;
    }
    c->ctx.request_id = c->request_id;
    c->ctx.cancel = c->cancel;
    double left = deadline_left(c);
    if (left > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        c->ctx.wait_deadline = (double)now.tv_sec + (double)now.tv_nsec / 1e9 + left;
    }
    const char *auth = authorization(c, c->ctx.arena);
    c->ctx.idempotency_key = idempotency_key(c, c->ctx.arena);
    if (ds_driver_prepare_pieces(&c->dc, &c->ctx, c->pieces, c->n_slices, auth) != DS_OK) {
        ds_driver_result_t r;
        ds_driver_run(&c->dc, &r); /* only renders the error: nothing ran */
        answer_driver_call(c, &r);
        return;
    }
    c->route = c->dc.command; /* for the log, also when the call never runs */
    snprintf(c->group, sizeof(c->group), "%s", c->dc.caller);
    if (ds_driver_may_park(&c->dc)) {
        c->park.resume_cb = on_slot_granted;
        c->park.arg = c;
        c->ctx.park = &c->park;
    }
    ds_err_t e = {0};
    ref_call(c); /* the pool's reference */
    atomic_store(&c->queued, true);
    pthread_mutex_lock(&mu_);
    ds_status_t st = pool_ ? ds_pool_submit(pool_, c->group, call_job, c, &e)
                           : ds_err_set(&e, DS_UNAVAILABLE, "the server is shutting down");
    pthread_mutex_unlock(&mu_);
    if (st != DS_OK) {
        atomic_store(&c->queued, false);
        unref_call(c); /* never the last: the receive batch holds one */
        release_request(c);
        fail_call(c, e.status == DS_QUEUE_FULL ? DS_QUEUE_FULL : DS_UNAVAILABLE, e.message);
    }
}

/* ---- health ---- */

static bool service_known(const char *name)
{
    if (!*name)
        return true;
    for (size_t i = 0; i < n_services_; i++)
        if (strcmp(services_[i], name) == 0)
            return true;
    return false;
}

/* What /ready says, as a serving status; NOT_SERVING once shutdown began. */
static int serving_status(void)
{
    if (atomic_load(&stopping_))
        return H_NOT_SERVING;
    ds_err_t err = {0};
    return ds_service_ready(&err) == DS_OK ? H_SERVING : H_NOT_SERVING;
}

/* The serialized HealthCheckResponse of status (malloc), or NULL. */
static uint8_t *health_response(int status, size_t *len)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    *len = grpc__health__v1__health_check_response__get_packed_size(&r);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        grpc__health__v1__health_check_response__pack(&r, buf);
    return buf;
}

/* The requested service name (malloc) of the received HealthCheckRequest, or NULL when it does not decode. */
static char *health_service(call_t *c)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (!c->payload || !read_payload(c->payload, &data, &len))
        return NULL;
    Grpc__Health__V1__HealthCheckRequest *req = grpc__health__v1__health_check_request__unpack(NULL, len, data);
    free(data);
    if (!req)
        return NULL;
    char *name = strdup(req->service ? req->service : "");
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    return name;
}

static void on_check_message(call_t *c, int ok)
{
    if (!ok)
        return;
    char *service = health_service(c);
    if (!service) {
        fail_call(c, DS_INVALID_ARGUMENT, "malformed grpc.health.v1.HealthCheckRequest");
        return;
    }
    if (!service_known(service)) {
        char msg[400];
        snprintf(msg, sizeof(msg), "unknown service \"%.200s\"", service);
        free(service);
        fail_call(c, DS_NOT_FOUND, msg);
        return;
    }
    free(service);
    size_t len;
    uint8_t *buf = health_response(serving_status(), &len);
    if (!buf) {
        fail_call(c, DS_INTERNAL, "out of memory");
        return;
    }
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    c->reply = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    free(buf);
    c->http_status = 200;
    finish_call(c, GRPC_STATUS_OK, NULL, 0);
}

static void watch_pump(call_t *c);

static void on_watch_sent(call_t *c, int ok)
{
    pthread_mutex_lock(&wmu_);
    c->watch_sending = false;
    if (ok)
        watch_pump(c);
    pthread_mutex_unlock(&wmu_);
}

/* Sends what the watcher still needs (the newest status, then the end of the stream). Under wmu_. */
static void watch_pump(call_t *c)
{
    if (c->watch_sending || c->finished || !c->watching)
        return;
    if (c->watch_want != c->watch_sent) {
        size_t len;
        uint8_t *buf = health_response(c->watch_want, &len);
        if (!buf)
            return;
        c->watch_sent = c->watch_want;
        c->watch_sending = send_message(c, buf, len, on_watch_sent);
        free(buf);
    } else if (c->watch_ending) {
        c->http_status = ds_status_http(DS_UNAVAILABLE);
        finish_call(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down", 0);
    }
}

/* Sets every watcher's wanted status and sends it. ending: end the streams afterwards. */
static void watch_update_all(int status, bool ending)
{
    pthread_mutex_lock(&wmu_);
    for (call_t *w = watchers_; w; w = w->watch_next) {
        if (w->watch_known)
            w->watch_want = status;
        if (ending)
            w->watch_ending = true;
        watch_pump(w);
    }
    pthread_mutex_unlock(&wmu_);
}

static void watch_remove(call_t *c)
{
    pthread_mutex_lock(&wmu_);
    for (call_t **p = &watchers_; *p; p = &(*p)->watch_next)
        if (*p == c) {
            *p = c->watch_next;
            c->watching = false;
            unref_call(c); /* the list's reference */
            break;
        }
    pthread_mutex_unlock(&wmu_);
}

static void on_watch_message(call_t *c, int ok)
{
    if (!ok)
        return;
    char *service = health_service(c);
    if (!service) {
        fail_call(c, DS_INVALID_ARGUMENT, "malformed grpc.health.v1.HealthCheckRequest");
        return;
    }
    bool known = service_known(service);
    free(service);
    int status = known ? serving_status() : H_SERVICE_UNKNOWN;
    c->http_status = 200;
    pthread_mutex_lock(&wmu_);
    ref_call(c); /* the list's reference */
    c->watching = true;
    c->watch_known = known;
    c->watch_want = status;
    c->watch_ending = atomic_load(&stopping_);
    c->watch_next = watchers_;
    watchers_ = c;
    watch_pump(c);
    pthread_mutex_unlock(&wmu_);
}

/* While somebody watches: re-evaluates health every DS_GRPC_WATCH_PERIOD_MS and sends changes. */
static void *health_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu_);
    while (!health_quit_) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)DS_GRPC_WATCH_PERIOD_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&wcv_, &mu_, &until);
        if (health_quit_)
            break;
        pthread_mutex_unlock(&mu_);
        pthread_mutex_lock(&wmu_);
        bool any = watchers_ != NULL;
        pthread_mutex_unlock(&wmu_);
        if (any && !atomic_load(&stopping_))
            watch_update_all(serving_status(), false);
        pthread_mutex_lock(&mu_);
    }
    pthread_mutex_unlock(&mu_);
    return NULL;
}

/* ---- reflection ---- */

static void on_reflection_request(call_t *c, int ok);

static void on_reflection_sent(call_t *c, int ok)
{
    if (ok)
        recv_message(c, on_reflection_request);
}

static void on_reflection_request(call_t *c, int ok)
{
    if (!ok)
        return;
    if (!c->payload) { /* the client half-closed: the stream ends well */
        c->http_status = 200;
        finish_call(c, GRPC_STATUS_OK, NULL, 0);
        return;
    }
    uint8_t *data = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    bool done = read_payload(c->payload, &data, &len) && ds_reflection_answer(data, len, &out, &out_len);
    free(data);
    if (!done) {
        fail_call(c, DS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
        return;
    }
    send_message(c, out, out_len, on_reflection_sent);
    free(out);
}

/* ---- arrival and the poller ---- */

static void on_close(call_t *c, int ok)
{
    (void)ok;
    if (c->cancelled && c->cancel) {
        gpr_timespec now = gpr_now(c->details.deadline.clock_type);
        bool late = gpr_time_cmp(now, c->details.deadline) >= 0;
        const char *why = late ? "deadline exceeded" : "cancelled by the client";
        ds_cancel_fire(c->cancel, why);
        /* A call still waiting for a worker is dropped now: it never runs and frees its slot at once. */
        /* Under mu_: the pool is not destroyed meanwhile (stop_workers takes it away under mu_). */
        pthread_mutex_lock(&mu_);
        bool dropped = pool_ && atomic_load(&c->queued) && ds_pool_cancel(pool_, c->group, c);
        pthread_mutex_unlock(&mu_);
        if (dropped) {
            answer_unrun(c, DS_CANCELLED, why);
            unref_call(c); /* the pool's reference */
        } else if (c->ctx.park) {
            abandon_parked(c, why);
        }
    }
    if (c->method == M_HEALTH_WATCH)
        watch_remove(c);
}

static void on_new_call(call_t *c, int ok)
{
    if (!ok) /* the server is shutting down: the armed request is returned unused */
        return;
    if (!atomic_load(&stopping_))
        request_new();
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    make_request_id(c);
    c->method = M_UNKNOWN;
    for (size_t i = 0; i < N_METHODS; i++)
        if (grpc_slice_str_cmp(c->details.method, methods[i].path) == 0) {
            c->method = methods[i].method;
            c->method_name = methods[i].name;
            c->route = methods[i].path + 1;
        }
    if (c->method == M_EXECUTE) {
        c->route = DS_DRIVER_METHOD;
        if (!(c->cancel = ds_cancel_create())) {
            fail_call(c, DS_INTERNAL, "out of memory");
            return;
        }
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    c->close = (tag_t){c, on_close};
    if (!start_batch(c, &c->close, &op, 1))
        return;
    switch (c->method) {
    case M_EXECUTE:
        recv_message(c, on_execute_message);
        break;
    case M_HEALTH_CHECK:
        recv_message(c, on_check_message);
        break;
    case M_HEALTH_WATCH:
        recv_message(c, on_watch_message);
        break;
    case M_REFLECTION:
        recv_message(c, on_reflection_request);
        break;
    case M_UNKNOWN: {
        char msg[512];
        size_t n = GRPC_SLICE_LENGTH(c->details.method);
        snprintf(msg, sizeof(msg), "unknown method \"%.*s\": duckstore serves %s, grpc.health.v1.Health and "
                 "grpc.reflection.v1(alpha).ServerReflection",
                 (int)(n > 200 ? 200 : n), (const char *)GRPC_SLICE_START_PTR(c->details.method), DS_DRIVER_METHOD);
        c->route = "unknown-method";
        c->method_name = "unknown";
        fail_call(c, DS_UNSUPPORTED, msg);
        break;
    }
    }
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
        tag_t *t = ev.tag;
        call_t *c = t->call;
        t->fn(c, ev.success);
        unref_call(c); /* the batch's reference */
    }
    return NULL;
}

/*
 * Stops the pool: no call is admitted any more, the waiting ones are
 * answered UNAVAILABLE without running, and the running commands finish
 * (DuckDB must not close under them) before the workers are joined.
 */
/* Answers the calls still queued UNAVAILABLE, lets the running commands finish and joins the workers. */
static void stop_workers(void)
{
    if (!pool_)
        return;
    ds_pool_drop_queued(pool_, call_dropped);
    ds_pool_shutdown(pool_); /* joins the workers; their calls take mu_ at the end, so not under it */
    pthread_mutex_lock(&mu_);
    ds_pool_t *p = pool_;
    pool_ = NULL;
    pthread_mutex_unlock(&mu_);
    ds_pool_destroy(&p);
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
            unref_call(((tag_t *)ev.tag)->call);
    }
    grpc_server_destroy(server_);
    grpc_completion_queue_shutdown(cq_);
    while (grpc_completion_queue_next(cq_, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq_);
    server_ = NULL;
    cq_ = NULL;
    ds_reflection_free();
    grpc_shutdown();
}

ds_status_t ds_grpc_start(const ds_config_t *cfg, ds_err_t *err)
{
    if (!cfg->grpc_addr || strcmp(cfg->grpc_addr, "off") == 0)
        return DS_OK;
    n_services_ = 0;
    for (size_t i = 0; i < N_METHODS; i++) {
        bool seen = false;
        for (size_t k = 0; k < n_services_; k++)
            seen = seen || strcmp(services_[k], methods[i].service) == 0;
        if (!seen)
            services_[n_services_++] = methods[i].service;
    }
    ds_status_t st = ds_reflection_init(services_, n_services_, err);
    if (st != DS_OK)
        return st;
    gpr_set_log_function(on_grpc_log);
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    grpc_init();
    id_salt_ = (unsigned long long)time(NULL) * 2654435761ull ^ (unsigned long long)getpid() ^ 0x9e3779b9ull;
    atomic_store(&stopping_, false);
    shutdown_done_ = false;
    health_quit_ = false;
    max_send_ = (size_t)cfg->grpc_max_send_bytes;
    ds_bodymem_set_limit(cfg->body_memory);

    grpc_arg args[4];
    memset(args, 0, sizeof(args));
    /* Without this, a second process could bind the same port and silently take half of the calls. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    /* Checked after decompression, so a small gzip body cannot expand past it. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = cfg->grpc_max_recv_bytes > INT_MAX ? INT_MAX : (int)cfg->grpc_max_recv_bytes;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[2].value.integer = cfg->grpc_max_send_bytes > INT_MAX ? INT_MAX : (int)cfg->grpc_max_send_bytes;
    /* Messages from clients may be gzip or deflate compressed (grpc-encoding); answers are not compressed. */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
    args[3].value.integer = (1 << GRPC_COMPRESS_NONE) | (1 << GRPC_COMPRESS_DEFLATE) | (1 << GRPC_COMPRESS_GZIP);
    grpc_channel_args ca = {.num_args = 4, .args = args};

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
    /* A caller's share, rounded down but never below one worker (and one waiting call when there is a queue). */
    int64_t worker_cap = cfg->grpc_workers * cfg->grpc_caller_share / 100;
    int64_t caller_queue_cap = cfg->grpc_queue * cfg->grpc_caller_share / 100;
    if (caller_queue_cap < 1 && cfg->grpc_queue > 0)
        caller_queue_cap = 1;
    pool_ = ds_pool_create((int)cfg->grpc_workers, worker_cap < 1 ? 1 : (int)worker_cap, "grpc-work", err);
    if (!pool_) {
        destroy_unstarted();
        return err->status;
    }
    ds_pool_set_bounds(pool_, cfg->grpc_queue, caller_queue_cap, "DUCKSTORE_GRPC_WORKERS and DUCKSTORE_GRPC_QUEUE",
                       "DUCKSTORE_GRPC_CALLER_SHARE");
    ds_metrics_gauge("duckstore_grpc_workers_busy", "gRPC workers running a command.", gauge_busy, NULL);
    ds_metrics_gauge("duckstore_grpc_calls_parked", "gRPC commands waiting for a write slot without a worker.",
                     gauge_parked, NULL);
    grpc_server_start(server_);
    for (int i = 0; i < DS_GRPC_PENDING; i++)
        request_new();
    for (n_pollers_ = 0; n_pollers_ < DS_GRPC_POLLERS; n_pollers_++)
        if (pthread_create(&pollers_[n_pollers_], NULL, poll_loop, NULL) != 0)
            break;
    if (n_pollers_ == 0) {
        stop_workers();
        destroy_unstarted();
        return ds_err_set(err, DS_INTERNAL, "gRPC: cannot start threads");
    }
    health_running_ = pthread_create(&health_thread_, NULL, health_loop, NULL) == 0;
    if (!health_running_)
        ds_log(DS_LOG_WARN, "grpc: cannot start the health thread; Watch sends only the first status");
    return DS_OK;
}

void ds_grpc_stop(void)
{
    if (!server_)
        return;
    atomic_store(&stopping_, true);
    pthread_mutex_lock(&mu_);
    health_quit_ = true;
    pthread_cond_broadcast(&wcv_);
    pthread_mutex_unlock(&mu_);
    if (health_running_)
        pthread_join(health_thread_, NULL);
    health_running_ = false;
    /* Watchers learn NOT_SERVING, then their streams end, so shutdown does not wait for them. */
    watch_update_all(H_NOT_SERVING, true);
    grpc_server_shutdown_and_notify(server_, cq_, &shutdown_tag_);

    /* Parked commands get their slots as the commands before them finish, and run while the workers do. */
    pthread_mutex_lock(&mu_);
    while (n_parked_ > 0)
        pthread_cond_wait(&cv_, &mu_);
    pthread_mutex_unlock(&mu_);
    /* Calls still waiting for a worker are answered UNAVAILABLE; commands in progress always finish. */
    stop_workers();
    pthread_mutex_lock(&mu_);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += DS_GRPC_GRACE_S;
    while (!shutdown_done_ && pthread_cond_timedwait(&cv_, &mu_, &deadline) == 0)
        ;
    /*
     * Not done yet: either calls are still open (cancel them), or every call has ended and gRPC waits for
     * clients to acknowledge its GOAWAY (a ping answered by the client; a client that polls its connection
     * only now and then answers late). The armed request slots were failed at the shutdown's start, so
     * calls_ counts open calls here.
     */
    bool late = !shutdown_done_;
    int open = calls_;
    pthread_mutex_unlock(&mu_);
    if (late && open > 0) {
        ds_log(DS_LOG_WARN, "grpc: cancelling %d call(s) still open after %d s of shutdown", open, DS_GRPC_GRACE_S);
        grpc_server_cancel_all_calls(server_);
    } else if (late) {
        ds_log(DS_LOG_INFO, "grpc: every call has ended; waiting for clients to acknowledge the shutdown");
    }
    pthread_mutex_lock(&mu_);
    while (!shutdown_done_ || calls_ > 0)
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
    ds_reflection_free();
    grpc_shutdown();
}
