/*
 * quarantine.h - where startup recovery puts what it decides not to keep.
 *
 * DESIGN
 * Recovery never deletes stored data on its own judgement. Whatever it takes
 * out of service (the storage of a half-created or half-deleted project, a
 * project file no catalog row names, the file area of an unknown project, an
 * object the file index does not name) is renamed into a folder of its own,
 * <data>/quarantine/<UTC time>-<reason>[-<n>]/, next to a why.json that says
 * what it was, where it came from and why it was moved, and one JSON log line
 * says the same. Renames stay inside the data directory, so they are atomic
 * and cost no copy. Only the operator deletes quarantined data, with
 * `duckstore quarantine purge`.
 *
 * Not thread-safe against itself on one folder: recovery runs before any
 * request, and the CLI runs on its own.
 */
#ifndef DS_CORE_QUARANTINE_H
#define DS_CORE_QUARANTINE_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DS_QUARANTINE_DIR "quarantine"

/*
 * Creates a new quarantine folder for one item: reason is a short word
 * ("orphan-project", "half-created"), what says in words what goes in, from
 * where it came. The folder path goes to dir (dirsz bytes). why.json is
 * written and synced before the call returns.
 */
ds_status_t ds_quarantine_open(const char *data_dir, const char *reason, const char *what, const char *from, char *dir,
                               size_t dirsz, ds_err_t *err);
/*
 * Renames path to <dir>/<name> (name may contain "/": its folders are
 * created). A path that does not exist is DS_NOT_FOUND and changes nothing.
 */
ds_status_t ds_quarantine_move_into(const char *dir, const char *path, const char *name, ds_err_t *err);
/*
 * Ends a folder opened by ds_quarantine_open: when nothing was moved into it,
 * it is removed again; otherwise it is synced and the move is logged (one
 * JSON line naming what, why and where it is now).
 */
void ds_quarantine_close(const char *dir, bool moved, const char *reason, const char *what);
/* open + move_into(path, basename) + close, for one path. DS_NOT_FOUND when path does not exist. */
ds_status_t ds_quarantine_path(const char *data_dir, const char *reason, const char *what, const char *path,
                               ds_err_t *err);

/* Prints one line per quarantine folder (name, age, bytes, what) to out; returns how many. */
int ds_quarantine_list(const char *data_dir, FILE *out, ds_err_t *err);
/*
 * Removes the quarantine folders at least older_than seconds old (by the time
 * in their name), printing each removed one to out. *removed gets the count.
 */
ds_status_t ds_quarantine_purge(const char *data_dir, int64_t older_than, FILE *out, int *removed, ds_err_t *err);

/* Removes path and, when it is a real directory, everything below it; never follows symlinks. 0 or -1. */
int ds_remove_tree(const char *path);

#endif
