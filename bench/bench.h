/*
 * bench.h - the duckstore benchmark driver (bench/duckstore_bench.c and friends).
 *
 * DESIGN
 * One C program measures a real `duckstore serve` on loopback side by side
 * with the limits it cannot beat on the same machine:
 *   - DuckDB itself (COPY FROM / COPY TO through the C API, in this process,
 *     same data, same disk) for imports, incremental upserts and exports;
 *   - the command layer called in this process (the project's objects are
 *     linked in) for request latency without any protocol;
 *   - a constant answer from the same HTTP and gRPC libraries (a tiny
 *     libmicrohttpd server and a tiny gRPC core server in this process) for
 *     the transport limit;
 *   - the core count for parallel speed-up.
 * Every figure goes to a readable table on stdout and to one JSON document
 * (bench/results/latest.json, or quick.json with --quick).
 *
 * Files: util.c (time, stats, files, machine), http_client.c (keep-alive
 * HTTP/1.1 client), grpc_client.c (gRPC core client and driver requests),
 * const_servers.c (the transport-limit servers), rss.c (server memory
 * sampler), datagen.c (the data), limit_db.c (raw DuckDB), server.c (the
 * duckstore process and REST helpers), load.c (concurrent request loops),
 * inproc.c (the command layer in process), report.c (tables and JSON),
 * phase_data.c, phase_requests.c, phase_scale.c (the phases).
 *
 * Failure policy: a benchmark that measured something wrong is worse than
 * none, so every unexpected status or row count ends the run (bench_die)
 * with the request and the server's answer. A capability the server does not
 * have yet (a gRPC command answering UNIMPLEMENTED) is reported as "n/a"
 * with the server's message instead.
 */
#ifndef DS_BENCH_H
#define DS_BENCH_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_GRPC_METHOD "/keboola.storageDriver.service.StorageDriverService/Execute"
#define BENCH_PROJECT     "bench"
#define BENCH_BUCKET      "in.c-bench"

/* ---- util.c ---- */

/* Monotonic seconds. */
double bench_now(void);
void bench_sleep_ms(int ms);
/* Prints "bench: <message>" to stderr and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Progress line on stderr ("  ... <message>"), so stdout stays the report. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* malloc/realloc/strdup that die on failure. */
void *bench_xmalloc(size_t n);
void *bench_xrealloc(void *p, size_t n);
char *bench_xstrdup(const char *s);
char *bench_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* malloc'd */
void bench_mkdirs(const char *path);
void bench_rmtree(const char *path);
int64_t bench_file_size(const char *path); /* -1 when missing */
double bench_copy_file(const char *src, const char *dst, bool sync); /* seconds; dies on an I/O error */
double bench_disk_copy(const char *src, const char *dst); /* seconds to copy and fdatasync; dst removed */
bool bench_file_exists(const char *path);
void bench_remove_db(const char *path); /* a DuckDB file and its WAL, if there */
/* Reads a whole small file (malloc'd, NUL-terminated), or NULL. */
char *bench_read_file(const char *path);
int bench_free_port(void);

/* Latencies in seconds; percentiles sort the samples in place. */
typedef struct {
    double *v;
    size_t n, cap;
} bench_lat_t;
void bench_lat_add(bench_lat_t *l, double s);
void bench_lat_merge(bench_lat_t *dst, const bench_lat_t *src);
double bench_lat_pct(bench_lat_t *l, double p); /* p in [0,100]; 0 when empty */
void bench_lat_free(bench_lat_t *l);

/* The machine: cores, memory, CPU model, kernel. */
typedef struct {
    int cores;
    int64_t memory_bytes;
    char cpu_model[128];
    char kernel[128];
} bench_machine_t;
void bench_machine(bench_machine_t *m);
/* The 1-minute load average (other work on the machine skews every figure). */
double bench_loadavg(void);

/* ---- http_client.c: a minimal keep-alive HTTP/1.1 client ---- */

typedef struct bench_http bench_http_t;
typedef struct {
    int status;
    const char *body; /* NUL-terminated; valid until the next request on the connection */
    size_t len;
} bench_http_resp_t;

bench_http_t *bench_http_open(int port);
void bench_http_close(bench_http_t **h);
/* One request; key NULL sends no Authorization. Returns 0, or -1 on a transport error (message in err). */
int bench_http_request(bench_http_t *h, const char *method, const char *path, const char *key, const void *body,
                       size_t body_len, bench_http_resp_t *resp, char *err, size_t errsz);
/* POSTs a file's bytes as the raw body (sendfile). */
int bench_http_post_file(bench_http_t *h, const char *path, const char *key, const char *file, bench_http_resp_t *resp,
                         char *err, size_t errsz);
