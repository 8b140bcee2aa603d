/*
 * sandbox.c - the SQL sandbox. See sandbox.h for the design.
 *
 * Invariants: a sandbox file is open in at most one instance (the table
 * `boxes`, under `lock`; an instance is opened and closed with the lock held,
 * so no second open of a key can start meanwhile). A run (one query) is in
 * `runs` from before its statement is prepared until its result is gone, so
 * the table function always finds the query it belongs to.
 */
#include "ws/sandbox.h"

#include <dirent.h>
#include <duckdb.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../backends/duckdb/ddb.h"
#include "core/buf.h"
#include "core/cancel.h"
#include "core/log.h"
#include "ws/readahead.h"

struct ds_sandbox {
    struct ds_sandbox *next;
    char *key;  /* NULL: private in-memory sandbox */
    char *temp; /* its temp directory, removed with it */
    duckdb_database db;
    int64_t refs;
    uint64_t last_used;
    double idle_since; /* CLOCK_MONOTONIC seconds when refs last fell to 0 */
    bool broken; /* DuckDB invalidated it: closed when idle, reopened on demand */
};

typedef struct run {
    struct run *next;
    ds_sandbox_t *sb;
    duckdb_connection conn;
    idx_t conn_id;
    double deadline;
    bool timed_out;
    const ds_sandbox_query_t *q;
} run_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static ds_sandbox_t *boxes;
static int64_t n_open;
static uint64_t use_clock;
static uint64_t mem_seq;
static char data_dir[4096];
static ds_sandbox_limits_t limits = {.memory_limit_bytes = 256ll << 20, .threads = 1, .max_open = 16,
                                     .max_rows = 10000, .timeout_s = 600, .idle_close_s = 300};

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cond = PTHREAD_COND_INITIALIZER;
static run_t *runs;
static pthread_t watchdog;
static bool watchdog_on, stopping;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the watchdog: interrupts runs past their deadline, closes idle sandboxes ---- */

static void close_idle_boxes(double now);

static void *watchdog_main(void *arg)
{
    (void)arg;
    double idle_check = 0;
    pthread_mutex_lock(&run_lock);
    while (!stopping) {
        double now = mono_s();
        for (run_t *r = runs; r; r = r->next)
            if (!r->timed_out && r->deadline > 0 && now >= r->deadline) {
                r->timed_out = true;
                duckdb_interrupt(r->conn);
            }
        if (limits.idle_close_s > 0 && now >= idle_check) {
            /* `lock` is never taken while holding run_lock: the idle sweep runs without it. */
            pthread_mutex_unlock(&run_lock);
            close_idle_boxes(now);
            pthread_mutex_lock(&run_lock);
            idle_check = now + (limits.idle_close_s < 4 ? limits.idle_close_s / 4 : 1);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&run_cond, &run_lock, &ts);
    }
    pthread_mutex_unlock(&run_lock);
    return NULL;
}

ds_status_t ds_sandbox_start(const char *dir, const ds_sandbox_limits_t *lim, ds_err_t *err)
{
    snprintf(data_dir, sizeof(data_dir), "%s", dir);
    limits = *lim;
    ds_readahead_start((int)lim->readers);
    char path[4200];
    snprintf(path, sizeof(path), "%s/workspaces", data_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot create the workspaces folder of the data directory: %s",
                          strerror(errno));
    pthread_mutex_lock(&run_lock);
    stopping = false;
    pthread_mutex_unlock(&run_lock);
    return DS_OK;
}

/* Starts the watchdog if it does not run yet. Caller holds run_lock. */
static ds_status_t watchdog_ensure_locked(ds_err_t *err)
{
    if (!watchdog_on && !stopping) {
        if (pthread_create(&watchdog, NULL, watchdog_main, NULL) != 0)
            return ds_err_set(err, DS_UNAVAILABLE, "cannot start the query watchdog thread");
        watchdog_on = true;
    }
    return DS_OK;
}

/*
 * Adds r to the runs, starting the watchdog with the first query or sandbox
 * (a server whose workspaces are never used has no thread for them).
 */
static ds_status_t run_add(run_t *r, ds_err_t *err)
{
    pthread_mutex_lock(&run_lock);
    ds_status_t st = watchdog_ensure_locked(err);
    if (st == DS_OK) {
        r->next = runs;
        runs = r;
    }
    pthread_mutex_unlock(&run_lock);
    return st;
}

static void run_remove(run_t *r)
{
    pthread_mutex_lock(&run_lock);
    for (run_t **p = &runs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&run_lock);
}


static void close_box(ds_sandbox_t *sb);

void ds_sandbox_stop(void)
{
    pthread_mutex_lock(&run_lock);
    bool on = watchdog_on;
    stopping = true;
    pthread_cond_broadcast(&run_cond);
    pthread_mutex_unlock(&run_lock);
    if (on) {
        pthread_join(watchdog, NULL);
        pthread_mutex_lock(&run_lock);
        watchdog_on = false;
        pthread_mutex_unlock(&run_lock);
    }
    pthread_mutex_lock(&lock);
    while (boxes) {
        ds_sandbox_t *sb = boxes;
        boxes = sb->next;
        close_box(sb);
    }
    pthread_mutex_unlock(&lock);
}

const ds_sandbox_limits_t *ds_sandbox_limits(void) { return &limits; }

int64_t ds_sandbox_open_count(void)
{
    pthread_mutex_lock(&lock);
    int64_t n = n_open;
    pthread_mutex_unlock(&lock);
    return n;
}

/* ---- the storage table function ---- */

typedef struct {
    ds_be_scan_t *scan;
} scan_bind_t;

static void scan_bind_free(void *p)
{
    scan_bind_t *b = p;
    if (b && b->scan)
        b->scan->close(b->scan);
    free(b);
}

static char *param_text(duckdb_value v)
{
    if (!v || duckdb_is_null_value(v))
        return NULL;
    return duckdb_get_varchar(v);
}

