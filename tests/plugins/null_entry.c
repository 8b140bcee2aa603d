/* null_entry.c - a test plugin whose entry function refuses to start (returns NULL after logging why). */
#include <stddef.h>

#include "duckstore/backend.h"

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *h)
{
    h->log(2, "null_entry", "refusing to start: this host is not supported");
    return NULL;
}