/* The value of the series named name (no labels) in a Prometheus text body, or -1. */
double bench_gauge(const char *text, const char *name);
/* The same read from the server's GET /metrics on h, or -1 (also when the request fails). */
double bench_metric(bench_http_t *h, const char *key, const char *name);

/* ---- grpc_client.c: gRPC core client, driver requests ---- */

typedef struct bench_grpc bench_grpc_t;
typedef struct {
    int code;          /* grpc_status_code; 0 = OK */
    char message[512]; /* the status message */
    uint8_t *data;     /* DriverResponse bytes (malloc'd by the call; bench_grpc_resp_free) */
    size_t len;
} bench_grpc_resp_t;

void bench_grpc_init(void);
void bench_grpc_shutdown(void);
/* A client with its own channel (and so its own connection) and completion queue. */
bench_grpc_t *bench_grpc_open(const char *target);
void bench_grpc_close(bench_grpc_t **g);
/* Sends one serialized DriverRequest; waits at most timeout_s. Returns resp->code. */
int bench_grpc_call(bench_grpc_t *g, const uint8_t *req, size_t len, double timeout_s, bench_grpc_resp_t *resp);
void bench_grpc_resp_free(bench_grpc_resp_t *r);

/* Driver requests (malloc'd bytes, *len set); key = the API key, project = credentials host. */
typedef struct {
    uint8_t *data;
    size_t len;
} bench_bytes_t;
void bench_bytes_free(bench_bytes_t *b);
bench_bytes_t bench_drv_init_backend(const char *key);
bench_bytes_t bench_drv_object_info_table(const char *key, const char *project, const char *bucket, const char *table);
bench_bytes_t bench_drv_object_info_schema(const char *key, const char *project, const char *bucket);
bench_bytes_t bench_drv_preview(const char *key, const char *project, const char *bucket, const char *table, int limit);
typedef enum { BENCH_FMT_CSV, BENCH_FMT_CSV_GZ, BENCH_FMT_PARQUET } bench_fmt_t;
bench_bytes_t bench_drv_import_file(const char *key, const char *project, const char *bucket, const char *table,
                                    const char *file_key, bench_fmt_t fmt, bool incremental, const char *dedup_col);
bench_bytes_t bench_drv_export_file(const char *key, const char *project, const char *bucket, const char *table,
                                    const char *file_key, bench_fmt_t fmt);
/* Decoders of DriverResponse.commandResponse; false when the response does not decode as expected. */
bool bench_drv_import_rows(const bench_grpc_resp_t *r, int64_t *imported, int64_t *table_rows);
bool bench_drv_table_rows(const bench_grpc_resp_t *r, int64_t *rows); /* ObjectInfo of a TABLE */

/* ---- const_servers.c: the transport limits ---- */

/* A libmicrohttpd server (duckstore's thread model) answering every request with body (copied). */
int bench_const_http_start(const char *objectinfo_body, size_t oi_len, const char *preview_body, size_t pv_len);
void bench_const_http_stop(void);
/* A gRPC core server answering every Execute with one of two constant DriverResponses. */
int bench_const_grpc_start(const uint8_t *objectinfo_resp, size_t oi_len, const uint8_t *preview_resp, size_t pv_len);
void bench_const_grpc_stop(void);

/* ---- rss.c: the server's resident memory, sampled every 20 ms ---- */

void bench_rss_start(void);
void bench_rss_stop(void);
void bench_rss_watch(pid_t pid);   /* 0: none */
int64_t bench_rss_read(pid_t pid); /* bytes, -1 when unknown */
double bench_process_cpu_seconds(pid_t pid); /* utime + stime of every thread so far; 0 when unknown */
typedef struct {
    const char *phase;
    int64_t before, peak, after;
    int64_t idle; /* RSS once the server sat idle past its idle detach (bench_mem_idle); -1: not measured */
    int64_t idle_first; /* RSS BENCH_IDLE_DETACH_S + 1.5 s after the phase, before it settled; -1: not measured */
    double end_t, idle_after_s; /* when bench_mem_end read "after"; seconds from then to the idle reading */
    int64_t idle_open_projects; /* duckstore_open_projects then (attached project files); -1: not measured */
    double other_cores; /* CPU used by other processes during the phase, in cores; -1 unknown */
    struct bench_cpu {
        double t;
        int64_t busy, ours;
    } cpu;
} bench_mem_t;
/* CPU used by processes other than this one and the watched server, from begin to now, in cores (-1: unknown). */
typedef struct bench_cpu bench_cpu_t;
void bench_cpu_begin(bench_cpu_t *c);
double bench_cpu_other(const bench_cpu_t *c);
void bench_mem_begin(bench_mem_t *m, const char *phase);
void bench_mem_end(bench_mem_t *m);
/*
 * The main server detaches projects idle for BENCH_IDLE_DETACH_S (DUCKSTORE_BE_DUCKDB_IDLE_DETACH), which
 * gives their buffer pool back: waits that long plus 1.5 s after the phase (the RSS then goes to m->idle_first),
 * then reads the RSS once a second until no project file is attached (GET /metrics on http_port) and the RSS
 * stopped falling, for at most BENCH_IDLE_SETTLE_S more: m->idle, m->idle_open_projects, m->idle_after_s.
 * Full runs only (QUICK skips the wait). It is the server's default (60 s): with 5 s, a project went cold
 * while the limit ran (the snapshots phase timed a cold snapshot against DuckDB's warm COPY: 0.88 against
 * 1.00 with 60 s, 2,000,000 rows), so the phases compared unequal states.
 */