static void scan_bind(duckdb_bind_info info)
{
    ds_sandbox_t *sb = duckdb_bind_get_extra_info(info);
    duckdb_client_context cc = NULL;
    duckdb_table_function_get_client_context(info, &cc);
    idx_t id = duckdb_client_context_get_connection_id(cc);
    duckdb_destroy_client_context(&cc);
    const ds_sandbox_query_t *q = NULL;
    pthread_mutex_lock(&run_lock);
    for (run_t *r = runs; r; r = r->next)
        if (r->sb == sb && r->conn_id == id)
            q = r->q;
    pthread_mutex_unlock(&run_lock);
    if (!q || !q->scan) {
        duckdb_bind_set_error(info, "storage tables are not readable here: this query has no access to the "
                                    "project's storage");
        return;
    }
    duckdb_value vb = duckdb_bind_get_parameter(info, 0), vt = duckdb_bind_get_parameter(info, 1);
    duckdb_value vc = duckdb_bind_get_named_parameter(info, "columns");
    duckdb_value vs = duckdb_bind_get_named_parameter(info, "spec");
    duckdb_value vp = duckdb_bind_get_named_parameter(info, "project");
    char *bucket = param_text(vb), *table = param_text(vt), *project = param_text(vp);
    size_t n_cols = vc && !duckdb_is_null_value(vc) ? (size_t)duckdb_get_list_size(vc) : 0;
    char **cols = calloc(n_cols ? n_cols : 1, sizeof(char *));
    bool cols_ok = cols != NULL;
    for (size_t i = 0; cols_ok && i < n_cols; i++) {
        duckdb_value c = duckdb_get_list_child(vc, (idx_t)i);
        cols[i] = param_text(c);
        cols_ok = cols[i] != NULL;
        duckdb_destroy_value(&c);
    }
    int64_t spec = vs && !duckdb_is_null_value(vs) ? duckdb_get_int64(vs) : 0;
    ds_err_t e = {0};
    ds_be_scan_t *scan = NULL;
    ds_status_t st;
    if (!bucket || !table)
        st = ds_err_set(&e, DS_INVALID_ARGUMENT, "ds_storage_scan(bucket, table): bucket and table must not be NULL");
    else if (!cols_ok)
        st = ds_err_set(&e, DS_INVALID_ARGUMENT, "ds_storage_scan: columns must be a list of column names");
    else
        st = q->scan(q->scan_ud, project, bucket, table, (const char *const *)cols, n_cols, spec, &scan, &e);
    if (st == DS_OK) {
        scan_bind_t *b = calloc(1, sizeof(*b));
        if (!b) {
            scan->close(scan);
            duckdb_bind_set_error(info, "out of memory");
        } else {
            b->scan = scan = ds_readahead_wrap(scan);
            for (size_t i = 0; i < scan->n_columns; i++)
                duckdb_bind_add_result_column(info, scan->names[i], (duckdb_logical_type)scan->types[i]);
            duckdb_bind_set_bind_data(info, b, scan_bind_free);
        }
    } else {
        duckdb_bind_set_error(info, e.message);
    }
    for (size_t i = 0; cols && i < n_cols; i++)
        duckdb_free(cols[i]);
    free(cols);
    duckdb_free(bucket);
    duckdb_free(table);
    duckdb_free(project);
    duckdb_destroy_value(&vb);
    duckdb_destroy_value(&vt);
    if (vc)
        duckdb_destroy_value(&vc);
    if (vs)
        duckdb_destroy_value(&vs);
    if (vp)
        duckdb_destroy_value(&vp);
}

static void scan_init(duckdb_init_info info) { duckdb_init_set_max_threads(info, 1); }

/* Hands the engine's next chunk to DuckDB: the output vectors reference its data, nothing is copied. */
static void scan_fn(duckdb_function_info info, duckdb_data_chunk output)
{
    scan_bind_t *b = duckdb_function_get_bind_data(info);
    void *chunk = NULL;
    ds_err_t e = {0};
    if (b->scan->next(b->scan, &chunk, &e) != DS_OK) {
        duckdb_function_set_error(info, e.message);
        return;
    }
    if (!chunk) {
        duckdb_data_chunk_set_size(output, 0);
        return;
    }
    duckdb_data_chunk c = chunk;
    idx_t n = duckdb_data_chunk_get_column_count(output);
    for (idx_t i = 0; i < n; i++)
        duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, i), duckdb_data_chunk_get_vector(c, i));
    duckdb_data_chunk_set_size(output, duckdb_data_chunk_get_size(c));
    duckdb_destroy_data_chunk(&c);
}

static bool register_scan(duckdb_connection conn, ds_sandbox_t *sb)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_logical_type v = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type lv = duckdb_create_list_type(v);
    duckdb_logical_type bi = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    duckdb_table_function_set_name(f, "ds_storage_scan");
    duckdb_table_function_add_parameter(f, v);
    duckdb_table_function_add_parameter(f, v);
    duckdb_table_function_add_named_parameter(f, "columns", lv);
    duckdb_table_function_add_named_parameter(f, "spec", bi);
    duckdb_table_function_add_named_parameter(f, "project", v);
    duckdb_table_function_set_extra_info(f, sb, NULL);
    duckdb_table_function_set_bind(f, scan_bind);
    duckdb_table_function_set_init(f, scan_init);
    duckdb_table_function_set_function(f, scan_fn);
    bool ok = duckdb_register_table_function(conn, f) == DuckDBSuccess;
    duckdb_destroy_logical_type(&v);
    duckdb_destroy_logical_type(&lv);
    duckdb_destroy_logical_type(&bi);
    duckdb_destroy_table_function(&f);
    return ok;
}

/* ---- instances ---- */

