/*
 * phase_data.c - the data phases: import, incremental upsert, export,
 * parallel imports. Each compares duckstore with DuckDB itself.
 *
 * DESIGN
 * Import: each file (CSV, CSV gzip, Parquet) is uploaded once over REST as a
 * Storage File (timed: the upload is part of getting data in over REST),
 * then imported into a fresh typed table with a primary key, over REST and
 * over gRPC (TableImportFromFileCommand naming the file's key), and COPYed
 * into a fresh table of the limit database. Every import's row count is
 * checked. ratio = duckstore speed / DuckDB speed (1.0 = at the limit).
 *
 * Incremental: the imported CSV table gets inc.csv (rows/10 rows, every tenth
 * key already present) with incremental=true and update_duplicates; the limit
 * does the same upsert in one DuckDB transaction (stage, DELETE the keys
 * present, INSERT). Both sides start warm: the limit's table was just
 * COPYed, and before each duckstore upsert an untimed preview ordered by the
 * key reads the key column (the import phase's idle wait detached the
 * project). DuckDB's upsert also runs on a copy of duckstore's own project
 * file, taken before duckstore's upserts: the same table, row group for row
 * group. Its time is reported beside the limit, not as the limit: how a
 * load's rows fall into row groups decides whether the first upsert's commit
 * merges row groups (DuckDB's vacuum), on either side. Export: CSV gzip and
 * Parquet of that table vs DuckDB's COPY TO. Parallel: K imports into K
 * tables of one project at once vs one after another, and the same for
 * DuckDB itself.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNIMPLEMENTED 12 /* grpc_status_code */

/* Runs stmt and sets other to the cores other processes used meanwhile (bench_cpu_other). */
#define MEASURE_OTHER(other, stmt)                                                                                     \
    do {                                                                                                               \
        bench_cpu_t cpu_;                                                                                              \
        bench_cpu_begin(&cpu_);                                                                                        \
        stmt;                                                                                                          \
        (other) = bench_cpu_other(&cpu_);                                                                              \
    } while (0)

typedef struct {
    bench_fmt_t fmt;
    const char *name; /* "csv", "csv.gz", "parquet" */
    const char *tag;  /* table name suffix */
} fmt_info_t;

static const fmt_info_t formats[] = {
    {BENCH_FMT_CSV, "csv", "csv"},
    {BENCH_FMT_CSV_GZ, "csv.gz", "gz"},
    {BENCH_FMT_PARQUET, "parquet", "parquet"},
};

/* Whether the gRPC tables of the import phase exist (and hold the base rows). */
static bool grpc_csv_loaded;

static const char *fmt_file(const bench_t *b, bench_fmt_t f)
{
    return f == BENCH_FMT_PARQUET ? b->data.base_parquet : f == BENCH_FMT_CSV_GZ ? b->data.base_gz : b->data.base_csv;
}

