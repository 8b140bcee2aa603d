/*
 * catalog.h - the global catalog: which projects exist, on which backend,
 * and the hashes of their API keys.
 *
 * DESIGN
 * Stored in <data>/catalog.duckdb, a DuckDB file of its own instance (one
 * owner, like every file). All projects are also held in memory, so
 * authentication and lookups never touch disk; writes go to the file first and
 * then to memory, under one mutex.
 *
 * Crash safety: a project row is written with state "creating" before its
 * storage exists and set "ready" after; deletion sets "deleting" before the
 * storage is removed and drops the row after. The recovery pass at startup
 * (src/cmd/service.c) finishes or undoes whatever a crash interrupted, moving
 * what it takes out of service to the quarantine, never deleting it.
 *
 * Every project's storage also holds a copy of its record (the backend's
 * project_meta_put), so a lost catalog is rebuilt from the project files. The
 * catalog wins whenever both exist; the copy is only read for a rebuild.
 */
#ifndef DS_CATALOG_CATALOG_H
#define DS_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ident.h"
#include "core/keys.h"
#include "core/status.h"

typedef enum { DS_PROJECT_CREATING = 0, DS_PROJECT_READY = 1, DS_PROJECT_DELETING = 2 } ds_project_state_t;

typedef struct {
    char id[DS_PROJECT_ID_MAX + 1];
    char name[256];
    char backend[64];
    char key_hash[DS_KEY_HASH_HEX];
    ds_project_state_t state;
    int64_t created_at;
    int64_t updated_at;
    /* Days of history kept for time travel (Keboola's dataRetentionTime); 0: no time travel. */
    int32_t retention_days;
} ds_project_rec_t;

/* The retention a project gets when its creator names none (days). */
#define DS_RETENTION_DEFAULT_DAYS 7 /* also the catalog column's DEFAULT (catalog.c) */
/* The longest retention a project may ask for (days). */
#define DS_RETENTION_MAX_DAYS 3650

/* Opens (creating when missing) <data_dir>/catalog.duckdb. */
ds_status_t ds_catalog_open(const char *data_dir, ds_err_t *err);
/* Closes it cleanly (checkpoint). */
void ds_catalog_close(void);
/* True while the catalog is open. */
bool ds_catalog_ready(void);

/* Inserts a project in state CREATING. DS_ALREADY_EXISTS when the id is taken. */
ds_status_t ds_catalog_project_insert(const ds_project_rec_t *rec, ds_err_t *err);
ds_status_t ds_catalog_project_set_state(const char *id, ds_project_state_t state, ds_err_t *err);
ds_status_t ds_catalog_project_set_name(const char *id, const char *name, int64_t updated_at, ds_err_t *err);
/* Replaces a READY project's main key hash (key rotation; the old hash is kept by catalog/apikeys.h). */
ds_status_t ds_catalog_project_set_key_hash(const char *id, const char *key_hash, int64_t updated_at, ds_err_t *err);
/* Sets a READY project's retention (days). */
ds_status_t ds_catalog_project_set_retention(const char *id, int32_t days, int64_t updated_at, ds_err_t *err);
ds_status_t ds_catalog_project_delete(const char *id, ds_err_t *err);
/* Copies the project (any state) into out. DS_NOT_FOUND when absent. */
ds_status_t ds_catalog_project_get(const char *id, ds_project_rec_t *out, ds_err_t *err);
/* Ids are unique regardless of case: the stored spelling of id into out; false when no project has it. */
bool ds_catalog_project_spelling(const char *id, char *out, size_t n);
/* READY projects ordered by id, copied into an arena array. */
ds_status_t ds_catalog_project_list(ds_arena_t *arena, ds_project_rec_t **items, size_t *n, ds_err_t *err);
/* All projects in any state (for recovery), copied into an arena array. */
ds_status_t ds_catalog_project_list_all(ds_arena_t *arena, ds_project_rec_t **items, size_t *n, ds_err_t *err);
/* The READY project whose key hash matches key (constant-time compare), into id. */
bool ds_catalog_project_by_key(const char *key, char id[DS_PROJECT_ID_MAX + 1]);
/* Number of READY projects. */
int64_t ds_catalog_project_count(void);

/*
 * Runs cb with the catalog's DuckDB connection (conn is a duckdb_connection)
 * under the catalog mutex, for subsystems that keep their own tables in the
 * catalog file (the Storage Files index, src/catalog/files.c). cb must be
 * short, must not call any other ds_catalog_* function (the mutex is not
 * recursive) and must leave no transaction open. DS_UNAVAILABLE when the
 * catalog is closed. Thread-safe.
 */
typedef ds_status_t (*ds_catalog_conn_cb)(void *conn, void *ud, ds_err_t *err);
ds_status_t ds_catalog_with_conn(ds_catalog_conn_cb cb, void *ud, ds_err_t *err);

/*
 * Named one-time markers kept in the catalog file (e.g. "a copy of every
 * project's record is in its project file"). get is false when unset or
 * unreadable. Thread-safe.
 */
bool ds_catalog_flag_get(const char *name);
ds_status_t ds_catalog_flag_set(const char *name, ds_err_t *err);

#endif