/* Removes path: a file, or a folder of files (DuckDB's spill folder holds no sub-folders). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char sub[4400];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

static void close_box(ds_sandbox_t *sb)
{
    if (sb->db) {
        duckdb_close(&sb->db);
        n_open--;
    }
    if (sb->temp)
        remove_tree(sb->temp);
    free(sb->temp);
    free(sb->key);
    free(sb);
}

static ds_status_t set_cfg(duckdb_config cfg, const char *name, const char *value, ds_err_t *err)
{
    if (duckdb_set_config(cfg, name, value) == DuckDBError)
        return ds_err_set(err, DS_INTERNAL, "the sandbox option %s cannot be set", name);
    return DS_OK;
}

/* Opens sb->db on path (NULL: in memory) with the sandbox configuration, registers the scan, locks. */
static ds_status_t open_box(ds_sandbox_t *sb, const char *path, ds_err_t *err)
{
    duckdb_config cfg = NULL;
    char mem[64], thr[32];
    if (duckdb_create_config(&cfg) == DuckDBError)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    snprintf(mem, sizeof(mem), "%lldB", (long long)limits.memory_limit_bytes);
    snprintf(thr, sizeof(thr), "%lld", (long long)limits.threads);
    ds_status_t st = DS_OK;
    /* Before external access goes off: DuckDB refuses to change the spill folder after that. */
    if (st == DS_OK && sb->temp)
        st = set_cfg(cfg, "temp_directory", sb->temp, err);
    if (st == DS_OK)
        st = set_cfg(cfg, "enable_external_access", "false", err);
    if (st == DS_OK)
        st = set_cfg(cfg, "autoinstall_known_extensions", "false", err);
    if (st == DS_OK)
        st = set_cfg(cfg, "autoload_known_extensions", "false", err);
    if (st == DS_OK)
        st = set_cfg(cfg, "allow_community_extensions", "false", err);
    if (st == DS_OK)
        st = set_cfg(cfg, "allow_unsigned_extensions", "false", err);
    if (st == DS_OK)
        st = set_cfg(cfg, "memory_limit", mem, err);
    if (st == DS_OK)
        st = set_cfg(cfg, "threads", thr, err);
    char *open_err = NULL;
    if (st == DS_OK && duckdb_open_ext(path, &sb->db, cfg, &open_err) == DuckDBError) {
        char clean[512];
        ds_ddb_client_text(open_err ? open_err : "unknown error", clean, sizeof(clean));
        st = ds_err_set(err, DS_UNAVAILABLE, "cannot open the workspace's database: %s", clean);
        duckdb_free(open_err);
        sb->db = NULL;
    }
    duckdb_destroy_config(&cfg);
    if (st != DS_OK)
        return st;
    n_open++;
    duckdb_connection c;
    if (duckdb_connect(sb->db, &c) == DuckDBError)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot connect to the workspace's database");
    if (!register_scan(c, sb))
        st = ds_err_set(err, DS_INTERNAL, "cannot register the storage scan in the sandbox");
    if (st == DS_OK)
        st = ds_ddb_exec(c, err, "SET lock_configuration = true");
    duckdb_disconnect(&c);
    return st;
}

/* Closes the sandboxes nobody used for limits.idle_close_s: their memory goes back (reopened on demand). */
static void close_idle_boxes(double now)
{
    pthread_mutex_lock(&lock);
    for (ds_sandbox_t **p = &boxes; *p;) {
        ds_sandbox_t *sb = *p;
        if (sb->refs == 0 && now - sb->idle_since >= limits.idle_close_s) {
            *p = sb->next;
            close_box(sb);
        } else {
            p = &sb->next;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* Closes idle instances, least recently used first, until one more fits under the cap. Holds lock. */
static void make_room(void)
{
    while (n_open >= limits.max_open) {
        ds_sandbox_t **victim = NULL;
        for (ds_sandbox_t **p = &boxes; *p; p = &(*p)->next)
            if ((*p)->refs == 0 && (!victim || (*p)->last_used < (*victim)->last_used))
                victim = p;
        if (!victim)
            return; /* every open sandbox runs a query: over the cap for that moment */
        ds_sandbox_t *sb = *victim;
        *victim = sb->next;
        close_box(sb);
    }
}

ds_status_t ds_sandbox_acquire(const char *key, const char *path, ds_sandbox_t **out, ds_err_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&lock);
    ds_sandbox_t *sb = NULL;
    if (path) {
        for (ds_sandbox_t *b = boxes; b; b = b->next)
            if (strcmp(b->key, key) == 0)
                sb = b;
        if (sb && sb->broken && sb->refs == 0) {
            for (ds_sandbox_t **p = &boxes; *p; p = &(*p)->next)
                if (*p == sb) {
                    *p = sb->next;
                    break;
                }
            close_box(sb);
            sb = NULL;
        }
    }
    ds_status_t st = DS_OK;
    if (!sb) {
        make_room();
        sb = calloc(1, sizeof(*sb));
        char tmp[4300];
        if (path)
            snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        else
            snprintf(tmp, sizeof(tmp), "%s/workspaces/query_%llu.tmp", data_dir, (unsigned long long)++mem_seq);
        if (!sb || !(sb->temp = strdup(tmp)) || (path && !(sb->key = strdup(key)))) {
            if (sb) {
                free(sb->temp);
                free(sb);
            }
            pthread_mutex_unlock(&lock);
            return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        }
        st = open_box(sb, path, err);
        if (st != DS_OK) {
            close_box(sb);
            pthread_mutex_unlock(&lock);
            return st;
        }
        if (path) {
            sb->next = boxes;
            boxes = sb;
        }
    }
    sb->refs++;
    sb->last_used = ++use_clock;
    pthread_mutex_unlock(&lock);
    if (path && limits.idle_close_s > 0) {
        /* The watchdog closes it once idle; it starts with the first sandbox. */
        ds_err_t ignored = {0};
        pthread_mutex_lock(&run_lock);
        if (watchdog_ensure_locked(&ignored) != DS_OK)
            ds_log(DS_LOG_WARN, "sandbox: %s; idle sandboxes stay open", ignored.message);
        pthread_mutex_unlock(&run_lock);
    }
    *out = sb;
    return st;
}

void ds_sandbox_release(ds_sandbox_t **sbp)
{
    ds_sandbox_t *sb = *sbp;
    if (!sb)
        return;
    *sbp = NULL;
    pthread_mutex_lock(&lock);
    sb->refs--;
    if (!sb->key) {
        close_box(sb);
    } else if (sb->refs == 0) {
        sb->idle_since = mono_s();
        pthread_cond_broadcast(&idle_cond);
        if (n_open > limits.max_open || sb->broken) {
            for (ds_sandbox_t **p = &boxes; *p; p = &(*p)->next)
                if (*p == sb) {
                    *p = sb->next;
                    close_box(sb);
                    break;
                }
            make_room();
        }
    }
    pthread_mutex_unlock(&lock);
}

ds_status_t ds_sandbox_remove(const char *key, const char *path, ds_err_t *err)
{
    pthread_mutex_lock(&lock);
    for (;;) {
        ds_sandbox_t **at = NULL;
        for (ds_sandbox_t **p = &boxes; *p; p = &(*p)->next)
            if (strcmp((*p)->key, key) == 0)
                at = p;
        if (!at)
            break;
        if ((*at)->refs > 0) {
            /* Its queries end now rather than at their timeout: the workspace is going away. */
            pthread_mutex_lock(&run_lock);
            for (run_t *r = runs; r; r = r->next)
                if (r->sb == *at)
                    duckdb_interrupt(r->conn);
            pthread_mutex_unlock(&run_lock);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&idle_cond, &lock, &ts);
            continue;
        }
        ds_sandbox_t *sb = *at;
        *at = sb->next;
        close_box(sb);
        break;
    }
    char p2[4300];
    int failed = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        failed = errno;
    snprintf(p2, sizeof(p2), "%s.wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s.tmp", path);
    remove_tree(p2);
    pthread_mutex_unlock(&lock);
    if (failed)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot remove the workspace's database file: %s", strerror(failed));
    return DS_OK;
}

/* ---- queries ---- */

static const char *type_name(ds_arena_t *a, duckdb_logical_type t)
{
    duckdb_type id = duckdb_get_type_id(t);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT: return "TINYINT";
    case DUCKDB_TYPE_SMALLINT: return "SMALLINT";
    case DUCKDB_TYPE_INTEGER: return "INTEGER";
    case DUCKDB_TYPE_BIGINT: return "BIGINT";
    case DUCKDB_TYPE_HUGEINT: return "HUGEINT";
    case DUCKDB_TYPE_UTINYINT: return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT: return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER: return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT: return "UBIGINT";
    case DUCKDB_TYPE_UHUGEINT: return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT: return "FLOAT";
    case DUCKDB_TYPE_DOUBLE: return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP: return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP_S: return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS: return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS: return "TIMESTAMP_NS";
    case DUCKDB_TYPE_DATE: return "DATE";
    case DUCKDB_TYPE_TIME: return "TIME";
    case DUCKDB_TYPE_TIME_TZ: return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL: return "INTERVAL";
    case DUCKDB_TYPE_VARCHAR: return "VARCHAR";
    case DUCKDB_TYPE_BLOB: return "BLOB";
    case DUCKDB_TYPE_UUID: return "UUID";
    case DUCKDB_TYPE_DECIMAL:
        return ds_arena_printf(a, "DECIMAL(%u,%u)", (unsigned)duckdb_decimal_width(t), (unsigned)duckdb_decimal_scale(t));
    case DUCKDB_TYPE_LIST: return "LIST";
    case DUCKDB_TYPE_STRUCT: return "STRUCT";
    case DUCKDB_TYPE_MAP: return "MAP";
    case DUCKDB_TYPE_ENUM: return "ENUM";
    default: return "OTHER";
    }
}