static char *table_path(const char *table, const char *suffix)
{
    return bench_fmt("/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET "/tables/%s%s", table, suffix);
}

/* POST .../import/file; returns the answer (decref it) and the seconds it took. */
static json_t *rest_import(bench_http_t *h, const char *key, const char *table, const char *file_id, bench_fmt_t fmt,
                           bool incremental, double *secs)
{
    json_t *body = json_pack("{s:s,s:s}", "file_id", file_id, "format", fmt == BENCH_FMT_PARQUET ? "parquet" : "csv");
    if (fmt == BENCH_FMT_CSV_GZ)
        json_object_set_new(body, "csv", json_pack("{s:s}", "compression", "gzip"));
    if (incremental)
        json_object_set_new(body, "incremental", json_true());
    char *path = table_path(table, "/import/file");
    double t0 = bench_now();
    json_t *r = bench_rest(h, key, "POST", path, body, 200);
    *secs = bench_now() - t0;
    free(path);
    return r;
}

static void check_rows(const char *what, json_t *r, int64_t imported, int64_t table_rows)
{
    int64_t i = json_integer_value(json_object_get(r, "imported_rows"));
    int64_t t = json_integer_value(json_object_get(r, "table_rows"));
    if (i != imported || t != table_rows)
        bench_die("%s: imported_rows %lld, table_rows %lld; expected %lld and %lld", what, (long long)i, (long long)t,
                  (long long)imported, (long long)table_rows);
}

/*
 * A gRPC import. Returns false with the server's message in na when the server
 * answers UNIMPLEMENTED (or has no gRPC); dies on any other failure.
 */
static bool grpc_import(bench_t *b, const char *table, const char *file_key, bench_fmt_t fmt, bool incremental,
                        int64_t want_imported, int64_t want_rows, double *secs, char *na, size_t nasz)
{
    if (!b->server.grpc_ok) {
        snprintf(na, nasz, "the server's gRPC does not answer");
        return false;
    }
    bench_bytes_t req =
        bench_drv_import_file(b->server.key, BENCH_PROJECT, BENCH_BUCKET, table, file_key, fmt, incremental, "id");
    bench_grpc_resp_t r;
    double t0 = bench_now();
    int code = bench_grpc_call(b->grpc, req.data, req.len, 3600, &r);
    *secs = bench_now() - t0;
    bench_bytes_free(&req);
    if (code == UNIMPLEMENTED) {
        snprintf(na, nasz, "UNIMPLEMENTED: %s", r.message);
        bench_grpc_resp_free(&r);
        return false;
    }
    if (code != 0)
        bench_die("gRPC TableImportFromFileCommand into %s (%s): status %d: %s", table, file_key, code, r.message);
    int64_t imported, rows;
    if (!bench_drv_import_rows(&r, &imported, &rows))
        bench_die("gRPC import into %s: the response is not a TableImportResponse", table);
    if (imported != want_imported || rows != want_rows)
        bench_die("gRPC import into %s: importedRowsCount %lld, tableRowsCount %lld; expected %lld and %lld", table,
                  (long long)imported, (long long)rows, (long long)want_imported, (long long)want_rows);
    bench_grpc_resp_free(&r);
    return true;
}

static json_t *speed_item(const char *name, const char *format, const char *transport, int64_t rows, int64_t bytes,
                          double secs, double other)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:f,s:f,s:f,s:f}", "name", name, "format", format, "transport", transport,
                     "rows", (json_int_t)rows, "bytes", (json_int_t)bytes, "seconds", secs, "rows_per_s",
                     secs > 0 ? (double)rows / secs : 0, "mb_per_s", secs > 0 ? (double)bytes / 1e6 / secs : 0,
                     "other_cpu_cores", other);
}

static void add_limit(json_t *item, int64_t rows, int64_t bytes, double limit_s, double secs, double limit_other)
{
    json_object_set_new(item, "limit_other_cpu_cores", json_real(limit_other));
    json_object_set_new(item, "limit_seconds", json_real(limit_s));
    json_object_set_new(item, "limit_rows_per_s", json_real(limit_s > 0 ? (double)rows / limit_s : 0));
    json_object_set_new(item, "limit_mb_per_s", json_real(limit_s > 0 ? (double)bytes / 1e6 / limit_s : 0));
    json_object_set_new(item, "ratio", json_real(bench_ratio(secs > 0 ? 1 / secs : 0, limit_s > 0 ? 1 / limit_s : 0)));
}

static json_t *na_item(const char *name, const char *format, const char *transport, const char *why)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "name", name, "format", format, "transport", transport, "not_available", why);
}

static const char *other_cell(double a, double b)
{
    double m = a > b ? a : b;
    return m < 0 ? "?" : bench_num(m, 2);
}

static void speed_row(bench_table_t *t, const char *what, const char *transport, int64_t rows, int64_t bytes,
                      double secs, double limit_s, double with_upload_s, double other)
{
    char ratio2[32] = "";
    if (with_upload_s > 0)
        snprintf(ratio2, sizeof(ratio2), "%s", bench_num(limit_s / with_upload_s, 2));
    const char *cells[] = {what,
                           transport,
                           bench_int((int64_t)((double)rows / secs)),
                           bench_num((double)bytes / 1e6 / secs, 1),
                           bench_num(secs, 2),
                           limit_s > 0 ? bench_int((int64_t)((double)rows / limit_s)) : "",
                           limit_s > 0 ? bench_num(limit_s, 2) : "",
                           limit_s > 0 ? bench_num(limit_s / secs, 2) : "",
                           ratio2,
                           other_cell(other, -1),
                           NULL};
    bench_table_row(t, cells);
}

static void na_row(bench_table_t *t, const char *what, const char *transport, const char *why)
{
    const char *cells[] = {what, transport, "n/a", "", "", "", "", "", "", "", NULL};
    bench_table_row(t, cells);
    bench_table_note(t, "%s over %s: n/a (%s)", what, transport, why);
}

static const char *const speed_headers[] = {
    "what",  "transport",          "rows/s",    "MB/s", "seconds", "limit rows/s", "limit s",
    "ratio", "ratio incl. upload", "other CPU", NULL};

/* ---- import ---- */

