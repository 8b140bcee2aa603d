/*
 * registry.c - backend registry and the host function table. See registry.h.
 *
 * DESIGN
 * An entry holds the registry's own copy of a backend's ops (zero-extended to
 * the host's struct size, so methods appended after a plugin was built read as
 * NULL), its state and its pin count. Entries go LOADING -> READY ->
 * (UNLOADING -> READY | gone). Only READY entries are found by lookups; a
 * LOADING entry already reserves its name, so two loads of one name cannot
 * both pass the duplicate check while their open() runs unlocked.
 *
 * Plugins are opened with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE: NOW so a
 * missing symbol fails the load instead of a later call; LOCAL so two plugins'
 * symbols never mix; NODELETE because a plugin's own libraries (libpq and
 * OpenSSL for PostgreSQL) leave atexit handlers and thread-local destructors
 * behind, and unmapping their code on unload would crash the process later.
 * Unloading therefore closes the backend and forgets it; the code pages stay.
 *
 * Lock order: `lock` is a leaf. It is never held while a backend method, an
 * entry function, dlopen or a caller's callback runs.
 */
#include "backend/registry.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/arena.h"
#include "core/cancel.h"
#include "core/csv.h"
#include "core/log.h"

typedef enum { E_LOADING, E_READY, E_UNLOADING } entry_state_t;

/* be comes first: ds_registry_put turns a ds_backend_t * back into its entry. */
typedef struct entry {
    ds_backend_t be;
    ds_backend_ops_t ops; /* the copy be.ops points to */
    struct entry *next;
    void *handle;
    char *path;
    entry_state_t state;
    long pins;
    double load_ms, open_ms;
    int64_t registered_at;
} entry_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER; /* a pin dropped or a state changed */
static entry_t *entries;                                   /* registration order */
static ds_host_api_t host;
static char host_data_dir[4096];
static char plugin_dir[PATH_MAX]; /* resolved; "" when none */
static bool startup_loaded;

/*
 * Plugins found that did not register, by file: why (a setting the operator
 * must fix, or anything else), the last error, and copies of the settings the
 * plugin declared (so GET /backends can say what it needs). An entry goes as
 * soon as the plugin registers.
 */
typedef struct problem {
    struct problem *next;
    char *file;        /* resolved path inside the plugin directory */
    char *name;        /* the backend name the plugin declared, or NULL */
    bool unconfigured; /* a required setting is missing or a setting has a value of the wrong type */
    char error[DS_ERR_MSG_MAX];
    int64_t at;
    ds_be_setting_t *settings;
    size_t n_settings;
} problem_t;
static problem_t *problems;

/*
 * The backend settings file (DUCKSTORE_BACKEND_SETTINGS_FILE): KEY=VALUE
 * lines of DUCKSTORE_BE_* settings, read at start and again by every reload.
 * A value there wins over the environment. Replaced maps are kept (retired)
 * until shutdown: a backend may still hold a value host_setting returned.
 */
typedef struct settings_map {
    struct settings_map *next; /* retired maps */
    size_t n;
    char **keys, **values;
} settings_map_t;
static char settings_file[PATH_MAX];
static settings_map_t *settings_now, *settings_retired;

static void free_map(settings_map_t *m);

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the host API ---- */

static bool host_same_definition(const ds_be_table_t *a, const ds_be_table_t *b)
{
    if (a->n_columns != b->n_columns || a->n_primary_key != b->n_primary_key)
        return false;
    for (size_t i = 0; i < a->n_columns; i++)
        if (strcmp(a->columns[i].name, b->columns[i].name) != 0 || strcmp(a->columns[i].type, b->columns[i].type) != 0 ||
            a->columns[i].nullable != b->columns[i].nullable)
            return false;
    for (size_t k = 0; k < a->n_primary_key; k++)
        if (strcasecmp(a->primary_key[k], b->primary_key[k]) != 0)
            return false;
    return true;
}

static ds_status_t host_csv_header(ds_be_call_t *call, const char *path, const ds_csv_opts_t *o, const char ***names,
                                   size_t *n)
{
    return ds_csv_read_header(call->arena, path, o, names, n, call->err);
}

static void *host_alloc(ds_be_call_t *call, size_t n) { return ds_arena_alloc(call->arena, n); }
static char *host_strdup(ds_be_call_t *call, const char *s) { return ds_arena_strdup(call->arena, s); }

