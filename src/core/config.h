/*
 * config.h - every setting of duckstore, as a flag and as an env var.
 *
 * DESIGN
 * DS_CONFIG_MAP lists each setting once: its field, env var, flag, kind,
 * default and help text. Defaults apply first, then env vars, then flags, then
 * ds_config_validate checks the whole. A bad value names its setting.
 * The parsing functions are pure (the environment is passed in as a lookup
 * callback) so they are unit-tested without touching the process environment.
 */
#ifndef DS_CORE_CONFIG_H
#define DS_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* DS_CFG_RATIO: a fraction from 0 to 1 ("0.25"), held in millionths. */
typedef enum { DS_CFG_STR, DS_CFG_INT, DS_CFG_BYTES, DS_CFG_DURATION, DS_CFG_RATIO, DS_CFG_LOGLEVEL } ds_cfg_kind_t;

typedef enum { DS_LOG_DEBUG = 0, DS_LOG_INFO, DS_LOG_WARN, DS_LOG_ERROR } ds_log_level_t;

/* XX(field, ENV, "flag", kind, "default", "help") ; "" default means unset. */
#define DS_CONFIG_MAP(XX)                                                                         \
    XX(data_dir, "DUCKSTORE_DATA_DIR", "data-dir", DS_CFG_STR, "./var",                           \
       "data directory (catalog, project files, Storage Files)")                                  \
    XX(http_addr, "DUCKSTORE_HTTP_ADDR", "http-addr", DS_CFG_STR, "127.0.0.1:8000",               \
       "REST and HTTP bridge listen address host:port")                                           \
    XX(grpc_addr, "DUCKSTORE_GRPC_ADDR", "grpc-addr", DS_CFG_STR, "127.0.0.1:50051",              \
       "gRPC listen address host:port (\"off\" disables it)")                                     \
    XX(admin_key, "DUCKSTORE_ADMIN_KEY", "admin-key", DS_CFG_STR, "",                             \
       "admin API key; generated into <data>/admin.key on first start when unset")                \
    XX(memory_limit, "DUCKSTORE_MEMORY_LIMIT", "memory-limit", DS_CFG_BYTES, "50%",                \
       "DuckDB memory limit: bytes (4GB, 512MiB) or a share of physical memory (50%)")            \
    XX(threads, "DUCKSTORE_THREADS", "threads", DS_CFG_INT, "0",                                  \
       "DuckDB worker threads (0 = number of cores)")                                             \
    XX(max_open_projects, "DUCKSTORE_MAX_OPEN_PROJECTS", "max-open-projects", DS_CFG_INT, "256",  \
       "project files kept attached at once; idle ones above it are detached")                    \
    XX(log_level, "DUCKSTORE_LOG_LEVEL", "log-level", DS_CFG_LOGLEVEL, "info",                    \
       "debug, info, warn or error")                                                              \
    XX(queue_depth, "DUCKSTORE_QUEUE_DEPTH", "queue-depth", DS_CFG_INT, "256",                    \
       "requests that may wait per write queue; more answer 429")                                 \
    XX(queue_max_wait, "DUCKSTORE_QUEUE_MAX_WAIT", "queue-max-wait", DS_CFG_DURATION, "0",        \
       "longest expected wait for a write queue's turn; later turns answer 429 at once (0: none)") \
    XX(max_json_bytes, "DUCKSTORE_MAX_JSON_BYTES", "max-json-bytes", DS_CFG_BYTES, "16MiB",        \
       "largest accepted JSON body; larger answer 413")                                           \
    XX(max_upload_bytes, "DUCKSTORE_MAX_UPLOAD_BYTES", "max-upload-bytes", DS_CFG_BYTES, "100GiB", \
       "largest accepted Storage File upload")                                                    \
    XX(file_ttl, "DUCKSTORE_FILE_TTL", "file-ttl", DS_CFG_DURATION, "15d",                        \
       "lifetime of non-permanent Storage Files (30s, 10m, 2h, 15d)")                             \
    XX(export_slice_bytes, "DUCKSTORE_EXPORT_SLICE_BYTES", "export-slice-bytes", DS_CFG_BYTES,    \
       "1GiB", "exports larger than this are sliced")                                             \
    XX(max_connections, "DUCKSTORE_MAX_CONNECTIONS", "max-connections", DS_CFG_INT, "16384",      \
       "concurrent HTTP connections accepted (lowered to fit the open-file limit)")               \
    XX(max_connections_per_ip, "DUCKSTORE_MAX_CONNECTIONS_PER_IP", "max-connections-per-ip",      \
       DS_CFG_INT, "2048", "concurrent HTTP connections accepted from one client address")        \
    XX(http_threads, "DUCKSTORE_HTTP_THREADS", "http-threads", DS_CFG_INT, "2",                   \
       "HTTP event-loop threads (they read requests and write responses)")                        \
    XX(http_workers, "DUCKSTORE_HTTP_WORKERS", "http-workers", DS_CFG_INT, "16",                  \
       "worker threads running REST and HTTP bridge requests")                                    \
    XX(http_project_workers, "DUCKSTORE_HTTP_PROJECT_WORKERS", "http-project-workers",            \
       DS_CFG_INT, "8", "most HTTP workers one project (or one key) holds at once")               \
    XX(header_timeout, "DUCKSTORE_HEADER_TIMEOUT", "header-timeout", DS_CFG_DURATION, "10s",      \
       "time a client has to send a request's headers once it has begun")                         \
    XX(idle_timeout, "DUCKSTORE_IDLE_TIMEOUT", "idle-timeout", DS_CFG_DURATION, "60s",            \
       "an HTTP connection silent this long is closed")                                           \
    XX(delete_wait, "DUCKSTORE_DELETE_WAIT", "delete-wait", DS_CFG_DURATION, "60s",               \
       "longest a project delete waits for the requests using the project (then 409)")            \
    XX(plugin_dir, "DUCKSTORE_PLUGIN_DIR", "plugin-dir", DS_CFG_STR, "",                          \
       "directory of backend plugins (.so) loaded at startup")                                    \
    XX(backend_settings_file, "DUCKSTORE_BACKEND_SETTINGS_FILE", "backend-settings-file",          \
       DS_CFG_STR, "", "file of DUCKSTORE_BE_* settings (KEY=value lines; wins over the "          \
       "environment), read at start and again by POST /backends/{name}/reload")                   \
    XX(ws_memory_limit, "DUCKSTORE_WS_MEMORY_LIMIT", "ws-memory-limit", DS_CFG_BYTES, "256MiB",   \
       "memory limit of each workspace's SQL sandbox (bytes, e.g. 256MiB)")                       \
    XX(ws_threads, "DUCKSTORE_WS_THREADS", "ws-threads", DS_CFG_INT, "1",                         \
       "DuckDB threads of each workspace's SQL sandbox (1-256)")                                  \
    XX(ws_readers, "DUCKSTORE_WS_READERS", "ws-readers", DS_CFG_INT, "4",                         \
       "threads that read storage tables ahead for workspace loads and queries, at most this many " \
       "at once (0-256; 0: storage is read on the query's own thread)")                            \
    XX(ws_max_open, "DUCKSTORE_WS_MAX_OPEN", "ws-max-open", DS_CFG_INT, "16",                     \
       "workspace sandboxes kept open at once; idle ones above it are closed")                    \
    XX(ws_idle_close, "DUCKSTORE_WS_IDLE_CLOSE", "ws-idle-close", DS_CFG_DURATION, "5m",          \
       "a workspace sandbox unused this long is closed and its memory returned (reopened on its "   \
       "next use); 0 keeps idle ones open up to DUCKSTORE_WS_MAX_OPEN")                            \
    XX(ws_max_rows, "DUCKSTORE_WS_MAX_ROWS", "ws-max-rows", DS_CFG_INT, "10000",                  \
       "most rows a query answer carries (then truncated is true)")                               \
    XX(ws_timeout, "DUCKSTORE_WS_TIMEOUT", "ws-timeout", DS_CFG_DURATION, "10m",                  \
       "default and longest run time of a workspace or project query")                            \
    XX(grpc_max_recv_bytes, "DUCKSTORE_GRPC_MAX_RECV_BYTES", "grpc-max-recv-bytes", DS_CFG_BYTES, \
       "16MiB", "largest gRPC request message (after decompression); larger get RESOURCE_EXHAUSTED") \
    XX(grpc_max_send_bytes, "DUCKSTORE_GRPC_MAX_SEND_BYTES", "grpc-max-send-bytes", DS_CFG_BYTES, \
       "64MiB", "largest gRPC response message; a larger answer is RESOURCE_EXHAUSTED")   \
    XX(grpc_workers, "DUCKSTORE_GRPC_WORKERS", "grpc-workers", DS_CFG_INT, "16",                  \
       "threads that run gRPC Execute commands (a fixed pool, 1-1024)")                           \
    XX(grpc_queue, "DUCKSTORE_GRPC_QUEUE", "grpc-queue", DS_CFG_INT, "64",                        \
       "Execute calls that may wait for a gRPC worker; more get RESOURCE_EXHAUSTED")              \
    XX(grpc_caller_share, "DUCKSTORE_GRPC_CALLER_SHARE", "grpc-caller-share", DS_CFG_INT, "50",   \
       "percent of the gRPC workers and of the queue one caller (project or key) may hold")       \
    XX(unauth_body_bytes, "DUCKSTORE_UNAUTH_BODY_BYTES", "unauth-body-bytes", DS_CFG_BYTES,       \
       "64KiB", "largest body of a request without a key (401), or of /driver/execute without a "  \
       "valid Authorization: Bearer key")                                                          \
    XX(body_memory, "DUCKSTORE_BODY_MEMORY", "body-memory", DS_CFG_BYTES, "512MiB",               \
       "request bodies (REST JSON, bridge, gRPC) held in memory at once; more answer 503")        \
    XX(idempotency_ttl, "DUCKSTORE_IDEMPOTENCY_TTL", "idempotency-ttl", DS_CFG_DURATION, "24h",   \
       "how long a write's Idempotency-Key is remembered (its repeat answers the first result)")   \
    XX(snapshot_retention, "DUCKSTORE_SNAPSHOT_RETENTION", "snapshot-retention", DS_CFG_DURATION, \
       "0", "how long automatic snapshots are kept (seconds or 30s, 10m, 2h, 7d); 0: the project's data retention") \
    XX(memory_trim, "DUCKSTORE_MEMORY_TRIM", "memory-trim", DS_CFG_DURATION, "1s",                \
       "how long the request workers rest before the server gives its free heap back (0: never)")  \
    XX(history_sweep, "DUCKSTORE_HISTORY_SWEEP_SECONDS", "history-sweep", DS_CFG_DURATION, "300", \
       "how often the time-travel history sweep runs (seconds or 30s, 10m, 2h)")                   \
    XX(files_sweep, "DUCKSTORE_FILES_SWEEP_SECONDS", "files-sweep", DS_CFG_DURATION, "60",         \
       "the longest time between two sweeps of expired Storage Files and snapshots (seconds or 30s, 10m)") \
    XX(retention_day, "DUCKSTORE_RETENTION_DAY_SECONDS", "retention-day", DS_CFG_DURATION, "1d",   \
       "the length of a day in data retention (tests shorten it; keep the default in production)") \
    XX(compact_min_free_bytes, "DUCKSTORE_COMPACT_MIN_FREE_BYTES", "compact-min-free-bytes",      \
       DS_CFG_BYTES, "64MiB", "free space a project file needs before automatic compaction runs") \
    XX(compact_min_free_ratio, "DUCKSTORE_COMPACT_MIN_FREE_RATIO", "compact-min-free-ratio",      \
       DS_CFG_RATIO, "0.25", "share of a project file that must be free before automatic compaction " \
       "runs (0 to 1; 0: never automatically)")                                                  \
    XX(compact_wait, "DUCKSTORE_COMPACT_WAIT_SECONDS", "compact-wait", DS_CFG_DURATION, "30",      \
       "longest wait of a compaction for its busy project (0: only an idle one); then it gives up") \
    XX(compact_retry, "DUCKSTORE_COMPACT_RETRY_SECONDS", "compact-retry", DS_CFG_DURATION, "60",   \
       "wait before an automatic compaction that gave up is tried again")