/* A fresh DuckDB file for the limit's side of the import phases (kept open until the parallel phase ends). */
static void open_limit(bench_t *b)
{
    char *limit_path = bench_fmt("%s/limit.duckdb", b->run);
    bench_remove_db(limit_path);
    b->limit = bench_limit_open(limit_path, b->memory_limit_bytes, b->machine.cores);
    free(limit_path);
}

void bench_phase_import(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "import");
    const bench_data_t *d = &b->data;
    json_t *pj = json_object(), *items = json_array();
    char title[256];
    snprintf(title, sizeof(title), "import: %s rows (CSV %s MB) into a typed table; limit = DuckDB COPY FROM",
             bench_int(d->rows), bench_mb(bench_file_size(d->base_csv)));
    bench_table_t *t = bench_table_new(title, speed_headers);

    open_limit(b);

    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        const fmt_info_t *fi = &formats[f];
        const char *file = fmt_file(b, fi->fmt);
        int64_t bytes = bench_file_size(file);
        char what[64], key_name[64], rest_table[32], grpc_table[32], lim_table[32];
        snprintf(what, sizeof(what), "import %s", fi->name);
        snprintf(key_name, sizeof(key_name), "bench/base.%s", fi->name);
        snprintf(rest_table, sizeof(rest_table), "imp_%s", fi->tag);
        snprintf(grpc_table, sizeof(grpc_table), "g_%s", fi->tag);
        snprintf(lim_table, sizeof(lim_table), "lim_%s", fi->tag);
        bench_note("%s: upload, REST, gRPC, DuckDB", what);

        double up_s, up_o, lim_o, o, disk_s, disk_o;
        char *file_id;
        /*
         * The upload's limit is the disk: the same bytes copied to the same file system and
         * fdatasync'ed, as the server does before it answers. sync() first, so neither side
         * pays for the write-back of the files written before it (the generated data).
         */
        char *disk_copy = bench_fmt("%s/disk_limit.tmp", b->run);
        sync();
        MEASURE_OTHER(disk_o, disk_s = bench_disk_copy(file, disk_copy));
        free(disk_copy);
        sync();
        MEASURE_OTHER(up_o, file_id = bench_rest_upload(b->http, b->server.key, BENCH_PROJECT, key_name, file, &up_s));
        json_t *up = speed_item("upload", fi->name, "rest", d->rows, bytes, up_s, up_o);
        add_limit(up, d->rows, bytes, disk_s, up_s, disk_o);
        json_object_set_new(up, "limit", json_string("the same file copied to the same file system and fdatasync'ed"));
        json_array_append_new(items, up);
        char up_what[64];
        snprintf(up_what, sizeof(up_what), "upload %s (file)", fi->name);
        const char *upc[] = {up_what,
                             "rest",
                             bench_int((int64_t)((double)d->rows / up_s)),
                             bench_num((double)bytes / 1e6 / up_s, 1),
                             bench_num(up_s, 2),
                             bench_int((int64_t)((double)d->rows / disk_s)),
                             bench_num(disk_s, 2),
                             bench_num(disk_s / up_s, 2),
                             "",
                             other_cell(up_o, disk_o),
                             NULL};
        bench_table_row(t, upc);

        /* The limit is the better of two COPYs, each into a fresh table after a checkpoint. */
        double lim_s = 0, lim_runs[2];
        lim_o = -1;
        for (int run = 0; run < 2; run++) {
            char tn[48];
            snprintf(tn, sizeof(tn), run == 0 ? "%s" : "%s_second", lim_table);
            bench_limit_create_table(b->limit, tn);
            bench_limit_exec(b->limit, "CHECKPOINT");
            double o1;
            MEASURE_OTHER(o1, lim_runs[run] = bench_limit_copy_from(b->limit, tn, file, fi->fmt));
            char *count_sql = bench_fmt("SELECT count(*) FROM %s", tn);
            if (bench_limit_int(b->limit, count_sql) != d->rows)
                bench_die("DuckDB COPY into %s did not load %lld rows", tn, (long long)d->rows);
            free(count_sql);
            if (run == 0 || lim_runs[run] < lim_s) {
                lim_s = lim_runs[run];
                lim_o = o1;
            }
            if (run == 1) {
                char *drop = bench_fmt("DROP TABLE %s; CHECKPOINT", tn);
                bench_limit_exec(b->limit, drop);
                free(drop);
            }
        }

        bench_rest_create_bench_table(b->http, b->server.key, BENCH_PROJECT, BENCH_BUCKET, rest_table);
        double s;
        json_t *r;
        MEASURE_OTHER(o, r = rest_import(b->http, b->server.key, rest_table, file_id, fi->fmt, false, &s));
        check_rows(what, r, d->rows, d->rows);
        json_t *it = speed_item(what, fi->name, "rest", d->rows, bytes, s, o);
        add_limit(it, d->rows, bytes, lim_s, s, lim_o);
        json_object_set_new(it, "upload_seconds", json_real(up_s));
        json_object_set_new(it, "ratio_incl_upload", json_real(lim_s / (s + up_s)));
        json_object_set(it, "server_timers", json_object_get(r, "timers"));
        json_array_append_new(items, it);
        json_decref(r);
        speed_row(t, what, "rest", d->rows, bytes, s, lim_s, s + up_s, o > lim_o ? o : lim_o);

        bench_rest_create_bench_table(b->http, b->server.key, BENCH_PROJECT, BENCH_BUCKET, grpc_table);
        char na[600];
        bool ok;
        MEASURE_OTHER(o,
                      ok = grpc_import(b, grpc_table, key_name, fi->fmt, false, d->rows, d->rows, &s, na, sizeof(na)));
        if (ok) {
            it = speed_item(what, fi->name, "grpc", d->rows, bytes, s, o);
            add_limit(it, d->rows, bytes, lim_s, s, lim_o);
            json_object_set_new(it, "upload_seconds", json_real(up_s));
            json_object_set_new(it, "ratio_incl_upload", json_real(lim_s / (s + up_s)));
            json_array_append_new(items, it);
            speed_row(t, what, "grpc", d->rows, bytes, s, lim_s, s + up_s, o > lim_o ? o : lim_o);
            if (fi->fmt == BENCH_FMT_CSV)
                grpc_csv_loaded = true;
        } else {
            json_array_append_new(items, na_item(what, fi->name, "grpc", na));
            na_row(t, what, "grpc", na);
        }
        json_t *lim = speed_item(what, fi->name, "duckdb", d->rows, bytes, lim_s, lim_o);
        json_object_set_new(lim, "runs_seconds", json_pack("[f,f]", lim_runs[0], lim_runs[1]));
        json_array_append_new(items, lim);
        free(file_id);
    }
    bench_table_note(t, "ratio = duckstore speed / DuckDB COPY speed (1.00 = at the limit); \"incl. upload\" adds "
                        "the REST file upload, which the limit does not need.");
    bench_table_note(t, "MB/s counts the file as stored (the gzip file's compressed bytes).");
    bench_table_note(t, "the uploads' limit is the disk: the same file copied to the same file system with "
                        "fdatasync, as the server syncs an upload before it answers.");
    bench_table_note(t, "other CPU = cores used by other processes while the row's duckstore or DuckDB run was timed "
                        "(the larger); above ~0.1 the row is disturbed.");
    json_object_set_new(pj, "items", items);
    bench_mem_end(&mem);
    bench_mem_idle(&mem, b->quick, b->server.http_port, b->server.key);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "import", pj);
    bench_table_print(t);
}