static void host_log(int level, const char *backend, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (level < DS_LOG_DEBUG)
        level = DS_LOG_DEBUG;
    if (level > DS_LOG_ERROR)
        level = DS_LOG_ERROR;
    ds_log((ds_log_level_t)level, "backend %s: %s", backend ? backend : "?", msg);
}

static ds_status_t host_err_set(ds_err_t *err, ds_status_t st, const char *fmt, ...)
{
    char msg[DS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ds_err_set(err, st, "%s", msg);
}

/* DUCKSTORE_BE_<NAME>_<KEY>, upper-cased, anything but [A-Z0-9_] as "_". False when it does not fit. */
static bool env_name(const char *backend, const char *key, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "DUCKSTORE_BE_%s_%s", backend, key);
    if (n <= 0 || (size_t)n >= outsz)
        return false;
    for (char *p = out; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    return true;
}

bool ds_registry_setting_env(const char *backend, const char *key, char *out, size_t outsz)
{
    return backend && key && env_name(backend, key, out, outsz);
}

/* The value of setting env (DUCKSTORE_BE_...): the settings file's, else the environment's, else NULL. */
static const char *setting_value(const char *env)
{
    const char *v = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; settings_now && i < settings_now->n && !v; i++)
        if (strcmp(settings_now->keys[i], env) == 0)
            v = settings_now->values[i];
    pthread_mutex_unlock(&lock);
    return v ? v : getenv(env);
}

static const char *env_value(const char *backend, const char *key)
{
    char env[256];
    return env_name(backend, key, env, sizeof(env)) ? setting_value(env) : NULL;
}

bool ds_registry_setting_configured(const char *backend, const char *key) { return env_value(backend, key) != NULL; }

/* The env value of a setting, else the backend's declared default (of any entry of that name). */
static const char *host_setting(const char *backend, const char *key)
{
    if (!backend || !key)
        return NULL;
    const char *v = env_value(backend, key);
    if (v)
        return v;
    const char *def = NULL;
    pthread_mutex_lock(&lock);
    for (entry_t *e = entries; e && !def; e = e->next)
        if (strcmp(e->ops.name, backend) == 0)
            for (size_t i = 0; i < e->ops.n_settings; i++)
                if (e->ops.settings[i].key && strcasecmp(e->ops.settings[i].key, key) == 0)
                    def = e->ops.settings[i].default_value;
    pthread_mutex_unlock(&lock);
    return def;
}

static bool host_cancel_hook(ds_be_call_t *call, void (*interrupt)(void *ud), void *ud)
{
    return ds_cancel_hook(call ? call->cancel : NULL, interrupt, ud);
}

static void host_cancel_unhook(ds_be_call_t *call, void *ud) { ds_cancel_unhook(call ? call->cancel : NULL, ud); }

static bool host_cancelled(ds_be_call_t *call) { return call && ds_cancel_is_set(call->cancel); }

const ds_host_api_t *ds_registry_host(void) { return &host; }

ds_status_t ds_registry_init(const char *data_dir, int64_t memory_limit_bytes, int64_t threads,
                             int64_t max_open_projects, ds_err_t *err)
{
    if (!data_dir || strlen(data_dir) >= sizeof(host_data_dir))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "data directory path is missing or too long");
    snprintf(host_data_dir, sizeof(host_data_dir), "%s", data_dir);
    host = (ds_host_api_t){
        .abi_version = DS_BACKEND_ABI_VERSION,
        .struct_size = sizeof(ds_host_api_t),
        .alloc = host_alloc,
        .strdup = host_strdup,
        .log = host_log,
        .err_set = host_err_set,
        .setting = host_setting,
        .data_dir = host_data_dir,
        .memory_limit_bytes = memory_limit_bytes,
        .threads = threads,
        .max_open_projects = max_open_projects,
        .csv_header = host_csv_header,
        .cancel_hook = host_cancel_hook,
        .cancel_unhook = host_cancel_unhook,
        .cancelled = host_cancelled,
        .same_definition = host_same_definition,
    };
    return DS_OK;
}

/* ---- checks before a backend is used ---- */

/* Backend names: [a-z][a-z0-9_]{0,31} (they become env var parts and catalog values). */
static bool valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 32 || !islower((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '_')
            return false;
    return true;
}

static bool parse_bool(const char *v)
{
    static const char *ok[] = {"true", "false", "1", "0", "yes", "no", "on", "off"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcasecmp(v, ok[i]) == 0)
            return true;
    return false;
}

