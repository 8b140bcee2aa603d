/*
 * caps.h - backend management commands (GET/POST/DELETE /backends): list the
 * registered backends with capabilities, health and settings, load a plugin
 * from the plugin directory, unload one that no project uses. Admin only.
 *
 * (The capability checks other commands use, ds_cmd_require_*, are in
 * cmd/internal.h: they are not for transports.)
 */
#ifndef DS_CMD_CAPS_H
#define DS_CMD_CAPS_H

#include "backend/registry.h"
#include "cmd/cmd.h"

typedef struct {
    const ds_be_setting_t *def; /* the backend's declaration */
    const char *env;            /* DUCKSTORE_BE_<NAME>_<KEY> */
    bool configured;            /* set in the settings file or environment (its value is never shown: it may be a secret) */
} ds_backend_setting_t;

/* One registered backend as GET /backends shows it. Valid until the request ends (arena; backend pinned). */
typedef struct {
    const char *name;
    const char *version;     /* may be NULL */
    const char *description; /* may be NULL */
    uint64_t capabilities;   /* DS_CAP_* bits */
    ds_be_caps_t caps;       /* zero-extended copy; has_caps false when the backend gives none */
    bool has_caps;
    ds_backend_setting_t *settings;
    size_t n_settings;
    ds_status_t health;     /* DS_OK, or why not (usually DS_UNAVAILABLE) */
    const char *health_message;
    ds_backend_meta_t meta;
    int64_t projects; /* catalog projects on this backend, any state */
    /*
     * "ready" (registered, healthy), "unhealthy" (registered, health fails),
     * "unconfigured" (a plugin found that lacks a setting or has one of the
     * wrong type), "failed" (a plugin found that cannot load or start).
     */
    const char *status;
    const char *last_error; /* why it is not ready; NULL when ready */
    bool loaded;            /* registered: capabilities, version, health and meta are valid */
    int64_t failed_at;      /* not loaded: unix seconds of the last attempt */
} ds_backend_desc_t;

/*
 * Every registered backend, in registration order, health checked now; then
 * every plugin found that did not register (unconfigured or failed).
 */
ds_status_t ds_cmd_backend_list(ds_ctx_t *ctx, ds_backend_desc_t **items, size_t *n);
/*
 * Re-reads the backend settings file and loads plugin name again if it did
 * not register (by backend or file name); describes the result. 404 unknown,
 * 400 bad settings file, 503 when it still cannot start (the list shows why).
 */
ds_status_t ds_cmd_backend_reload(ds_ctx_t *ctx, const char *name, ds_backend_desc_t *out);
/* Loads the plugin at path (inside the plugin directory) and describes it. Any failure is a 400. */
ds_status_t ds_cmd_backend_load(ds_ctx_t *ctx, const char *path, ds_backend_desc_t *out);
/* Unloads plugin name: 404 unknown, 409 built in / used by a project / busy. */
ds_status_t ds_cmd_backend_unload(ds_ctx_t *ctx, const char *name);

/* The name of one DS_CAP_* bit ("typed_columns"), or NULL for an unknown bit. */
const char *ds_cap_name(uint64_t bit);
/* The name of a filter operator ("eq", "gt", ...), or NULL. */
const char *ds_filter_op_name(int op);

#endif