#define BENCH_IDLE_DETACH_S 60
#define BENCH_IDLE_SETTLE_S 60
void bench_mem_idle(bench_mem_t *m, bool quick, int http_port, const char *key);
/*
 * Reads the RSS of pid once a second until no project file is attached (duckstore_open_projects, GET /metrics
 * on http_port) and the RSS stopped falling (bench_settle_add), for at most BENCH_IDLE_SETTLE_S; returns the
 * last reading, and the attached project files then in *open_projects. For a server past its idle detach.
 */
int64_t bench_idle_settle(pid_t pid, int http_port, const char *key, int64_t *open_projects);
/*
 * "The RSS stopped falling": feed one reading a second; true once it fell by less than 1% over the last
 * 3 s (four readings). The allocators give freed memory back over seconds (DuckDB's jemalloc purges in
 * background threads), so one reading at a fixed moment after load races them.
 */
typedef struct {
    int64_t seen[4];
    int n;
} bench_settle_t;
bool bench_settle_add(bench_settle_t *s, int64_t rss);

/* ---- datagen.c ---- */

typedef struct {
    const char *name;
    const char *type; /* duckstore/DuckDB type; NULL = VARCHAR without a type */
} bench_col_t;
extern const bench_col_t bench_cols[];
extern const size_t bench_n_cols;

typedef struct {
    char dir[PATH_MAX];
    char base_csv[PATH_MAX], base_gz[PATH_MAX], base_parquet[PATH_MAX];
    char inc_csv[PATH_MAX];
    char req_csv[PATH_MAX];
    char part_csv[8][PATH_MAX];
    int64_t rows, inc_rows, inc_overlap, req_rows, part_rows;
    int parts;
} bench_data_t;
/* Generates (or reuses, when the cached set matches) every data file. */
void bench_data_prepare(bench_data_t *d, const char *dir, int64_t rows, int parts, int64_t req_rows);

/* ---- limit_db.c: DuckDB itself ---- */

typedef struct bench_limit bench_limit_t;
bench_limit_t *bench_limit_open(const char *path, int64_t memory_bytes, int threads);
void bench_limit_close(bench_limit_t **l);
/* Runs SQL; dies on error. Returns elapsed seconds. */
double bench_limit_exec(bench_limit_t *l, const char *sql);
int64_t bench_limit_int(bench_limit_t *l, const char *sql);
/* CREATE TABLE name (the bench columns, _timestamp TIMESTAMP). */
void bench_limit_create_table(bench_limit_t *l, const char *name);
/* COPY name FROM file; returns seconds. */
double bench_limit_copy_from(bench_limit_t *l, const char *table, const char *file, bench_fmt_t fmt);
/* K COPYs at once, each on its own connection; returns wall seconds. */
double bench_limit_copy_parallel(bench_limit_t *l, const char *const *tables, const char *const *files, int k);
const char *bench_duckdb_version(void);
/* DuckDB's read_csv column spec for the bench columns: "{'id': 'BIGINT', ...}" (static). */
const char *bench_csv_columns_spec(void);
/*
 * The fastest upsert of DuckDB 1.4 (MERGE INTO is several times slower), of the CSV file into table: one
 * transaction that stages the file, deletes its keys from the table and inserts it (bench_fmt; free it).
 */
char *bench_limit_upsert_sql(const char *csv, const char *table);

/* ---- server.c: the duckstore process ---- */

typedef struct {
    pid_t pid;
    int http_port, grpc_port;
    char grpc_target[64];
    char data_dir[PATH_MAX];
    char log_path[PATH_MAX];
    char key[80];
    bool grpc_ok; /* the server answered a gRPC Execute */
} bench_server_t;