/*
 * Every declared setting: a required one is present, each value has its
 * declared type. *unconfigured is set when the operator can fix the failure
 * by giving a setting (not when the plugin declares its settings wrong).
 */
static ds_status_t check_settings(const ds_backend_ops_t *ops, bool *unconfigured, ds_err_t *err)
{
    if (ops->n_settings && !ops->settings)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\" declares %zu settings but no settings array",
                          ops->name, ops->n_settings);
    for (size_t i = 0; i < ops->n_settings; i++) {
        const ds_be_setting_t *s = &ops->settings[i];
        char env[256];
        if (!s->key || !*s->key || !env_name(ops->name, s->key, env, sizeof(env)))
            return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\": setting %zu has no usable key", ops->name, i);
        const char *v = setting_value(env);
        if (!v)
            v = s->default_value;
        if (!v) {
            if (s->required) {
                *unconfigured = true;
                return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\" needs setting %s%s%s", ops->name, env,
                                  s->help ? ": " : "", s->help ? s->help : "");
            }
            continue;
        }
        *unconfigured = s->type == DS_SETTING_INT || s->type == DS_SETTING_BOOL;
        if (s->type == DS_SETTING_INT) {
            char *end;
            errno = 0;
            (void)strtoll(v, &end, 10);
            if (!*v || *end || errno == ERANGE)
                return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\": setting %s must be an integer, got \"%.64s\"",
                                  ops->name, env, v);
        } else if (s->type == DS_SETTING_BOOL) {
            if (!parse_bool(v))
                return ds_err_set(err, DS_INVALID_ARGUMENT,
                                  "backend \"%s\": setting %s must be true or false, got \"%.64s\"", ops->name, env, v);
        } else if (s->type != DS_SETTING_STRING) {
            *unconfigured = false;
            return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\": setting %s has an unknown type %d", ops->name,
                              env, (int)s->type);
        }
        *unconfigured = false;
    }
    return DS_OK;
}

static ds_status_t check_ops(const ds_backend_ops_t *ops, const char *what, bool *unconfigured, ds_err_t *err)
{
    if (ops->abi_version != DS_BACKEND_ABI_VERSION)
        return ds_err_set(err, DS_INVALID_ARGUMENT,
                          "%s was built for backend ABI version %u; this server speaks version %d", what,
                          ops->abi_version, DS_BACKEND_ABI_VERSION);
    if (ops->struct_size < DS_BE_OPS_V1_SIZE)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "%s has a backend ops struct of %u bytes; version %d needs %zu",
                          what, ops->struct_size, DS_BACKEND_ABI_VERSION, (size_t)DS_BE_OPS_V1_SIZE);
    if (!valid_name(ops->name))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "%s has an invalid backend name \"%.64s\" (want [a-z][a-z0-9_]{0,31})",
                          what, ops->name ? ops->name : "");
    if (!ops->open || !ops->close)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\" lacks its open or close method", ops->name);
    return check_settings(ops, unconfigured, err);
}

/* ---- registration ---- */

static void unlink_entry_locked(entry_t *e)
{
    entry_t **pp = &entries;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
}

static void free_entry(entry_t *e)
{
    if (!e)
        return;
    free(e->path);
    free(e);
}

/* Copies what a plugin that did not register declared (its name, its settings) into pb. */
static void note_declared(const ds_backend_ops_t *ops, problem_t *pb)
{
    if (!pb)
        return;
    if (valid_name(ops->name))
        pb->name = strdup(ops->name);
    if (!ops->settings || !ops->n_settings || ops->n_settings > 256)
        return;
    pb->settings = calloc(ops->n_settings, sizeof(*pb->settings));
    for (size_t i = 0; pb->settings && i < ops->n_settings; i++) {
        const ds_be_setting_t *s = &ops->settings[i];
        if (!s->key)
            continue;
        ds_be_setting_t *c = &pb->settings[pb->n_settings++];
        c->type = s->type;
        c->required = s->required;
        c->key = strdup(s->key);
        c->default_value = s->default_value ? strdup(s->default_value) : NULL;
        c->help = s->help ? strdup(s->help) : NULL;
    }
}

/*
 * Registers entry; path is the plugin file (NULL for built-ins). On failure
 * nothing stays, and pb (may be NULL) receives what the plugin declared and
 * whether a setting is what is missing.
 */
