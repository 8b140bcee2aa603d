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
 * removes expired files (non-permanent files live DUCKSTORE_FILE_TTL), prepared
 * uploads whose content never came (after min(TTL, 1 day)), staging files no
 * upload is writing, and export scratch directories older than a day.
 * Expired files are invisible (not found) from the moment they expire.
 *
 * docs/files.md describes the layout, lifecycle and limits for operators.
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
/*
 * After the catalog was rebuilt from the project files (service.c), before
 * ds_files_start: rebuilds the Storage File index of every project the
 * catalog knows from the sidecars (files/project_<id>/index/<id>.json) whose
 * object is on disk with the recorded size; for a key with several sidecars
 * (a crash during a replace) the newest wins. Prepared uploads that never
 * received their bytes are not recovered (the client prepares again).
 */
ds_status_t ds_files_rebuild_index(const char *data_dir, ds_err_t *err);
void ds_files_stop(void);

/*
 * Upload in three steps. begin authorizes ctx for project, checks the key
 * (400), an existing key without overwrite (409) and opens a staging file.
 * write appends bytes (413 beyond DUCKSTORE_MAX_UPLOAD_BYTES; after any
 * failure every later call fails the same way). finish publishes the file and
 * fills *out (arena strings); a sliced file must be a valid manifest (400).
 *
 * The upload lives in ctx->arena and must be used with that ctx only. abort
 * (accepts NULL and *up == NULL; sets *up to NULL) releases it: before a
 * successful finish it also removes the staging file; after finish it only
 * releases memory. Whatever abort did not release is released when the
 * arena is destroyed, so a forgotten abort leaks nothing.
 */
ds_status_t ds_cmd_file_upload_begin(ds_ctx_t *ctx, const char *project, const ds_file_upload_in_t *in,
                                     ds_upload_t **up);
ds_status_t ds_cmd_file_upload_write(ds_ctx_t *ctx, ds_upload_t *up, const void *data, size_t n);
ds_status_t ds_cmd_file_upload_finish(ds_ctx_t *ctx, ds_upload_t *up, ds_file_t *out);
void ds_cmd_file_upload_abort(ds_upload_t **up);

/*
 * An upload whose bytes are only hashed and counted (the repeat of an
 * idempotent upload, cmd.h ds_cmd_idem_begin_stream): begin authorizes ctx
 * for writes to project and stores nothing; write as above (413 beyond the
 * limit); digest (instead of finish) gives the SHA-256 of the bytes written,
 * 64 hex digits. abort releases it as above.
 */
ds_status_t ds_cmd_file_upload_begin_discard(ds_ctx_t *ctx, const char *project, ds_upload_t **up);
ds_status_t ds_cmd_file_upload_digest(ds_ctx_t *ctx, ds_upload_t *up, char hex[65]);

/*
 * Prepares an upload (a staging entry): *out gets the new file id, the name,
 * the flags, and expires_at = when the entry is dropped if no content came.
 * The file is not visible until its content arrives through
 * ds_cmd_file_upload_begin_prepared + write + finish.
 */
ds_status_t ds_cmd_file_prepare(ds_ctx_t *ctx, const char *project, const ds_file_upload_in_t *in, ds_file_t *out);
/*
 * Starts the content upload of a prepared file (then write/finish/abort as
 * above). DS_NOT_FOUND for an unknown, expired or already completed id;
 * DS_CONFLICT while another upload of the same id is running.
 */
ds_status_t ds_cmd_file_upload_begin_prepared(ds_ctx_t *ctx, const char *project, const char *file_id,
                                              ds_upload_t **up);

/* Lists the visible files whose key starts with prefix (NULL: all), by key; items in the arena. */
ds_status_t ds_cmd_file_list(ds_ctx_t *ctx, const char *project, const char *prefix, ds_file_t **items, size_t *n);
ds_status_t ds_cmd_file_get(ds_ctx_t *ctx, const char *project, const char *file_id, ds_file_t *out);
ds_status_t ds_cmd_file_delete(ds_ctx_t *ctx, const char *project, const char *file_id);
/* Opens a file for download: *fd (caller closes) and its info. */
ds_status_t ds_cmd_file_open(ds_ctx_t *ctx, const char *project, const char *file_id, int *fd, ds_file_t *out);

