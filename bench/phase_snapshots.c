/*
 * phase_snapshots.c - snapshots: taking one of the big table, and restoring
 * it, side by side with DuckDB doing the same work itself.
 *
 * DESIGN
 * Runs after the export phase, on the table the import and incremental
 * phases built (imp_csv, 7M rows in the full run; QUICK: 20,000), while the
 * limit database still holds the same rows (lim_csv). A snapshot writes
 * every column and _timestamp to Parquet (REST POST /projects/{id}/snapshots);
 * the limit is DuckDB's own COPY (SELECT * FROM lim_csv) TO '...parquet' in
 * this process. A restore into a new table (one transaction: create, load
 * from the Parquet file) is compared with CREATE TABLE ... AS SELECT * FROM
 * read_parquet of the limit's file. The better of two runs on each side.
 * Goal (issue 14): the snapshot at least 0.9x DuckDB's COPY TO parquet.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_TABLE "imp_csv"

static double best(double a, double b) { return a > 0 && (b <= 0 || a < b) ? a : b; }

void bench_phase_snapshots(bench_t *b)
{
    if (!b->limit)
        bench_die("snapshots: the phase needs the import phase (run it with --phase import,snapshots)");
    bench_mem_t mem;
    bench_mem_begin(&mem, "snapshots");
    const char *key = b->server.key;
    int64_t rows = bench_limit_int(b->limit, "SELECT count(*) FROM lim_csv");
    double snap_s = 0, lim_s = 0, rest_s = 0, lim_rest_s = 0;
    int64_t snap_bytes = 0, lim_bytes = 0;
    char *lim_file = bench_fmt("%s/limit_snapshot.parquet", b->run);
    for (int run = 0; run < 2; run++) {
        bench_note("snapshots: run %d: DuckDB COPY TO parquet, snapshot over REST, restores", run + 1);
        remove(lim_file);
        bench_limit_exec(b->limit, "CHECKPOINT");
        char *sql = bench_fmt("COPY (SELECT * FROM lim_csv) TO '%s' (FORMAT parquet)", lim_file);
        lim_s = best(lim_s, bench_limit_exec(b->limit, sql));
        free(sql);
        lim_bytes = bench_file_size(lim_file);
        sql = bench_fmt("CREATE OR REPLACE TABLE lim_restored AS SELECT * FROM read_parquet('%s')", lim_file);
        lim_rest_s = best(lim_rest_s, bench_limit_exec(b->limit, sql));
        free(sql);
        bench_limit_exec(b->limit, "DROP TABLE lim_restored; CHECKPOINT");

        double t0 = bench_now();
        json_t *s = bench_rest(b->http, key, "POST", "/projects/" BENCH_PROJECT "/snapshots",
                               json_pack("{s:s,s:s}", "bucket", BENCH_BUCKET, "table", SNAP_TABLE), 201);
        snap_s = best(snap_s, bench_now() - t0);
        if (json_integer_value(json_object_get(s, "rows")) != rows)
            bench_die("snapshot of %s: %lld rows, expected %lld", SNAP_TABLE,
                      (long long)json_integer_value(json_object_get(s, "rows")), (long long)rows);
        snap_bytes = json_integer_value(json_object_get(s, "bytes"));
        const char *id = json_string_value(json_object_get(s, "id"));
        char *path = bench_fmt("/projects/" BENCH_PROJECT "/snapshots/%s/restore", id);
        t0 = bench_now();
        json_t *t = bench_rest(b->http, key, "POST", path, json_pack("{s:s}", "table", "snap_restored"), 201);
        rest_s = best(rest_s, bench_now() - t0);
        free(path);
        if (json_integer_value(json_object_get(t, "rows")) != rows)
            bench_die("restore of snapshot %s: %lld rows, expected %lld", id,
                      (long long)json_integer_value(json_object_get(t, "rows")), (long long)rows);
        json_decref(t);
        /* Dropping the restored table takes an automatic snapshot of it first: switched off for that table. */
        json_decref(bench_rest(b->http, key, "PUT", "/projects/" BENCH_PROJECT "/snapshot-settings",
                               json_pack("{s:s,s:s,s:{s:b}}", "bucket", BENCH_BUCKET, "table", "snap_restored", "auto",
                                         "drop_table", 0),
                               200));
        json_decref(bench_rest(b->http, key, "DELETE",
                               "/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/snap_restored", NULL, 204));
        path = bench_fmt("/projects/" BENCH_PROJECT "/snapshots/%s", id);
        json_decref(bench_rest(b->http, key, "DELETE", path, NULL, 204));
        free(path);
        json_decref(s);
    }
    remove(lim_file);
    free(lim_file);

    double ratio = snap_s > 0 ? lim_s / snap_s : 0, rest_ratio = rest_s > 0 ? lim_rest_s / rest_s : 0;
    bool met = ratio >= 0.9;
    char title[200];
    snprintf(title, sizeof(title), "snapshots: %s rows of %s; limit = DuckDB COPY TO parquet / CREATE TABLE AS",
             bench_int(rows), SNAP_TABLE);
    static const char *const h[] = {"what", "seconds", "MB", "limit s", "limit MB", "ratio", NULL};
    bench_table_t *tab = bench_table_new(title, h);
    const char *r1[] = {"snapshot (REST)", bench_num(snap_s, 2), bench_mb(snap_bytes), bench_num(lim_s, 2),
                        bench_mb(lim_bytes), bench_num(ratio, 2), NULL};
    bench_table_row(tab, r1);
    const char *r2[] = {"restore to a new table", bench_num(rest_s, 2), "", bench_num(lim_rest_s, 2), "",
                        bench_num(rest_ratio, 2), NULL};
    bench_table_row(tab, r2);
    bench_table_note(tab, "ratio = limit seconds / duckstore seconds, best of 2; goal (snapshot >= 0.9x COPY TO): %s",
                     met ? "met" : "NOT met");
    json_t *pj = json_pack("{s:I,s:f,s:I,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:b}", "rows", (json_int_t)rows,
                           "snapshot_seconds", snap_s, "snapshot_bytes", (json_int_t)snap_bytes, "limit_seconds", lim_s,
                           "limit_bytes", (json_int_t)lim_bytes, "ratio", ratio, "restore_seconds", rest_s,
                           "limit_restore_seconds", lim_rest_s, "restore_ratio", rest_ratio, "rows_per_s",
                           snap_s > 0 ? (double)rows / snap_s : 0.0, "goal_met", met);
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "snapshots", pj);
    bench_table_print(tab);
}