static ds_status_t add_backend(ds_backend_entry_fn entry, void *handle, const char *path, problem_t *pb, ds_err_t *err)
{
    double t0 = mono_ms();
    char what[PATH_MAX + 16];
    snprintf(what, sizeof(what), path ? "plugin %s" : "built-in backend", path ? path : "");
    const ds_backend_ops_t *ops = entry(&host);
    if (!ops)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: its entry function returned no backend (see the log)", what);
    bool unconfigured = false;
    ds_status_t st = check_ops(ops, what, &unconfigured, err);
    if (st != DS_OK) {
        /* Only a plugin of this ABI has a struct whose settings can be read. */
        if (ops->abi_version == DS_BACKEND_ABI_VERSION && ops->struct_size >= DS_BE_OPS_V1_SIZE)
            note_declared(ops, pb);
        if (pb)
            pb->unconfigured = unconfigured;
        return st;
    }
    entry_t *e = calloc(1, sizeof(*e));
    if (!e || (path && !(e->path = strdup(path)))) {
        free(e);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    size_t n = ops->struct_size < sizeof(ds_backend_ops_t) ? ops->struct_size : sizeof(ds_backend_ops_t);
    memcpy(&e->ops, ops, n);
    e->ops.struct_size = sizeof(ds_backend_ops_t);
    e->be.ops = &e->ops;
    e->handle = handle;
    e->state = E_LOADING;

    pthread_mutex_lock(&lock);
    for (entry_t *x = entries; x; x = x->next)
        if (strcmp(x->ops.name, e->ops.name) == 0) {
            pthread_mutex_unlock(&lock);
            st = ds_err_set(err, DS_ALREADY_EXISTS, "a backend named \"%s\" is already registered%s%s", e->ops.name,
                            x->path ? " from " : " (built in)", x->path ? x->path : "");
            note_declared(&e->ops, pb);
            free_entry(e);
            return st;
        }
    entry_t **tail = &entries;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    pthread_mutex_unlock(&lock);

    double t1 = mono_ms();
    st = e->ops.open(&host, &e->be.self, err);
    double t2 = mono_ms();
    pthread_mutex_lock(&lock);
    if (st == DS_OK) {
        e->state = E_READY;
        e->open_ms = t2 - t1;
        e->load_ms = t2 - t0;
        e->registered_at = (int64_t)time(NULL);
    } else {
        unlink_entry_locked(e);
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    if (st != DS_OK) {
        char why[DS_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err->status != DS_OK && err->message[0] ? err->message : "no reason given");
        ds_err_set(err, st, "backend \"%s\" failed to start: %s", ops->name, why);
        note_declared(&e->ops, pb);
        free_entry(e);
        return st;
    }
    ds_log(DS_LOG_INFO, "backend %s %s registered (%s, open %.2f ms)", e->ops.name, e->ops.version ? e->ops.version : "",
           path ? path : handle ? "plugin" : "built in", e->open_ms);
    return DS_OK;
}

ds_status_t ds_registry_add(ds_backend_entry_fn entry, void *handle, ds_err_t *err)
{
    if (!entry)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "no entry function");
    return add_backend(entry, handle, NULL, NULL, err);
}

ds_status_t ds_registry_get(const char *name, ds_backend_t **out, ds_err_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&lock);
    for (entry_t *e = entries; name && e; e = e->next)
        if (e->state == E_READY && strcmp(e->ops.name, name) == 0) {
            e->pins++;
            *out = &e->be;
            pthread_mutex_unlock(&lock);
            return DS_OK;
        }
    pthread_mutex_unlock(&lock);
    return ds_err_set(err, DS_NOT_FOUND, "no backend named \"%s\" is registered", name ? name : "");
}

