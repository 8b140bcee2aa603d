/*
 * phase_requests.c - small requests under load: ObjectInfo and a 100-row
 * preview at 1, 16 and 64 concurrent clients.
 *
 * DESIGN
 * Five targets per request and client count:
 *   rest        GET .../tables/req  or  GET .../tables/req/preview?limit=100
 *   grpc        ObjectInfoCommand (TABLE)  or  PreviewTableCommand (limit 100)
 *   in-process  ds_cmd_table_get / ds_cmd_table_preview in this process
 *               (own data dir, same table): the protocol's overhead is
 *               the difference to it
 *   rest limit  a libmicrohttpd server in this process answering duckstore's
 *               captured answer: the transport limit
 *   grpc limit  a gRPC core server in this process answering duckstore's
 *               captured DriverResponse
 * Clients and servers share this machine's cores; the limits run in this
 * process, so the clients compete with them exactly as with duckstore.
 */
#include "bench.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNIMPLEMENTED 12

typedef struct {
    int port;
    const char *path, *key;
} rest_arg_t;

static void *rest_open(void *arg, int idx)
{
    (void)idx;
    return bench_http_open(((rest_arg_t *)arg)->port);
}

static bool rest_req(void *state, void *arg)
{
    rest_arg_t *a = arg;
    bench_http_resp_t r;
    char err[128];
    return bench_http_request(state, "GET", a->path, a->key, NULL, 0, &r, err, sizeof(err)) == 0 && r.status == 200;
}

static void rest_close(void *state)
{
    bench_http_t *h = state;
    bench_http_close(&h);
}

static const bench_worker_ops_t rest_ops = {rest_open, rest_req, rest_close};

/*
 * The same preview with a changed_since no other request used (unix seconds
 * of 2000-01-01 onwards, so every row still qualifies): the server's cache of
 * recent previews cannot answer it, so this is the cost of running the query.
 */
typedef struct {
    int port;
    const char *path, *key;
    atomic_llong n;
} rest_fresh_arg_t;

static bool rest_fresh_req(void *state, void *arg)
{
    rest_fresh_arg_t *a = arg;
    char path[512], err[128];
    snprintf(path, sizeof(path), "%s&changed_since=%lld", a->path, 946684800LL + atomic_fetch_add(&a->n, 1));
    bench_http_resp_t r;
    return bench_http_request(state, "GET", path, a->key, NULL, 0, &r, err, sizeof(err)) == 0 && r.status == 200;
}

static const bench_worker_ops_t rest_fresh_ops = {rest_open, rest_fresh_req, rest_close};

/* gRPC's RESOURCE_EXHAUSTED: the server's designed refusal when a key already has its share of the queue. */
#define GRPC_CODE_RESOURCE_EXHAUSTED 8

typedef struct {
    const char *target;
    bench_bytes_t req;
    atomic_llong exhausted; /* calls answered RESOURCE_EXHAUSTED, each client's warm-up calls included */
} grpc_arg_t;

static void *grpc_open(void *arg, int idx)
{
    (void)idx;
    return bench_grpc_open(((grpc_arg_t *)arg)->target);
}

static bool grpc_req(void *state, void *arg)
{
    grpc_arg_t *a = arg;
    bench_grpc_resp_t r;
    int code = bench_grpc_call(state, a->req.data, a->req.len, 60, &r);
    bool ok = code == 0 && r.len > 0;
    if (code == GRPC_CODE_RESOURCE_EXHAUSTED)
        atomic_fetch_add_explicit(&a->exhausted, 1, memory_order_relaxed);
    bench_grpc_resp_free(&r);
    return ok;
}

static void grpc_close(void *state)
{
    bench_grpc_t *g = state;
    bench_grpc_close(&g);
}

static const bench_worker_ops_t grpc_ops = {grpc_open, grpc_req, grpc_close};

typedef struct {
    bool (*fn)(void);
} inproc_arg_t;

static void *inproc_open(void *arg, int idx)
{
    (void)idx;
    return arg;
}

