/*
 * duckdb_backend.h - entry point of the built-in DuckDB backend. The registry
 * calls it exactly as it calls a plugin's ds_backend_entry.
 */
#ifndef DS_BE_DUCKDB_H
#define DS_BE_DUCKDB_H

#include "duckstore/backend.h"

const ds_backend_ops_t *ds_be_duckdb_entry(const ds_host_api_t *host);

#endif
