/*
 * service.c - the service core: start/stop, authentication, project opening,
 * write slots, and the startup recovery pass.
 *
 * Recovery (at start, before any request) never deletes stored data on its
 * own judgement. A catalog that holds no project while project files exist
 * (lost, or replaced by an empty one) is rebuilt from the copy of its record
 * that every project file carries; when a copy is missing or unreadable,
 * startup stops and names the files and the way out. Projects left "creating"
 * or "deleting" by a crash, and stored projects no catalog row names, are
 * moved to <data>/quarantine/ (core/quarantine.h) and their rows dropped.
 * After it, the catalog and the files agree. An unreadable catalog stops
 * startup in ds_catalog_open, before anything is touched.
 *
 * The copy: written by the backend's project_meta_put right after the project
 * is created (before it is "ready") and before every rename. The catalog wins
 * whenever both exist; the copy is read only to rebuild a lost catalog.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>

#include "../../backends/duckdb/duckdb_backend.h"
#include "catalog/apikeys.h"
#include "catalog/idem.h"
#include "catalog/shares.h"
#include "catalog/workspaces.h"
#include "cmd/files.h"
#include "cmd/snapshot.h"
#include "cmd/internal.h"
#include "core/buf.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/memtrim.h"
#include "core/quarantine.h"
#include "ws/sandbox.h"

static ds_config_t config;
/*
 * The admin key's hash, and after a rotation the previous one until
 * admin_prev_until; admin_lock guards the three (a rotation runs while
 * requests authenticate).
 */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;
static char admin_hash[DS_KEY_HASH_HEX];
static char admin_prev_hash[DS_KEY_HASH_HEX];
static int64_t admin_prev_until;
static ds_wq_t *queues;
static double queue_max_wait; /* seconds; 0: none (config queue_max_wait) */
static char *data_dir_abs; /* config.data_dir points here */

int64_t ds_now(void) { return (int64_t)time(NULL); }
const ds_config_t *ds_service_config(void) { return &config; }

static ds_status_t write_admin_key_file(const char *path, const char *key, ds_err_t *err);

/* Loads or creates the admin key; only its hash stays in memory. */
static ds_status_t setup_admin_key(const ds_config_t *cfg, ds_err_t *err)
{
    char path[4200], key[DS_KEY_MAX];
    if (cfg->admin_key && *cfg->admin_key) {
        ds_key_hash(cfg->admin_key, admin_hash);
        return DS_OK;
    }
    snprintf(path, sizeof(path), "%s/admin.key", cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        bool ok = fgets(key, sizeof(key), f) != NULL;
        fclose(f);
        key[strcspn(key, "\r\n")] = '\0';
        if (!ok || !*key)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "admin key file %s is empty", path);
        ds_key_hash(key, admin_hash);
        ds_log(DS_LOG_INFO, "admin key read from %s", path);
        return DS_OK;
    }
    if (!ds_key_generate("admin", key, sizeof(key)))
        return ds_err_set(err, DS_INTERNAL, "cannot generate an admin key");
    ds_status_t st = write_admin_key_file(path, key, err);
    if (st != DS_OK)
        return st;
    ds_key_hash(key, admin_hash);
    ds_log(DS_LOG_INFO, "generated an admin key into %s (mode 0600)", path);
    return DS_OK;
}

/* Writes key into path (mode 0600) through a synced temporary file and a rename. */
static ds_status_t write_admin_key_file(const char *path, const char *key, ds_err_t *err)
{
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        out = fdopen(fd, "w");
        if (!out)
            close(fd);
    }
    if (!out || fprintf(out, "%s\n", key) < 0 || fflush(out) != 0 || fsync(fileno(out)) != 0) {
        int saved = errno;
        if (out)
            fclose(out);
        if (fd >= 0)
            unlink(tmp);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write admin key file %s: %s", path, strerror(saved));
    }
    if (fclose(out) != 0) {
        int saved = errno;
        unlink(tmp);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write admin key file %s: %s", path, strerror(saved));
    }
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write admin key file %s: %s", path, strerror(saved));
    }
    return DS_OK;
}

/* ---- startup recovery ---- */

#define COPIES_FLAG "project_copies_v1"

ds_status_t ds_service_project_copy_put(ds_backend_t *be, ds_be_call_t *call, const ds_project_rec_t *rec)
{
    if (!be->ops->project_meta_put)
        return DS_OK;
    json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:i}", "format", 1, "id", rec->id, "name", rec->name,
                            "backend", rec->backend, "key_hash", rec->key_hash, "created_at",
                            (json_int_t)rec->created_at, "updated_at", (json_int_t)rec->updated_at,
                            "retention_days", (int)rec->retention_days);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text)
        return ds_err_set(call->err, DS_INTERNAL, "out of memory");
    ds_status_t st = ds_be_project_meta_put(be, call, text);
    free(text);
    return st;
}