typedef struct {
    char *data_dir;
    char *http_addr;
    char *grpc_addr;
    char *admin_key;
    int64_t memory_limit;       /* bytes; negative = percent of physical memory (-50 = 50%) */
    int64_t threads;
    int64_t max_open_projects;
    ds_log_level_t log_level;
    int64_t queue_depth;
    int64_t queue_max_wait;     /* seconds; 0 = no bound */
    int64_t max_json_bytes;
    int64_t max_upload_bytes;
    int64_t file_ttl;           /* seconds */
    int64_t export_slice_bytes;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    int64_t http_threads;
    int64_t http_workers;
    int64_t http_project_workers;
    int64_t header_timeout; /* seconds */
    int64_t idle_timeout;   /* seconds */
    int64_t delete_wait;    /* seconds */
    char *plugin_dir;
    char *backend_settings_file;
    int64_t ws_memory_limit; /* bytes */
    int64_t ws_threads;
    int64_t ws_readers;
    int64_t ws_max_open;
    int64_t ws_max_rows;
    int64_t ws_timeout; /* seconds */
    int64_t ws_idle_close; /* seconds; 0: never */
    int64_t grpc_max_recv_bytes;
    int64_t grpc_max_send_bytes;
    int64_t grpc_workers;
    int64_t grpc_queue;
    int64_t grpc_caller_share; /* percent */
    int64_t unauth_body_bytes;
    int64_t body_memory;
    int64_t idempotency_ttl; /* seconds */
    int64_t snapshot_retention; /* seconds */
    int64_t history_sweep;      /* seconds */
    int64_t files_sweep;        /* seconds: the files sweep's longest interval */
    int64_t memory_trim;        /* seconds; 0: off */
    int64_t retention_day;      /* seconds */
    int64_t compact_min_free_bytes;
    int64_t compact_min_free_ratio; /* millionths (DS_CFG_RATIO) */
    int64_t compact_wait;  /* seconds */
    int64_t compact_retry; /* seconds */
} ds_config_t;

