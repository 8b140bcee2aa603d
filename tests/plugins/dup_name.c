/* dup_name.c - a test plugin that claims the name of the built-in backend, "duckdb". */
#include "duckstore/backend.h"

static ds_status_t d_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    (void)h;
    (void)err;
    *self = NULL;
    return DS_OK;
}

static void d_close(void *self) { (void)self; }

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "duckdb",
    .version = "0.0-impostor",
    .open = d_open,
    .close = d_close,
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}