/* Parses a copy written by ds_service_project_copy_put into rec (state READY). */
static bool parse_copy(const char *text, const char *id, const char *backend, ds_project_rec_t *rec)
{
    json_t *doc = json_loads(text, 0, NULL);
    const char *jid = NULL, *name = NULL, *jbe = NULL, *hash = NULL;
    json_int_t created = 0, updated = 0;
    int format = 0;
    bool ok = doc && json_unpack(doc, "{s:i, s:s, s:s, s:s, s:s, s:I, s:I}", "format", &format, "id", &jid, "name",
                                 &name, "backend", &jbe, "key_hash", &hash, "created_at", &created, "updated_at",
                                 &updated) == 0;
    ok = ok && format == 1 && strcmp(jid, id) == 0 && strcmp(jbe, backend) == 0 &&
         strlen(hash) == DS_KEY_HASH_HEX - 1 && strlen(name) < sizeof(rec->name);
    if (ok) {
        memset(rec, 0, sizeof(*rec));
        snprintf(rec->id, sizeof(rec->id), "%s", jid);
        snprintf(rec->name, sizeof(rec->name), "%s", name);
        snprintf(rec->backend, sizeof(rec->backend), "%s", jbe);
        snprintf(rec->key_hash, sizeof(rec->key_hash), "%s", hash);
        rec->state = DS_PROJECT_READY;
        rec->created_at = created;
        rec->updated_at = updated;
        /* Copies written before time travel have no retention: the default. */
        json_t *ret = json_object_get(doc, "retention_days");
        rec->retention_days = json_is_integer(ret) && json_integer_value(ret) >= 0 &&
                                      json_integer_value(ret) <= DS_RETENTION_MAX_DAYS
                                  ? (int32_t)json_integer_value(ret)
                                  : DS_RETENTION_DEFAULT_DAYS;
    }
    json_decref(doc);
    return ok;
}

typedef struct {
    ds_arena_t *arena;
    const char **ids;
    size_t n, cap;
    bool failed; /* out of memory: the list is incomplete and must not be acted on */
} id_list_t;

static void collect_id(const char *id, void *ud)
{
    id_list_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const char **bigger = ds_arena_alloc(l->arena, sizeof(char *) * cap);
        if (!bigger) {
            l->failed = true;
            return;
        }
        if (l->n)
            memcpy(bigger, l->ids, sizeof(char *) * l->n);
        l->ids = bigger;
        l->cap = cap;
    }
    char *copy = ds_arena_strdup(l->arena, id);
    if (copy)
        l->ids[l->n++] = copy;
    else
        l->failed = true;
}

/*
 * Takes a project's storage out of service: into the quarantine when the
 * backend can move it there. Without that, a project whose creation never
 * finished, or whose deletion was asked for, is dropped (no acknowledged data
 * can be lost); anything else is left where it is.
 */
static void put_aside(ds_backend_t *be, ds_arena_t *arena, const char *id, const char *reason, const char *why,
                      bool may_drop)
{
    ds_err_t e = {0};
    ds_be_call_t call = {.arena = arena, .err = &e, .project_id = id};
    if (be->ops->project_quarantine) {
        char dir[PATH_MAX];
        bool moved = false;
        const char *what = ds_arena_printf(arena, "the storage of project %s in backend %s (%s)", id, be->ops->name,
                                           why);
        if (ds_quarantine_open(config.data_dir, reason, what, ds_arena_printf(arena, "backend %s", be->ops->name),
                               dir, sizeof(dir), &e) == DS_OK) {
            if (ds_be_project_quarantine(be, &call, dir, &moved) != DS_OK)
                ds_log(DS_LOG_ERROR, "recovery: cannot quarantine project %s: %s", id, e.message);
            ds_quarantine_close(dir, moved, reason, what);
        } else {
            ds_log(DS_LOG_ERROR, "recovery: cannot quarantine project %s: %s", id, e.message);
        }
        return;
    }
    if (!may_drop) {
        ds_log(DS_LOG_WARN, "recovery: backend %s holds project %s (%s); left in place, backend cannot quarantine it",
               be->ops->name, id, why);
        return;
    }
    ds_log(DS_LOG_WARN, "recovery: dropping project %s in backend %s (%s)", id, be->ops->name, why);
    if (ds_be_project_drop(be, &call) != DS_OK)
        ds_log(DS_LOG_ERROR, "recovery: cannot drop project %s: %s", id, e.message);
}

/* Quarantines stored projects of one backend that the catalog does not name. */
static void quarantine_orphans(ds_backend_t *be, void *ud)
{
    ds_arena_t *arena = ud;
    id_list_t l = {.arena = arena};
    ds_err_t e = {0};
    if (!be->ops->project_list_stored)
        return;
    /* Collect first: moving while the backend lists would change what it lists. */
    if (be->ops->project_list_stored(be->self, collect_id, &l, &e) != DS_OK || l.failed) {
        ds_log(DS_LOG_ERROR, "recovery: cannot list projects of backend %s: %s; no orphan is set aside",
               be->ops->name, l.failed ? "out of memory" : e.message);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        ds_project_rec_t rec;
        if (ds_catalog_project_get(l.ids[i], &rec, &e) == DS_OK && strcmp(rec.backend, be->ops->name) == 0)
            continue;
        put_aside(be, arena, l.ids[i], "orphan-project", "no catalog row names it", false);
    }
}

typedef struct {
    ds_arena_t *arena;
    size_t stored, rebuilt;
    ds_buf_t missing;    /* ids without a copy */
    ds_buf_t unreadable; /* "id (reason)" */
    ds_project_rec_t *recs;
    size_t n_recs, cap_recs;
} rebuild_t;