/* Returns the value of env var name, or NULL. */
typedef const char *(*ds_getenv_cb)(const char *name);

/* Fills cfg with defaults. Strings are malloc'd; release with ds_config_free. */
ds_status_t ds_config_defaults(ds_config_t *cfg, ds_err_t *err);
/* Applies every DUCKSTORE_* env var that getenv_cb returns. */
ds_status_t ds_config_apply_env(ds_config_t *cfg, ds_getenv_cb getenv_cb, ds_err_t *err);
/*
 * Applies --flag=value and --flag value arguments from argv[first..argc).
 * An unknown flag is an error naming it.
 */
ds_status_t ds_config_apply_args(ds_config_t *cfg, int argc, char **argv, int first, ds_err_t *err);
/* Checks ranges and cross-field rules (addresses parse, limits positive). */
ds_status_t ds_config_validate(const ds_config_t *cfg, ds_err_t *err);
/* Frees the strings of cfg. */
void ds_config_free(ds_config_t *cfg);
/* Writes the settings table (flag, env, default, help) to out, for --help. */
void ds_config_print_help(void *file);

/* Parses "4GB", "512MiB", "1024", "50%" (percent returned negative). */
bool ds_parse_bytes(const char *s, int64_t *out);
/* Parses "30", "30s", "10m", "2h", "15d" into seconds. */
bool ds_parse_duration(const char *s, int64_t *out);
/* Splits "host:port" (IPv6 as "[::1]:port"); host written into host (size hostsz). */
bool ds_parse_addr(const char *s, char *host, int hostsz, int *port);
/* Resolves the memory limit to bytes given physical memory phys. */
int64_t ds_config_memory_bytes(const ds_config_t *cfg, int64_t phys);
/* The name of a log level ("info"). */
const char *ds_log_level_name(ds_log_level_t l);

#endif