/* ---- incremental ---- */

/*
 * An untimed preview ordered by the key: the project is attached and the
 * table's key column read into DuckDB's cache, as the limit's table is after
 * its COPY. The upsert's DELETE reads that column.
 */
static void warm_key_column(bench_t *b, const char *table)
{
    char *path = bench_fmt("/projects/" BENCH_PROJECT "/buckets/" BENCH_BUCKET
                           "/tables/%s/preview?limit=1&order_by=id:desc",
                           table);
    json_decref(bench_rest(b->http, b->server.key, "GET", path, NULL, 200));
    free(path);
}

/* Copies the bench project's file (and its WAL, if any) to dst: nothing writes to it between the phases. */
static void copy_project_file(bench_t *b, const char *dst)
{
    char *src = bench_fmt("%s/duckdb/project_" BENCH_PROJECT "_main.duckdb", b->server.data_dir);
    char *src_wal = bench_fmt("%s.wal", src), *dst_wal = bench_fmt("%s.wal", dst);
    bench_remove_db(dst);
    bench_copy_file(src, dst, false);
    if (bench_file_exists(src_wal))
        bench_copy_file(src_wal, dst_wal, false);
    free(src);
    free(src_wal);
    free(dst_wal);
}

void bench_phase_incremental(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "import incremental");
    const bench_data_t *d = &b->data;
    int64_t want_rows = d->rows + d->inc_rows - d->inc_overlap;
    int64_t bytes = bench_file_size(d->inc_csv);
    json_t *pj = json_object(), *items = json_array();
    char title[256];
    snprintf(title, sizeof(title),
             "import incremental: upsert %s rows (%s keys present = 10%%) into %s rows; limit = DuckDB transaction",
             bench_int(d->inc_rows), bench_int(d->inc_overlap), bench_int(d->rows));
    bench_table_t *t = bench_table_new(title, speed_headers);
    bench_note("incremental upsert: REST, gRPC, DuckDB");

    double up_s, lim_s, lim_o, o;
    char *file_id = bench_rest_upload(b->http, b->server.key, BENCH_PROJECT, "bench/inc.csv", d->inc_csv, &up_s);
    char *same_file = bench_fmt("%s/same_table.duckdb", b->run);
    copy_project_file(b, same_file);

    /* DuckDB's best upsert (bench_limit_upsert_sql), the better of two runs: on lim_csv, and on a copy of it. */
    bench_limit_exec(b->limit, "CREATE OR REPLACE TABLE lim_csv_second AS SELECT * FROM lim_csv");
    double lim_runs[2];
    for (int run = 0; run < 2; run++) {
        const char *tn = run == 0 ? "lim_csv" : "lim_csv_second";
        char *sql = bench_limit_upsert_sql(d->inc_csv, tn);
        bench_limit_exec(b->limit, "CHECKPOINT");
        double o1;
        MEASURE_OTHER(o1, lim_runs[run] = bench_limit_exec(b->limit, sql));
        free(sql);
        if (run == 0 || lim_runs[run] < lim_s) {
            lim_s = lim_runs[run];
            lim_o = o1;
        }
    }
    bench_limit_exec(b->limit, "DROP TABLE lim_csv_second; CHECKPOINT");
    if (bench_limit_int(b->limit, "SELECT count(*) FROM lim_csv") != want_rows)
        bench_die("the DuckDB upsert left %lld rows, expected %lld",
                  (long long)bench_limit_int(b->limit, "SELECT count(*) FROM lim_csv"), (long long)want_rows);

    /* DuckDB's upsert of duckstore's own table: the copy of the project file, read in first as the others are. */
    char *attach = bench_fmt("ATTACH '%s' AS same_tbl", same_file);
    bench_limit_exec(b->limit, attach);
    free(attach);
