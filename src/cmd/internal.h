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
/* Holds the write slot for key until the ctx arena dies. */
ds_status_t ds_cmd_enter(ds_ctx_t *ctx, const char *key);
/* Enters the project's catalog (DDL) slot. */
ds_status_t ds_cmd_enter_ddl(ds_ctx_t *ctx, const char *project);
/* Enters the table's data slot. */
ds_status_t ds_cmd_enter_table(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);
/* Current unix time in seconds. */
int64_t ds_now(void);

#endif
