/*
 * phase_scale.c - scale: many tables in one project, many projects in one
 * server.
 *
 * DESIGN
 * Tables: one project, one bucket, T small tables created one after another
 * over REST. At 10 tables and again at T, the same read requests are timed:
 * ObjectInfo of the first table (REST and gRPC), listing the bucket's tables
 * (REST GET and gRPC ObjectInfo of the SCHEMA) and GET of the project (its
 * stats count every table). The end/start ratio shows what grows with the
 * table count, but also whatever else changed in the server meanwhile (the
 * heap after T creations, background work they started, the machine). So
 * ObjectInfo is also timed side by side: a second project keeps 10 tables,
 * and at the end requests go to the two projects in turn (small, big, small,
 * ...) on one connection, so both see the same moment; big / small is what
 * the table count alone costs.
 *
 * Projects: a second server with DUCKSTORE_MAX_OPEN_PROJECTS set low; P
 * projects each get a bucket and a table (4 clients at once), then two
 * rounds touch them round-robin with one ObjectInfo each, one client. With
 * P well above the cap, every touch finds its project detached and reopens
 * it ("cold"); every tenth project is touched a second time at once
 * ("warm"). reopen cost = cold p50 - warm p50. RSS after each round shows
 * whether memory stays flat while projects come and go.
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCALE_PROJECT "scale"
#define SMALL_PROJECT "scale10" /* the side-by-side twin that keeps 10 tables */
#define SCALE_BUCKET  "in.c-scale"

static json_t *small_table(const char *name)
{
    return json_pack("{s:s,s:[{s:s,s:s,s:b},s,s,s,s],s:[s]}", "name", name, "columns", "name", "id", "type", "BIGINT",
                     "nullable", 0, "a", "b", "c", "d", "primary_key", "id");
}

/* The latency summary of l into *out (requests, p50, p99); frees l. */
static void load_of(bench_lat_t *l, bench_load_t *out)
{
    memset(out, 0, sizeof(*out));
    out->requests = (int64_t)l->n;
    out->p50_ms = bench_lat_pct(l, 50) * 1000;
    out->p99_ms = bench_lat_pct(l, 99) * 1000;
    bench_lat_free(l);
}

