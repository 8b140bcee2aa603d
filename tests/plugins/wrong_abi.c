/* wrong_abi.c - a test plugin built for a backend ABI version this server does not speak. */
#include <stdlib.h>

#include "duckstore/backend.h"

static ds_status_t w_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    (void)h;
    (void)err;
    *self = NULL;
    return DS_OK;
}

static void w_close(void *self) { (void)self; }

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION + 41,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "wrong_abi",
    .version = "0.1",
    .open = w_open,
    .close = w_close,
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}
