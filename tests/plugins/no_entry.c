/* no_entry.c - a test plugin that exports no DS_BACKEND_ENTRY_SYMBOL (a misspelled entry instead). */
#include "duckstore/backend.h"

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry_point(const ds_host_api_t *h)
{
    (void)h;
    return NULL;
}
