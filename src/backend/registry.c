/*
 * registry.c - backend registry and the host function table. See registry.h.
 *
 * Lock order: the registry rwlock is a leaf; nothing else is taken under it
 * except the backend's own open/close during add/shutdown.
 */
#include "backend/registry.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"

/* be comes first: ds_registry_put turns a ds_backend_t * back into its entry. */
typedef struct entry {
    ds_backend_t be;
    struct entry *next;
    void *handle;
    atomic_long pins;
} entry_t;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static entry_t *entries;
static ds_host_api_t host;
static char host_data_dir[4096];

static void *host_alloc(ds_be_call_t *call, size_t n) { return ds_arena_alloc(call->arena, n); }
static char *host_strdup(ds_be_call_t *call, const char *s) { return ds_arena_strdup(call->arena, s); }

static void host_log(int level, const char *backend, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ds_log((ds_log_level_t)level, "backend %s: %s", backend, msg);
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

/* DUCKSTORE_BE_<NAME>_<KEY>, else the backend's declared default. */
static const char *host_setting(const char *backend, const char *key)
{
    char env[256];
    int n = snprintf(env, sizeof(env), "DUCKSTORE_BE_%s_%s", backend, key);
    if (n <= 0 || (size_t)n >= sizeof(env))
        return NULL;
    for (char *p = env; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    const char *v = getenv(env);
    if (v)
        return v;
    pthread_rwlock_rdlock(&lock);
    const char *def = NULL;
    for (entry_t *e = entries; e; e = e->next)
        if (strcmp(e->be.ops->name, backend) == 0)
            for (size_t i = 0; i < e->be.ops->n_settings; i++)
                if (strcmp(e->be.ops->settings[i].key, key) == 0)
                    def = e->be.ops->settings[i].default_value;
    pthread_rwlock_unlock(&lock);
    return def;
}

const ds_host_api_t *ds_registry_host(void) { return &host; }

ds_status_t ds_registry_init(const char *data_dir, int64_t memory_limit_bytes, int64_t threads,
                             int64_t max_open_projects, ds_err_t *err)
{
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
    };
    (void)err;
    return DS_OK;
}

ds_status_t ds_registry_add(ds_backend_entry_fn entry, void *handle, ds_err_t *err)
{
    const ds_backend_ops_t *ops = entry(&host);
    if (!ops)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend entry function returned no backend");
    if (ops->abi_version != DS_BACKEND_ABI_VERSION)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\" was built for ABI version %u; this server speaks %d",
                          ops->name ? ops->name : "?", ops->abi_version, DS_BACKEND_ABI_VERSION);
    if (ops->struct_size < sizeof(ds_backend_ops_t))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend ops struct too small (%u bytes, need %zu)",
                          ops->struct_size, sizeof(ds_backend_ops_t));
    if (!ops->name || !*ops->name || !ops->open || !ops->close)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "backend lacks a name, open or close");
    for (size_t i = 0; i < ops->n_settings; i++) {
        const ds_be_setting_t *s = &ops->settings[i];
        if (s->required && !host_setting(ops->name, s->key) && !s->default_value)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "backend \"%s\" needs setting DUCKSTORE_BE_%s_%s", ops->name,
                              ops->name, s->key);
    }
    pthread_rwlock_wrlock(&lock);
    for (entry_t *e = entries; e; e = e->next)
        if (strcmp(e->be.ops->name, ops->name) == 0) {
            pthread_rwlock_unlock(&lock);
            return ds_err_set(err, DS_ALREADY_EXISTS, "a backend named \"%s\" is already registered", ops->name);
        }
    entry_t *e = calloc(1, sizeof(*e));
    if (!e) {
        pthread_rwlock_unlock(&lock);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    e->be.ops = ops;
    e->handle = handle;
    ds_status_t st = ops->open(&host, &e->be.self, err);
    if (st != DS_OK) {
        free(e);
        pthread_rwlock_unlock(&lock);
        return st;
    }
    e->next = entries;
    entries = e;
    pthread_rwlock_unlock(&lock);
    ds_log(DS_LOG_INFO, "backend %s %s registered", ops->name, ops->version ? ops->version : "");
    return DS_OK;
}

ds_status_t ds_registry_get(const char *name, ds_backend_t **out, ds_err_t *err)
{
    pthread_rwlock_rdlock(&lock);
    for (entry_t *e = entries; e; e = e->next)
        if (strcmp(e->be.ops->name, name) == 0) {
            atomic_fetch_add(&e->pins, 1);
            *out = &e->be;
            pthread_rwlock_unlock(&lock);
            return DS_OK;
        }
    pthread_rwlock_unlock(&lock);
    return ds_err_set(err, DS_NOT_FOUND, "no backend named \"%s\" is registered", name);
}

void ds_registry_put(ds_backend_t *b)
{
    if (b)
        atomic_fetch_sub(&((entry_t *)b)->pins, 1);
}

void ds_registry_each(void (*cb)(ds_backend_t *b, void *ud), void *ud)
{
    pthread_rwlock_rdlock(&lock);
    for (entry_t *e = entries; e; e = e->next)
        cb(&e->be, ud);
    pthread_rwlock_unlock(&lock);
}

void ds_registry_shutdown(void)
{
    pthread_rwlock_wrlock(&lock);
    while (entries) {
        entry_t *e = entries;
        entries = e->next;
        e->be.ops->close(e->be.self);
        if (e->handle)
            dlclose(e->handle);
        free(e);
    }
    pthread_rwlock_unlock(&lock);
}