static const char *stmt_name(duckdb_statement_type t)
{
    static const char *names[] = {"INVALID", "SELECT", "INSERT", "UPDATE", "EXPLAIN", "DELETE", "PREPARE",
                                  "CREATE", "EXECUTE", "ALTER", "TRANSACTION", "COPY", "ANALYZE", "SET VARIABLE",
                                  "CREATE FUNCTION", "DROP", "EXPORT", "PRAGMA", "VACUUM", "CALL", "SET", "LOAD",
                                  "RELATION", "EXTENSION", "LOGICAL PLAN", "ATTACH", "DETACH", "MULTI"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "UNKNOWN";
}

static bool stmt_allowed(ds_sandbox_mode_t mode, duckdb_statement_type t)
{
    if (mode == DS_SANDBOX_SERVICE)
        return true;
    if (t == DUCKDB_STATEMENT_TYPE_SELECT || t == DUCKDB_STATEMENT_TYPE_EXPLAIN)
        return true;
    if (mode == DS_SANDBOX_READ_ONLY)
        return false;
    return t == DUCKDB_STATEMENT_TYPE_INSERT || t == DUCKDB_STATEMENT_TYPE_UPDATE ||
           t == DUCKDB_STATEMENT_TYPE_DELETE || t == DUCKDB_STATEMENT_TYPE_CREATE ||
           t == DUCKDB_STATEMENT_TYPE_DROP || t == DUCKDB_STATEMENT_TYPE_ALTER ||
           t == DUCKDB_STATEMENT_TYPE_CREATE_FUNC;
}

/*
 * Whether a catalog besides the workspace's is attached (user SQL cannot attach one: only the service does).
 * Every function is named with its catalog: a user's CREATE MACRO duckdb_databases() or current_database()
 * in the workspace would otherwise answer this question for the service.
 */
static bool has_foreign_catalogs(duckdb_connection conn)
{
    duckdb_result res;
    bool any = true;
    if (duckdb_query(conn,
                     "SELECT count(*) FROM system.main.duckdb_databases() WHERE database_name NOT IN "
                     "(system.main.current_database(), 'temp', 'system')",
                     &res) != DuckDBError && duckdb_row_count(&res) == 1)
        any = ds_ddb_int(&res, 0, 0) > 0;
    duckdb_destroy_result(&res);
    return any;
}

/*
 * Opens the transaction a user's statement runs in when the service attached
 * storage catalogs: it first changes (and restores) the workspace's own
 * database, and DuckDB lets one transaction write one database only, so a
 * statement that would create, change or drop anything in another catalog
 * fails (read_only_error recognizes that).
 */
static ds_status_t begin_guarded(duckdb_connection conn, idx_t conn_id, ds_err_t *err)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "BEGIN TRANSACTION; CREATE TABLE main.\"__duckstore_write_guard_%llu\" (x INTEGER); "
             "DROP TABLE main.\"__duckstore_write_guard_%llu\"",
             (unsigned long long)conn_id, (unsigned long long)conn_id);
    ds_err_t e = {0};
    if (ds_ddb_exec(conn, &e, sql) == DS_OK)
        return DS_OK;
    ds_err_t ignored = {0};
    ds_ddb_exec(conn, &ignored, "ROLLBACK");
    return ds_err_set(err, DS_QUERY_FAILED, "cannot start the statement's transaction: %s", e.message);
}

/* DuckDB's refusal of a second database in one transaction: a write to a storage catalog. */
static bool read_only_error(const char *msg)
{
    return msg && strstr(msg, "Attempting to write to database") != NULL;
}

#define READ_ONLY_MESSAGE                                                                                      \
    "storage tables are read-only: a statement may not create, change or drop anything in a bucket's schema " \
    "(\"<bucket id>\".\"<table>\" names a storage table); nothing was changed"

static void interrupt_run(void *ud)
{
    run_t *r = ud;
    duckdb_interrupt(r->conn);
}

/*
 * Starts run r of query q in sb: its own connection, its deadline (watched),
 * its cancellation hook (*hooked). r->conn is NULL when nothing was started;
 * otherwise the caller ends it with run_end whatever the status.
 */