/* Reads the copy of every stored project of one backend into rb->recs. */
static void read_copies(ds_backend_t *be, void *ud)
{
    rebuild_t *rb = ud;
    id_list_t l = {.arena = rb->arena};
    ds_err_t e = {0};
    if (!be->ops->project_list_stored)
        return;
    if (be->ops->project_list_stored(be->self, collect_id, &l, &e) != DS_OK || l.failed) {
        ds_buf_printf(&rb->unreadable, "%sbackend %s (%s)", rb->unreadable.len ? ", " : "", be->ops->name,
                      l.failed ? "out of memory listing its projects" : e.message);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        char *doc = NULL;
        ds_be_call_t call = {.arena = rb->arena, .err = &e, .project_id = l.ids[i]};
        ds_err_clear(&e);
        rb->stored++;
        ds_status_t st = ds_be_project_meta_get(be, &call, &doc);
        if (st == DS_NOT_FOUND || st == DS_UNSUPPORTED) {
            ds_buf_printf(&rb->missing, "%s%s", rb->missing.len ? ", " : "", l.ids[i]);
            continue;
        }
        if (st != DS_OK) {
            ds_buf_printf(&rb->unreadable, "%s%s (%s)", rb->unreadable.len ? ", " : "", l.ids[i], e.message);
            continue;
        }
        if (rb->n_recs == rb->cap_recs) {
            size_t cap = rb->cap_recs ? rb->cap_recs * 2 : 64;
            ds_project_rec_t *bigger = ds_arena_alloc(rb->arena, sizeof(*bigger) * cap);
            if (!bigger)
                return;
            if (rb->n_recs)
                memcpy(bigger, rb->recs, sizeof(*bigger) * rb->n_recs);
            rb->recs = bigger;
            rb->cap_recs = cap;
        }
        if (!parse_copy(doc, l.ids[i], be->ops->name, &rb->recs[rb->n_recs])) {
            ds_buf_printf(&rb->unreadable, "%s%s (its copy of the catalog record is not valid)",
                          rb->unreadable.len ? ", " : "", l.ids[i]);
            continue;
        }
        rb->n_recs++;
    }
}

/*
 * The catalog holds no project while project storage exists (the catalog
 * file was lost, or replaced by an empty one): rebuild it from the copies in
 * the project files. All or nothing: when a project's copy is missing or
 * unreadable, nothing is written and startup stops, naming the projects and
 * the way out. *rebuilt: projects restored (0 when there was nothing to do).
 */
static ds_status_t rebuild_catalog(ds_arena_t *arena, size_t *rebuilt, ds_err_t *err)
{
    rebuild_t rb = {.arena = arena};
    ds_status_t st = DS_OK;
    *rebuilt = 0;
    ds_registry_each(read_copies, &rb);
    if (rb.stored == 0)
        goto out;
    if (rb.missing.len || rb.unreadable.len) {
        st = ds_err_set(err, DS_UNAVAILABLE,
                        "the catalog %s/catalog.duckdb is missing or empty, but %zu project files exist, and it "
                        "cannot be rebuilt from them: %s%s%s%s%s. Nothing was changed or deleted. Way out: restore "
                        "catalog.duckdb from a backup; or move the project files named here out of %s/duckdb "
                        "(keep them: they hold the projects' data) and start again, which rebuilds the catalog from "
                        "the other project files (docs/operations.md, \"Recovery and quarantine\")",
                        config.data_dir, rb.stored, rb.missing.len ? "no copy of the catalog record (written by "
                                                                     "older versions) in project(s) "
                                                                   : "",
                        rb.missing.len ? ds_buf_cstr(&rb.missing) : "",
                        rb.missing.len && rb.unreadable.len ? "; " : "",
                        rb.unreadable.len ? "unreadable project file(s): " : "",
                        rb.unreadable.len ? ds_buf_cstr(&rb.unreadable) : "", config.data_dir);
        goto out;
    }
    for (size_t i = 0; i < rb.n_recs; i++) {
        if ((st = ds_catalog_project_insert(&rb.recs[i], err)) != DS_OK) {
            /* Leave the catalog empty again, so the next start sees the same situation. */
            for (size_t j = 0; j < i; j++) {
                ds_err_t e = {0};
                ds_catalog_project_delete(rb.recs[j].id, &e);
            }
            goto out;
        }
    }
    *rebuilt = rb.n_recs;
out:
    ds_buf_free(&rb.missing);
    ds_buf_free(&rb.unreadable);
    return st;
}

/*
 * Projects created before project files carried a copy of their catalog
 * record get one, once: every READY project without a copy is given one, and
 * when all have one the catalog remembers it (COPIES_FLAG). A project that
 * cannot be opened now is retried at the next start.
 */
static void backfill_copies(ds_arena_t *arena)
{
    ds_project_rec_t *all;
    size_t n, failed = 0, written = 0;
    ds_err_t e = {0};
    if (ds_catalog_flag_get(COPIES_FLAG) || ds_catalog_project_list(arena, &all, &n, &e) != DS_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        ds_backend_t *be = NULL;
        char *doc;
        if (ds_registry_get(all[i].backend, &be, &e) != DS_OK) {
            failed++;
            continue;
        }
        ds_be_call_t call = {.arena = arena, .err = &e, .project_id = all[i].id};
        ds_status_t st = be->ops->project_meta_get ? ds_be_project_meta_get(be, &call, &doc) : DS_OK;
        if (st == DS_NOT_FOUND && (st = ds_service_project_copy_put(be, &call, &all[i])) == DS_OK)
            written++;
        if (st != DS_OK) {
            ds_log(DS_LOG_WARN, "recovery: cannot give project %s a copy of its catalog record: %s", all[i].id,
                   e.message);
            failed++;
        }
        ds_registry_put(be);
    }
    if (written)
        ds_log(DS_LOG_INFO, "recovery: wrote the catalog record of %zu older projects into their project files",
               written);
    if (!failed && ds_catalog_flag_set(COPIES_FLAG, &e) != DS_OK)
        ds_log(DS_LOG_WARN, "recovery: cannot record that every project has its copy: %s", e.message);
}

