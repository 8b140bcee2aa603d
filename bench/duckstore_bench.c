/*
 * duckstore_bench.c - `make bench`: duckstore side by side with raw DuckDB
 * and the transport limits. See bench.h for the design and
 * docs/performance.md for what each figure means.
 *
 * usage: duckstore_bench [--quick] [--rows N] [--binary PATH] [--work DIR]
 *                        [--out FILE] [--keep]
 *   --quick   tiny sizes (seconds), written to bench/results/quick.json
 *   --rows N  rows of the import data (default: the full size below)
 *   --keep    keep this run's directory, <work>/run-<pid> (servers' data and logs)
 *   --data-only  generate (or check) the data set and stop
 *   --tables N, --projects N, --max-open N, --req-seconds S
 *             override the scale and request sizes (for experiments)
 *   --phase NAME[,NAME...]  run only these phases of the main server (import, incremental,
 *             export, snapshots, parallel, requests, tables, workspaces, branches), in the usual order, for
 *             experiments; the parallel phase needs the import phase's state, the others run
 *             alone ("import,branches": branch creation next to the imported 1 GB)
 *
 * Phases, in order, on one server (the projects phase starts its own):
 * import, import incremental, export, snapshots, parallel, requests, tables, load, workspaces,
 * branches, projects.
 */
#include "bench.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Full size: 7M rows, ~1 GB of CSV; the full run then takes about 12 minutes on a 2-core machine. */
#define FULL_ROWS  7000000
#define QUICK_ROWS 20000

/* Whether name is one of the comma-separated phases of list. */
static bool phase_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: duckstore_bench [--quick] [--rows N] [--binary PATH] [--work DIR] [--out FILE] [--keep]\n"
            "                       [--data-only] [--tables N] [--projects N] [--max-open N] [--req-seconds S]\n"
            "                       [--phase NAME]\n");
    exit(2);
}

static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return bench_xstrdup("");
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    pclose(p);
    buf[strcspn(buf, "\n")] = '\0';
    return bench_xstrdup(buf);
}