static bool inproc_req(void *state, void *arg)
{
    (void)state;
    return ((inproc_arg_t *)arg)->fn();
}

static void inproc_close(void *state)
{
    (void)state;
}

static const bench_worker_ops_t inproc_ops = {inproc_open, inproc_req, inproc_close};

/* ---- the phase ---- */

typedef struct {
    const char *name;
    bool available;
    char why[600];
    const bench_worker_ops_t *ops;
    void *arg;
} target_t;

static json_t *load_json(const char *request, const char *transport, const bench_load_t *l)
{
    return json_pack("{s:s,s:s,s:i,s:f,s:f,s:f,s:I,s:I,s:f,s:f}", "request", request, "transport", transport, "clients",
                     l->clients, "p50_ms", l->p50_ms, "p99_ms", l->p99_ms, "req_per_s", l->rps, "requests",
                     (json_int_t)l->requests, "failures", (json_int_t)l->failures, "seconds", l->seconds,
                     "other_cpu_cores", l->other_cores);
}

static const char *other_cell(double v)
{
    return v < 0 ? "?" : bench_num(v, 2);
}

/* Captures duckstore's answer to one gRPC request; false with the reason when it is not available. */
static bool capture_grpc(bench_t *b, const bench_bytes_t *req, bench_bytes_t *out, char *why, size_t whysz)
{
    if (!b->server.grpc_ok) {
        snprintf(why, whysz, "the server's gRPC does not answer");
        return false;
    }
    bench_grpc_resp_t r;
    int code = bench_grpc_call(b->grpc, req->data, req->len, 60, &r);
    if (code == UNIMPLEMENTED) {
        snprintf(why, whysz, "UNIMPLEMENTED: %s", r.message);
        bench_grpc_resp_free(&r);
        return false;
    }
    if (code != 0)
        bench_die("gRPC request of the requests phase failed: status %d: %s", code, r.message);
    out->data = r.data;
    out->len = r.len;
    return true;
}