/*
 * The startup pass, before any request. Never deletes stored data on its own
 * judgement: interrupted creations and deletions and stored projects no
 * catalog row names go to the quarantine. *rebuilt says whether the catalog
 * was rebuilt from the project files.
 */
static ds_status_t recover(bool *rebuilt, ds_err_t *err)
{
    ds_arena_t *arena = ds_arena_create();
    ds_project_rec_t *all;
    size_t n, restored = 0;
    *rebuilt = false;
    if (!arena)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    ds_status_t st = ds_catalog_project_list_all(arena, &all, &n, err);
    if (st == DS_OK && n == 0) {
        st = rebuild_catalog(arena, &restored, err);
        if (st == DS_OK && restored) {
            ds_log(DS_LOG_WARN,
                   "recovery: the catalog held no project while %zu project files exist; rebuilt it from the copies "
                   "in the project files (names, backends, key hashes, times); Storage Files are re-indexed next",
                   restored);
            *rebuilt = true;
        }
    }
    for (size_t i = 0; st == DS_OK && i < n; i++) {
        if (all[i].state == DS_PROJECT_READY)
            continue;
        bool creating = all[i].state == DS_PROJECT_CREATING;
        ds_backend_t *be = NULL;
        ds_err_t e = {0};
        ds_log(DS_LOG_WARN, "recovery: project %s: its %s was interrupted", all[i].id,
               creating ? "creation" : "deletion");
        if (ds_registry_get(all[i].backend, &be, &e) == DS_OK) {
            put_aside(be, arena, all[i].id, creating ? "half-created" : "half-deleted",
                      creating ? "its creation was interrupted; it was never acknowledged"
                               : "its deletion was asked for and interrupted",
                      true);
            ds_registry_put(be);
        }
        if (ds_catalog_project_delete(all[i].id, &e) != DS_OK)
            ds_log(DS_LOG_ERROR, "recovery: cannot delete catalog row of %s: %s", all[i].id, e.message);
    }
    if (st == DS_OK) {
        ds_registry_each(quarantine_orphans, arena);
        backfill_copies(arena);
    }
    ds_arena_destroy(&arena);
    return st;
}

/*
 * A catalog.duckdb.wal without its catalog.duckdb belongs to a catalog that
 * is gone; DuckDB would replay it into a new, empty file. It goes to the
 * quarantine before the catalog is opened.
 */
static ds_status_t set_aside_stray_catalog_wal(const char *data_dir, ds_err_t *err)
{
    char db[PATH_MAX], wal[PATH_MAX + 8];
    struct stat sb;
    snprintf(db, sizeof(db), "%s/catalog.duckdb", data_dir);
    snprintf(wal, sizeof(wal), "%s.wal", db);
    if (stat(db, &sb) == 0 || errno != ENOENT || lstat(wal, &sb) != 0)
        return DS_OK;
    return ds_quarantine_path(data_dir, "stray-catalog-wal", "the write-ahead log of a catalog file that is gone", wal,
                              err);
}

static int64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : (int64_t)4 << 30;
}

ds_status_t ds_service_start(const ds_config_t *cfg, ds_err_t *err)
{
    config = *cfg;
    if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
    /* Everything below works with the absolute path, so paths compare and confine exactly. */
    data_dir_abs = realpath(cfg->data_dir, NULL);
    if (!data_dir_abs)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot resolve data directory %s: %s", cfg->data_dir, strerror(errno));
    config.data_dir = data_dir_abs;
    cfg = &config;
    if (!ds_keys_init())
        return ds_err_set(err, DS_INTERNAL, "libsodium failed to initialize");
    ds_status_t st = setup_admin_key(cfg, err);
    if (st != DS_OK)
        return st;
    queues = ds_wq_create(cfg->queue_depth);
    queue_max_wait = (double)cfg->queue_max_wait;
    if (!queues)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    if ((st = set_aside_stray_catalog_wal(cfg->data_dir, err)) != DS_OK)
        return st;
    st = ds_catalog_open(cfg->data_dir, err);
    if (st == DS_OK)
        st = ds_catalog_apikeys_open(err);
    if (st == DS_OK)
        st = ds_catalog_idem_open(err);
    if (st != DS_OK)
        return st;
    st = ds_registry_init(cfg->data_dir, ds_config_memory_bytes(cfg, physical_memory()), cfg->threads,
                          cfg->max_open_projects, err);
    if (st == DS_OK)
        st = ds_registry_add(ds_be_duckdb_entry, NULL, err);
    if (st == DS_OK)
        st = ds_registry_settings_file(cfg->backend_settings_file, err);
    if (st == DS_OK && cfg->plugin_dir)
        ds_registry_load_dir(cfg->plugin_dir);
    bool rebuilt = false;
    if (st == DS_OK)
        st = recover(&rebuilt, err);
    if (st == DS_OK && rebuilt)
        st = ds_files_rebuild_index(cfg->data_dir, err);
    if (st == DS_OK)
        st = ds_snapshots_start(cfg, err);
    if (st == DS_OK)
        st = ds_files_start(cfg, err);
    if (st == DS_OK)
        st = ds_catalog_ws_init(err);
    if (st == DS_OK)
        st = ds_catalog_shares_init(err);
    if (st == DS_OK) {
        ds_sandbox_limits_t lim = {.memory_limit_bytes = cfg->ws_memory_limit,
                                   .threads = cfg->ws_threads,
                                   .readers = cfg->ws_readers,
                                   .max_open = cfg->ws_max_open,
                                   .max_rows = cfg->ws_max_rows,
                                   .timeout_s = (double)cfg->ws_timeout,
                                   .idle_close_s = (double)cfg->ws_idle_close};
        st = ds_sandbox_start(cfg->data_dir, &lim, err);
    }
    if (st == DS_OK)
        st = ds_history_sweep_start(err);
    if (st == DS_OK)
        st = ds_compact_start(err);
    if (st == DS_OK)
        st = ds_memtrim_start(cfg->memory_trim, err);
    return st;
}

