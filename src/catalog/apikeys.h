/*
 * apikeys.h - a project's additional API keys and the retired keys still in
 * their grace period, kept in the global catalog (table api_keys).
 *
 * DESIGN
 * A project's first key (returned when the project is created) stays in the
 * projects table (catalog.h) and is shown as key id "main" with scope admin.
 * Every other key is one row here: its id, the SHA-256 hex of its secret, its
 * scope (admin, read, branch), the branch a branch-scoped key may write, a
 * description and its creation time. Rotating a key replaces its hash and
 * keeps the old hash as a "retired" row of the same id and scope that
 * authenticates until expires_at; retired rows are never listed.
 *
 * All rows are also held in memory (like the projects), so authentication
 * reads only memory. It compares the presented key's hash with every row
 * without an early exit (constant time in the secret). Writes go to the file
 * first, then to memory. Thread-safe; takes the catalog mutex
 * (ds_catalog_with_conn) and then this file's own lock, in that order.
 */
#ifndef DS_CATALOG_APIKEYS_H
#define DS_CATALOG_APIKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"

typedef enum { DS_KEY_SCOPE_ADMIN = 1, DS_KEY_SCOPE_READ = 2, DS_KEY_SCOPE_BRANCH = 3 } ds_key_scope_t;

#define DS_APIKEY_ID_MAX 40
#define DS_APIKEY_BRANCH_MAX 128

typedef struct {
    char project_id[DS_PROJECT_ID_MAX + 1];
    char id[DS_APIKEY_ID_MAX + 1];
    char key_hash[DS_KEY_HASH_HEX];
    ds_key_scope_t scope;
    char branch[DS_APIKEY_BRANCH_MAX + 1]; /* branch scope: the branch it may write; "" otherwise */
    char description[256];
    int64_t created_at;
    bool retired;       /* the previous secret of a rotated key */
    int64_t expires_at; /* retired: unix seconds after which it no longer authenticates */
} ds_apikey_rec_t;

/* "admin", "read", "branch". */
const char *ds_key_scope_name(ds_key_scope_t scope);
/* Parses a scope name; false when it is none of them. */
bool ds_key_scope_parse(const char *name, ds_key_scope_t *out);

/* Creates the table when missing and loads every row; after ds_catalog_open. */
ds_status_t ds_catalog_apikeys_open(ds_err_t *err);
/* Frees the rows in memory (ds_catalog_close closes the file). */
void ds_catalog_apikeys_close(void);
/* Stores a new key. DS_ALREADY_EXISTS when the project has a key of that id. */
ds_status_t ds_catalog_apikey_insert(const ds_apikey_rec_t *rec, ds_err_t *err);
/* The project's current (not retired) keys ordered by creation, into an arena array. */
ds_status_t ds_catalog_apikey_list(ds_arena_t *arena, const char *project, ds_apikey_rec_t **items, size_t *n,
                                   ds_err_t *err);
/* The project's current key id into out; DS_NOT_FOUND when none. */
ds_status_t ds_catalog_apikey_get(const char *project, const char *id, ds_apikey_rec_t *out, ds_err_t *err);
/* Removes the key id of the project, retired secrets included; DS_NOT_FOUND when it has none. */
ds_status_t ds_catalog_apikey_delete(const char *project, const char *id, ds_err_t *err);
/*
 * Keeps old_hash (the secret being replaced) of key id as a retired row with
 * the given scope and branch, valid until expires_at; replaces an earlier
 * retired secret of the same key. For the main key the caller changes the
 * project's hash (ds_catalog_project_set_key_hash); for others new_hash (may
 * be NULL) becomes the key's hash.
 */
ds_status_t ds_catalog_apikey_rotate(const char *project, const char *id, const char *new_hash, const char *old_hash,
                                     ds_key_scope_t scope, const char *branch, int64_t expires_at, ds_err_t *err);
/* Drops every key of the project (the project is being deleted). */
ds_status_t ds_catalog_apikeys_drop_project(const char *project, ds_err_t *err);
/*
 * The key row whose hash matches key, current or retired and not expired at
 * now, into out. Compares with every row (constant time in the key).
 */
bool ds_catalog_apikey_find(const char *key, int64_t now, ds_apikey_rec_t *out);

#endif
