/*
 * registry.h - the backends duckstore knows, by name.
 *
 * DESIGN
 * Built-in backends and plugins register through the same call: an entry
 * function (the built-in's, or the DS_BACKEND_ENTRY_SYMBOL a plugin exports)
 * returns its ops, and ds_registry_add checks them before anything is used:
 * ABI version, struct size, name, required methods, duplicate name, and every
 * declared setting (present when required, of its declared type). Only then is
 * the backend opened; a backend whose open fails is not registered. A backend
 * whose server is unreachable opens anyway and reports it through health.
 *
 * Plugins are .so files in the plugin directory (DUCKSTORE_PLUGIN_DIR). They
 * load at startup (every *.so there, in name order; a plugin that fails is
 * logged and skipped) and at runtime (ds_registry_load_file, confined to the
 * directory: no "..", nothing outside it, no symlink out of it). A plugin
 * that did not register is remembered (ds_registry_problems: unconfigured or
 * failed, its declared settings, the last error) until it loads, e.g. through
 * ds_registry_reload after the settings file (DUCKSTORE_BACKEND_SETTINGS_FILE,
 * read first, then the environment) was fixed.
 *
 * Lookups pin a backend (ds_registry_get / ds_registry_put). Unloading marks
 * the backend so no new lookup finds it, waits (bounded) until every pin is
 * released, asks the caller's check (no project uses it) and only then closes
 * it; when pins do not drain in time or the check refuses, the backend stays
 * as it was. Built-in backends cannot be unloaded.
 *
 * Thread-safety: every function may be called from any thread. One mutex
 * guards the list; it is a leaf lock, never held while a backend method or a
 * callback runs (ds_registry_each pins a snapshot and calls back unlocked).
 */
#ifndef DS_BACKEND_REGISTRY_H
#define DS_BACKEND_REGISTRY_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/status.h"
#include "duckstore/backend.h"

typedef struct ds_backend {
    const ds_backend_ops_t *ops; /* the registry's copy, zero-extended to the host's struct size */
    void *self;
} ds_backend_t;

/* What GET /backends shows about one registered backend (besides its ops). */
typedef struct {
    bool builtin;
    const char *path;      /* the plugin file (absolute), or NULL for a built-in */
    double load_ms;        /* dlopen + entry + checks + open */
    double open_ms;        /* ops->open alone */
    int64_t registered_at; /* unix seconds */
} ds_backend_meta_t;

/* The host function table given to every backend. Valid after ds_registry_init. */
const ds_host_api_t *ds_registry_host(void);
/* Prepares the registry with the host settings backends read. */
ds_status_t ds_registry_init(const char *data_dir, int64_t memory_limit_bytes, int64_t threads,
                             int64_t max_open_projects, ds_err_t *err);
/*
 * Registers the backend entry returns. handle: the plugin's dlopen handle
 * (closed when the backend goes; the backend is then a plugin) or NULL for a
 * built-in. On failure nothing is registered and err says why
 * (DS_INVALID_ARGUMENT for a bad plugin, DS_ALREADY_EXISTS for a duplicate
 * name, or the status open returned).
 */
ds_status_t ds_registry_add(ds_backend_entry_fn entry, void *handle, ds_err_t *err);
/* Pins backend name into *out. DS_NOT_FOUND when no such backend. Unpin with ds_registry_put. */
ds_status_t ds_registry_get(const char *name, ds_backend_t **out, ds_err_t *err);
/* Unpins (b may be NULL). */
void ds_registry_put(ds_backend_t *b);
/* Registration facts of a pinned backend. */
void ds_registry_meta(const ds_backend_t *b, ds_backend_meta_t *out);
/*
 * Calls cb for each registered backend, in registration order. The backends
 * are pinned for the duration and the registry is not locked, so cb may take
 * its time and may call the registry.
 */
void ds_registry_each(void (*cb)(ds_backend_t *b, void *ud), void *ud);

/* Writes DUCKSTORE_BE_<NAME>_<KEY> for a setting into out; false when it does not fit. */
bool ds_registry_setting_env(const char *backend, const char *key, char *out, size_t outsz);

/* The plugin directory set for this process ("" when none). */
const char *ds_registry_plugin_dir(void);
/*
 * Sets the plugin directory and loads every *.so in it (startup). A plugin
 * that fails is logged as a warning and skipped; the function itself never
 * fails. Later calls do nothing (the startup load happens once).
 */
void ds_registry_load_dir(const char *dir);
/*
 * Loads one plugin at runtime. path is relative to the plugin directory or
 * absolute inside it; "..", anything outside and symlinks leading out are
 * DS_INVALID_ARGUMENT, as is every reason a plugin cannot register. *name_out
 * (may be NULL) receives the registered name (static storage of the entry,
 * valid while the backend is registered).
 */
ds_status_t ds_registry_load_file(const char *path, const char **name_out, ds_err_t *err);

/*
 * Decides whether a backend may go, called once no request pins it and no new
 * lookup can find it. DS_OK lets it go; anything else (with err set) keeps it.
 */
typedef ds_status_t (*ds_registry_unload_check_fn)(const char *name, void *ud, ds_err_t *err);
/*
 * Unloads plugin name: DS_NOT_FOUND when not registered, DS_CONFLICT for a
 * built-in, when pins do not drain within wait_ms, or when check refuses.
 */
ds_status_t ds_registry_unload(const char *name, ds_registry_unload_check_fn check, void *ud, int wait_ms,
                               ds_err_t *err);

/*
 * A plugin found in the plugin directory (or named by a runtime load) that
 * did not register. Arena copies (ds_registry_problems).
 */
typedef struct {
    const char *name;        /* the backend name it declared, else its file name */
    bool declared_name;      /* name is the declared backend name */
    const char *path;        /* the plugin file (resolved) */
    bool unconfigured;       /* a setting is missing or has a value of the wrong type; else it failed */
    const char *error;       /* the last error */
    int64_t at;              /* unix seconds of the last attempt */
    ds_be_setting_t *settings; /* what it declared (empty when it never said) */
    size_t n_settings;
} ds_registry_problem_t;

/* Every plugin that did not register, in the order they were found; allocated in a. */
void ds_registry_problems(ds_arena_t *a, ds_registry_problem_t **out, size_t *n);

/*
 * Sets the backend settings file (DUCKSTORE_BACKEND_SETTINGS_FILE) and reads
 * it: lines DUCKSTORE_BE_<BACKEND>_<KEY>=value ('#' comments, blank lines,
 * optional quotes around the value). A setting there wins over the
 * environment. NULL or "" = none. A file that cannot be read or has a bad
 * line is DS_INVALID_ARGUMENT naming the file and line; nothing changes.
 */
ds_status_t ds_registry_settings_file(const char *path, ds_err_t *err);

/* True when the backend's setting has a value (settings file or environment; never its default). */
bool ds_registry_setting_configured(const char *backend, const char *key);

/*
 * Re-reads the settings file, then: a registered backend called name stays
 * as it is (DS_OK; it keeps the settings it opened with); a plugin that did
 * not register, found by its declared name or file name, is loaded again
 * (DS_OK once it registers; DS_UNAVAILABLE with the reason when it still
 * cannot start). DS_NOT_FOUND when neither; DS_INVALID_ARGUMENT for a bad
 * settings file (nothing retried). *name_out (may be NULL) receives the
 * registered name.
 */
ds_status_t ds_registry_reload(const char *name, const char **name_out, ds_err_t *err);

/* Closes and forgets every backend (shutdown). */
void ds_registry_shutdown(void);

#endif