void ds_service_stop(void)
{
    ds_memtrim_stop();
    ds_compact_stop();
    ds_history_sweep_stop();
    ds_sandbox_stop();
    ds_files_stop();
    ds_registry_shutdown();
    ds_catalog_close();
    ds_catalog_apikeys_close();
    ds_wq_destroy(&queues);
    free(data_dir_abs);
    data_dir_abs = NULL;
}

int64_t ds_service_queue_waiting(void) { return queues ? ds_wq_waiting(queues) : 0; }
int64_t ds_service_queue_held(void) { return queues ? ds_wq_active(queues) : 0; }

static void sum_runtime(ds_backend_t *be, void *ud)
{
    ds_be_runtime_stats_t *s = ud, rs = {0};
    if (be->ops->runtime_stats)
        be->ops->runtime_stats(be->self, &rs);
    s->open_projects += rs.open_projects;
    s->open_projects_peak += rs.open_projects_peak;
    s->engine_restarts += rs.engine_restarts;
    s->calls_in_use += rs.calls_in_use;
    s->preview_cache_hits += rs.preview_cache_hits;
    s->preview_cache_misses += rs.preview_cache_misses;
    s->preview_cache_bytes += rs.preview_cache_bytes;
}

void ds_service_runtime(ds_be_runtime_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    ds_registry_each(sum_runtime, out);
}

static void sum_engine_memory(ds_backend_t *be, void *ud)
{
    int64_t *sum = ud, v = be->ops->engine_memory ? be->ops->engine_memory(be->self) : -1;
    if (v > 0)
        *sum += v;
}

int64_t ds_service_engine_memory(void)
{
    int64_t sum = 0;
    ds_registry_each(sum_engine_memory, &sum);
    return sum;
}

int64_t ds_service_open_projects(void)
{
    ds_be_runtime_stats_t s;
    ds_service_runtime(&s);
    return s.open_projects;
}

int64_t ds_service_open_projects_peak(void)
{
    ds_be_runtime_stats_t s;
    ds_service_runtime(&s);
    return s.open_projects_peak;
}

int64_t ds_service_engine_restarts(void)
{
    ds_be_runtime_stats_t s;
    ds_service_runtime(&s);
    return s.engine_restarts;
}

void ds_service_holds(ds_holds_t *out)
{
    ds_be_runtime_stats_t s;
    ds_service_runtime(&s);
    out->slots = ds_service_queue_held();
    out->waiting = ds_service_queue_waiting();
    out->pins = ds_cmd_project_pins();
    out->calls = s.calls_in_use;
}

typedef struct {
    ds_status_t st;
    ds_err_t *err;
} health_t;

static void check_health(ds_backend_t *be, void *ud)
{
    health_t *h = ud;
    if (h->st != DS_OK || !be->ops->health)
        return;
    h->st = be->ops->health(be->self, h->err);
}

ds_status_t ds_service_ready(ds_err_t *err)
{
    if (!ds_catalog_ready())
        return ds_err_set(err, DS_UNAVAILABLE, "catalog is not open");
    /*
     * Ready means new projects can be served: the catalog and the default
     * backend answer. A plugin backend that is down fails only its own
     * projects (503) and shows in GET /backends; it does not take the whole
     * service out of rotation.
     */
    ds_backend_t *be = NULL;
    ds_status_t st = ds_registry_get(DS_DEFAULT_BACKEND, &be, err);
    if (st != DS_OK)
        return ds_err_set(err, DS_UNAVAILABLE, "the default backend %s is not registered", DS_DEFAULT_BACKEND);
    health_t h = {DS_OK, err};
    check_health(be, &h);
    ds_registry_put(be);
    return h.st;
}

/* ---- authentication ---- */

static ds_status_t need_key(ds_ctx_t *ctx)
{
    if (!ctx->key || !*ctx->key)
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED,
                          "missing API key: send \"Authorization: Bearer <key>\" or \"X-StorageApi-Token: <key>\"");
    return DS_OK;
}

static bool is_admin_key(const char *key)
{
    pthread_mutex_lock(&admin_lock);
    /* Both hashes are compared whatever the first says: timing tells nothing. */
    bool cur = ds_key_matches(key, admin_hash);
    bool prev = admin_prev_until > ds_now() && ds_key_matches(key, admin_prev_hash);
    pthread_mutex_unlock(&admin_lock);
    return cur || prev;
}

/*
 * Who ctx's key is: sets ctx->scope (and for project keys scope_branch and
 * key_id) and, for a project key, its project's id in owner. False when the
 * key matches nothing valid. The only place a presented key is resolved.
 */
