/*
 * bad_config.c - a test plugin with settings the registry checks before open:
 * ENDPOINT is required (no default), RETRIES must be an integer and VERBOSE a
 * boolean. With DUCKSTORE_BE_BAD_CONFIG_ENDPOINT unset, or RETRIES/VERBOSE set
 * to a value of the wrong type, it must not register. With good settings it
 * registers (so the test knows the failure was the configuration).
 */
#include "duckstore/backend.h"

static const ds_be_setting_t settings[] = {
    {.key = "ENDPOINT", .type = DS_SETTING_STRING, .required = true, .help = "where the service listens"},
    {.key = "RETRIES", .type = DS_SETTING_INT, .default_value = "3", .help = "attempts per call"},
    {.key = "VERBOSE", .type = DS_SETTING_BOOL, .default_value = "false", .help = "log every call"},
};

static ds_status_t b_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    (void)h;
    (void)err;
    *self = NULL;
    return DS_OK;
}

static void b_close(void *self) { (void)self; }

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "bad_config",
    .version = "0.1",
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .open = b_open,
    .close = b_close,
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}
