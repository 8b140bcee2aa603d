/*
 * registry.h - the backends duckstore knows, by name.
 *
 * DESIGN
 * Built-in backends and plugins register through the same call
 * (ds_registry_add with an entry function). The registry checks the ABI
 * version and struct size, rejects duplicate names, opens the backend, and
 * keeps it until unregistered. Lookups pin a backend (refcount) so it cannot
 * be unloaded under a running request; ds_registry_put unpins.
 * Thread-safe: one rwlock guards the list.
 */
#ifndef DS_BACKEND_REGISTRY_H
#define DS_BACKEND_REGISTRY_H

#include "core/status.h"
#include "duckstore/backend.h"

typedef struct ds_backend {
    const ds_backend_ops_t *ops;
    void *self;
} ds_backend_t;

/* The host function table given to every backend. Valid after ds_registry_init. */
const ds_host_api_t *ds_registry_host(void);
/* Prepares the registry with the host settings backends read. */
ds_status_t ds_registry_init(const char *data_dir, int64_t memory_limit_bytes, int64_t threads,
                             int64_t max_open_projects, ds_err_t *err);
/* Registers the backend entry returns; handle (dlopen handle or NULL) is closed on unregister. */
ds_status_t ds_registry_add(ds_backend_entry_fn entry, void *handle, ds_err_t *err);
/* Pins backend name into *out. DS_NOT_FOUND when no such backend. Unpin with ds_registry_put. */
ds_status_t ds_registry_get(const char *name, ds_backend_t **out, ds_err_t *err);
void ds_registry_put(ds_backend_t *b);
/* Calls cb for each registered backend (under the read lock; cb must not call the registry). */
void ds_registry_each(void (*cb)(ds_backend_t *b, void *ud), void *ud);
/* Closes and forgets every backend (shutdown). */
void ds_registry_shutdown(void);

#endif