#define SAME_TABLE "same_tbl.\"" BENCH_BUCKET "\".imp_csv"
    char *same_sql = bench_limit_upsert_sql(d->inc_csv, SAME_TABLE);
    bench_limit_int(b->limit, "SELECT sum(id) FROM " SAME_TABLE);
    double same_s, same_o;
    MEASURE_OTHER(same_o, same_s = bench_limit_exec(b->limit, same_sql));
    free(same_sql);
    int64_t same_rows = bench_limit_int(b->limit, "SELECT count(*) FROM " SAME_TABLE);
#undef SAME_TABLE
    bench_limit_exec(b->limit, "DETACH same_tbl");
    if (same_rows != want_rows)
        bench_die("DuckDB's upsert of duckstore's table left %lld rows, expected %lld", (long long)same_rows,
                  (long long)want_rows);
    bench_remove_db(same_file);
    free(same_file);
    warm_key_column(b, "imp_csv");

    double s;
    json_t *r;
    MEASURE_OTHER(o, r = rest_import(b->http, b->server.key, "imp_csv", file_id, BENCH_FMT_CSV, true, &s));
    check_rows("incremental import", r, d->inc_rows, want_rows);
    double rest_s = s;
    json_t *it = speed_item("import incremental csv", "csv", "rest", d->inc_rows, bytes, s, o);
    add_limit(it, d->inc_rows, bytes, lim_s, s, lim_o);
    json_object_set_new(it, "upload_seconds", json_real(up_s));
    json_object_set_new(it, "ratio_incl_upload", json_real(lim_s / (s + up_s)));
    json_object_set_new(it, "table_rows_before", json_integer(d->rows));
    json_object_set_new(it, "overlapping_keys", json_integer(d->inc_overlap));
    json_object_set(it, "server_timers", json_object_get(r, "timers"));
    json_array_append_new(items, it);
    json_decref(r);
    speed_row(t, "import incremental csv", "rest", d->inc_rows, bytes, s, lim_s, s + up_s, o > lim_o ? o : lim_o);

    char na[600];
    if (!grpc_csv_loaded)
        snprintf(na, sizeof(na), "the gRPC import of the base table was not available");
    bool ok = false;
    if (grpc_csv_loaded) {
        warm_key_column(b, "g_csv");
        MEASURE_OTHER(o, ok = grpc_import(b, "g_csv", "bench/inc.csv", BENCH_FMT_CSV, true, d->inc_rows, want_rows, &s,
                                          na, sizeof(na)));
    }
    if (ok) {
        it = speed_item("import incremental csv", "csv", "grpc", d->inc_rows, bytes, s, o);
        add_limit(it, d->inc_rows, bytes, lim_s, s, lim_o);
        json_array_append_new(items, it);
        speed_row(t, "import incremental csv", "grpc", d->inc_rows, bytes, s, lim_s, s + up_s, o > lim_o ? o : lim_o);
    } else {
        json_array_append_new(items, na_item("import incremental csv", "csv", "grpc", na));
        na_row(t, "import incremental csv", "grpc", na);
    }
    it = speed_item("import incremental csv", "csv", "duckdb", d->inc_rows, bytes, lim_s, lim_o);
    json_object_set_new(it, "runs_seconds", json_pack("[f,f]", lim_runs[0], lim_runs[1]));
    json_array_append_new(items, it);
    it = speed_item("import incremental csv, duckstore's table", "csv", "duckdb", d->inc_rows, bytes, same_s, same_o);
    json_object_set_new(it, "what", json_string("DuckDB's upsert of a copy of duckstore's project file, taken before "
                                                "duckstore's upserts (the same row groups); not the limit"));
    json_object_set_new(it, "ratio_rest", json_real(same_s / rest_s));
    json_array_append_new(items, it);
    bench_table_note(t, "dedup: update_duplicates on the primary key (id); every row's values change.");
    bench_table_note(t, "both sides warm: the limit's table was just loaded; an untimed preview ordered by id reads "
                        "duckstore's key column before each upsert.");
    bench_table_note(t, "DuckDB's upsert of duckstore's own table (a copy of its project file): %.2f s, REST ratio "
                        "to it %.2f; the limit is DuckDB's best upsert on tables it loaded itself.",
                     same_s, same_s / rest_s);
    free(file_id);
    json_object_set_new(pj, "items", items);
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "import_incremental", pj);
    bench_table_print(t);
}