static ds_status_t run_begin(run_t *r, ds_sandbox_t *sb, const ds_sandbox_query_t *q, bool *hooked, ds_err_t *err)
{
    memset(r, 0, sizeof(*r));
    r->sb = sb;
    r->q = q;
    *hooked = false;
    if (duckdb_connect(sb->db, &r->conn) == DuckDBError) {
        r->conn = NULL;
        return ds_err_set(err, DS_UNAVAILABLE, "cannot connect to the workspace's database");
    }
    duckdb_client_context cc = NULL;
    duckdb_connection_get_client_context(r->conn, &cc);
    r->conn_id = duckdb_client_context_get_connection_id(cc);
    duckdb_destroy_client_context(&cc);
    r->deadline = mono_s() + (q->timeout_s > 0 && q->timeout_s < limits.timeout_s ? q->timeout_s : limits.timeout_s);
    ds_status_t st = run_add(r, err);
    if (st != DS_OK) {
        duckdb_disconnect(&r->conn);
        r->conn = NULL;
        return st;
    }
    if (q->cancel) {
        if (ds_cancel_hook(q->cancel, interrupt_run, r))
            *hooked = true;
        else
            st = ds_err_set(err, DS_CANCELLED, "the query was cancelled before it started");
    }
    return st;
}

static void run_end(run_t *r, bool hooked)
{
    if (hooked)
        ds_cancel_unhook(r->q->cancel, r);
    run_remove(r);
    duckdb_disconnect(&r->conn);
}


/* The query's failure, from DuckDB's message: timeout and cancel are named as such. */
static ds_status_t run_error(run_t *r, const char *msg, ds_err_t *err)
{
    bool timed_out;
    pthread_mutex_lock(&run_lock);
    timed_out = r->timed_out;
    pthread_mutex_unlock(&run_lock);
    if (timed_out)
        return ds_err_set(err, DS_QUERY_FAILED, "the query ran longer than its timeout of %g s and was interrupted",
                          r->q->timeout_s > 0 && r->q->timeout_s < limits.timeout_s ? r->q->timeout_s
                                                                                     : limits.timeout_s);
    if (r->q->cancel && ds_cancel_is_set(r->q->cancel))
        return ds_err_set(err, DS_CANCELLED, "the query was cancelled");
    char clean[DS_ERR_MSG_MAX];
    ds_ddb_client_text(msg ? msg : "unknown error", clean, sizeof(clean));
    if (ds_ddb_is_fatal(DUCKDB_ERROR_FATAL, clean) || strstr(clean, "database has been invalidated")) {
        pthread_mutex_lock(&lock);
        r->sb->broken = true;
        pthread_mutex_unlock(&lock);
    }
    return ds_err_set(err, DS_QUERY_FAILED, "%s", clean);
}

/* Reads a materialized result's columns and rows (all of them) into out. */
static ds_status_t read_result(ds_arena_t *a, duckdb_result *res, int64_t cap, ds_sandbox_result_t *out,
                               ds_err_t *err)
{
    idx_t nc = duckdb_column_count(res), nr = duckdb_row_count(res);
    if ((int64_t)nr > cap) {
        nr = (idx_t)cap;
        out->truncated = true;
    }
    if (out->n_columns == 0) {
        out->n_columns = (size_t)nc;
        out->names = ds_arena_alloc(a, sizeof(char *) * (nc ? nc : 1));
        out->types = ds_arena_alloc(a, sizeof(char *) * (nc ? nc : 1));
        for (idx_t c = 0; out->names && out->types && c < nc; c++) {
            out->names[c] = ds_arena_strdup(a, duckdb_column_name(res, c));
            duckdb_logical_type t = duckdb_column_logical_type(res, c);
            out->types[c] = type_name(a, t);
            duckdb_destroy_logical_type(&t);
        }
    }
    out->rows = ds_arena_alloc(a, sizeof(char **) * (nr ? nr : 1));
    for (idx_t i = 0; out->rows && i < nr; i++) {
        const char **row = ds_arena_alloc(a, sizeof(char *) * (nc ? nc : 1));
        if (!row)
            break;
        for (idx_t c = 0; c < nc; c++) {
            char *v = ds_ddb_cell(res, c, i);
            row[c] = v ? ds_arena_strdup(a, v) : NULL;
            free(v);
        }
        out->rows[i] = row;
    }
    out->n_rows = (size_t)nr;
    if (ds_arena_failed(a))
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the query's result");
    return DS_OK;
}

/*
 * Values as text without a second statement. DuckDB's C API has no call
 * that casts a vector, so a SELECT whose columns all have a type below runs
 * as the user's own prepared statement, streamed, and its values become text
 * here, the way CAST(... AS VARCHAR) writes them (test_sandbox compares the
 * two for each type). Any other type (floating point, dates, nested, ...)
 * keeps the wrapping statement (capped_select), which costs a second
 * prepare of the user's statement (0.3 to 0.5 ms for a small aggregate over
 * an 11-column table, about what the first one costs) and binds everything
 * in it again, storage scans included.
 */
static bool text_here(duckdb_logical_type t)
{
    switch (duckdb_get_type_id(t)) {
    case DUCKDB_TYPE_BOOLEAN:
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_DECIMAL:
    case DUCKDB_TYPE_VARCHAR:
        return true;
    default:
        return false;
    }
}