/* Up to n sequential GETs of path (at least min_n, then only while under budget_s): latency percentiles. */
static void time_gets(bench_http_t *h, const char *key, const char *path, int n, int min_n, double budget_s,
                      bench_load_t *out)
{
    bench_lat_t lat = {0};
    bench_http_resp_t r;
    char err[256];
    double start = bench_now();
    for (int i = 0; i < n && (i < min_n || bench_now() - start < budget_s); i++) {
        double t0 = bench_now();
        if (bench_http_request(h, "GET", path, key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
            bench_die("GET %s failed: %s %d", path, err, r.status);
        bench_lat_add(&lat, bench_now() - t0);
    }
    load_of(&lat, out);
}

static bool time_grpc(bench_t *b, const bench_bytes_t *req, int n, int min_n, double budget_s, bench_load_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!b->server.grpc_ok)
        return false;
    bench_lat_t lat = {0};
    double start = bench_now();
    for (int i = 0; i < n && (i < min_n || bench_now() - start < budget_s); i++) {
        bench_grpc_resp_t r;
        double t0 = bench_now();
        int code = bench_grpc_call(b->grpc, req->data, req->len, 60, &r);
        double s = bench_now() - t0;
        bench_grpc_resp_free(&r);
        if (code != 0) {
            bench_lat_free(&lat);
            return false;
        }
        bench_lat_add(&lat, s);
    }
    load_of(&lat, out);
    return true;
}

typedef struct {
    bench_load_t oi_rest, oi_grpc, list_rest, list_grpc, project_get;
    bool grpc_oi, grpc_list;
} probe_t;

static void probe(bench_t *b, int reps, int list_reps, probe_t *p)
{
    const char *key = b->server.key;
    time_gets(b->http, key, "/projects/" SCALE_PROJECT "/buckets/" SCALE_BUCKET "/tables/t00000", reps, 3, 10,
              &p->oi_rest);
    time_gets(b->http, key, "/projects/" SCALE_PROJECT "/buckets/" SCALE_BUCKET "/tables", list_reps, 2, 10,
              &p->list_rest);
    time_gets(b->http, key, "/projects/" SCALE_PROJECT, list_reps, 2, 10, &p->project_get);
    bench_bytes_t oi = bench_drv_object_info_table(key, SCALE_PROJECT, SCALE_BUCKET, "t00000");
    bench_bytes_t ls = bench_drv_object_info_schema(key, SCALE_PROJECT, SCALE_BUCKET);
    p->grpc_oi = time_grpc(b, &oi, reps, 3, 10, &p->oi_grpc);
    p->grpc_list = time_grpc(b, &ls, list_reps, 2, 10, &p->list_grpc);
    bench_bytes_free(&oi);
    bench_bytes_free(&ls);
}

#define OI_PATH(project, table) "/projects/" project "/buckets/" SCALE_BUCKET "/tables/" table

/*
 * ObjectInfo of the small and the big project's first table in turn, reps
 * each (REST on one connection, then gRPC on one channel): the two share
 * every moment, so their ratio is the table count's cost alone.
 */
static void interleaved(bench_t *b, int reps, bench_load_t out[4], bool *grpc_ok)
{
    const char *key = b->server.key;
    const char *paths[2] = {OI_PATH(SMALL_PROJECT, "t00000"), OI_PATH(SCALE_PROJECT, "t00000")};
    bench_bytes_t req[2] = {bench_drv_object_info_table(key, SMALL_PROJECT, SCALE_BUCKET, "t00000"),
                            bench_drv_object_info_table(key, SCALE_PROJECT, SCALE_BUCKET, "t00000")};
    bench_lat_t lat[4] = {{0}};
    bench_http_resp_t r;
    char err[256];
    *grpc_ok = b->server.grpc_ok;
    for (int i = 0; i < 2 * reps; i++) {
        double t0 = bench_now();
        if (bench_http_request(b->http, "GET", paths[i % 2], key, NULL, 0, &r, err, sizeof(err)) != 0 ||
            r.status != 200)
            bench_die("GET %s failed: %s %d", paths[i % 2], err, r.status);
        bench_lat_add(&lat[i % 2], bench_now() - t0);
    }
    for (int i = 0; *grpc_ok && i < 2 * reps; i++) {
        bench_grpc_resp_t g;
        double t0 = bench_now();
        int code = bench_grpc_call(b->grpc, req[i % 2].data, req[i % 2].len, 60, &g);
        double s = bench_now() - t0;
        bench_grpc_resp_free(&g);
        if (code != 0)
            *grpc_ok = false;
        bench_lat_add(&lat[2 + i % 2], s);
    }
    for (int k = 0; k < 4; k++)
        load_of(&lat[k], &out[k]);
    bench_bytes_free(&req[0]);
    bench_bytes_free(&req[1]);
}

static void cmp_row(bench_table_t *t, json_t *items, const char *what, double start, double end, bool avail)
{
    if (!avail) {
        const char *cells[] = {what, "n/a", "n/a", "", NULL};
        bench_table_row(t, cells);
        json_array_append_new(items, json_pack("{s:s,s:s}", "name", what, "not_available", "gRPC does not answer"));
        return;
    }
    double ratio = start > 0 ? end / start : 0;
    const char *cells[] = {what, bench_num(start, 3), bench_num(end, 3), bench_num(ratio, 2), NULL};
    bench_table_row(t, cells);
    json_array_append_new(items, json_pack("{s:s,s:f,s:f,s:f}", "name", what, "at_start", start, "at_end", end,
                                           "ratio_end_over_start", ratio));
}

void bench_phase_tables(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "tables");
    const char *key = b->server.key;
    int n = b->scale_tables, first = 10;
    int reps = b->quick ? 30 : 1000, list_reps = b->quick ? 3 : 10;
    bench_note("tables: creating %d tables in one project", n);
    bench_rest_create_project(b->http, key, SMALL_PROJECT);
    bench_rest_create_bucket(b->http, key, SMALL_PROJECT, "in", "scale");
    for (int i = 0; i < first; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%05d", i);
        json_decref(bench_rest(b->http, key, "POST", "/projects/" SMALL_PROJECT "/buckets/" SCALE_BUCKET "/tables",
                               small_table(name), 201));
    }
    bench_rest_create_project(b->http, key, SCALE_PROJECT);
    bench_rest_create_bucket(b->http, key, SCALE_PROJECT, "in", "scale");
    double *lat = bench_xmalloc(sizeof(double) * (size_t)n);
    probe_t start = {0}, end = {0};
    double t_all = bench_now();
    double probe_time = 0;
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%05d", i);
        double t0 = bench_now();
        json_decref(bench_rest(b->http, key, "POST", "/projects/" SCALE_PROJECT "/buckets/" SCALE_BUCKET "/tables",
                               small_table(name), 201));
        lat[i] = bench_now() - t0;
        if (i + 1 == first) {
            double p0 = bench_now();
            probe(b, reps, list_reps, &start);
            probe_time = bench_now() - p0;
        }
        if ((i + 1) % 1000 == 0)
            bench_note("%d tables", i + 1);
    }
    double create_total = bench_now() - t_all - probe_time;
    probe(b, reps, list_reps, &end);
    bench_load_t side[4];
    bool side_grpc;
    interleaved(b, b->quick ? 200 : 2000, side, &side_grpc);

    int tenth = n / 10 > 0 ? n / 10 : 1;
    bench_lat_t lf = {0}, ll = {0};
    double sf = 0, sl = 0;
    for (int i = 0; i < tenth; i++) {
        bench_lat_add(&lf, lat[i]);
        sf += lat[i];
        bench_lat_add(&ll, lat[n - 1 - i]);
        sl += lat[n - 1 - i];
    }
    double create_p50_first = bench_lat_pct(&lf, 50) * 1000, create_p50_last = bench_lat_pct(&ll, 50) * 1000;
    bench_lat_free(&lf);
    bench_lat_free(&ll);
    free(lat);

    json_t *pj = json_object(), *items = json_array();
    char title[200];
    snprintf(title, sizeof(title), "tables: %s tables in one project (one bucket)", bench_int(n));
    static const char *const h[] = {"tables", "at start", "at end", "ratio end/start", NULL};
    bench_table_t *t = bench_table_new(title, h);
    cmp_row(t, items, "create table rest p50 ms (first/last 10%)", create_p50_first, create_p50_last, true);
    cmp_row(t, items, "create tables/s (first/last 10%)", tenth / sf, tenth / sl, true);
    cmp_row(t, items, "objectinfo rest p50 ms", start.oi_rest.p50_ms, end.oi_rest.p50_ms, true);
    cmp_row(t, items, "objectinfo rest p99 ms", start.oi_rest.p99_ms, end.oi_rest.p99_ms, true);
    cmp_row(t, items, "objectinfo grpc p50 ms", start.oi_grpc.p50_ms, end.oi_grpc.p50_ms, start.grpc_oi && end.grpc_oi);
    cmp_row(t, items, "list tables rest p50 ms", start.list_rest.p50_ms, end.list_rest.p50_ms, true);
    cmp_row(t, items, "list tables grpc p50 ms (ObjectInfo SCHEMA)", start.list_grpc.p50_ms, end.list_grpc.p50_ms,
            start.grpc_list && end.grpc_list);
    cmp_row(t, items, "project get rest p50 ms (stats)", start.project_get.p50_ms, end.project_get.p50_ms, true);
    cmp_row(t, items, "side by side: objectinfo rest p50 ms (10 / all tables)", side[0].p50_ms, side[1].p50_ms, true);
    cmp_row(t, items, "side by side: objectinfo grpc p50 ms (10 / all tables)", side[2].p50_ms, side[3].p50_ms,
            side_grpc);
    bench_table_note(t, "start = after %d tables, end = after %s; create rate overall: %s tables/s (%.1f s).", first,
                     bench_int(n), bench_num(n / create_total, 1), create_total);
    bench_table_note(t, "side by side: at the end, a project of %d tables and this one asked in turn, %s times each: "
                     "the same moment for both, so the ratio is the table count's alone.", first,
                     bench_int(side[0].requests));
    json_object_set_new(pj, "items", items);
    json_object_set_new(pj, "tables", json_integer(n));
    json_object_set_new(pj, "create_tables_per_s", json_real(n / create_total));
    json_object_set_new(pj, "create_seconds", json_real(create_total));
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "tables", pj);
    bench_table_print(t);
}