/*
 * For import: resolves a file reference to local absolute paths (arena).
 * Exactly one of file_id / file_key is set. A key ending in "/" is a
 * directory (every file under it, sorted by key; manifests under it are
 * skipped, they are not data); a sliced file (manifest) expands to
 * its entries, each of which must be a file of the same project (entry urls
 * are keys, or "s3://<anything>/<key>"). Missing files are DS_NOT_FOUND
 * (Keboola code 4201); anything leaving the project's area is DS_INVALID_ARGUMENT.
 * Entries keep the manifest's order; an entry ending in "/" expands like a
 * directory; an entry that is itself a manifest is not expanded again. An
 * empty manifest gives n == 0 (callers decide what importing nothing means),
 * an empty directory DS_NOT_FOUND. Only files the index names (and that
 * have not expired) are ever returned. The paths are not the objects' own
 * but links to them in a scratch directory removed when ctx's arena is, with
 * names free of glob characters, so DuckDB's readers (which expand * ? [ ]
 * in any path) read exactly these files whatever the keys contain.
 * The caller must already be authorized for project.
 */
ds_status_t ds_files_resolve(ds_ctx_t *ctx, const char *project, const char *file_id, const char *file_key,
                             const char ***paths, size_t *n);
/*
 * For export: a new empty private directory (mode 0700) inside the project's
 * area (arena path, resolved). ds_files_adopt removes it once it emptied it;
 * one that is left behind (a failed export) is removed by the sweep after a
 * day, or at the next start.
 */
ds_status_t ds_files_scratch_dir(ds_ctx_t *ctx, const char *project, const char **dir);
/*
 * For export: moves local files (inside the project's area) into the store.
 * n == 1 and !sliced: one file named name. Otherwise each path becomes
 * "<name>.part<NNNN>" and name itself becomes the manifest listing them
 * ({"entries":[{"url":"<name>.part0000"},...]}; n == 0 with sliced gives a
 * manifest without entries). *out describes the file named name. Removes the
 * scratch directory if empty.
 * Paths must be regular files inside the project's area but not among its
 * stored objects (use ds_files_scratch_dir); otherwise DS_INVALID_ARGUMENT.
 * A name (or part name) that a visible file already has is DS_ALREADY_EXISTS,
 * and then nothing moves. All or nothing: on any failure the sources are
 * back where they were.
 */
ds_status_t ds_files_adopt(ds_ctx_t *ctx, const char *project, const char *const *paths, size_t n, const char *name,
                           bool sliced, bool permanent, ds_file_t *out);
/* Removes every file of a project (project deletion): its index rows and its whole area. */
ds_status_t ds_files_drop_project(const char *data_dir, const char *project, ds_err_t *err);

/*
 * The one confinement function (src/cmd/file_path.c). Resolves rel, a
 * relative path of "/"-separated segments, under root (an existing directory,
 * itself resolved with realpath) and checks that every symlink on the way
 * resolves inside root. rel must not be absolute and no segment may be empty,
 * "." or ".." (nor longer than NAME_MAX); "" means root itself.
 *   - The path exists: out gets its fully resolved absolute path.
 *   - It does not exist: DS_NOT_FOUND unless may_be_missing; then out gets the
 *     resolved deepest existing ancestor plus the missing rest (which holds no
 *     symlinks, since it does not exist yet).
 * DS_INVALID_ARGUMENT: bad rel, a symlink resolving outside root, a dangling
 * or looping symlink, or a path longer than outsz. DS_CONFLICT (only with
 * may_be_missing): a non-directory stands where a folder is needed.
 * DS_NOT_FOUND: root or (without may_be_missing) the path does not exist.
 * Pure filesystem reads; thread-safe.
 */
ds_status_t ds_files_confine(const char *root, const char *rel, bool may_be_missing, char *out, size_t outsz,
                             ds_err_t *err);

#endif
