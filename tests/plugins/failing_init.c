/* failing_init.c - a test plugin whose open fails (as a backend whose setup cannot finish would). */
#include "duckstore/backend.h"

static ds_status_t f_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    *self = NULL;
    return h->err_set(err, DS_UNAVAILABLE, "failing_init: cannot reach the licence server");
}

static void f_close(void *self) { (void)self; }

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = "failing_init",
    .version = "0.1",
    .open = f_open,
    .close = f_close,
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}
