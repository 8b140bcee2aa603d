/*
 * files.h - Storage Files: the project's file store (Keboola's S3 replacement).
 *
 * DESIGN
 * Each project has a files area, <data>/files/project_<id>/: objects/<key>
 * holds the files by key (name), staging/ holds uploads in progress. The file
 * index (id, key, size, sha256, times, flags) is in the global catalog.
 * Every path built from a user-given key goes through one confinement
 * function: the result must stay inside the project's area after resolving
 * symlinks and "..", otherwise the request is a 400 and nothing is touched.
 *
 * Uploads stream to staging/ (never held whole in memory), are hashed while
 * they arrive, and are renamed into objects/ and indexed only when complete,
 * so a failed or abandoned upload leaves no visible file. A background sweep
 * removes expired files and staging leftovers older than a day.
 *
 * Thread-safety: all functions may be called concurrently.
 */
#ifndef DS_CMD_FILES_H
#define DS_CMD_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd/cmd.h"

typedef struct {
    const char *id;   /* opaque, unique */
    const char *name; /* the key: "orders.csv", "exports/2026/x.csv" */
    int64_t size;
    const char *sha256; /* 64 hex digits */
    int64_t created_at;
    int64_t expires_at; /* 0 when permanent */
    bool permanent;
    bool sliced; /* the file is a manifest {"entries":[{"url":...}]} */
} ds_file_t;

typedef struct {
    const char *name;
    bool overwrite;
    bool permanent;
    bool sliced;
} ds_file_upload_in_t;

typedef struct ds_upload ds_upload_t;

/* Starts the background sweep (expired files, abandoned staging). */
ds_status_t ds_files_start(const ds_config_t *cfg, ds_err_t *err);
void ds_files_stop(void);

/* Upload in three steps; abort (accepts NULL) frees an unfinished upload and its staging file. */
ds_status_t ds_cmd_file_upload_begin(ds_ctx_t *ctx, const char *project, const ds_file_upload_in_t *in,
                                     ds_upload_t **up);
ds_status_t ds_cmd_file_upload_write(ds_ctx_t *ctx, ds_upload_t *up, const void *data, size_t n);
ds_status_t ds_cmd_file_upload_finish(ds_ctx_t *ctx, ds_upload_t *up, ds_file_t *out);
void ds_cmd_file_upload_abort(ds_upload_t **up);

ds_status_t ds_cmd_file_list(ds_ctx_t *ctx, const char *project, const char *prefix, ds_file_t **items, size_t *n);
ds_status_t ds_cmd_file_get(ds_ctx_t *ctx, const char *project, const char *file_id, ds_file_t *out);
ds_status_t ds_cmd_file_delete(ds_ctx_t *ctx, const char *project, const char *file_id);
/* Opens a file for download: *fd (caller closes) and its info. */
ds_status_t ds_cmd_file_open(ds_ctx_t *ctx, const char *project, const char *file_id, int *fd, ds_file_t *out);

/*
 * For import: resolves a file reference to local absolute paths (arena).
 * Exactly one of file_id / file_key is set. A key ending in "/" is a
 * directory (every file under it, sorted); a sliced file (manifest) expands to
 * its entries, each of which must be a file of the same project (entry urls
 * are keys, or "s3://<anything>/<key>"). Missing files are DS_NOT_FOUND
 * (Keboola code 4201); anything leaving the project's area is DS_INVALID_ARGUMENT.
 * The caller must already be authorized for project.
 */
ds_status_t ds_files_resolve(ds_ctx_t *ctx, const char *project, const char *file_id, const char *file_key,
                             const char ***paths, size_t *n);
/* For export: a new empty private directory inside the project's area (arena path). */
ds_status_t ds_files_scratch_dir(ds_ctx_t *ctx, const char *project, const char **dir);
/*
 * For export: moves local files (inside the project's area) into the store.
 * n == 1 and !sliced: one file named name. Otherwise each path becomes
 * "<name>.part<NNNN>" and name itself becomes the manifest listing them.
 * *out describes the file named name. Removes the scratch directory if empty.
 */
ds_status_t ds_files_adopt(ds_ctx_t *ctx, const char *project, const char *const *paths, size_t n, const char *name,
                           bool sliced, bool permanent, ds_file_t *out);
/* Removes every file of a project (project deletion). */
ds_status_t ds_files_drop_project(const char *data_dir, const char *project, ds_err_t *err);

#endif
