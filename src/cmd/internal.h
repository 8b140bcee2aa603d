/*
 * internal.h - helpers shared by the command files (not for transports).
 */
#ifndef DS_CMD_INTERNAL_H
#define DS_CMD_INTERNAL_H

#include "backend/be.h"
#include "cmd/cmd.h"
#include "core/wq.h"

/* An open project: its record and its pinned backend (unpinned with the ctx arena). */
typedef struct {
    ds_project_rec_t rec;
    ds_backend_t *be;
    ds_be_call_t call;
} ds_proj_t;

/* Authorizes ctx for project id (admin or that project's key), and opens it. */
ds_status_t ds_cmd_open_project(ds_ctx_t *ctx, const char *id, ds_proj_t *out);
/*
 * Pins project id for the request until the ctx arena dies: a delete of the
 * project waits for it. DS_NOT_FOUND while the project is being created or
 * deleted. Called by ds_cmd_open_project (project.c).
 */
ds_status_t ds_cmd_project_pin(ds_ctx_t *ctx, const char *id);
/* Holds the write slot for key until the ctx arena dies. */
ds_status_t ds_cmd_enter(ds_ctx_t *ctx, const char *key);
/* Enters the project's catalog (DDL) slot. */
ds_status_t ds_cmd_enter_ddl(ds_ctx_t *ctx, const char *project);
/* Enters the table's data slot. */
ds_status_t ds_cmd_enter_table(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);
/* Current unix time in seconds. */
int64_t ds_now(void);

/* ---- capability checks (caps.c) ----
 * Each answers DS_OK, or DS_UNSUPPORTED (501 / gRPC UNIMPLEMENTED) naming the
 * project's backend and the capability it lacks. Call after opening the project. */
/* Every bit of cap; what names the operation ("profile") for the message. */
ds_status_t ds_cmd_require_cap(ds_ctx_t *ctx, const ds_proj_t *proj, uint64_t cap, const char *what);
/* Import: DS_CAP_IMPORT, the file format (files), the source filters (table source). */
ds_status_t ds_cmd_require_import(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_import_t *in);
/* Export: DS_CAP_EXPORT, the format, the filters and ordering. */
ds_status_t ds_cmd_require_export(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_export_t *in);
/* Filter operators and data_type casts of where/order (either may be NULL/0). */
ds_status_t ds_cmd_require_filters(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_where_t *where,
                                   const ds_order_t *order, size_t n_order);
/* DS_CAP_TYPED_COLUMNS when any column's (canonical) type is not VARCHAR. */
ds_status_t ds_cmd_require_types(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_be_column_t *columns, size_t n);
/* DS_CAP_SCHEMA_CHANGES, plus DS_CAP_TYPED_COLUMNS when type (may be NULL) is not VARCHAR. */
ds_status_t ds_cmd_require_schema_change(ds_ctx_t *ctx, const ds_proj_t *proj, const char *type);

#endif
