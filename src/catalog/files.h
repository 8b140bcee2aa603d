/*
 * files.h - the Storage Files index in the global catalog.
 *
 * DESIGN
 * One table, "files", in <data>/catalog.duckdb holds a row per file: its id,
 * project, key (name), size, sha256, times and flags, and a state. A row in
 * state STAGING is a prepared upload whose content has not arrived yet; a
 * READY row is a file. The bytes live on disk (src/cmd/files.c); this module
 * only stores and queries the rows, through the catalog's connection and
 * mutex (ds_catalog_with_conn), one short statement or transaction at a time.
 *
 * Invariants kept by the caller (src/cmd/files.c, under its files lock): at
 * most one READY row per (project, name); ids are unique. There are no SQL
 * constraints: DuckDB's index checks on delete-then-insert within one
 * transaction are stricter than needed, and the caller serializes changes.
 *
 * Visibility: a READY row is visible while expires_at is 0 (permanent) or in
 * the future; expired rows are filtered out by every read meant for users,
 * before the sweep removes them.
 *
 * Thread-safe: every function takes the catalog mutex for its statement.
 */
#ifndef DS_CATALOG_FILES_H
#define DS_CATALOG_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ident.h"
#include "core/status.h"

#define DS_FILE_ID_HEX 32 /* file ids: 16 random bytes as lowercase hex */

typedef enum { DS_FILE_STAGING = 0, DS_FILE_READY = 1 } ds_file_state_t;

typedef struct {
    char id[DS_FILE_ID_HEX + 1];
    char project[DS_PROJECT_ID_MAX + 1];
    const char *name; /* the key; arena copy (or the caller's string when inserting) */
    int64_t size;
    char sha256[65]; /* "" for a staging row */
    int64_t created_at;
    int64_t expires_at; /* 0 = never; for STAGING rows: when the prepared upload is dropped */
    bool permanent;
    bool sliced;
    bool overwrite; /* STAGING rows: the prepared upload may replace an existing key */
    ds_file_state_t state;
} ds_file_rec_t;

/* Creates the table when missing. Called once at startup (ds_files_start). */
ds_status_t ds_catalog_files_init(ds_err_t *err);

/* The row with this id in project, any state, into out (name in arena). DS_NOT_FOUND when absent. */
ds_status_t ds_catalog_file_get(ds_arena_t *arena, const char *project, const char *id, ds_file_rec_t *out,
                                ds_err_t *err);
/* The READY row named name in project (expired or not). DS_NOT_FOUND when absent. */
ds_status_t ds_catalog_file_by_name(ds_arena_t *arena, const char *project, const char *name, ds_file_rec_t *out,
                                    ds_err_t *err);
/*
 * The visible READY rows of project (not expired at now) whose name starts with
 * prefix (NULL or "" = all), ordered by name, as an arena array.
 */
ds_status_t ds_catalog_file_list(ds_arena_t *arena, const char *project, const char *prefix, int64_t now,
                                 ds_file_rec_t **items, size_t *n, ds_err_t *err);
/* Every row of project in any state (project NULL: of every project), for reconciliation. */
ds_status_t ds_catalog_file_all(ds_arena_t *arena, const char *project, ds_file_rec_t **items, size_t *n,
                                ds_err_t *err);
/* Rows of any state with 0 < expires_at <= now (expired files, abandoned prepared uploads). */
ds_status_t ds_catalog_file_due(ds_arena_t *arena, int64_t now, ds_file_rec_t **items, size_t *n, ds_err_t *err);

/* Inserts one row as given (prepared uploads). */
ds_status_t ds_catalog_file_insert(const ds_file_rec_t *rec, ds_err_t *err);
/*
 * Publishes READY rows in one transaction: for each rec, first removes the row
 * with the same id (its staging row, if any) and any READY row of the same
 * project and name (the file it replaces), then inserts rec. All or nothing.
 */
ds_status_t ds_catalog_file_publish(const ds_file_rec_t *recs, size_t n, ds_err_t *err);
/* Removes the row with this id in project. DS_NOT_FOUND when absent. */
ds_status_t ds_catalog_file_delete(const char *project, const char *id, ds_err_t *err);
/* Removes every row of project. */
ds_status_t ds_catalog_file_delete_project(const char *project, ds_err_t *err);

#endif
