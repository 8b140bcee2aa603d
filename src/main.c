/*
 * main.c - the duckstore command line: serve, quarantine, version, --help.
 *
 * serve: reads the configuration (defaults < env < flags), starts the service
 * core (catalog, backends, recovery), then the transports, and waits for
 * SIGTERM/SIGINT. Shutdown stops accepting, lets in-flight requests finish,
 * then closes every DuckDB file cleanly, and exits 0.
 *
 * quarantine list|purge: the operator's view of what startup recovery set
 * aside (core/quarantine.h); it reads only <data>/quarantine/.
 */
#include <duckdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/config.h"
#include "core/log.h"
#include "core/memtrim.h"
#include "core/metrics.h"
#include "core/quarantine.h"
#include "grpc/ds_grpc.h"
#include "rest/rest.h"
#include "ws/sandbox.h"

#define DS_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out, "usage: duckstore serve [--flag=value ...]\n"
                 "       duckstore quarantine list [--data-dir DIR]\n"
                 "       duckstore quarantine purge [--data-dir DIR] (--older-than DURATION | --all)\n"
                 "       duckstore version\n"
                 "       duckstore --help\n\n"
                 "Settings (flag, environment variable, default):\n");
    ds_config_print_help(out);
}

static int64_t gauge_open(void *ud) { return ds_service_open_projects(); }
static int64_t gauge_peak(void *ud) { return ds_service_open_projects_peak(); }
static int64_t gauge_restarts(void *ud) { return ds_service_engine_restarts(); }
static int64_t gauge_engine_memory(void *ud) { return ds_service_engine_memory(); }
static int64_t gauge_preview_cache(void *ud)
{
    ds_be_runtime_stats_t s;
    ds_service_runtime(&s);
    const char *what = ud;
    return what[0] == 'h' ? s.preview_cache_hits : what[0] == 'm' ? s.preview_cache_misses : s.preview_cache_bytes;
}
static int64_t gauge_waiting(void *ud) { return ds_service_queue_waiting(); }
static int64_t gauge_held(void *ud) { return ds_service_queue_held(); }
static int64_t gauge_projects(void *ud) { return ds_catalog_project_count(); }
static int64_t gauge_sandboxes(void *ud) { return ds_sandbox_open_count(); }
static int64_t gauge_history_expired(void *ud) { return ds_history_rows_expired(); }
static int64_t gauge_history_swept(void *ud) { return ds_history_projects_swept(); }
static int64_t gauge_history_left_alone(void *ud) { return ds_history_projects_left_alone(); }
static int64_t gauge_trims(void *ud) { return ds_memtrim_count(); }