void ds_registry_put(ds_backend_t *b)
{
    if (!b)
        return;
    entry_t *e = (entry_t *)b;
    pthread_mutex_lock(&lock);
    if (--e->pins == 0)
        pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

void ds_registry_meta(const ds_backend_t *b, ds_backend_meta_t *out)
{
    const entry_t *e = (const entry_t *)b;
    *out = (ds_backend_meta_t){
        .builtin = e->handle == NULL,
        .path = e->path,
        .load_ms = e->load_ms,
        .open_ms = e->open_ms,
        .registered_at = e->registered_at,
    };
}

void ds_registry_each(void (*cb)(ds_backend_t *b, void *ud), void *ud)
{
    size_t n = 0, i = 0;
    pthread_mutex_lock(&lock);
    for (entry_t *e = entries; e; e = e->next)
        n += e->state == E_READY;
    entry_t **snap = n ? malloc(sizeof(*snap) * n) : NULL;
    for (entry_t *e = entries; snap && e; e = e->next)
        if (e->state == E_READY) {
            e->pins++;
            snap[i++] = e;
        }
    pthread_mutex_unlock(&lock);
    if (n && !snap) {
        ds_log(DS_LOG_ERROR, "registry: out of memory listing backends");
        return;
    }
    for (size_t k = 0; k < i; k++)
        cb(&snap[k]->be, ud);
    for (size_t k = 0; k < i; k++)
        ds_registry_put(&snap[k]->be);
    free(snap);
}

/* ---- plugins ---- */

const char *ds_registry_plugin_dir(void) { return plugin_dir; }

static void free_problem(problem_t *pb)
{
    if (!pb)
        return;
    for (size_t i = 0; i < pb->n_settings; i++) {
        free((char *)pb->settings[i].key);
        free((char *)pb->settings[i].default_value);
        free((char *)pb->settings[i].help);
    }
    free(pb->settings);
    free(pb->name);
    free(pb->file);
    free(pb);
}

/* Replaces the problem recorded for pb->file by pb (NULL: the plugin registered; forgets it). */
static void set_problem(const char *file, problem_t *pb)
{
    problem_t *old = NULL;
    pthread_mutex_lock(&lock);
    problem_t **pp = &problems;
    while (*pp && strcmp((*pp)->file, file) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        old = *pp;
        *pp = old->next;
    }
    if (pb) {
        /* Keep the order plugins were found in: a retried one stays where it was. */
        pb->next = *pp;
        *pp = pb;
    }
    pthread_mutex_unlock(&lock);
    free_problem(old);
}

/* Records why the plugin at path did not register (pb: what it declared, or NULL). */
static void record_problem(const char *path, problem_t *pb, const ds_err_t *err)
{
    problem_t *p = pb ? pb : calloc(1, sizeof(*p));
    if (!p || !(p->file = strdup(path))) {
        free_problem(p);
        return;
    }
    snprintf(p->error, sizeof(p->error), "%s", err->message[0] ? err->message : "the plugin did not register");
    p->at = (int64_t)time(NULL);
    set_problem(path, p);
}

/* dlopen + entry symbol + add. path is absolute and already confined. */
static ds_status_t load_plugin(const char *path, const char **name_out, ds_err_t *err)
{
    double t0 = mono_ms();
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle) {
        const char *why = dlerror();
        ds_err_set(err, DS_INVALID_ARGUMENT, "cannot load plugin %s: %s", path, why ? why : "unknown error");
        record_problem(path, NULL, err);
        return DS_INVALID_ARGUMENT;
    }
    dlerror();
    void *sym = dlsym(handle, DS_BACKEND_ENTRY_SYMBOL);
    if (!sym) {
        dlclose(handle);
        ds_err_set(err, DS_INVALID_ARGUMENT, "plugin %s does not export the entry symbol %s", path,
                   DS_BACKEND_ENTRY_SYMBOL);
        record_problem(path, NULL, err);
        return DS_INVALID_ARGUMENT;
    }
    ds_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry));
    problem_t *pb = calloc(1, sizeof(*pb));
    ds_status_t st = add_backend(entry, handle, path, pb, err);
    if (st != DS_OK) {
        record_problem(path, pb, err);
        dlclose(handle);
        if (st != DS_INVALID_ARGUMENT) {
            /* At runtime every reason a plugin cannot register is the request's fault: a 400. */
            char msg[DS_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", err->message);
            ds_err_set(err, DS_INVALID_ARGUMENT, "%s", msg);
        }
        return DS_INVALID_ARGUMENT;
    }
    free_problem(pb);
    set_problem(path, NULL);
    double t1 = mono_ms();
    pthread_mutex_lock(&lock);
    const char *name = NULL;
    for (entry_t *e = entries; e; e = e->next)
        if (e->handle == handle && e->path && strcmp(e->path, path) == 0 && e->state == E_READY) {
            e->load_ms = t1 - t0;
            name = e->ops.name;
        }
    pthread_mutex_unlock(&lock);
    if (name_out)
        *name_out = name;
    return DS_OK;
}

