/*
 * tiny.c - a test plugin that loads fine and can do almost nothing.
 *
 * It registers as "tiny", keeps projects only in memory, and declares no
 * capability bits, so the conformance suite can check that a command needing
 * a capability answers 501 naming the backend, that a backend used by a
 * project cannot be unloaded (409), and that one unused can (204) and loads
 * again. Every method not set here is NULL ("not provided").
 */
#include <stdlib.h>
#include <string.h>

#include "duckstore/backend.h"

static const ds_host_api_t *host;

static const ds_be_setting_t settings[] = {
    {.key = "GREETING", .type = DS_SETTING_STRING, .required = false, .default_value = "hello",
     .help = "a harmless optional setting"},
};

static const ds_be_caps_t caps = {
    .struct_size = sizeof(ds_be_caps_t),
    .case_rule = DS_CASE_SENSITIVE,
    .unsupported_filter_ops = DS_FILTER_OP_BIT(DS_OP_GT) | DS_FILTER_OP_BIT(DS_OP_LT),
    .max_name_length = 16,
    .notes = "test plugin: projects only",
};

static ds_status_t t_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    (void)err;
    host = h;
    *self = calloc(1, 1);
    host->log(1, "tiny", "opened; greeting %s", host->setting("tiny", "GREETING"));
    return DS_OK;
}

static void t_close(void *self) { free(self); }

static ds_status_t t_health(void *self, ds_err_t *err)
{
    (void)self;
    (void)err;
    return DS_OK;
}

static ds_status_t t_project_create(void *self, ds_be_call_t *call)
{
    (void)self;
    (void)call;
    return DS_OK;
}

static ds_status_t t_project_drop(void *self, ds_be_call_t *call)
{
    (void)self;
    (void)call;
    return DS_OK;
}

static ds_status_t t_project_stats(void *self, ds_be_call_t *call, ds_be_project_stats_t *out)
{
    (void)self;
    (void)call;
    memset(out, 0, sizeof(*out));
    return DS_OK;
}

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "tiny",
    .version = "0.1",
    .capabilities = 0,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .open = t_open,
    .close = t_close,
    .health = t_health,
    .project_create = t_project_create,
    .project_drop = t_project_drop,
    .project_stats = t_project_stats,
    .caps = &caps,
    .description = "a test plugin without capabilities",
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}