int main(int argc, char **argv)
{
    bench_t b;
    memset(&b, 0, sizeof(b));
    int64_t rows = 0;
    bool keep = false, data_only = false;
    const char *out = NULL, *only = NULL;
    int tables = 0, projects = 0, max_open = 0;
    double req_seconds = 0;
    snprintf(b.binary, sizeof(b.binary), "build/duckstore");
    snprintf(b.work, sizeof(b.work), "build/bench-work");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            b.quick = true;
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (strcmp(argv[i], "--data-only") == 0)
            data_only = true;
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--binary") == 0 && i + 1 < argc)
            snprintf(b.binary, sizeof(b.binary), "%s", argv[++i]);
        else if (strcmp(argv[i], "--work") == 0 && i + 1 < argc)
            snprintf(b.work, sizeof(b.work), "%s", argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--tables") == 0 && i + 1 < argc)
            tables = atoi(argv[++i]);
        else if (strcmp(argv[i], "--projects") == 0 && i + 1 < argc)
            projects = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-open") == 0 && i + 1 < argc)
            max_open = atoi(argv[++i]);
        else if (strcmp(argv[i], "--req-seconds") == 0 && i + 1 < argc)
            req_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--phase") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            usage();
    }
    if (rows <= 0)
        rows = b.quick ? QUICK_ROWS : FULL_ROWS;
    if (rows < 100)
        bench_die("--rows must be at least 100");
    snprintf(b.results, sizeof(b.results), "%s",
             out       ? out
             : b.quick ? "bench/results/quick.json"
                       : "bench/results/latest.json");
    if (access(b.binary, X_OK) != 0)
        bench_die("%s is not built (run make)", b.binary);
    /* Absolute paths: DuckDB, the server and this process all resolve them alike. */
    char abs[PATH_MAX];
    bench_mkdirs(b.work);
    if (!realpath(b.work, abs))
        bench_die("cannot resolve %s", b.work);
    snprintf(b.work, sizeof(b.work), "%s", abs);
    if (!realpath(b.binary, abs))
        bench_die("cannot resolve %s", b.binary);
    snprintf(b.binary, sizeof(b.binary), "%s", abs);

    /* A server that dies mid-request must fail the run with a message, not kill it with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    double t_start = bench_now();
    time_t started = time(NULL);
    bench_machine(&b.machine);
    b.memory_limit_bytes = b.machine.memory_bytes / 2; /* DUCKSTORE_MEMORY_LIMIT's default, 50% */
    b.par_k = 4;
    b.req_seconds = req_seconds > 0 ? req_seconds : b.quick ? 0.25 : 2.0;
    b.scale_tables = tables > 10 ? tables : b.quick ? 50 : 5000;
    b.scale_projects = projects > 0 ? projects : b.quick ? 20 : 2000;
    b.scale_max_open = max_open > 0 ? max_open : b.quick ? 4 : 64;
    int64_t req_rows = b.quick ? 2000 : 100000;

    double load0 = bench_loadavg();
    printf("duckstore benchmark (%s): %d cores, %s MB memory, %s, %s, DuckDB %s\n", b.quick ? "QUICK" : "full",
           b.machine.cores, bench_mb(b.machine.memory_bytes), b.machine.cpu_model, b.machine.kernel,
           bench_duckdb_version());
    if (load0 > 0.5)
        printf("WARNING: load average %.2f at start: other work on this machine skews the figures\n", load0);
    fflush(stdout);

    char *data_dir = bench_fmt("%s/data-%lld", b.work, (long long)rows);
    bench_data_prepare(&b.data, data_dir, rows, b.par_k, req_rows);
    free(data_dir);
    if (data_only)
        return 0;

    /* Per process, so two runs in one tree (make test in parallel) never share a directory. */
    char *run_dir = bench_fmt("%s/run-%d", b.work, (int)getpid());
    snprintf(b.run, sizeof(b.run), "%s", run_dir);
    bench_rmtree(run_dir);
    bench_mkdirs(run_dir);
    bench_grpc_init();
    bench_rss_start();

    char *srv_dir = bench_fmt("%s/server", run_dir);
    char *srv_log = bench_fmt("%s/server.log", run_dir);
    /* Idle projects detach after BENCH_IDLE_DETACH_S, the server's default, named so "rss idle" knows it. */
    char *idle_env = bench_fmt("DUCKSTORE_BE_DUCKDB_IDLE_DETACH=%ds", BENCH_IDLE_DETACH_S);
    const char *srv_env[] = {idle_env, NULL};
    bench_server_start(&b.server, b.binary, srv_dir, srv_log, srv_env);
    bench_rss_watch(b.server.pid);
    b.http = bench_http_open(b.server.http_port);
    b.grpc = bench_grpc_open(b.server.grpc_target);
    bench_rest_create_project(b.http, b.server.key, BENCH_PROJECT);
    bench_rest_create_bucket(b.http, b.server.key, BENCH_PROJECT, "in", "bench");

    char *cmd = bench_fmt("'%s' version 2>/dev/null", b.binary);
    char *version = run_capture(cmd);
    free(cmd);
    char *commit = run_capture("git rev-parse --short HEAD 2>/dev/null");
    char *dirty = run_capture("git status --porcelain --untracked-files=no 2>/dev/null | head -1");
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&started));

    b.json = json_object();
    b.phases = json_object();
    json_object_set_new(b.json, "benchmark", json_string("duckstore"));
    json_object_set_new(b.json, "mode", json_string(b.quick ? "quick" : "full"));
    json_object_set_new(b.json, "started_at", json_string(when));
    json_object_set_new(b.json, "machine",
                        json_pack("{s:i,s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:I}", "cores", b.machine.cores, "memory_bytes",
                                  (json_int_t)b.machine.memory_bytes, "cpu_model", b.machine.cpu_model, "kernel",
                                  b.machine.kernel, "duckdb_version", bench_duckdb_version(), "duckstore_version",
                                  version, "git_commit", commit, "git_dirty", dirty[0] != '\0',
                                  "server_memory_limit_bytes", (json_int_t)b.memory_limit_bytes));
    json_object_set_new(
        b.json, "sizes",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:I,s:I,s:f,s:i,s:i,s:i}", "import_rows", (json_int_t)b.data.rows,
                  "import_csv_bytes", (json_int_t)bench_file_size(b.data.base_csv), "import_csv_gzip_bytes",
                  (json_int_t)bench_file_size(b.data.base_gz), "import_parquet_bytes",
                  (json_int_t)bench_file_size(b.data.base_parquet), "incremental_rows", (json_int_t)b.data.inc_rows,
                  "incremental_overlapping_keys", (json_int_t)b.data.inc_overlap, "parallel_rows_per_import",
                  (json_int_t)b.data.part_rows, "parallel_imports", b.data.parts, "requests_table_rows",
                  (json_int_t)b.data.req_rows, "requests_clients_max", (json_int_t)64, "requests_seconds_per_point",
                  b.req_seconds, "scale_tables", b.scale_tables, "scale_projects", b.scale_projects,
                  "scale_max_open_projects", b.scale_max_open));
    json_object_set_new(b.json, "definitions",
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "ratio",
                                  "duckstore speed / limit speed for imports, exports and requests (1.0 = at the "
                                  "limit, higher is better); speed-up / core count for parallel; end / start for "
                                  "tables; after / before for rss",
                                  "limit",
                                  "DuckDB's own COPY in the benchmark process (same data, same disk, same "
                                  "memory limit and threads), the command layer called in process, a "
                                  "constant answer from the same HTTP/gRPC library, or the core count",
                                  "rss", "the server's VmRSS sampled every 20 ms; bytes", "rss_idle",
                                  "rss_idle_bytes: the RSS once no project file was attached and the RSS stopped "
                                  "falling, rss_idle_after_s seconds after the phase; rss_detach_due_bytes: the RSS "
                                  "when the idle detach was due (61.5 s after the phase), before it settled",
                                  "mb", "10^6 bytes"));
    printf("data: %s rows, CSV %s MB, gzip %s MB, Parquet %s MB; server gRPC %s\n", bench_int(b.data.rows),
           bench_mb(bench_file_size(b.data.base_csv)), bench_mb(bench_file_size(b.data.base_gz)),
           bench_mb(bench_file_size(b.data.base_parquet)), b.server.grpc_ok ? "answers" : "does NOT answer (n/a)");
    fflush(stdout);