static bool identify(ds_ctx_t *ctx, char owner[DS_PROJECT_ID_MAX + 1])
{
    ds_apikey_rec_t k;
    owner[0] = '\0';
    ctx->scope = DS_CALLER_NONE;
    ctx->scope_branch = ctx->key_id = NULL;
    if (!ctx->key || !*ctx->key)
        return false;
    if (is_admin_key(ctx->key)) {
        ctx->scope = DS_CALLER_ADMIN;
        return true;
    }
    if (ds_catalog_project_by_key(ctx->key, owner)) {
        ctx->scope = DS_CALLER_PROJECT;
        ctx->key_id = "main";
        return true;
    }
    if (!ds_catalog_apikey_find(ctx->key, ds_now(), &k))
        return false;
    ds_project_rec_t rec;
    ds_err_t e = {0};
    if (ds_catalog_project_get(k.project_id, &rec, &e) != DS_OK || rec.state != DS_PROJECT_READY)
        return false;
    snprintf(owner, DS_PROJECT_ID_MAX + 1, "%s", k.project_id);
    ctx->scope = k.scope == DS_KEY_SCOPE_READ     ? DS_CALLER_READ
                 : k.scope == DS_KEY_SCOPE_BRANCH ? DS_CALLER_BRANCH
                                                  : DS_CALLER_PROJECT;
    ctx->scope_branch = ds_arena_strdup(ctx->arena, k.branch);
    ctx->key_id = ds_arena_strdup(ctx->arena, k.id);
    if (!ctx->scope_branch || !ctx->key_id) {
        /* Without its branch a branch key must not pass as anything. */
        ctx->scope = DS_CALLER_NONE;
        return false;
    }
    return true;
}

ds_status_t ds_cmd_require_admin(ds_ctx_t *ctx)
{
    ds_status_t st = need_key(ctx);
    if (st != DS_OK)
        return st;
    char id[DS_PROJECT_ID_MAX + 1];
    if (!identify(ctx, id))
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
    if (ctx->scope == DS_CALLER_ADMIN)
        return DS_OK;
    return ds_err_set(&ctx->err, DS_PERMISSION_DENIED, "this operation needs the admin key; a project key was given");
}

ds_status_t ds_cmd_authenticate(ds_ctx_t *ctx, bool *admin, char owner[DS_PROJECT_ID_MAX + 1])
{
    ds_status_t st = need_key(ctx);
    owner[0] = '\0';
    *admin = false;
    if (st != DS_OK)
        return st;
    if (!identify(ctx, owner))
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
    *admin = ctx->scope == DS_CALLER_ADMIN;
    return DS_OK;
}

bool ds_cmd_key_valid(ds_arena_t *arena, const char *key)
{
    ds_ctx_t probe = {.arena = arena, .key = key};
    bool admin;
    char owner[DS_PROJECT_ID_MAX + 1];
    return key && *key && ds_cmd_authenticate(&probe, &admin, owner) == DS_OK;
}

/* True when branch names the main branch (NULL, "", "default" or "main"). */
static bool is_main_branch(const char *branch)
{
    return !branch || !*branch || strcmp(branch, "default") == 0 || strcmp(branch, "main") == 0;
}

ds_status_t ds_cmd_require_write(ds_ctx_t *ctx)
{
    switch ((ds_caller_t)ctx->scope) {
    case DS_CALLER_ADMIN:
    case DS_CALLER_PROJECT:
        return DS_OK;
    case DS_CALLER_READ:
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "API key \"%s\" is read-only (scope \"read\"): it cannot change anything",
                          ctx->key_id ? ctx->key_id : "");
    case DS_CALLER_BRANCH:
        if (!is_main_branch(ctx->branch) && ctx->scope_branch && strcmp(ctx->branch, ctx->scope_branch) == 0)
            return DS_OK;
        if (is_main_branch(ctx->branch))
            return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                              "API key \"%s\" may write only in branch \"%s\"; this request writes the main branch",
                              ctx->key_id ? ctx->key_id : "", ctx->scope_branch ? ctx->scope_branch : "");
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "API key \"%s\" may write only in branch \"%s\"; this request writes branch \"%s\"",
                          ctx->key_id ? ctx->key_id : "", ctx->scope_branch ? ctx->scope_branch : "", ctx->branch);
    case DS_CALLER_WORKSPACE:
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "workspace credentials can only load into and query their own workspace");
    case DS_CALLER_NONE:
        break;
    }
    return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "a write needs an authenticated API key");
}

ds_status_t ds_cmd_require_project_admin(ds_ctx_t *ctx, const char *what)
{
    if (ctx->scope == DS_CALLER_ADMIN || ctx->scope == DS_CALLER_PROJECT)
        return DS_OK;
    if (ctx->scope == DS_CALLER_NONE)
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
    return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                      "%s needs the admin key or a project key of scope \"admin\"; key \"%s\" has scope \"%s\"",
                      what, ctx->key_id ? ctx->key_id : "", ctx->scope == DS_CALLER_READ ? "read" : "branch");
}

