/*
 * shares.h - shared buckets, linked buckets and the read-only role's denials,
 * in the global catalog (tables "bucket_shares", "bucket_links",
 * "readonly_revoked" of catalog.duckdb).
 *
 * A share says who may link a bucket of a project: every project
 * ("organization") or the listed ones. A link says that a bucket id of a
 * target project reads a source project's bucket. Neither touches a project
 * file: every record lives here alone, so no write spans two files
 * (cmd/share.c gives the order of the steps where a command also changes a
 * project file). Bucket ids are matched regardless of letter case, as the
 * engine matches them. Thread-safe: every function holds the catalog mutex
 * for one statement.
 */
#ifndef DS_CATALOG_SHARES_H
#define DS_CATALOG_SHARES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"

typedef struct {
    const char *project;
    const char *bucket;
    bool organization;      /* every project may link it */
    const char **targets;   /* otherwise these projects (stored spellings) */
    size_t n_targets;
    int64_t created_at;
} ds_share_rec_t;

typedef struct {
    const char *project; /* the target: the project that reads through the link */
    const char *bucket;  /* the link's bucket id in the target */
    const char *source_project;
    const char *source_bucket;
    int64_t created_at;
} ds_link_rec_t;

/* Creates the tables when missing (service start). */
ds_status_t ds_catalog_shares_init(ds_err_t *err);

/* Replaces the share of project's bucket by rec. */
ds_status_t ds_catalog_share_put(const ds_share_rec_t *rec, ds_err_t *err);
/* The share of project's bucket into *out (arena) and *found; DS_OK also when there is none. */
ds_status_t ds_catalog_share_get(ds_arena_t *arena, const char *project, const char *bucket, ds_share_rec_t *out,
                                 bool *found, ds_err_t *err);
/* Every share of project (bucket NULL: all of its buckets), ordered by bucket. */
ds_status_t ds_catalog_share_list(ds_arena_t *arena, const char *project, ds_share_rec_t **items, size_t *n,
                                  ds_err_t *err);
/* Removes the share; *removed says whether there was one. */
ds_status_t ds_catalog_share_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err);
/* True when rec lets project link the bucket. */
bool ds_catalog_share_includes(const ds_share_rec_t *rec, const char *project);

/* Inserts a link; DS_ALREADY_EXISTS when the target has a link of that bucket id. */
ds_status_t ds_catalog_link_insert(const ds_link_rec_t *rec, ds_err_t *err);
/* The link of project's bucket id into *out (arena) and *found. */
ds_status_t ds_catalog_link_get(ds_arena_t *arena, const char *project, const char *bucket, ds_link_rec_t *out,
                                bool *found, ds_err_t *err);
/* The links whose target is project, ordered by bucket. */
ds_status_t ds_catalog_link_list(ds_arena_t *arena, const char *project, ds_link_rec_t **items, size_t *n,
                                 ds_err_t *err);
/* The links reading source_project's bucket (NULL: any of its buckets), ordered by target. */
ds_status_t ds_catalog_link_list_source(ds_arena_t *arena, const char *source_project, const char *source_bucket,
                                        ds_link_rec_t **items, size_t *n, ds_err_t *err);
/* Removes the link; *removed says whether there was one. */
ds_status_t ds_catalog_link_delete(const char *project, const char *bucket, bool *removed, ds_err_t *err);

/* Read-only role: workspaces of project may read bucket unless revoked (set) here. */
ds_status_t ds_catalog_readonly_set(const char *project, const char *bucket, bool revoked, ds_err_t *err);
ds_status_t ds_catalog_readonly_revoked(const char *project, const char *bucket, bool *revoked, ds_err_t *err);

/*
 * Forgets everything of a deleted project: its shares, its links, the links
 * of other projects to its buckets, and its read-only denials.
 */
ds_status_t ds_catalog_shares_forget(const char *project, ds_err_t *err);

#endif