#define PHASE(name, fn)                                                                                                \
    if (!only || phase_listed(only, name))                                                                         \
        fn(&b);
    PHASE("import", bench_phase_import)
    PHASE("incremental", bench_phase_incremental)
    PHASE("export", bench_phase_export)
    PHASE("snapshots", bench_phase_snapshots)
    PHASE("parallel", bench_phase_parallel)
    PHASE("requests", bench_phase_requests)
    PHASE("tables", bench_phase_tables)
    PHASE("load", bench_phase_load)
    PHASE("workspaces", bench_phase_workspaces)
    PHASE("branches", bench_phase_branches)
    PHASE("links", bench_phase_links)
    PHASE("history", bench_phase_history)
#undef PHASE

    bench_http_close(&b.http);
    bench_grpc_close(&b.grpc);
    bench_server_stop(&b.server);
    bench_rss_watch(0);
    if (!keep)
        bench_rmtree(srv_dir);

    if (!only) {
        bench_phase_projects(&b);
        bench_phase_plugins(&b);
    }
    bench_report_mem_print();

    double total = bench_now() - t_start;
    json_object_set_new(b.json, "duration_seconds", json_real(total));
    json_object_set_new(json_object_get(b.json, "machine"), "loadavg_1min_at_start", json_real(load0));
    json_object_set_new(json_object_get(b.json, "machine"), "loadavg_1min_at_end", json_real(bench_loadavg()));
    json_object_set_new(b.json, "phases", b.phases);
    char *tmp = bench_fmt("%s.%d.tmp", b.results, (int)getpid());
    char *slash = strrchr(b.results, '/');
    if (slash) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - b.results), b.results);
        bench_mkdirs(dir);
    }
    if (json_dump_file(b.json, tmp, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0 || rename(tmp, b.results) != 0)
        bench_die("cannot write %s", b.results);
    printf("\nresults: %s (%.0f s)\n", b.results, total);

    bench_rss_stop();
    bench_grpc_shutdown();
    json_decref(b.json);
    if (!keep)
        bench_rmtree(run_dir);
    free(tmp);
    free(srv_dir);
    free(srv_log);
    free(run_dir);
    free(version);
    free(commit);
    free(dirty);
    return 0;
}