/* ---- export ---- */

void bench_phase_export(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "export");
    const bench_data_t *d = &b->data;
    int64_t rows = d->rows + d->inc_rows - d->inc_overlap;
    json_t *pj = json_object(), *items = json_array();
    char title[256];
    snprintf(title, sizeof(title), "export: %s rows to a Storage File; limit = DuckDB COPY TO", bench_int(rows));
    bench_table_t *t = bench_table_new(title, speed_headers);
    static const struct {
        bench_fmt_t fmt;
        const char *name, *ext, *limit_opts, *plain_opts;
    } ex[] = {
        /* The limit writes what duckstore writes: Keboola's CSV has every value quoted. */
        {BENCH_FMT_CSV_GZ, "csv.gz", "csv.gz", "FORMAT csv, HEADER true, FORCE_QUOTE *, COMPRESSION gzip",
         "FORMAT csv, HEADER true, COMPRESSION gzip"},
        {BENCH_FMT_PARQUET, "parquet", "parquet", "FORMAT parquet", NULL},
    };
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "export %s", ex[i].name);
        bench_note("%s: REST, gRPC, DuckDB", what);
        char *lim_file = bench_fmt("%s/limit_export.%s", b->run, ex[i].ext);
        remove(lim_file);
        char *sql =
            bench_fmt("COPY (SELECT * EXCLUDE (_timestamp) FROM lim_csv) TO '%s' (%s)", lim_file, ex[i].limit_opts);
        double lim_s, lim_o, o;
        bench_limit_exec(b->limit, "CHECKPOINT");
        MEASURE_OTHER(lim_o, lim_s = bench_limit_exec(b->limit, sql));
        int64_t lim_bytes = bench_file_size(lim_file);
        remove(lim_file);
        free(sql);
        double plain_s = 0;
        if (ex[i].plain_opts) {
            /* DuckDB's default quoting (only where needed), for the cost of quoting everything. */
            sql =
                bench_fmt("COPY (SELECT * EXCLUDE (_timestamp) FROM lim_csv) TO '%s' (%s)", lim_file, ex[i].plain_opts);
            plain_s = bench_limit_exec(b->limit, sql);
            remove(lim_file);
            free(sql);
        }
        free(lim_file);

        json_t *body = ex[i].fmt == BENCH_FMT_PARQUET ? json_pack("{s:s}", "format", "parquet")
                                                      : json_pack("{s:s,s:b}", "format", "csv", "gzip", 1);
        char *path = table_path("imp_csv", "/export");
        double t0 = bench_now(), s;
        json_t *r;
        MEASURE_OTHER(o, r = bench_rest(b->http, b->server.key, "POST", path, body, 201));
        s = bench_now() - t0;
        free(path);
        int64_t got_rows = json_integer_value(json_object_get(r, "rows"));
        int64_t bytes = json_integer_value(json_object_get(r, "bytes"));
        if (got_rows != rows)
            bench_die("%s: exported %lld rows, expected %lld", what, (long long)got_rows, (long long)rows);
        json_t *it = speed_item(what, ex[i].name, "rest", rows, bytes, s, o);
        add_limit(it, rows, lim_bytes, lim_s, s, lim_o);
        json_object_set_new(it, "limit_bytes", json_integer(lim_bytes));
        json_object_set_new(it, "sliced", json_boolean(json_is_true(json_object_get(r, "sliced"))));
        json_array_append_new(items, it);
        json_decref(r);
        speed_row(t, what, "rest", rows, bytes, s, lim_s, 0, o > lim_o ? o : lim_o);

        char na[600] = "the server's gRPC does not answer";
        bool done = false;
        if (b->server.grpc_ok) {
            char *key = bench_fmt("bench/export_grpc.%s", ex[i].ext);
            bench_bytes_t req =
                bench_drv_export_file(b->server.key, BENCH_PROJECT, BENCH_BUCKET, "imp_csv", key, ex[i].fmt);
            bench_grpc_resp_t gr;
            t0 = bench_now();
            int code;
            MEASURE_OTHER(o, code = bench_grpc_call(b->grpc, req.data, req.len, 3600, &gr));
            s = bench_now() - t0;
            bench_bytes_free(&req);
            free(key);
            if (code == UNIMPLEMENTED)
                snprintf(na, sizeof(na), "UNIMPLEMENTED: %s", gr.message);
            else if (code != 0)
                bench_die("gRPC TableExportToFileCommand: status %d: %s", code, gr.message);
            else
                done = true;
            bench_grpc_resp_free(&gr);
        }
        if (done) {
            it = speed_item(what, ex[i].name, "grpc", rows, bytes, s, o);
            add_limit(it, rows, lim_bytes, lim_s, s, lim_o);
            json_array_append_new(items, it);
            speed_row(t, what, "grpc", rows, bytes, s, lim_s, 0, o > lim_o ? o : lim_o);
        } else {
            json_array_append_new(items, na_item(what, ex[i].name, "grpc", na));
            na_row(t, what, "grpc", na);
        }
        it = speed_item(what, ex[i].name, "duckdb", rows, lim_bytes, lim_s, lim_o);
        json_array_append_new(items, it);
        if (plain_s > 0) {
            json_object_set_new(it, "duckdb_without_force_quote_seconds", json_real(plain_s));
            bench_table_note(t,
                             "%s: the limit quotes every value as duckstore does (FORCE_QUOTE *); DuckDB's default "
                             "quoting takes %.2f s instead of %.2f s.",
                             what, plain_s, lim_s);
        }
    }
    bench_table_note(t, "MB/s counts the written file; the gRPC row uses the REST export's size.");
    json_object_set_new(pj, "items", items);
    bench_mem_end(&mem);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "export", pj);
    bench_table_print(t);
}

