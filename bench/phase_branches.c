/*
 * phase_branches.c - development branches: creating a branch costs the same
 * whatever the project holds.
 *
 * DESIGN
 * Runs on the main server after the data phases, so the benchmark project
 * holds the imported tables (about 1 GB of CSV in the full run). It gets small
 * tables until it has `tables` of them (full: 500, QUICK: 50). A second,
 * empty project is created. Branches are then created alternately in the
 * empty and in the large project (REST POST /projects/{id}/branches), so
 * background noise hits both alike, and the p50 of each is compared.
 * Goal (issue 11): the large project's p50 under 50 ms and within 2x of the
 * empty project's. Run alone (--phase branches), the phase first imports the
 * base CSV into the project itself, so the project still holds the data.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_PROJECT "branch-empty"

static double create_branch(bench_t *b, const char *project, int i)
{
    char path[128], id[32];
    snprintf(path, sizeof(path), "/projects/%s/branches", project);
    snprintf(id, sizeof(id), "b%04d", i);
    double t0 = bench_now();
    json_decref(bench_rest(b->http, b->server.key, "POST", path, json_pack("{s:s}", "id", id), 201));
    return bench_now() - t0;
}

void bench_phase_branches(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "branches");
    const char *key = b->server.key;
    int want_tables = b->quick ? 50 : 500, reps = b->quick ? 15 : 50;
    json_t *proj = bench_rest(b->http, key, "GET", "/projects/" BENCH_PROJECT, NULL, 200);
    json_t *stats = json_object_get(proj, "stats");
    int have = (int)json_integer_value(json_object_get(stats, "tables"));
    /* Run alone (--phase branches): the data phases did not fill the project; one REST import of the base CSV does. */
    int64_t csv = bench_file_size(b->data.base_csv);
    if (json_integer_value(json_object_get(stats, "rows")) < b->data.rows && csv > 0) {
        bench_note("branches: importing %s MB of CSV into %s (the data phases did not run)", bench_mb(csv),
                   BENCH_PROJECT);
        double up_s;
        char *file_id = bench_rest_upload(b->http, key, BENCH_PROJECT, "bench/branches.csv", b->data.base_csv, &up_s);
        bench_rest_create_bench_table(b->http, key, BENCH_PROJECT, BENCH_BUCKET, "br_data");
        json_decref(bench_rest(b->http, key, "POST",
                               "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/br_data/import/file",
                               json_pack("{s:s,s:s}", "file_id", file_id, "format", "csv"), 200));
        free(file_id);
        have++;
    }
    bench_note("branches: filling project %s up to %d tables (has %d)", BENCH_PROJECT, want_tables, have);
    for (int i = have; i < want_tables; i++) {
        char name[16];
        snprintf(name, sizeof(name), "br%04d", i);
        json_decref(bench_rest(b->http, key, "POST", "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables",
                               json_pack("{s:s,s:[{s:s},{s:s}]}", "name", name, "columns", "name", "a", "name", "b"),
                               201));
    }
    json_decref(proj);
    proj = bench_rest(b->http, key, "GET", "/projects/" BENCH_PROJECT, NULL, 200);
    stats = json_object_get(proj, "stats");
    int64_t tables = json_integer_value(json_object_get(stats, "tables"));
    int64_t bytes = json_integer_value(json_object_get(stats, "bytes"));
    json_decref(proj);
    bench_rest_create_project(b->http, key, EMPTY_PROJECT);

    bench_lat_t le = {0}, ll = {0};
    for (int i = 0; i < reps; i++) {
        bench_lat_add(&le, create_branch(b, EMPTY_PROJECT, i));
        bench_lat_add(&ll, create_branch(b, BENCH_PROJECT, i));
    }
    double e50 = bench_lat_pct(&le, 50) * 1000, e99 = bench_lat_pct(&le, 99) * 1000;
    double l50 = bench_lat_pct(&ll, 50) * 1000, l99 = bench_lat_pct(&ll, 99) * 1000;
    bench_lat_free(&le);
    bench_lat_free(&ll);
    double ratio = e50 > 0 ? l50 / e50 : 0;
    bool met = l50 < 50 && ratio <= 2.0;

    char title[200];
    snprintf(title, sizeof(title), "branches: create a branch, empty project vs %s tables / %s MB", bench_int(tables),
             bench_mb(bytes));
    static const char *const h[] = {"project", "p50 ms", "p99 ms", NULL};
    bench_table_t *t = bench_table_new(title, h);
    const char *r1[] = {"empty", bench_num(e50, 2), bench_num(e99, 2), NULL};
    bench_table_row(t, r1);
    const char *r2[] = {"large", bench_num(l50, 2), bench_num(l99, 2), NULL};
    bench_table_row(t, r2);
    bench_table_note(t, "%d creates each, alternating; large/empty p50 = %s; goal (large p50 < 50 ms, ratio <= 2): %s",
                     reps, bench_num(ratio, 2), met ? "met" : "NOT met");
    json_t *pj = json_pack("{s:I,s:I,s:i,s:f,s:f,s:f,s:f,s:f,s:b}", "large_tables", (json_int_t)tables, "large_bytes",
                           (json_int_t)bytes, "creates", reps, "empty_p50_ms", e50, "empty_p99_ms", e99,
                           "large_p50_ms", l50, "large_p99_ms", l99, "ratio_large_over_empty", ratio, "goal_met", met);
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "branches", pj);
    bench_table_print(t);
}
