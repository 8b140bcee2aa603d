/*
 * phase_history.c - the cost of time travel's row history, and a restore.
 *
 * DESIGN
 * Two projects on the main server hold the same table (the base CSV, full
 * import): "hist-on" keeps history (retention 7 days), "hist-off" none
 * (retention 0). The incremental file (10% of its keys already present) is
 * upserted into both, alternately, `reps` times; the p50 of each gives the
 * overhead ratio (goal: on <= 1.3x off). DuckDB's best upsert of the same
 * file into its own copy of the table (bench_limit_upsert_sql, a database of
 * its own in the benchmark process) runs in the same rounds, so off / DuckDB
 * shows what the upsert costs without history. The server's CPU seconds during each
 * upsert give a second ratio, which other work on the machine skews less than
 * wall time (the CPU is the history's work; a loaded machine only stretches
 * it). History bytes per changed row: the
 * growth of hist-on's project file (with its WAL) beyond hist-off's, divided
 * by the rows the upserts removed and added (an estimate: DuckDB grows files
 * in blocks). Then 50 further upserts of the small
 * request file go into hist-on, and the table is restored to the moment
 * before them (REST time travel), against DuckDB's own CREATE TABLE AS copy
 * of the same table in a database of its own (the plain copy).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define ON "hist-on"
#define OFF "hist-off"
#define TABLE "h"

static char *tpath(const char *project, const char *table, const char *tail)
{
    return bench_fmt("/projects/%s/buckets/" BENCH_BUCKET "/tables/%s%s", project, table, tail);
}

/* One incremental upsert: its wall time, and the server's CPU seconds during it into *cpu (when given). */
static double upsert(bench_t *b, const char *project, const char *file_id, double *cpu)
{
    char *path = tpath(project, TABLE, "/import/file");
    double c0 = bench_process_cpu_seconds(b->server.pid), t0 = bench_now();
    json_decref(bench_rest(b->http, b->server.key, "POST", path,
                           json_pack("{s:s,s:s,s:b}", "file_id", file_id, "format", "csv", "incremental", 1), 200));
    double s = bench_now() - t0;
    if (cpu)
        *cpu = bench_process_cpu_seconds(b->server.pid) - c0;
    free(path);
    return s;
}

static int64_t project_bytes(bench_t *b, const char *project)
{
    char *f = bench_fmt("%s/duckdb/project_%s_main.duckdb", b->server.data_dir, project);
    char *w = bench_fmt("%s.wal", f);
    int64_t n = bench_file_size(f), m = bench_file_size(w);
    free(f);
    free(w);
    return (n > 0 ? n : 0) + (m > 0 ? m : 0);
}

static void setup(bench_t *b, const char *project, int retention)
{
    const char *key = b->server.key;
    json_decref(bench_rest(b->http, key, "POST", "/projects",
                           json_pack("{s:s,s:i}", "id", project, "data_retention_time", retention), 201));
    bench_rest_create_bucket(b->http, key, project, "in", "c-bench");
    bench_rest_create_bench_table(b->http, key, project, BENCH_BUCKET, TABLE);
    double s;
    char *file_id = bench_rest_upload(b->http, key, project, "bench/base.csv", b->data.base_csv, &s);
    char *path = tpath(project, TABLE, "/import/file");
    json_decref(bench_rest(b->http, key, "POST", path, json_pack("{s:s,s:s}", "file_id", file_id, "format", "csv"),
                           200));
    free(path);
    free(file_id);
}