/* The plugin directory as configured (before realpath), for absolute paths given at runtime. */
static char plugin_dir_given[PATH_MAX];

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void ds_registry_load_dir(const char *dir)
{
    if (startup_loaded)
        return;
    startup_loaded = true;
    if (!dir || !*dir)
        return;
    snprintf(plugin_dir_given, sizeof(plugin_dir_given), "%s", dir);
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        ds_log(DS_LOG_WARN, "plugin directory %s: %s; no plugins loaded", dir, strerror(errno));
        return;
    }
    snprintf(plugin_dir, sizeof(plugin_dir), "%s", real);
    DIR *d = opendir(real);
    if (!d) {
        ds_log(DS_LOG_WARN, "plugin directory %s: %s; no plugins loaded", real, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **bigger = realloc(names, sizeof(char *) * ncap);
            if (!bigger)
                break;
            names = bigger;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        ds_err_t e = {0};
        const char *name = NULL;
        if (ds_registry_load_file(names[i], &name, &e) != DS_OK)
            ds_log(DS_LOG_WARN, "plugin %s/%s skipped: %s", real, names[i], e.message);
        free(names[i]);
    }
    free(names);
}

ds_status_t ds_registry_load_file(const char *path, const char **name_out, ds_err_t *err)
{
    if (name_out)
        *name_out = NULL;
    if (!plugin_dir[0])
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path",
                           "no plugin directory is configured (DUCKSTORE_PLUGIN_DIR); plugins load only from there");
    if (!path || !*path)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "path is empty");
    if (strlen(path) >= PATH_MAX)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "path is too long");
    /* No ".." component at all, even one that would resolve back inside. */
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "path \"%s\" must not contain \"..\"", path);
        p += len + (slash != NULL);
    }
    size_t dl = strlen(plugin_dir);
    char joined[PATH_MAX * 2], real[PATH_MAX];
    if (path[0] == '/') {
        /* Absolute: compared before and after resolving (the directory itself may be a symlink). */
        char given_dir[PATH_MAX];
        snprintf(given_dir, sizeof(given_dir), "%s", plugin_dir_given);
        size_t gl = strlen(given_dir);
        while (gl > 1 && given_dir[gl - 1] == '/')
            given_dir[--gl] = '\0';
        bool inside = (strncmp(path, plugin_dir, dl) == 0 && path[dl] == '/') ||
                      (gl && strncmp(path, given_dir, gl) == 0 && path[gl] == '/');
        if (!inside)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "path \"%s\" is outside the plugin directory %s", path,
                               plugin_dir);
        snprintf(joined, sizeof(joined), "%s", path);
    } else {
        snprintf(joined, sizeof(joined), "%s/%s", plugin_dir, path);
    }
    if (!realpath(joined, real))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "no plugin file \"%s\" in the plugin directory: %s", path,
                           strerror(errno));
    if (strncmp(real, plugin_dir, dl) != 0 || real[dl] != '/')
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path",
                           "plugin \"%s\" resolves to %s, outside the plugin directory %s", path, real, plugin_dir);
    struct stat sb;
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "path", "plugin \"%s\" is not a regular file", path);
    return load_plugin(real, name_out, err);
}

ds_status_t ds_registry_unload(const char *name, ds_registry_unload_check_fn check, void *ud, int wait_ms,
                               ds_err_t *err)
{
    double t0 = mono_ms();
    pthread_mutex_lock(&lock);
    entry_t *e = entries;
    while (e && !(name && strcmp(e->ops.name, name) == 0))
        e = e->next;
    if (!e || e->state == E_LOADING) {
        pthread_mutex_unlock(&lock);
        return ds_err_set(err, DS_NOT_FOUND, "no backend named \"%s\" is registered", name ? name : "");
    }
    if (e->state == E_UNLOADING) {
        pthread_mutex_unlock(&lock);
        return ds_err_set(err, DS_CONFLICT, "backend \"%s\" is already being unloaded", name);
    }
    if (!e->handle) {
        pthread_mutex_unlock(&lock);
        return ds_err_set(err, DS_CONFLICT, "backend \"%s\" is built in and cannot be unloaded", name);
    }
    /* From here no lookup finds it; wait for the requests that hold it. */
    e->state = E_UNLOADING;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (e->pins > 0)
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT)
            break;
    if (e->pins > 0) {
        long pins = e->pins;
        e->state = E_READY;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
        return ds_err_set(err, DS_CONFLICT, "backend \"%s\" is in use by %ld running requests; try again", name, pins);
    }
    pthread_mutex_unlock(&lock);
    ds_status_t st = check ? check(e->ops.name, ud, err) : DS_OK;
    pthread_mutex_lock(&lock);
    if (st != DS_OK)
        e->state = E_READY;
    else
        unlink_entry_locked(e);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    if (st != DS_OK)
        return st;
    char logname[64];
    snprintf(logname, sizeof(logname), "%s", e->ops.name);
    e->ops.close(e->be.self);
    dlclose(e->handle);
    ds_log(DS_LOG_INFO, "backend %s unloaded (%s, %.2f ms)", logname, e->path ? e->path : "plugin", mono_ms() - t0);
    free_entry(e);
    return DS_OK;
}