ds_status_t ds_cmd_admin_key_rotate(ds_ctx_t *ctx, int64_t grace_seconds, const char **key)
{
    char fresh[DS_KEY_MAX], path[PATH_MAX + 16], hash[DS_KEY_HASH_HEX];
    ds_status_t st = ds_cmd_require_admin(ctx);
    if (st != DS_OK)
        return st;
    if (grace_seconds < 0 || grace_seconds > 30 * 86400)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "grace_seconds",
                                "grace_seconds must be between 0 and 2592000 (30 days), got %lld",
                                (long long)grace_seconds);
    if (config.admin_key && *config.admin_key)
        return ds_err_set(&ctx->err, DS_CONFLICT,
                          "the admin key is set by DUCKSTORE_ADMIN_KEY (or --admin-key), which a restart would bring "
                          "back: change that setting instead, or unset it to keep the key in <data>/admin.key, "
                          "which this call rotates");
    if (!ds_key_generate("admin", fresh, sizeof(fresh)))
        return ds_err_set(&ctx->err, DS_INTERNAL, "cannot generate an admin key");
    snprintf(path, sizeof(path), "%s/admin.key", config.data_dir);
    /* The file first: a crash after it leaves the new key in force, never a key nobody holds. */
    pthread_mutex_lock(&admin_lock);
    st = write_admin_key_file(path, fresh, &ctx->err);
    if (st == DS_OK) {
        ds_key_hash(fresh, hash);
        memcpy(admin_prev_hash, admin_hash, sizeof(admin_hash));
        admin_prev_until = ds_now() + grace_seconds;
        memcpy(admin_hash, hash, sizeof(hash));
    }
    pthread_mutex_unlock(&admin_lock);
    if (st == DS_OK && !(*key = ds_arena_strdup(ctx->arena, fresh)))
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ctx->answer_has_secret = true;
    if (st == DS_OK)
        ds_log(DS_LOG_WARN, "the admin key was rotated; the previous one stays valid for %lld seconds",
               (long long)grace_seconds);
    sodium_memzero(fresh, sizeof(fresh));
    return st;
}

static void put_backend(void *p) { ds_registry_put(p); }

/* A project key opens only its own project (the admin key every one). */
static ds_status_t check_project_key(ds_ctx_t *ctx, const char *id)
{
    char owner[DS_PROJECT_ID_MAX + 1];
    if (!identify(ctx, owner))
        return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid API key");
    if (ctx->scope == DS_CALLER_ADMIN)
        return DS_OK;
    if (strcmp(owner, id) != 0)
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED, "this API key does not give access to project \"%s\"", id);
    return DS_OK;
}

/*
 * Project ids are unique regardless of case (the engine's names and some file
 * systems ignore it): every command works with the stored spelling, so the
 * lifecycle entry, the key check, the file path and the engine's name are one
 * per project whatever spelling a request uses. Unknown ids stay as given.
 */
const char *ds_cmd_project_spelling(ds_ctx_t *ctx, const char *id)
{
    char stored[DS_PROJECT_ID_MAX + 1];
    return ds_arena_strdup(ctx->arena, ds_catalog_project_spelling(id, stored, sizeof(stored)) ? stored : id);
}

