/*
 * workspaces.h - workspace records in the global catalog (table
 * "workspaces" of catalog.duckdb).
 *
 * A workspace belongs to one project (and branch); its SQL runs in a sandbox
 * of its own (src/ws/sandbox.h). The catalog keeps who may log in to it: a
 * user name and the SHA-256 of its password (passwords are random, 43
 * characters of base64, shown once; only the hash is stored). The records
 * are also kept in memory (a workspace request reads its record without a
 * catalog query; workspaces.c DESIGN). Thread-safe: every function holds the
 * catalog mutex for its statements and the records in memory.
 */
#ifndef DS_CATALOG_WORKSPACES_H
#define DS_CATALOG_WORKSPACES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ident.h"
#include "core/keys.h"
#include "core/status.h"

#define DS_WS_ID_MAX 64

typedef struct {
    char id[DS_WS_ID_MAX + 1];
    char project[DS_PROJECT_ID_MAX + 1];
    char branch[DS_WS_ID_MAX + 1];
    char user[DS_WS_ID_MAX + DS_PROJECT_ID_MAX + 8];
    char password_hash[DS_KEY_HASH_HEX];
    char object_name[DS_WS_ID_MAX + 8];
    int64_t created_at;
} ds_ws_rec_t;

/*
 * Creates the tables when missing and forgets the records in memory (service
 * start: after every ds_catalog_open, so they are read from that catalog).
 */
ds_status_t ds_catalog_ws_init(ds_err_t *err);
/* Inserts rec; DS_ALREADY_EXISTS when the project has a workspace of that id. */
ds_status_t ds_catalog_ws_insert(const ds_ws_rec_t *rec, ds_err_t *err);
/* The workspace id (any case) of project into out, from memory; DS_NOT_FOUND when absent. */
ds_status_t ds_catalog_ws_get(const char *project, const char *id, ds_ws_rec_t *out, ds_err_t *err);
/* The project's workspaces ordered by id, in an arena array. */
ds_status_t ds_catalog_ws_list(ds_arena_t *arena, const char *project, ds_ws_rec_t **items, size_t *n, ds_err_t *err);
ds_status_t ds_catalog_ws_set_password(const char *project, const char *id, const char *hash, ds_err_t *err);
/* Deletes the workspace's record and its grants. */
ds_status_t ds_catalog_ws_delete(const char *project, const char *id, ds_err_t *err);

/*
 * Grants (table "workspace_grants"): workspace id of project may read the
 * storage of project target, read-only. Adding an existing grant changes
 * nothing; removing a missing one is DS_NOT_FOUND.
 */
ds_status_t ds_catalog_ws_grant_add(const char *project, const char *id, const char *target, ds_err_t *err);
ds_status_t ds_catalog_ws_grant_remove(const char *project, const char *id, const char *target, ds_err_t *err);
/* *granted: whether the grant exists (one catalog read; called at every storage scan bind). */
ds_status_t ds_catalog_ws_grant_has(const char *project, const char *id, const char *target, bool *granted,
                                    ds_err_t *err);
/* The projects the workspace may read, ordered, in an arena array of strings. */
ds_status_t ds_catalog_ws_grant_list(ds_arena_t *arena, const char *project, const char *id, char ***targets,
                                     size_t *n, ds_err_t *err);
/* Removes every grant to target (the project is deleted: a later project of that id is another project). */
ds_status_t ds_catalog_ws_grant_forget(const char *target, ds_err_t *err);

#endif