/* Starts `duckstore serve` on free loopback ports with a fresh data dir; env: "NAME=value" list or NULL. */
void bench_server_start(bench_server_t *s, const char *binary, const char *data_dir, const char *log_path,
                        const char *const *env);
/* SIGTERM, and the exit status must be 0. */
void bench_server_stop(bench_server_t *s);
/* Stops every server still running (used when the run fails). */
void bench_server_kill_all(void);

/* REST helpers: die unless the status is expect; return the parsed JSON answer (NULL when empty; decref it). */
json_t *bench_rest(bench_http_t *h, const char *key, const char *method, const char *path, json_t *body, int expect);
void bench_rest_create_project(bench_http_t *h, const char *key, const char *project);
void bench_rest_create_bucket(bench_http_t *h, const char *key, const char *project, const char *stage,
                              const char *name);
void bench_rest_create_bench_table(bench_http_t *h, const char *key, const char *project, const char *bucket,
                                   const char *table);
/* Uploads a file under key name; returns the file id (malloc'd) and the seconds it took. */
char *bench_rest_upload(bench_http_t *h, const char *key, const char *project, const char *name, const char *file,
                        double *seconds);

/* ---- load.c: N clients for a fixed time ---- */

typedef struct bench_worker_ops {
    void *(*open)(void *arg, int idx);       /* per-client state */
    bool (*request)(void *state, void *arg); /* one request; false = failure */
    void (*close)(void *state);
} bench_worker_ops_t;
typedef struct {
    int clients;
    double seconds;
    int64_t requests, failures;
    double p50_ms, p99_ms, rps;
    double other_cores; /* CPU of other processes meanwhile (bench_cpu_other) */
} bench_load_t;
void bench_load_run(const bench_worker_ops_t *ops, void *arg, int clients, double seconds, bench_load_t *out);
/* n sequential requests on one client: latency percentiles. */
void bench_load_seq(const bench_worker_ops_t *ops, void *arg, int n, bench_load_t *out);

/* ---- inproc.c: the command layer in this process ---- */

void bench_inproc_start(const char *data_dir, const char *req_csv);
void bench_inproc_stop(void);
bool bench_inproc_table_get(void);
bool bench_inproc_preview(void);

/* ---- report.c ---- */

typedef struct bench_table bench_table_t;
bench_table_t *bench_table_new(const char *title, const char *const *headers);
void bench_table_row(bench_table_t *t, const char *const *cells);
void bench_table_note(bench_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bench_table_print(bench_table_t *t); /* and frees it */
/* Number formatting into a rotating static buffer (a few per line are fine). */
const char *bench_num(double v, int decimals);
const char *bench_int(int64_t v);
const char *bench_mb(int64_t bytes);
json_t *bench_mem_json(const bench_mem_t *m);
/* Adds the memory row of a phase to the shared memory table and JSON. */
void bench_report_mem(const bench_mem_t *m, json_t *phase_json);
void bench_report_mem_print(void);

/* ---- the run ---- */

typedef struct {
    bool quick;
    char binary[PATH_MAX];
    char work[PATH_MAX];
    char run[PATH_MAX]; /* <work>/run-<pid>: this run's servers, limit database, scratch files */
    char results[PATH_MAX];
    bench_machine_t machine;
    int64_t memory_limit_bytes; /* what the server's default DUCKSTORE_MEMORY_LIMIT (50%) resolves to */
    bench_data_t data;
    int par_k;
    double req_seconds;
    int scale_tables, scale_projects, scale_max_open;
    bench_server_t server; /* the main server */
    bench_http_t *http;    /* admin connection to it */
    bench_grpc_t *grpc;    /* admin gRPC client to it (NULL when gRPC is off) */
    bench_limit_t *limit;  /* DuckDB itself, open from the import phase to the parallel phase */
    json_t *json;          /* the whole result document */
    json_t *phases;
} bench_t;

void bench_phase_import(bench_t *b);
void bench_phase_incremental(bench_t *b);
void bench_phase_export(bench_t *b);
void bench_phase_snapshots(bench_t *b);
void bench_phase_parallel(bench_t *b);
void bench_phase_requests(bench_t *b);
void bench_phase_tables(bench_t *b);
void bench_phase_load(bench_t *b);
void bench_phase_workspaces(bench_t *b);
void bench_phase_branches(bench_t *b);
void bench_phase_links(bench_t *b);
void bench_phase_history(bench_t *b);
void bench_phase_projects(bench_t *b);
void bench_phase_plugins(bench_t *b);

/* ratio = duckstore / limit of a speed (1.0 = at the limit); 0 when either is missing. */
double bench_ratio(double duckstore_speed, double limit_speed);

#endif