void ds_registry_shutdown(void)
{
    pthread_mutex_lock(&lock);
    entry_t *list = entries;
    entries = NULL;
    pthread_mutex_unlock(&lock);
    while (list) {
        entry_t *e = list;
        list = e->next;
        if (e->state != E_LOADING)
            e->ops.close(e->be.self);
        if (e->handle)
            dlclose(e->handle);
        free_entry(e);
    }
    pthread_mutex_lock(&lock);
    problem_t *pbs = problems;
    problems = NULL;
    settings_map_t *maps = settings_retired;
    if (settings_now) {
        settings_now->next = maps;
        maps = settings_now;
    }
    settings_now = settings_retired = NULL;
    settings_file[0] = '\0';
    pthread_mutex_unlock(&lock);
    while (pbs) {
        problem_t *next = pbs->next;
        free_problem(pbs);
        pbs = next;
    }
    while (maps) {
        settings_map_t *next = maps->next;
        free_map(maps);
        maps = next;
    }
    plugin_dir[0] = '\0';
    startup_loaded = false;
}

/* ---- the settings file and reloading ---- */

static void free_map(settings_map_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    free(m);
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        p[--n] = '\0';
    return p;
}

/* Reads the settings file at path into a new map (*out); nothing changes on failure. */
static ds_status_t read_settings(const char *path, settings_map_t **out, ds_err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BACKEND_SETTINGS_FILE",
                           "backend settings file %s: %s", path, strerror(errno));
    settings_map_t *m = calloc(1, sizeof(*m));
    char line[8192];
    size_t cap = 0;
    int lineno = 0;
    ds_status_t st = m ? DS_OK : ds_err_set(err, DS_INTERNAL, "out of memory");
    while (st == DS_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = ds_err_setf(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BACKEND_SETTINGS_FILE",
                             "backend settings file %s line %d: longer than %zu bytes", path, lineno, sizeof(line) - 2);
            break;
        }
        char *p = trim(line);
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        char *key = trim(p);
        bool key_ok = strncmp(key, "DUCKSTORE_BE_", 13) == 0 && key[13];
        for (char *k = key; key_ok && *k; k++)
            key_ok = isupper((unsigned char)*k) || isdigit((unsigned char)*k) || *k == '_';
        if (!eq || !key_ok) {
            st = ds_err_setf(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BACKEND_SETTINGS_FILE",
                             "backend settings file %s line %d: expected DUCKSTORE_BE_<BACKEND>_<KEY>=value", path,
                             lineno);
            break;
        }
        char *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
            value[vl - 1] = '\0';
            value++;
        }
        size_t i = 0;
        while (i < m->n && strcmp(m->keys[i], key) != 0)
            i++;
        if (i == m->n && m->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **k2 = realloc(m->keys, sizeof(char *) * ncap);
            if (k2)
                m->keys = k2;
            char **v2 = k2 ? realloc(m->values, sizeof(char *) * ncap) : NULL;
            if (v2)
                m->values = v2;
            if (!k2 || !v2) {
                st = ds_err_set(err, DS_INTERNAL, "out of memory");
                break;
            }
            cap = ncap;
        }
        char *v = strdup(value);
        if (!v) {
            st = ds_err_set(err, DS_INTERNAL, "out of memory");
            break;
        }
        if (i < m->n) { /* a later line wins */
            free(m->values[i]);
            m->values[i] = v;
        } else if (!(m->keys[i] = strdup(key))) {
            free(v);
            st = ds_err_set(err, DS_INTERNAL, "out of memory");
        } else {
            m->values[i] = v;
            m->n++;
        }
    }
    if (st == DS_OK && ferror(f))
        st = ds_err_setf(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BACKEND_SETTINGS_FILE",
                         "backend settings file %s: read error", path);
    fclose(f);
    if (st != DS_OK) {
        free_map(m);
        return st;
    }
    *out = m;
    return DS_OK;
}