void bench_phase_history(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "history");
    const char *key = b->server.key;
    const bench_data_t *d = &b->data;
    int reps = b->quick ? 3 : 3, steps = 50;
    bench_note("history: two projects with %s rows each (history on / off)", bench_int(d->rows));
    setup(b, ON, 7);
    setup(b, OFF, 0);
    int64_t base_on = project_bytes(b, ON), base_off = project_bytes(b, OFF);
    double s;
    char *inc_on = bench_rest_upload(b->http, key, ON, "bench/inc.csv", d->inc_csv, &s);
    char *inc_off = bench_rest_upload(b->http, key, OFF, "bench/inc.csv", d->inc_csv, &s);
    /* DuckDB's own copy of the table, for its upsert in the same rounds and the plain copy below. */
    char *lim_path = bench_fmt("%s/history-limit.duckdb", b->run);
    bench_remove_db(lim_path);
    bench_limit_t *lim = bench_limit_open(lim_path, b->memory_limit_bytes, b->machine.cores);
    bench_limit_create_table(lim, "src");
    bench_limit_copy_from(lim, "src", d->base_csv, BENCH_FMT_CSV);
    bench_limit_exec(lim, "CREATE TABLE up AS SELECT * FROM src; CHECKPOINT");
    char *lim_upsert = bench_limit_upsert_sql(d->inc_csv, "up");
    /* Wall time, and the server's CPU time (what a busy machine skews less). */
    bench_lat_t lon = {0}, loff = {0}, con = {0}, coff = {0}, lduck = {0};
    /* Each round's times: the first upsert finds 10% of its keys present, the later ones all of them. */
    json_t *rounds = json_array();
    int64_t changed = 0;
    for (int r = 0; r < reps; r++) {
        bench_limit_exec(lim, "CHECKPOINT");
        double t_duck = bench_limit_exec(lim, lim_upsert), t_on, t_off;
        bench_lat_add(&lduck, t_duck);
        double c_on, c_off;
        if (r % 2 == 0) {
            t_off = upsert(b, OFF, inc_off, &c_off);
            t_on = upsert(b, ON, inc_on, &c_on);
        } else {
            t_on = upsert(b, ON, inc_on, &c_on);
            t_off = upsert(b, OFF, inc_off, &c_off);
        }
        bench_lat_add(&lon, t_on);
        bench_lat_add(&loff, t_off);
        json_array_append_new(rounds, json_pack("{s:I,s:f,s:f,s:f}", "keys_present",
                                                (json_int_t)(r == 0 ? d->inc_overlap : d->inc_rows), "duckdb_s",
                                                t_duck, "off_s", t_off, "on_s", t_on));
        bench_lat_add(&con, c_on);
        bench_lat_add(&coff, c_off);
        /* The first upsert replaces the overlapping keys; later ones every key of the file. */
        changed += (r == 0 ? d->inc_overlap : d->inc_rows) + d->inc_rows;
    }
    double on50 = bench_lat_pct(&lon, 50), off50 = bench_lat_pct(&loff, 50);
    double ratio = off50 > 0 ? on50 / off50 : 0;
    double cpu_on50 = bench_lat_pct(&con, 50), cpu_off50 = bench_lat_pct(&coff, 50);
    double cpu_ratio = cpu_off50 > 0 ? cpu_on50 / cpu_off50 : 0;
    double duck50 = bench_lat_pct(&lduck, 50);
    double off_vs_duck = off50 > 0 ? duck50 / off50 : 0, on_vs_duck = on50 > 0 ? duck50 / on50 : 0;
    free(lim_upsert);
    if (bench_limit_int(lim, "SELECT count(*) FROM up") != d->rows + d->inc_rows - d->inc_overlap)
        bench_die("history: DuckDB's upsert left %lld rows",
                  (long long)bench_limit_int(lim, "SELECT count(*) FROM up"));
    bench_limit_exec(lim, "DROP TABLE up; CHECKPOINT");
    int64_t grown_on = project_bytes(b, ON) - base_on, grown_off = project_bytes(b, OFF) - base_off;
    double per_row = changed > 0 ? (double)(grown_on - grown_off) / (double)changed : 0;
    bench_lat_free(&lon);
    bench_lat_free(&loff);
    bench_lat_free(&con);
    bench_lat_free(&coff);
    bench_lat_free(&lduck);

    /* 50 imports after the moment, then the restore to it. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    bench_sleep_ms(20);
    char moment[64];
    time_t sec = tv.tv_sec;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(moment, sizeof(moment), "%Y-%m-%dT%H:%M:%S", &tm);
    char *moment_us = bench_fmt("%s.%06ldZ", moment, (long)tv.tv_usec);
    char *path = tpath(ON, TABLE, "");
    json_t *info = bench_rest(b->http, key, "GET", path, NULL, 200);
    int64_t rows_then = json_integer_value(json_object_get(info, "rows"));
    json_decref(info);
    free(path);
    bench_sleep_ms(20);
    char *req_on = bench_rest_upload(b->http, key, ON, "bench/req.csv", d->req_csv, &s);
    bench_note("history: %d upserts of %s rows after the moment", steps, bench_int(d->req_rows));
    for (int i = 0; i < steps; i++)
        upsert(b, ON, req_on, NULL);
    path = tpath(ON, TABLE, "/time-travel");
    double t0 = bench_now();
    json_t *restored =
        bench_rest(b->http, key, "POST", path,
                   json_pack("{s:s,s:{s:s,s:s}}", "timestamp", moment_us, "destination", "bucket", BENCH_BUCKET,
                             "table", "h_back"),
                   201);
    double tt_s = bench_now() - t0;
    free(path);
    if (json_integer_value(json_object_get(restored, "rows")) != rows_then)
        bench_die("history: the restore has %lld rows, the table had %lld at the moment",
                  (long long)json_integer_value(json_object_get(restored, "rows")), (long long)rows_then);
    json_decref(restored);

    /* The plain copy: DuckDB's own CREATE TABLE AS of the same table, in a database of its own. */
    double copy_s = bench_limit_exec(lim, "CREATE TABLE copy AS SELECT * FROM src");
    bench_limit_close(&lim);
    bench_remove_db(lim_path);
    free(lim_path);

    bool met = ratio > 0 && ratio <= 1.3;
    char title[200];
    snprintf(title, sizeof(title), "history: upsert %s rows (%s present) into %s rows, history on vs off",
             bench_int(d->inc_rows), bench_int(d->inc_overlap), bench_int(d->rows));
    static const char *const h[] = {"what", "seconds", "note", NULL};
    bench_table_t *t = bench_table_new(title, h);
    char n2[64], n3[64], n4[64];
    snprintf(n2, sizeof(n2), "ratio %.2f", ratio);
    snprintf(n3, sizeof(n3), "%lld rows", (long long)rows_then);
    snprintf(n4, sizeof(n4), "restore/copy %.2f", copy_s > 0 ? tt_s / copy_s : 0);
    const char *r1[] = {"upsert, history off (p50)", bench_num(off50, 3), "", NULL};
    bench_table_row(t, r1);
    const char *r2[] = {"upsert, history on (p50)", bench_num(on50, 3), n2, NULL};
    bench_table_row(t, r2);
    char n6[96];
    snprintf(n6, sizeof(n6), "vs history off %.2f, on %.2f", off_vs_duck, on_vs_duck);
    const char *r7[] = {"DuckDB's best upsert, same rounds (p50)", bench_num(duck50, 3), n6, NULL};
    bench_table_row(t, r7);
    char n5[64];
    snprintf(n5, sizeof(n5), "CPU ratio %.2f", cpu_ratio);
    const char *r5[] = {"server CPU, history off (p50)", bench_num(cpu_off50, 3), "", NULL};
    bench_table_row(t, r5);
    const char *r6[] = {"server CPU, history on (p50)", bench_num(cpu_on50, 3), n5, NULL};
    bench_table_row(t, r6);
    const char *r3[] = {"restore 50 imports ago", bench_num(tt_s, 3), n3, NULL};
    bench_table_row(t, r3);
    const char *r4[] = {"DuckDB CREATE TABLE AS copy", bench_num(copy_s, 3), n4, NULL};
    bench_table_row(t, r4);
    for (size_t i = 0; i < json_array_size(rounds); i++) {
        json_t *rd = json_array_get(rounds, i);
        double du = json_real_value(json_object_get(rd, "duckdb_s"));
        double of = json_real_value(json_object_get(rd, "off_s")), on = json_real_value(json_object_get(rd, "on_s"));
        bench_table_note(t, "round %zu (%s keys present): DuckDB %.3f s, off %.3f s, on %.3f s; DuckDB / off %.2f, "
                         "DuckDB / on %.2f", i + 1, bench_int(json_integer_value(json_object_get(rd, "keys_present"))),
                         du, of, on, of > 0 ? du / of : 0, on > 0 ? du / on : 0);
    }
    bench_table_note(t, "%d upserts each, alternating (DuckDB first in each round; ratio vs DuckDB = DuckDB's time "
                        "/ duckstore's, as in the import phases); history bytes per changed row (removed + "
                        "added): %.1f; goal (on <= 1.3x off): %s",
                     reps, per_row, met ? "met" : "NOT met");
    json_t *pj = json_pack("{s:I,s:I,s:I,s:i,s:f,s:f,s:f,s:I,s:f,s:i,s:I,s:f,s:f,s:f,s:b}", "table_rows",
                           (json_int_t)d->rows, "upsert_rows", (json_int_t)d->inc_rows, "overlapping_keys",
                           (json_int_t)d->inc_overlap, "upserts", reps, "upsert_off_p50_s", off50, "upsert_on_p50_s",
                           on50, "ratio_on_over_off", ratio, "changed_rows", (json_int_t)changed,
                           "history_bytes_per_changed_row", per_row, "restore_after_imports", steps,
                           "restore_rows", (json_int_t)rows_then, "restore_s", tt_s, "duckdb_ctas_copy_s", copy_s,
                           "restore_over_copy", copy_s > 0 ? tt_s / copy_s : 0, "goal_met", met);
    free(inc_on);
    free(inc_off);
    free(req_on);
    free(moment_us);
    json_object_set_new(pj, "upsert_off_cpu_p50_s", json_real(cpu_off50));
    json_object_set_new(pj, "upsert_on_cpu_p50_s", json_real(cpu_on50));
    json_object_set_new(pj, "cpu_ratio_on_over_off", json_real(cpu_ratio));
    json_object_set_new(pj, "duckdb_upsert_p50_s", json_real(duck50));
    json_object_set_new(pj, "rounds", rounds);
    json_object_set_new(pj, "ratio_duckdb_over_off", json_real(off_vs_duck));
    json_object_set_new(pj, "ratio_duckdb_over_on", json_real(on_vs_duck));
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "history", pj);
    bench_table_print(t);
}