/* Writes m in decimal, NUL-terminated, to end at end (40 bytes suffice); returns where the digits start. */
static char *u128_text(unsigned __int128 m, char *end)
{
    *--end = '\0';
    do {
        *--end = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    return end;
}

/*
 * A signed integer (up to 128 bits) scaled by 10^-scale, as DuckDB writes a
 * DECIMAL(width, scale) or (scale 0) an integer: exactly scale fraction
 * digits, and no integral digit at all when width == scale ("-.50").
 */
static char *scaled_text(ds_arena_t *a, __int128 v, uint8_t width, uint8_t scale)
{
    char digits[48], out[56];
    unsigned __int128 m = v < 0 ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    char *d = u128_text(m, digits + sizeof(digits));
    size_t n = strlen(d), o = 0;
    if (v < 0)
        out[o++] = '-';
    if (scale == 0) {
        memcpy(out + o, d, n + 1);
        return ds_arena_strdup(a, out);
    }
    if (n <= scale) {
        if (width > scale)
            out[o++] = '0';
        out[o++] = '.';
        for (size_t i = n; i < scale; i++)
            out[o++] = '0';
        memcpy(out + o, d, n + 1);
    } else {
        memcpy(out + o, d, n - scale);
        o += n - scale;
        out[o++] = '.';
        memcpy(out + o, d + n - scale, scale + 1);
    }
    return ds_arena_strdup(a, out);
}

/* Row i of vector v (a column of logical type t, text_here(t)) as text in a; NULL for SQL NULL or out of memory. */
static const char *cell_text(ds_arena_t *a, duckdb_vector v, duckdb_logical_type t, idx_t i)
{
    uint64_t *valid = duckdb_vector_get_validity(v);
    if (valid && !duckdb_validity_row_is_valid(valid, i))
        return NULL;
    void *data = duckdb_vector_get_data(v);
    duckdb_type id = duckdb_get_type_id(t);
    uint8_t width = 0, scale = 0;
    if (id == DUCKDB_TYPE_DECIMAL) {
        width = duckdb_decimal_width(t);
        scale = duckdb_decimal_scale(t);
        id = duckdb_decimal_internal_type(t);
    }
    switch (id) {
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t *s = (duckdb_string_t *)data + i;
        return ds_arena_strndup(a, duckdb_string_t_data(s), duckdb_string_t_length(*s));
    }
    case DUCKDB_TYPE_BOOLEAN:
        return ((bool *)data)[i] ? "true" : "false";
    case DUCKDB_TYPE_TINYINT:
        return scaled_text(a, ((int8_t *)data)[i], width, scale);
    case DUCKDB_TYPE_SMALLINT:
        return scaled_text(a, ((int16_t *)data)[i], width, scale);
    case DUCKDB_TYPE_INTEGER:
        return scaled_text(a, ((int32_t *)data)[i], width, scale);
    case DUCKDB_TYPE_BIGINT:
        return scaled_text(a, ((int64_t *)data)[i], width, scale);
    case DUCKDB_TYPE_UTINYINT:
        return scaled_text(a, ((uint8_t *)data)[i], 0, 0);
    case DUCKDB_TYPE_USMALLINT:
        return scaled_text(a, ((uint16_t *)data)[i], 0, 0);
    case DUCKDB_TYPE_UINTEGER:
        return scaled_text(a, ((uint32_t *)data)[i], 0, 0);
    case DUCKDB_TYPE_UBIGINT:
        return scaled_text(a, ((uint64_t *)data)[i], 0, 0);
    case DUCKDB_TYPE_HUGEINT: {
        duckdb_hugeint h = ((duckdb_hugeint *)data)[i];
        unsigned __int128 u = ((unsigned __int128)(uint64_t)h.upper << 64) | h.lower;
        return scaled_text(a, (__int128)u, width, scale);
    }
    case DUCKDB_TYPE_UHUGEINT: {
        duckdb_uhugeint h = ((duckdb_uhugeint *)data)[i];
        char buf[48];
        return ds_arena_strdup(a, u128_text(((unsigned __int128)h.upper << 64) | h.lower, buf + sizeof(buf)));
    }
    default:
        return NULL; /* not reached: text_here(t) */
    }
}

/*
 * Reads a streamed result of the user's own statement: names and types are
 * already in out; at most cap rows are kept, one more row sets the truncated
 * flag, and the statement stops there (the result is destroyed by the caller).
 */