void bench_phase_requests(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "requests");
    const bench_data_t *d = &b->data;
    json_t *pj = json_object(), *items = json_array();
    const char *key = b->server.key;

    bench_note("requests: loading the %s-row request table (server and in-process)", bench_int(d->req_rows));
    bench_rest_create_bench_table(b->http, key, BENCH_PROJECT, BENCH_BUCKET, "req");
    char *fid = bench_rest_upload(b->http, key, BENCH_PROJECT, "bench/req.csv", d->req_csv, NULL);
    json_t *imp =
        bench_rest(b->http, key, "POST", "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/req/import/file",
                   json_pack("{s:s}", "file_id", fid), 200);
    json_decref(imp);
    free(fid);
    char *inproc_dir = bench_fmt("%s/inprocess", b->run);
    bench_inproc_start(inproc_dir, d->req_csv);
    free(inproc_dir);

    static const char *oi_path = "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/req";
    static const char *pv_path = "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/req/preview?limit=100";
    /* The limits answer with duckstore's own answers. */
    bench_http_resp_t r;
    char err[256];
    char *oi_body, *pv_body;
    size_t oi_len, pv_len;
    if (bench_http_request(b->http, "GET", oi_path, key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
        bench_die("GET %s failed", oi_path);
    json_t *oi_json = json_loadb(r.body, r.len, 0, NULL);
    if (json_integer_value(json_object_get(oi_json, "rows")) != d->req_rows)
        bench_die("GET %s: rows is not %lld: %.300s", oi_path, (long long)d->req_rows, r.body);
    json_decref(oi_json);
    oi_body = bench_xstrdup(r.body);
    oi_len = r.len;
    if (bench_http_request(b->http, "GET", pv_path, key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
        bench_die("GET %s failed", pv_path);
    pv_body = bench_xstrdup(r.body);
    pv_len = r.len;

    bench_bytes_t g_oi_req = bench_drv_object_info_table(key, BENCH_PROJECT, BENCH_BUCKET, "req");
    bench_bytes_t g_pv_req = bench_drv_preview(key, BENCH_PROJECT, BENCH_BUCKET, "req", 100);
    bench_bytes_t g_oi_resp = {0}, g_pv_resp = {0};
    char oi_why[600] = "", pv_why[600] = "";
    bool g_oi_ok = capture_grpc(b, &g_oi_req, &g_oi_resp, oi_why, sizeof(oi_why));
    bool g_pv_ok = capture_grpc(b, &g_pv_req, &g_pv_resp, pv_why, sizeof(pv_why));
    if (g_oi_ok) {
        bench_grpc_resp_t chk = {.data = g_oi_resp.data, .len = g_oi_resp.len};
        int64_t rows;
        if (!bench_drv_table_rows(&chk, &rows) || rows != d->req_rows)
            bench_die("gRPC ObjectInfo of req does not report %lld rows", (long long)d->req_rows);
    }

    int http_limit_port = bench_const_http_start(oi_body, oi_len, pv_body, pv_len);
    int grpc_limit_port = 0;
    if (g_oi_ok)
        grpc_limit_port =
            bench_const_grpc_start(g_oi_resp.data, g_oi_resp.len, g_pv_ok ? g_pv_resp.data : g_oi_resp.data,
                                   g_pv_ok ? g_pv_resp.len : g_oi_resp.len);
    char grpc_limit_target[64];
    snprintf(grpc_limit_target, sizeof(grpc_limit_target), "127.0.0.1:%d", grpc_limit_port);

    static const int clients[] = {1, 16, 64};
    static const char *const headers[] = {"request",
                                          "transport",
                                          "clients",
                                          "p50 ms",
                                          "p99 ms",
                                          "req/s",
                                          "ratio vs in-process",
                                          "ratio vs transport limit",
                                          "other CPU",
                                          NULL};
    char title[200];
    snprintf(title, sizeof(title), "requests: latency p50/p99 and throughput (table of %s rows)",
             bench_int(d->req_rows));
    bench_table_t *t = bench_table_new(title, headers);

    double pv_limit_rps[3] = {0};
    for (int op = 0; op < 2; op++) {
        const char *opname = op == 0 ? "objectinfo" : "preview 100 rows";
        const char *opkey = op == 0 ? "objectinfo" : "preview";
        rest_arg_t ra = {b->server.http_port, op == 0 ? oi_path : pv_path, key};
        rest_arg_t rla = {http_limit_port, op == 0 ? oi_path : pv_path, key};
        grpc_arg_t ga = {b->server.grpc_target, op == 0 ? g_oi_req : g_pv_req, 0};
        grpc_arg_t gla = {grpc_limit_target, op == 0 ? g_oi_req : g_pv_req, 0};
        inproc_arg_t ia = {op == 0 ? bench_inproc_table_get : bench_inproc_preview};
        bool g_ok = op == 0 ? g_oi_ok : g_pv_ok;
        const char *g_why = op == 0 ? oi_why : pv_why;
        target_t targets[5] = {
            {"rest", true, "", &rest_ops, &ra},         {"grpc", g_ok, "", &grpc_ops, &ga},
            {"in-process", true, "", &inproc_ops, &ia}, {"rest limit", true, "", &rest_ops, &rla},
            {"grpc limit", g_ok, "", &grpc_ops, &gla},
        };
        snprintf(targets[1].why, sizeof(targets[1].why), "%s", g_why);
        snprintf(targets[4].why, sizeof(targets[4].why), "%s", g_why);
        for (size_t ci = 0; ci < sizeof(clients) / sizeof(clients[0]); ci++) {
            int c = clients[ci];
            bench_note("%s, %d clients", opname, c);
            bench_load_t res[5];
            long long exhausted[5] = {0};
            for (int ti = 0; ti < 5; ti++) {
                memset(&res[ti], 0, sizeof(res[ti]));
                if (!targets[ti].available)
                    continue;
                grpc_arg_t *gt = targets[ti].ops == &grpc_ops ? targets[ti].arg : NULL;
                long long ex0 = gt ? atomic_load(&gt->exhausted) : 0;
                bench_load_run(targets[ti].ops, targets[ti].arg, c, b->req_seconds, &res[ti]);
                exhausted[ti] = gt ? atomic_load(&gt->exhausted) - ex0 : 0;
                if (op == 1 && ti == 3)
                    pv_limit_rps[ci] = res[ti].rps;
                if (res[ti].requests == 0)
                    bench_die("%s over %s with %d clients: no request succeeded (%lld failures)", opname,
                              targets[ti].name, c, (long long)res[ti].failures);
            }
            for (int ti = 0; ti < 5; ti++) {
                char cs[16];
                snprintf(cs, sizeof(cs), "%d", c);
                if (!targets[ti].available) {
                    const char *cells[] = {opname, targets[ti].name, cs, "n/a", "", "", "", "", "", NULL};
                    bench_table_row(t, cells);
                    json_t *na = json_pack("{s:s,s:s,s:i,s:s}", "request", opkey, "transport", targets[ti].name,
                                           "clients", c, "not_available", targets[ti].why);
                    json_array_append_new(items, na);
                    continue;
                }
                json_t *it = load_json(opkey, targets[ti].name, &res[ti]);
                json_object_set_new(it, "resource_exhausted_incl_warmup", json_integer(exhausted[ti]));
                char r1[32] = "", r2[32] = "";
                if (ti == 0 || ti == 1) {
                    const bench_load_t *lim = &res[ti == 0 ? 3 : 4];
                    double rin = bench_ratio(res[ti].rps, res[2].rps), rlim = bench_ratio(res[ti].rps, lim->rps);
                    snprintf(r1, sizeof(r1), "%s", bench_num(rin, 2));
                    snprintf(r2, sizeof(r2), "%s", bench_num(rlim, 2));
                    json_object_set_new(it, "ratio_vs_inprocess", json_real(rin));
                    json_object_set_new(it, "ratio_vs_transport_limit", json_real(rlim));
                    json_object_set_new(it, "protocol_overhead_p50_ms", json_real(res[ti].p50_ms - res[2].p50_ms));
                }
                json_array_append_new(items, it);
                const char *cells[] = {opname,
                                       targets[ti].name,
                                       cs,
                                       bench_num(res[ti].p50_ms, 3),
                                       bench_num(res[ti].p99_ms, 3),
                                       bench_int((int64_t)res[ti].rps),
                                       r1,
                                       r2,
                                       other_cell(res[ti].other_cores),
                                       NULL};
                bench_table_row(t, cells);
                if (res[ti].failures)
                    bench_table_note(t,
                                     "%s over %s, %d clients: %lld requests failed; RESOURCE_EXHAUSTED answers (the key "
                                     "already had its share of the gRPC queue: a designed refusal), warm-up included: %lld",
                                     opname, targets[ti].name, c, (long long)res[ti].failures, exhausted[ti]);
            }
        }
    }
    /* The preview the cache cannot answer (a new changed_since each), against the same REST limit. */
    for (size_t ci = 0; ci < sizeof(clients) / sizeof(clients[0]); ci++) {
        int c = clients[ci];
        const char *opname = "preview 100 rows, uncached";
        bench_note("%s, %d clients", opname, c);
        rest_fresh_arg_t fa = {b->server.http_port, pv_path, key, 0};
        bench_load_t lf;
        bench_load_run(&rest_fresh_ops, &fa, c, b->req_seconds, &lf);
        if (lf.requests == 0)
            bench_die("%s with %d clients: no request succeeded (%lld failures)", opname, c, (long long)lf.failures);
        double rlim = bench_ratio(lf.rps, pv_limit_rps[ci]);
        char cs[16], r2[32];
        snprintf(cs, sizeof(cs), "%d", c);
        snprintf(r2, sizeof(r2), "%s", bench_num(rlim, 3));
        json_t *it = load_json("preview_uncached", "rest", &lf);
        json_object_set_new(it, "ratio_vs_transport_limit", json_real(rlim));
        json_array_append_new(items, it);
        const char *cells[] = {opname, "rest", cs, bench_num(lf.p50_ms, 3), bench_num(lf.p99_ms, 3),
                               bench_int((int64_t)lf.rps), "", r2, other_cell(lf.other_cores), NULL};
        bench_table_row(t, cells);
    }
    bench_table_note(t, "preview 100 rows: the same request again and again, which the server's cache of recent "
                        "previews answers after the first; \"uncached\": each with a changed_since no request used "
                        "before (every row still qualifies), so each runs its query.");
    /* ObjectInfo's cost grows with the table: the same request on the big imported table, one client. */
    {
        int64_t big_rows = d->rows + d->inc_rows - d->inc_overlap;
        int reps = b->quick ? 20 : 100;
        rest_arg_t ra = {b->server.http_port, "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/imp_csv",
                         key};
        grpc_arg_t ga = {b->server.grpc_target,
                         bench_drv_object_info_table(key, BENCH_PROJECT, BENCH_BUCKET, "imp_csv"), 0};
        bench_load_t lr, lg;
        bench_note("objectinfo of the %s-row table, %d requests", bench_int(big_rows), reps);
        bench_load_seq(&rest_ops, &ra, reps, &lr);
        char opname[64];
        snprintf(opname, sizeof(opname), "objectinfo %s rows", bench_int(big_rows));
        const char *c1[] = {opname,
                            "rest",
                            "1",
                            bench_num(lr.p50_ms, 3),
                            bench_num(lr.p99_ms, 3),
                            bench_int((int64_t)lr.rps),
                            "",
                            "",
                            other_cell(lr.other_cores),
                            NULL};
        bench_table_row(t, c1);
        json_t *it = load_json("objectinfo_big_table", "rest", &lr);
        json_object_set_new(it, "table_rows", json_integer(big_rows));
        json_array_append_new(items, it);
        if (g_oi_ok) {
            bench_load_seq(&grpc_ops, &ga, reps, &lg);
            const char *c2[] = {opname,
                                "grpc",
                                "1",
                                bench_num(lg.p50_ms, 3),
                                bench_num(lg.p99_ms, 3),
                                bench_int((int64_t)lg.rps),
                                "",
                                "",
                                other_cell(lg.other_cores),
                                NULL};
            bench_table_row(t, c2);
            it = load_json("objectinfo_big_table", "grpc", &lg);
            json_object_set_new(it, "table_rows", json_integer(big_rows));
            json_array_append_new(items, it);
        }
        bench_bytes_free(&ga.req);
    }
    if (!g_oi_ok)
        bench_table_note(t, "gRPC objectinfo: n/a (%s)", oi_why);
    if (!g_pv_ok)
        bench_table_note(t, "gRPC preview: n/a (%s)", pv_why);
    bench_table_note(t, "ratio = duckstore req/s / the other's req/s. in-process = the command layer called directly "
                        "(no protocol); limit = the same server library answering duckstore's captured answer.");
    bench_table_note(t,
                     "Each point runs %.2f s; clients, duckstore and the limits share this machine's %d cores. "
                     "other CPU = cores used by other processes during the point.",
                     b->req_seconds, b->machine.cores);

    bench_const_http_stop();
    if (g_oi_ok)
        bench_const_grpc_stop();
    bench_inproc_stop();
    bench_bytes_free(&g_oi_req);
    bench_bytes_free(&g_pv_req);
    bench_bytes_free(&g_oi_resp);
    bench_bytes_free(&g_pv_resp);
    free(oi_body);
    free(pv_body);
    json_object_set_new(pj, "items", items);
    json_object_set_new(pj, "seconds_per_point", json_real(b->req_seconds));
    json_object_set_new(pj, "table_rows", json_integer(d->req_rows));
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "requests", pj);
    bench_table_print(t);
}