/* ---- projects ---- */

typedef struct {
    bench_server_t *s;
    int n;
    atomic_int *next;
} creator_t;

static void *create_projects(void *arg)
{
    creator_t *c = arg;
    bench_http_t *h = bench_http_open(c->s->http_port);
    for (;;) {
        int i = atomic_fetch_add(c->next, 1);
        if (i >= c->n)
            break;
        char id[16], path[128];
        snprintf(id, sizeof(id), "p%05d", i);
        bench_rest_create_project(h, c->s->key, id);
        bench_rest_create_bucket(h, c->s->key, id, "in", "b");
        snprintf(path, sizeof(path), "/projects/%s/buckets/in.c-b/tables", id);
        json_decref(bench_rest(h, c->s->key, "POST", path, small_table("t"), 201));
    }
    bench_http_close(&h);
    return NULL;
}

void bench_phase_projects(bench_t *b)
{
    int n = b->scale_projects;
    char env_max[64];
    snprintf(env_max, sizeof(env_max), "DUCKSTORE_MAX_OPEN_PROJECTS=%d", b->scale_max_open);
    const char *env[] = {env_max, NULL};
    bench_server_t s;
    char *dir = bench_fmt("%s/projects", b->run);
    char *log = bench_fmt("%s/projects.log", b->run);
    bench_note("projects: a server with %s; creating %d projects", env_max, n);
    bench_server_start(&s, b->binary, dir, log, env);
    bench_rss_watch(s.pid);
    bench_mem_t mem;
    bench_mem_begin(&mem, "projects");

    atomic_int next = 0;
    creator_t c = {&s, n, &next};
    pthread_t th[4];
    double t0 = bench_now();
    for (int i = 0; i < 4; i++)
        if (pthread_create(&th[i], NULL, create_projects, &c) != 0)
            bench_die("cannot start a thread");
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double create_s = bench_now() - t0;
    bench_sleep_ms(300);
    int64_t rss_created = bench_rss_read(s.pid);

    bench_http_t *h = bench_http_open(s.http_port);
    bench_lat_t cold = {0}, warm = {0};
    int64_t rss_round[2] = {0, 0};
    double round_s[2] = {0, 0};
    for (int round = 0; round < 2; round++) {
        bench_note("projects: touch round %d of 2", round + 1);
        double r0 = bench_now();
        for (int i = 0; i < n; i++) {
            char path[128];
            snprintf(path, sizeof(path), "/projects/p%05d/buckets/in.c-b/tables/t", i);
            bench_http_resp_t r;
            char err[256];
            double a = bench_now();
            if (bench_http_request(h, "GET", path, s.key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
                bench_die("GET %s failed: %s", path, err);
            bench_lat_add(&cold, bench_now() - a);
            if (i % 10 == 0) {
                a = bench_now();
                if (bench_http_request(h, "GET", path, s.key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
                    bench_die("GET %s failed: %s", path, err);
                bench_lat_add(&warm, bench_now() - a);
            }
        }
        round_s[round] = bench_now() - r0;
        bench_sleep_ms(300);
        rss_round[round] = bench_rss_read(s.pid);
    }
    int64_t open_now = (int64_t)bench_metric(h, s.key, "duckstore_open_projects");
    int64_t open_peak = (int64_t)bench_metric(h, s.key, "duckstore_open_projects_peak");
    bench_http_close(&h);
    double cold50 = bench_lat_pct(&cold, 50) * 1000, cold99 = bench_lat_pct(&cold, 99) * 1000;
    double warm50 = bench_lat_pct(&warm, 50) * 1000, warm99 = bench_lat_pct(&warm, 99) * 1000;
    bench_lat_free(&cold);
    bench_lat_free(&warm);
    bench_mem_end(&mem);
    double flat = rss_round[0] > 0 ? (double)rss_round[1] / (double)rss_round[0] : 0;

    json_t *pj = json_pack("{s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:f,s:b,s:I,s:I}", "projects", n,
                           "max_open_projects", b->scale_max_open, "create_seconds", create_s, "create_projects_per_s",
                           n / create_s, "touch_round1_seconds", round_s[0], "touch_round2_seconds", round_s[1],
                           "touch_cold_p50_ms", cold50, "touch_cold_p99_ms", cold99, "touch_warm_p50_ms", warm50,
                           "touch_warm_p99_ms", warm99, "reopen_cost_ms", cold50 - warm50, "rss_after_create_bytes",
                           (json_int_t)rss_created, "rss_after_round1_bytes", (json_int_t)rss_round[0],
                           "rss_after_round2_bytes", (json_int_t)rss_round[1], "rss_ratio_round2_over_round1", flat,
                           "rss_flat_within_20_percent", flat > 0 && flat <= 1.2, "open_projects_now",
                           (json_int_t)open_now, "open_projects_peak", (json_int_t)open_peak);

    char title[200];
    snprintf(title, sizeof(title), "projects: %s projects touched round-robin, DUCKSTORE_MAX_OPEN_PROJECTS=%d",
             bench_int(n), b->scale_max_open);
    static const char *const hd[] = {"projects", "value", NULL};
    bench_table_t *t = bench_table_new(title, hd);
    char buf[64];
#define ROW(label, value)                                                                                              \
    do {                                                                                                               \
        const char *cells_[] = {label, value, NULL};                                                                   \
        bench_table_row(t, cells_);                                                                                    \
    } while (0)
    ROW("create projects/s (project + bucket + table, 4 clients)", bench_num(n / create_s, 1));
    ROW("touch cold p50 ms (project detached: reopen)", bench_num(cold50, 3));
    ROW("touch cold p99 ms", bench_num(cold99, 3));
    ROW("touch warm p50 ms (project open)", bench_num(warm50, 3));
    ROW("reopen cost ms (cold p50 - warm p50)", bench_num(cold50 - warm50, 3));
    ROW("touches/s, round 1", bench_num(n / round_s[0], 1));
    ROW("touches/s, round 2", bench_num(n / round_s[1], 1));
    ROW("rss MB after creating", bench_mb(rss_created));
    ROW("rss MB after round 1", bench_mb(rss_round[0]));
    ROW("rss MB after round 2", bench_mb(rss_round[1]));
    snprintf(buf, sizeof(buf), "%s (%s)", bench_num(flat, 2), flat > 0 && flat <= 1.2 ? "flat" : "NOT flat");
    ROW("rss ratio round 2 / round 1", buf);
    snprintf(buf, sizeof(buf), "%lld now, %lld peak (cap %d)", (long long)open_now, (long long)open_peak,
             b->scale_max_open);
    ROW("open projects (/metrics)", buf);
#undef ROW
    if (open_peak > b->scale_max_open)
        bench_table_note(t, "The open-projects peak exceeds the cap: projects in use are never detached.");
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "projects", pj);
    bench_table_print(t);
    bench_server_stop(&s);
    bench_rss_watch(0);
    bench_rmtree(dir);
    free(dir);
    free(log);
}