static ds_status_t read_stream(run_t *r, ds_arena_t *a, duckdb_result *res, int64_t cap, ds_sandbox_result_t *out,
                               ds_err_t *err)
{
    idx_t nc = duckdb_column_count(res);
    duckdb_logical_type *types = calloc(nc ? nc : 1, sizeof(*types));
    size_t n_alloc = 0;
    ds_status_t st = DS_OK;
    if (!types)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the query's result");
    for (idx_t c = 0; c < nc; c++)
        types[c] = duckdb_column_logical_type(res, c);
    out->n_rows = 0;
    out->rows = NULL;
    duckdb_data_chunk ch;
    while (st == DS_OK && !out->truncated && (ch = duckdb_fetch_chunk(*res)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(ch);
        for (idx_t i = 0; i < n; i++) {
            if ((int64_t)out->n_rows >= cap) {
                out->truncated = true;
                break;
            }
            if (out->n_rows == n_alloc) {
                size_t grow = n_alloc ? n_alloc * 2 : 64;
                const char ***rows = ds_arena_alloc(a, sizeof(char **) * grow);
                if (!rows) {
                    st = ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the query's result");
                    break;
                }
                if (n_alloc)
                    memcpy(rows, out->rows, sizeof(char **) * n_alloc);
                out->rows = rows;
                n_alloc = grow;
            }
            const char **row = ds_arena_alloc(a, sizeof(char *) * (nc ? nc : 1));
            if (!row) {
                st = ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the query's result");
                break;
            }
            for (idx_t c = 0; c < nc; c++)
                row[c] = cell_text(a, duckdb_data_chunk_get_vector(ch, c), types[c], i);
            out->rows[out->n_rows++] = row;
        }
        duckdb_destroy_data_chunk(&ch);
    }
    if (st == DS_OK && !out->truncated && duckdb_result_error(res))
        st = run_error(r, duckdb_result_error(res), err);
    if (st == DS_OK && ds_arena_failed(a))
        st = ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the query's result");
    for (idx_t c = 0; c < nc; c++)
        duckdb_destroy_logical_type(&types[c]);
    free(types);
    return st;
}

/* The user's SELECT as a subquery whose columns are text, capped at cap+1 rows (to see a cut). */
static void capped_select(ds_buf_t *b, const char *sql, size_t len, int64_t cap)
{
    while (len > 0 && (sql[len - 1] == ';' || sql[len - 1] == ' ' || sql[len - 1] == '\n' || sql[len - 1] == '\t' ||
                       sql[len - 1] == '\r'))
        len--;
    ds_buf_puts(b, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM (\n");
    ds_buf_append(b, sql, len);
    ds_buf_printf(b, "\n) AS \"__user_query\" LIMIT %lld", (long long)cap + 1);
}

ds_status_t ds_sandbox_query(ds_sandbox_t *sb, ds_arena_t *arena, const ds_sandbox_query_t *q,
                             ds_sandbox_result_t *out, ds_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!q->sql || !*q->sql)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "sql", "field \"sql\" must be a non-empty SQL statement");
    run_t r;
    bool hooked;
    int64_t cap = q->max_rows > 0 && q->max_rows < limits.max_rows ? q->max_rows : limits.max_rows;
    ds_status_t st = run_begin(&r, sb, q, &hooked, err);
    if (r.conn == NULL)
        return st;
    duckdb_extracted_statements ex = NULL;
    duckdb_prepared_statement ps = NULL;
    duckdb_result res;
    bool have_res = false, streamed = false;
    idx_t n = 0;
    if (st == DS_OK) {
        n = duckdb_extract_statements(r.conn, q->sql, &ex);
        if (n == 0) {
            const char *e = duckdb_extract_statements_error(ex);
            st = e ? run_error(&r, e, err)
                   : ds_err_set(err, DS_QUERY_FAILED, "the SQL text holds no statement");
        } else if (n > 1 && q->mode != DS_SANDBOX_SERVICE) {
            st = ds_err_set(err, DS_QUERY_FAILED,
                            "a query must be exactly one SQL statement; this text holds %llu (send them one by one)",
                            (unsigned long long)n);
        }
    }
    for (idx_t i = 0; st == DS_OK && i < n; i++) {
        if (duckdb_prepare_extracted_statement(r.conn, ex, i, &ps) == DuckDBError) {
            st = run_error(&r, duckdb_prepare_error(ps), err);
            break;
        }
        duckdb_statement_type t = duckdb_prepared_statement_type(ps);
        if (!stmt_allowed(q->mode, t)) {
            st = ds_err_set(err, DS_QUERY_FAILED, "%s statements are not allowed %s", stmt_name(t),
                            q->mode == DS_SANDBOX_READ_ONLY ? "here: this query is read-only (SELECT only)"
                                                            : "in a workspace");
            break;
        }
        if (q->mode != DS_SANDBOX_SERVICE && t == DUCKDB_STATEMENT_TYPE_SELECT) {
            /* Names and types as the user's statement has them; values as text (text_here), capped. */
            idx_t nc = duckdb_prepared_statement_column_count(ps);
            out->n_columns = (size_t)nc;
            out->names = ds_arena_alloc(arena, sizeof(char *) * (nc ? nc : 1));
            out->types = ds_arena_alloc(arena, sizeof(char *) * (nc ? nc : 1));
            streamed = true;
            for (idx_t c = 0; out->names && out->types && c < nc; c++) {
                /* DuckDB returns a copy of the name (strdup) that the caller frees. */
                const char *name = duckdb_prepared_statement_column_name(ps, c);
                out->names[c] = ds_arena_strdup(arena, name);
                duckdb_free((void *)name);
                duckdb_logical_type lt = duckdb_prepared_statement_column_logical_type(ps, c);
                out->types[c] = type_name(arena, lt);
                streamed = streamed && text_here(lt);
                duckdb_destroy_logical_type(&lt);
            }
        }
        if (!streamed && q->mode != DS_SANDBOX_SERVICE && t == DUCKDB_STATEMENT_TYPE_SELECT) {
            duckdb_destroy_prepare(&ps);
            ds_buf_t b = {0};
            capped_select(&b, q->sql, strlen(q->sql), cap);
            const char *text = ds_buf_cstr(&b);
            duckdb_state s = text ? duckdb_prepare(r.conn, text, &ps) : DuckDBError;
            ds_buf_free(&b);
            if (!text) {
                st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
                break;
            }
            if (s == DuckDBError) {
                st = run_error(&r, duckdb_prepare_error(ps), err);
                break;
            }
        }
        /*
         * Once storage catalogs are attached, a user's statement that may
         * write runs in a transaction that may write the workspace's own
         * database only (begin_guarded).
         */
        bool guarded = q->mode == DS_SANDBOX_USER && t != DUCKDB_STATEMENT_TYPE_SELECT &&
                       t != DUCKDB_STATEMENT_TYPE_EXPLAIN && has_foreign_catalogs(r.conn);
        if (guarded && (st = begin_guarded(r.conn, r.conn_id, err)) != DS_OK)
            break;
        if (have_res)
            duckdb_destroy_result(&res);
        have_res = true;
        duckdb_state xs = streamed ? duckdb_execute_prepared_streaming(ps, &res) : duckdb_execute_prepared(ps, &res);
        if (xs == DuckDBError) {
            const char *msg = duckdb_result_error(&res);
            if (guarded && read_only_error(msg))
                st = ds_err_set(err, DS_QUERY_FAILED, READ_ONLY_MESSAGE);
            else
                st = run_error(&r, msg, err);
            if (guarded) {
                ds_err_t ignored = {0};
                ds_ddb_exec(r.conn, &ignored, "ROLLBACK");
            }
            break;
        }
        if (guarded) {
            ds_err_t e = {0};
            if (ds_ddb_exec(r.conn, &e, "COMMIT") != DS_OK) {
                ds_err_t ignored = {0};
                ds_ddb_exec(r.conn, &ignored, "ROLLBACK");
                st = ds_err_set(err, DS_QUERY_FAILED, "the statement could not be committed: %s", e.message);
                break;
            }
        }
        duckdb_destroy_prepare(&ps);
        ps = NULL;
        duckdb_statement_type rt = duckdb_result_statement_type(res);
        if (rt == DUCKDB_STATEMENT_TYPE_INSERT || rt == DUCKDB_STATEMENT_TYPE_UPDATE ||
            rt == DUCKDB_STATEMENT_TYPE_DELETE || rt == DUCKDB_STATEMENT_TYPE_CREATE)
            out->rows_affected = duckdb_column_count(&res) == 1 && duckdb_row_count(&res) == 1 &&
                                          strcmp(duckdb_column_name(&res, 0), "Count") == 0
                                      ? ds_ddb_int(&res, 0, 0)
                                      : (int64_t)duckdb_rows_changed(&res);
    }
    if (st == DS_OK && have_res)
        st = streamed ? read_stream(&r, arena, &res, cap, out, err) : read_result(arena, &res, cap, out, err);
    if (have_res)
        duckdb_destroy_result(&res);
    if (ps)
        duckdb_destroy_prepare(&ps);
    if (ex)
        duckdb_destroy_extracted(&ex);
    run_end(&r, hooked);
    pthread_mutex_lock(&lock);
    sb->last_used = ++use_clock;
    pthread_mutex_unlock(&lock);
    return st;
}

/* s[0..n) (UTF-8, as DuckDB's VARCHAR always is) as a JSON string. */
static void json_value(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void csv_value(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

ds_status_t ds_sandbox_query_file(ds_sandbox_t *sb, ds_arena_t *arena, const ds_sandbox_query_t *q,
                                  ds_sandbox_lines_t format, const char *path, ds_sandbox_result_t *out, ds_err_t *err)
{
    memset(out, 0, sizeof(*out));
    run_t r;
    bool hooked;
    ds_status_t st = run_begin(&r, sb, q, &hooked, err);
    if (r.conn == NULL)
        return st;
    duckdb_prepared_statement ps = NULL;
    duckdb_result res;
    bool have_res = false;
    FILE *f = NULL;
    /* A user's text: one statement, a SELECT; the trailing semicolons go (it becomes a subquery). */
    size_t len = strlen(q->sql);
    if (st == DS_OK && q->mode != DS_SANDBOX_SERVICE) {
        duckdb_extracted_statements ex = NULL;
        idx_t n = duckdb_extract_statements(r.conn, q->sql, &ex);
        if (n == 0) {
            const char *e = duckdb_extract_statements_error(ex);
            st = e ? run_error(&r, e, err) : ds_err_set(err, DS_QUERY_FAILED, "the SQL text holds no statement");
        } else if (n > 1) {
            st = ds_err_set(err, DS_QUERY_FAILED,
                            "a query must be exactly one SQL statement; this text holds %llu (send them one by one)",
                            (unsigned long long)n);
        } else if (duckdb_prepare_extracted_statement(r.conn, ex, 0, &ps) == DuckDBError) {
            st = run_error(&r, duckdb_prepare_error(ps), err);
        } else if (duckdb_prepared_statement_type(ps) != DUCKDB_STATEMENT_TYPE_SELECT) {
            st = ds_err_set(err, DS_QUERY_FAILED, "only a SELECT can be answered as a file of rows; this is a %s statement",
                            stmt_name(duckdb_prepared_statement_type(ps)));
        }
        if (ps)
            duckdb_destroy_prepare(&ps);
        ps = NULL;
        if (ex)
            duckdb_destroy_extracted(&ex);
        while (len > 0 && strchr("; \t\r\n", q->sql[len - 1]))
            len--;
    }
    if (st == DS_OK && duckdb_prepare(r.conn, q->sql, &ps) == DuckDBError)
        st = run_error(&r, duckdb_prepare_error(ps), err);
    if (st == DS_OK) {
        idx_t nc = duckdb_prepared_statement_column_count(ps);
        out->n_columns = (size_t)nc;
        out->names = ds_arena_alloc(arena, sizeof(char *) * (nc ? nc : 1));
        out->types = ds_arena_alloc(arena, sizeof(char *) * (nc ? nc : 1));
        for (idx_t c = 0; out->names && out->types && c < nc; c++) {
            const char *name = duckdb_prepared_statement_column_name(ps, c); /* a copy, freed here */
            out->names[c] = ds_arena_strdup(arena, name);
            duckdb_free((void *)name);
            duckdb_logical_type lt = duckdb_prepared_statement_column_logical_type(ps, c);
            out->types[c] = type_name(arena, lt);
            duckdb_destroy_logical_type(&lt);
        }
        duckdb_destroy_prepare(&ps);
        ps = NULL;
        if (ds_arena_failed(arena))
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    }
    if (st == DS_OK) {
        ds_buf_t b = {0};
        ds_buf_puts(&b, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM (\n");
        ds_buf_append(&b, q->sql, len);
        ds_buf_puts(&b, "\n) AS \"__rows\"");
        const char *text = ds_buf_cstr(&b);
        if (!text)
            st = ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        else if (duckdb_prepare(r.conn, text, &ps) == DuckDBError)
            st = run_error(&r, duckdb_prepare_error(ps), err);
        ds_buf_free(&b);
    }
    if (st == DS_OK) {
        have_res = true;
        if (duckdb_execute_prepared(ps, &res) == DuckDBError)
            st = run_error(&r, duckdb_result_error(&res), err);
    }
    if (st == DS_OK && !(f = fopen(path, "wx")))
        st = ds_err_set(err, DS_UNAVAILABLE, "cannot write the workspace table's rows: %s", strerror(errno));
    if (st == DS_OK) {
        if (format == DS_SANDBOX_JSONL) {
            fputs("{\"columns\":[", f);
            for (size_t c = 0; c < out->n_columns; c++) {
                fputs(c ? ",{\"name\":" : "{\"name\":", f);
                json_value(f, out->names[c], strlen(out->names[c]));
                fputs(",\"type\":", f);
                json_value(f, out->types[c], strlen(out->types[c]));
                fputc('}', f);
            }
            fputs("]}\n", f);
        } else {
            for (size_t c = 0; c < out->n_columns; c++) {
                if (c)
                    fputc(',', f);
                csv_value(f, out->names[c], strlen(out->names[c]));
            }
            fputc('\n', f);
        }
        duckdb_data_chunk ch;
        while ((ch = duckdb_fetch_chunk(res)) != NULL) {
            idx_t n = duckdb_data_chunk_get_size(ch);
            idx_t nc = duckdb_data_chunk_get_column_count(ch);
            bool jsonl = format == DS_SANDBOX_JSONL;
            for (idx_t i = 0; i < n; i++) {
                if (jsonl)
                    fputc('[', f);
                for (idx_t c = 0; c < nc; c++) {
                    duckdb_vector v = duckdb_data_chunk_get_vector(ch, c);
                    uint64_t *valid = duckdb_vector_get_validity(v);
                    if (c)
                        fputc(',', f);
                    if (valid && !duckdb_validity_row_is_valid(valid, i)) {
                        if (jsonl)
                            fputs("null", f);
                        continue;
                    }
                    duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + i;
                    (jsonl ? json_value : csv_value)(f, duckdb_string_t_data(s), duckdb_string_t_length(*s));
                }
                fputs(jsonl ? "]\n" : "\n", f);
            }
            out->n_rows += (size_t)n;
            duckdb_destroy_data_chunk(&ch);
        }
        if (ferror(f) | (fclose(f) != 0))
            st = ds_err_set(err, DS_INSUFFICIENT_STORAGE, "cannot write the workspace table's rows: %s",
                            strerror(errno));
        f = NULL;
    }
    if (have_res)
        duckdb_destroy_result(&res);
    if (ps)
        duckdb_destroy_prepare(&ps);
    run_end(&r, hooked);
    return st;
}