/* ---- parallel ---- */

typedef struct {
    bench_t *b;
    const char *table, *file_id;
    int64_t want;
    pthread_barrier_t *go;
    double secs;
} par_import_t;

static void *par_import(void *arg)
{
    par_import_t *p = arg;
    bench_http_t *h = bench_http_open(p->b->server.http_port);
    pthread_barrier_wait(p->go);
    json_t *r = rest_import(h, p->b->server.key, p->table, p->file_id, BENCH_FMT_CSV, false, &p->secs);
    check_rows("parallel import", r, p->want, p->want);
    json_decref(r);
    bench_http_close(&h);
    return NULL;
}

void bench_phase_parallel(bench_t *b)
{
    bench_mem_t mem;
    bench_mem_begin(&mem, "parallel");
    const bench_data_t *d = &b->data;
    int k = d->parts;
    json_t *pj = json_object();
    bench_note("parallel: %d imports of %s rows, one after another and at once", k, bench_int(d->part_rows));
    if (!b->limit) /* the phase run alone (--phase parallel) */
        open_limit(b);
    char *ids[8];
    for (int i = 0; i < k; i++) {
        char name[64];
        snprintf(name, sizeof(name), "bench/part_%d.csv", i);
        ids[i] = bench_rest_upload(b->http, b->server.key, BENCH_PROJECT, name, d->part_csv[i], NULL);
        char t1[32], t2[32];
        snprintf(t1, sizeof(t1), "seq_%d", i);
        snprintf(t2, sizeof(t2), "par_%d", i);
        bench_rest_create_bench_table(b->http, b->server.key, BENCH_PROJECT, BENCH_BUCKET, t1);
        bench_rest_create_bench_table(b->http, b->server.key, BENCH_PROJECT, BENCH_BUCKET, t2);
    }
    double seq = 0;
    for (int i = 0; i < k; i++) {
        char tn[32];
        snprintf(tn, sizeof(tn), "seq_%d", i);
        double s;
        json_t *r = rest_import(b->http, b->server.key, tn, ids[i], BENCH_FMT_CSV, false, &s);
        check_rows("sequential import", r, d->part_rows, d->part_rows);
        json_decref(r);
        seq += s;
    }
    pthread_t th[8];
    par_import_t jobs[8];
    char names[8][32];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++) {
        snprintf(names[i], sizeof(names[i]), "par_%d", i);
        jobs[i] = (par_import_t){.b = b, .table = names[i], .file_id = ids[i], .want = d->part_rows, .go = &go};
        if (pthread_create(&th[i], NULL, par_import, &jobs[i]) != 0)
            bench_die("cannot start a thread");
    }
    pthread_barrier_wait(&go);
    double t0 = bench_now();
    for (int i = 0; i < k; i++)
        pthread_join(th[i], NULL);
    double par = bench_now() - t0;
    pthread_barrier_destroy(&go);

    /* DuckDB itself: the same K COPYs, one after another, then at once on K connections. */
    const char *ltabs_seq[8], *ltabs_par[8], *files[8];
    char lnames[16][32];
    double lseq = 0;
    for (int i = 0; i < k; i++) {
        snprintf(lnames[i], sizeof(lnames[i]), "lseq_%d", i);
        snprintf(lnames[8 + i], sizeof(lnames[8 + i]), "lpar_%d", i);
        ltabs_seq[i] = lnames[i];
        ltabs_par[i] = lnames[8 + i];
        files[i] = d->part_csv[i];
        bench_limit_create_table(b->limit, ltabs_seq[i]);
        bench_limit_create_table(b->limit, ltabs_par[i]);
    }
    for (int i = 0; i < k; i++)
        lseq += bench_limit_copy_from(b->limit, ltabs_seq[i], files[i], BENCH_FMT_CSV);
    double lpar = bench_limit_copy_parallel(b->limit, ltabs_par, files, k);

    double speedup = seq / par, lspeedup = lseq / lpar;
    int cores = b->machine.cores;
    json_t *it =
        json_pack("{s:s,s:i,s:I,s:f,s:f,s:f,s:i,s:f,s:f,s:f,s:f,s:f}", "transport", "rest", "k", k, "rows_per_import",
                  (json_int_t)d->part_rows, "sequential_seconds", seq, "parallel_seconds", par, "speedup", speedup,
                  "limit_speedup_cores", cores, "ratio", speedup / cores, "duckdb_sequential_seconds", lseq,
                  "duckdb_parallel_seconds", lpar, "duckdb_speedup", lspeedup, "duckdb_ratio", lspeedup / cores);
    json_object_set_new(pj, "items", json_pack("[o]", it));
    for (int i = 0; i < k; i++) {
        char p1[64];
        snprintf(p1, sizeof(p1), "par_%d seconds", i);
        json_object_set_new(it, p1, json_real(jobs[i].secs));
        free(ids[i]);
    }

    char title[200];
    snprintf(title, sizeof(title), "parallel: %d imports of %s rows into %d tables of one project", k,
             bench_int(d->part_rows), k);
    static const char *const h[] = {"who", "sequential s", "parallel s", "speed-up", "limit (cores)", "ratio", NULL};
    bench_table_t *t = bench_table_new(title, h);
    char cs[16];
    snprintf(cs, sizeof(cs), "%d", cores);
    const char *r1[] = {"duckstore (rest)",
                        bench_num(seq, 2),
                        bench_num(par, 2),
                        bench_num(speedup, 2),
                        cs,
                        bench_num(speedup / cores, 2),
                        NULL};
    const char *r2[] = {"DuckDB COPY (K connections)",
                        bench_num(lseq, 2),
                        bench_num(lpar, 2),
                        bench_num(lspeedup, 2),
                        cs,
                        bench_num(lspeedup / cores, 2),
                        NULL};
    bench_table_row(t, r1);
    bench_table_row(t, r2);
    bench_table_note(t, "speed-up = sequential / parallel; ratio = speed-up / core count. One import already "
                        "uses every core in DuckDB, so the DuckDB row is the practical ceiling.");
    bench_mem_end(&mem);
    bench_mem_idle(&mem, b->quick, b->server.http_port, b->server.key);
    bench_report_mem(&mem, pj);
    json_object_set_new(b->phases, "parallel", pj);
    bench_table_print(t);
    bench_limit_close(&b->limit);
}