/* trusted: the caller authenticated the request itself (workspace credentials), no API key is checked. */
static ds_status_t open_project(ds_ctx_t *ctx, const char **idp, ds_proj_t *out, bool trusted)
{
    const char *id = *idp;
    out->branch = out->branch_prefix = NULL;
    out->linked_project = out->linked_bucket = NULL;
    ds_status_t st = ds_ident_check_project(id, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!trusted && (st = need_key(ctx)) != DS_OK)
        return st;
    if (!(id = ds_cmd_project_spelling(ctx, id)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ctx->project_id = *idp = id;
    /*
     * Pinned first: the key and the record below are then of the one
     * incarnation no delete can remove meanwhile. A project being created or
     * deleted is 404, but only to a key that may know of it.
     */
    if ((st = ds_cmd_project_pin(ctx, id)) != DS_OK) {
        ds_err_t pin_err = ctx->err;
        if (!trusted && check_project_key(ctx, id) != DS_OK)
            return ctx->err.status;
        ctx->err = pin_err;
        return st;
    }
    if (!trusted && (st = check_project_key(ctx, id)) != DS_OK)
        return st;
    if ((st = ds_catalog_project_get(id, &out->rec, &ctx->err)) != DS_OK)
        return st;
    if (out->rec.state != DS_PROJECT_READY)
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", id);
    if ((st = ds_registry_get(out->rec.backend, &out->be, &ctx->err)) != DS_OK)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "backend \"%s\" of project \"%s\" is not loaded", out->rec.backend,
                          id);
    if (ds_arena_on_destroy(ctx->arena, put_backend, out->be) != 0) {
        /* The hook ran at once: the backend is put back and must not be used. */
        out->be = NULL;
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    }
    out->call = (ds_be_call_t){.arena = ctx->arena,
                               .err = &ctx->err,
                               .project_id = ctx->project_id,
                               .cancel = ctx->cancel,
                               .history_off = out->rec.retention_days == 0};
    if (ctx->branch && strcmp(ctx->branch, "default") != 0)
        return ds_cmd_branch_open(ctx, out);
    return DS_OK;
}

ds_status_t ds_cmd_open_project(ds_ctx_t *ctx, const char **idp, ds_proj_t *out)
{
    return open_project(ctx, idp, out, false);
}

ds_status_t ds_cmd_open_project_trusted(ds_ctx_t *ctx, const char **idp, ds_proj_t *out)
{
    return open_project(ctx, idp, out, true);
}

ds_status_t ds_cmd_authorize_project(ds_ctx_t *ctx, const char *id)
{
    ds_proj_t p;
    return ds_cmd_open_project(ctx, &id, &p);
}

/* ---- write slots ---- */

static void leave_slot(void *slot) { ds_wq_leave(queues, slot); }

struct ds_park_slot {
    struct ds_park_slot *next;
    const char *key;
    ds_park_t *park;
    ds_wq_slot_t *slot;
    atomic_bool granted;
};

static void park_granted(void *arg)
{
    ds_park_slot_t *ps = arg;
    atomic_store(&ps->granted, true);
    ps->park->resume_cb(ps->park->arg);
}

/*
 * The request's bound on its wait for a write queue's turn: the smaller of
 * what is left until its own deadline (time it spent before, e.g. waiting for
 * a worker, counts) and the service's.
 */
static double max_wait(const ds_ctx_t *ctx)
{
    double own = 0;
    if (ctx->wait_deadline > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        own = ctx->wait_deadline - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
        if (own < 0.001)
            own = 0.001; /* past it already: only a free queue will do */
    }
    if (own > 0 && (queue_max_wait <= 0 || own < queue_max_wait))
        return own;
    return queue_max_wait;
}

/*
 * ds_cmd_enter for a request that can be parked: a slot its earlier run
 * queued for is held now; else it queues, and unless the slot is free at
 * once the request is parked. The slots live in park (ctx arena), not in
 * arena hooks, since those run when the request is parked.
 */
static ds_status_t enter_parkable(ds_ctx_t *ctx, const char *key)
{
    ds_park_t *park = ctx->park;
    /* Parked already in this run (a caller went on after the first refusal): one ticket awaited at a time. */
    if (park->parked)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "the request waits for its turn in a write queue");
    for (ds_park_slot_t *ps = park->held; ps; ps = ps->next)
        if (strcmp(ps->key, key) == 0) {
            if (atomic_load(&ps->granted))
                return DS_OK;
            return ds_err_set(&ctx->err, DS_INTERNAL, "write slot %s entered again before it was granted", key);
        }
    ds_park_slot_t *ps = ds_arena_alloc(ctx->arena, sizeof(*ps));
    if (!ps || !(ps->key = ds_arena_strdup(ctx->arena, key)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ps->park = park;
    atomic_init(&ps->granted, false);
    /* Listed before it is queued: the grant may come at once on another thread. */
    ps->next = park->held;
    park->held = ps;
    bool granted = false;
    ds_status_t st = ds_wq_enter_async(queues, key, max_wait(ctx), park_granted, ps, &ps->slot, &granted, &ctx->err);
    if (st != DS_OK) {
        park->held = ps->next;
        return st;
    }
    if (granted) {
        atomic_store(&ps->granted, true);
        return DS_OK;
    }
    park->parked = true;
    return ds_err_set(&ctx->err, DS_UNAVAILABLE, "the request waits for its turn in write queue %s", key);
}

bool ds_cmd_park_abandon(ds_park_t *park)
{
    for (ds_park_slot_t **pp = &park->held; *pp; pp = &(*pp)->next) {
        ds_park_slot_t *ps = *pp;
        if (atomic_load(&ps->granted))
            continue;
        if (!ds_wq_abandon(queues, ps->slot, ps))
            return false;
        *pp = ps->next;
        return true;
    }
    return false;
}

void ds_cmd_park_release(ds_park_t *park)
{
    if (!park)
        return;
    ds_park_slot_t *ps = park->held;
    park->held = NULL;
    for (; ps; ps = ps->next)
        if (atomic_load(&ps->granted))
            ds_wq_leave(queues, ps->slot);
}

ds_status_t ds_cmd_enter(ds_ctx_t *ctx, const char *key)
{
    if (!key)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory building a write-queue key");
    /*
     * Every write takes a slot: the key's scope is checked here, for all of
     * them (parked or not). A workspace login may take its own workspace's slot only.
     */
    ds_status_t st = ctx->scope == DS_CALLER_WORKSPACE && ctx->scope_slot && strcmp(key, ctx->scope_slot) == 0
                         ? DS_OK
                         : ds_cmd_require_write(ctx);
    if (st != DS_OK)
        return st;
    /* A request that read through a linked bucket writes no table and no project catalog (cmd/share.c). */
    if (ctx->linked_read && (key[0] == 't' || key[0] == 'p') && key[1] == '/')
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED, "%s: a linked bucket is read-only", ctx->linked_read);
    if (ctx->park)
        return enter_parkable(ctx, key);
    ds_wq_slot_t *slot = NULL;
    st = ds_wq_enter(queues, key, max_wait(ctx), ctx->cancel, &slot, &ctx->err);
    /* When the hook cannot be registered it runs at once: the slot is left. */
    if (st == DS_OK && ds_arena_on_destroy(ctx->arena, leave_slot, slot) != 0)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    return st;
}

ds_status_t ds_cmd_enter_ddl(ds_ctx_t *ctx, const char *project)
{
    return ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "p/%s", project));
}

ds_status_t ds_cmd_enter_table(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table)
{
    /*
     * Bucket and table come resolved (cmd/names.c); the key is also lower-cased
     * so that every spelling of one table maps to one queue even on a
     * case-insensitive backend (on a case-sensitive one this only serializes
     * "t" and "T" together, which is safe).
     */
    char *key = ds_arena_printf(ctx->arena, "t/%s/%s/%s", project, bucket, table);
    for (char *c = key ? key + 2 + strlen(project) : NULL; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return ds_cmd_enter(ctx, key);
}