/* (Re-)reads the settings file, when one is set; nothing changes on failure. */
static ds_status_t reread_settings(ds_err_t *err)
{
    char path[PATH_MAX];
    pthread_mutex_lock(&lock);
    snprintf(path, sizeof(path), "%s", settings_file);
    pthread_mutex_unlock(&lock);
    if (!path[0])
        return DS_OK;
    settings_map_t *m;
    ds_status_t st = read_settings(path, &m, err);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&lock);
    if (settings_now) {
        settings_now->next = settings_retired;
        settings_retired = settings_now;
    }
    settings_now = m;
    pthread_mutex_unlock(&lock);
    ds_log(DS_LOG_INFO, "backend settings file %s read: %zu settings", path, m->n);
    return DS_OK;
}

ds_status_t ds_registry_settings_file(const char *path, ds_err_t *err)
{
    if (!path || !*path)
        return DS_OK;
    if (strlen(path) >= sizeof(settings_file))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BACKEND_SETTINGS_FILE",
                           "backend settings file path is too long");
    pthread_mutex_lock(&lock);
    snprintf(settings_file, sizeof(settings_file), "%s", path);
    pthread_mutex_unlock(&lock);
    return reread_settings(err);
}

ds_status_t ds_registry_reload(const char *name, const char **name_out, ds_err_t *err)
{
    if (name_out)
        *name_out = NULL;
    if (!name || !*name)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name", "backend name is empty");
    ds_status_t st = reread_settings(err);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&lock);
    for (entry_t *e = entries; e; e = e->next)
        if (e->state == E_READY && strcmp(e->ops.name, name) == 0) {
            /* Registered: it keeps running with the settings it opened with. */
            if (name_out)
                *name_out = e->ops.name;
            pthread_mutex_unlock(&lock);
            return DS_OK;
        }
    char file[PATH_MAX] = "";
    for (problem_t *p = problems; p && !file[0]; p = p->next) {
        const char *base = strrchr(p->file, '/');
        base = base ? base + 1 : p->file;
        if ((p->name && strcmp(p->name, name) == 0) || strcmp(base, name) == 0)
            snprintf(file, sizeof(file), "%s", p->file);
    }
    pthread_mutex_unlock(&lock);
    if (!file[0])
        return ds_err_set(err, DS_NOT_FOUND, "no backend or plugin named \"%s\" was found", name);
    st = load_plugin(file, name_out, err);
    if (st != DS_OK) {
        char why[DS_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err->message);
        return ds_err_set(err, DS_UNAVAILABLE, "backend \"%s\" still cannot start: %s", name, why);
    }
    return DS_OK;
}

void ds_registry_problems(ds_arena_t *a, ds_registry_problem_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&lock);
    size_t count = 0;
    for (problem_t *p = problems; p; p = p->next)
        count++;
    ds_registry_problem_t *items = count ? ds_arena_alloc(a, sizeof(*items) * count) : NULL;
    for (problem_t *p = problems; items && p; p = p->next) {
        ds_registry_problem_t *x = &items[*n];
        const char *base = strrchr(p->file, '/');
        /* A plugin that declared the name of a registered backend is listed by its file name. */
        bool own_name = p->name != NULL;
        for (entry_t *e = entries; own_name && e; e = e->next)
            own_name = strcmp(e->ops.name, p->name) != 0;
        *x = (ds_registry_problem_t){
            .path = ds_arena_strdup(a, p->file),
            .name = ds_arena_strdup(a, own_name ? p->name : base ? base + 1 : p->file),
            .declared_name = own_name,
            .unconfigured = p->unconfigured,
            .error = ds_arena_strdup(a, p->error),
            .at = p->at,
            .n_settings = p->n_settings,
            .settings = p->n_settings ? ds_arena_alloc(a, sizeof(ds_be_setting_t) * p->n_settings) : NULL,
        };
        for (size_t i = 0; x->settings && i < p->n_settings; i++) {
            const ds_be_setting_t *s = &p->settings[i];
            x->settings[i] = (ds_be_setting_t){
                .key = ds_arena_strdup(a, s->key),
                .type = s->type,
                .required = s->required,
                .default_value = s->default_value ? ds_arena_strdup(a, s->default_value) : NULL,
                .help = s->help ? ds_arena_strdup(a, s->help) : NULL,
            };
        }
        if (!x->settings)
            x->n_settings = 0;
        (*n)++;
    }
    pthread_mutex_unlock(&lock);
    *out = items;
}