static int serve(int argc, char **argv)
{
    ds_config_t cfg;
    ds_err_t err = {0};
    sigset_t sigs;
    int sig = 0, rc = 1;

    /* Block the stop signals in every thread; main waits for them with sigwait. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (ds_config_defaults(&cfg, &err) != DS_OK || ds_config_apply_env(&cfg, NULL, &err) != DS_OK ||
        ds_config_apply_args(&cfg, argc, argv, 2, &err) != DS_OK || ds_config_validate(&cfg, &err) != DS_OK) {
        fprintf(stderr, "duckstore: configuration error: %s\n", err.message);
        ds_config_free(&cfg);
        return 2;
    }
    ds_log_set_level(cfg.log_level);
    ds_metrics_init();
    if (ds_service_start(&cfg, &err) != DS_OK) {
        fprintf(stderr, "duckstore: cannot start: %s\n", err.message);
        ds_log(DS_LOG_ERROR, "startup failed: %s", err.message);
        goto out;
    }
    ds_metrics_gauge("duckstore_open_projects", "Project files attached now.", gauge_open, NULL);
    ds_metrics_gauge("duckstore_open_projects_peak", "Most project files attached at once since start.", gauge_peak,
                     NULL);
    ds_metrics_gauge("duckstore_engine_restarts_total",
                     "Times a storage engine was reopened after a fatal error (calls in flight failed with 503).",
                     gauge_restarts, NULL);
    ds_metrics_gauge("duckstore_engine_memory_bytes",
                     "Memory the storage engines hold now (DuckDB's buffer manager: cached table blocks, query "
                     "state, temporary data; given back when a project is detached). Workspace sandboxes not "
                     "included.",
                     gauge_engine_memory, NULL);
    ds_metrics_gauge("duckstore_preview_cache_hits_total", "Table previews answered from the cache of recent previews.",
                     gauge_preview_cache, (void *)"hits");
    ds_metrics_gauge("duckstore_preview_cache_misses_total",
                     "Table previews the cache of recent previews could not answer (they ran a query).",
                     gauge_preview_cache, (void *)"misses");
    ds_metrics_gauge("duckstore_preview_cache_bytes", "Memory held by the cache of recent previews.",
                     gauge_preview_cache, (void *)"bytes");
    ds_metrics_gauge("duckstore_memory_trims_total",
                     "Times the server gave its free heap memory back to the system after its workers went idle.",
                     gauge_trims, NULL);
    ds_metrics_gauge("duckstore_queue_waiting", "Requests waiting in write queues.", gauge_waiting, NULL);
    ds_metrics_gauge("duckstore_queue_held", "Write queues held now (a write has its turn).", gauge_held, NULL);
    ds_metrics_gauge("duckstore_projects", "Projects in the catalog.", gauge_projects, NULL);
    ds_metrics_gauge("duckstore_workspace_sandboxes_open",
                     "Workspace SQL sandboxes (DuckDB instances) open now; each may use DUCKSTORE_WS_MEMORY_LIMIT.",
                     gauge_sandboxes, NULL);
    ds_metrics_gauge("duckstore_history_rows_expired_total",
                     "Time-travel history rows the background sweep removed past each project's retention "
                     "(including the whole history of tables dropped before it).",
                     gauge_history_expired, NULL);
    ds_metrics_gauge("duckstore_history_sweep_projects_total",
                     "Projects the background history sweep opened to expire their history.", gauge_history_swept,
                     NULL);
    ds_metrics_gauge("duckstore_history_sweep_left_alone_total",
                     "Projects the background history sweep left alone (not attached): nothing in their history "
                     "could expire yet.",
                     gauge_history_left_alone, NULL);
    if (ds_rest_start(&cfg, &err) != DS_OK) {
        fprintf(stderr, "duckstore: cannot start HTTP: %s\n", err.message);
        ds_service_stop();
        goto out;
    }
    if (ds_grpc_start(&cfg, &err) != DS_OK) {
        fprintf(stderr, "duckstore: cannot start gRPC: %s\n", err.message);
        ds_rest_stop();
        ds_service_stop();
        goto out;
    }
    /* The human-readable banner goes to stdout; stderr carries only JSON log lines. */
    printf("duckstore %s listening: REST http://%s  gRPC %s  data %s  admin key %s%s\n", DS_VERSION, cfg.http_addr,
           cfg.grpc_addr, ds_service_config()->data_dir,
           cfg.admin_key ? "from DUCKSTORE_ADMIN_KEY / --admin-key" : ds_service_config()->data_dir,
           cfg.admin_key ? "" : "/admin.key");
    fflush(stdout);
    ds_log(DS_LOG_INFO, "duckstore %s serving REST on %s, data directory %s", DS_VERSION, cfg.http_addr, cfg.data_dir);

    while (sigwait(&sigs, &sig) != 0)
        ;
    ds_log(DS_LOG_INFO, "signal %d: shutting down, finishing in-flight requests", sig);
    ds_grpc_stop();
    ds_rest_stop();
    ds_service_stop();
    ds_log(DS_LOG_INFO, "shutdown complete");
    rc = 0;
out:
    ds_config_free(&cfg);
    return rc;
}

/* The value of --name=value or --name value at argv[*i] (advancing *i), or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int quarantine(int argc, char **argv)
{
    const char *data_dir = getenv("DUCKSTORE_DATA_DIR"), *older = NULL;
    bool all = false;
    ds_err_t err = {0};
    if (argc < 3 || (strcmp(argv[2], "list") != 0 && strcmp(argv[2], "purge") != 0)) {
        fprintf(stderr, "duckstore: quarantine needs \"list\" or \"purge\"\n\n");
        usage(stderr);
        return 2;
    }
    bool purge = strcmp(argv[2], "purge") == 0;
    for (int i = 3; i < argc; i++) {
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--data-dir")) != NULL)
            data_dir = v;
        else if (purge && (v = flag_value(argc, argv, &i, "--older-than")) != NULL)
            older = v;
        else if (purge && strcmp(argv[i], "--all") == 0)
            all = true;
        else {
            fprintf(stderr, "duckstore: quarantine %s: unknown or incomplete argument \"%s\"\n", argv[2], argv[i]);
            return 2;
        }
    }
    if (!data_dir || !*data_dir)
        data_dir = "./var";
    if (!purge) {
        int n = ds_quarantine_list(data_dir, stdout, &err);
        if (n < 0) {
            fprintf(stderr, "duckstore: %s\n", err.message);
            return 1;
        }
        if (n == 0)
            printf("quarantine of %s is empty\n", data_dir);
        return 0;
    }
    int64_t older_than = 0;
    if (all == (older != NULL)) {
        fprintf(stderr, "duckstore: quarantine purge needs exactly one of --older-than DURATION (e.g. 7d) or --all\n");
        return 2;
    }
    if (older && !ds_parse_duration(older, &older_than)) {
        fprintf(stderr, "duckstore: --older-than: \"%s\" is not a duration (use e.g. 30s, 10m, 2h or 7d)\n", older);
        return 2;
    }
    int removed = 0;
    ds_status_t st = ds_quarantine_purge(data_dir, older_than, stdout, &removed, &err);
    printf("purged %d quarantine folder%s of %s\n", removed, removed == 1 ? "" : "s", data_dir);
    if (st != DS_OK) {
        fprintf(stderr, "duckstore: %s\n", err.message);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("duckstore %s (DuckDB %s)\n", DS_VERSION, duckdb_library_version());
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "--help") == 0) {
                usage(stdout);
                return 0;
            }
        return serve(argc, argv);
    }
    if (strcmp(argv[1], "quarantine") == 0)
        return quarantine(argc, argv);
    fprintf(stderr, "duckstore: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
