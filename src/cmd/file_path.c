/*
 * file_path.c - path confinement for Storage Files: ds_files_confine (files.h).
 *
 * DESIGN
 * Every path built from a user-given key or a manifest entry goes through
 * ds_files_confine before anything is opened, created, renamed or removed.
 * It walks rel one segment at a time from the resolved root, using lstat, so
 * it sees each symlink on the way: a symlink is resolved with realpath and the
 * result must stay inside root (else 400); a dangling or looping symlink is a
 * 400 too, since where it points cannot be checked. The first segment that
 * does not exist ends the walk: nothing below it exists, so the rest of the
 * path cannot hide a symlink.
 *
 * Lexical rules come first: an absolute rel, or an empty, "." or ".." segment,
 * is rejected before the filesystem is touched, so "../" tricks never reach
 * lstat at all.
 *
 * Invariant of the result: out is absolute, every existing component of it is
 * a real directory (or, for the last one, the object itself) inside root.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/files.h"

/* True when path is root or lies below it (both absolute and resolved). */
static bool inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static ds_status_t check_rel(const char *rel, ds_err_t *err)
{
    if (!rel)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "path is missing");
    if (rel[0] == '/')
        return ds_err_set(err, DS_INVALID_ARGUMENT, "path \"%.200s\" is absolute; only relative paths are allowed",
                          rel);
    if (!*rel)
        return DS_OK;
    for (const char *seg = rel; seg;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return ds_err_set(err, DS_INVALID_ARGUMENT,
                              "path \"%.200s\": segments may not be empty, \".\" or \"..\"", rel);
        if (len > NAME_MAX)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "path \"%.200s\": a segment is longer than %d bytes", rel,
                              NAME_MAX);
        seg = slash ? slash + 1 : NULL;
    }
    return DS_OK;
}

/* Copies s into out (size outsz); false when it does not fit. */
static bool put(char *out, size_t outsz, const char *s)
{
    size_t n = strlen(s);
    if (n >= outsz)
        return false;
    memcpy(out, s, n + 1);
    return true;
}

ds_status_t ds_files_confine(const char *root, const char *rel, bool may_be_missing, char *out, size_t outsz,
                             ds_err_t *err)
{
    char rroot[PATH_MAX], cur[PATH_MAX], cand[PATH_MAX], res[PATH_MAX];
    if (!root) /* a path the caller's arena could not build (a NULL rel is refused below) */
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory while building a path of the file store; nothing was changed");
    ds_status_t st = check_rel(rel, err);
    if (st != DS_OK)
        return st;
    /* Messages name rel (the client's own key) but never root: host paths stay out of client errors. */
    if (!root || !realpath(root, rroot))
        return ds_err_set(err, !root || errno == ENOENT ? DS_NOT_FOUND : DS_UNAVAILABLE,
                          "the storage area of \"%.200s\" is not accessible: %s", rel,
                          root ? strerror(errno) : "none given");
    struct stat sb;
    if (stat(rroot, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ds_err_set(err, DS_NOT_FOUND, "the storage area of \"%.200s\" is not a directory", rel);
    snprintf(cur, sizeof(cur), "%s", rroot);
    for (const char *seg = *rel ? rel : NULL; seg;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        bool last = slash == NULL;
        int k = snprintf(cand, sizeof(cand), "%s/%.*s", strcmp(cur, "/") == 0 ? "" : cur, (int)len, seg);
        if (k < 0 || (size_t)k >= sizeof(cand))
            return ds_err_set(err, DS_INVALID_ARGUMENT, "path \"%.200s\" is too long", rel);
        if (lstat(cand, &sb) != 0) {
            if (errno != ENOENT)
                return ds_err_set(err, errno == ENAMETOOLONG ? DS_INVALID_ARGUMENT : DS_UNAVAILABLE,
                                  "cannot inspect \"%.200s\": %s", rel, strerror(errno));
            if (!may_be_missing)
                return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "\"%.200s\" does not exist", rel);
            /* Nothing below a missing segment exists: append the rest as it is. */
            k = snprintf(res, sizeof(res), "%s/%s", strcmp(cur, "/") == 0 ? "" : cur, seg);
            if (k < 0 || (size_t)k >= sizeof(res) || !put(out, outsz, res))
                return ds_err_set(err, DS_INVALID_ARGUMENT, "path \"%.200s\" is too long", rel);
            return DS_OK;
        }
        if (S_ISLNK(sb.st_mode)) {
            if (!realpath(cand, res))
                return ds_err_set(err, DS_INVALID_ARGUMENT,
                                  "\"%.200s\" goes through a symlink that does not resolve (%s)", rel,
                                  strerror(errno));
            if (!inside(rroot, res))
                return ds_err_set(err, DS_INVALID_ARGUMENT,
                                  "\"%.200s\" goes through a symlink that leaves its storage area", rel);
            if (stat(res, &sb) != 0)
                return ds_err_set(err, DS_UNAVAILABLE, "cannot inspect \"%.200s\": %s", rel, strerror(errno));
            snprintf(cur, sizeof(cur), "%s", res);
        } else {
            snprintf(cur, sizeof(cur), "%s", cand);
        }
        if (!last && !S_ISDIR(sb.st_mode)) {
            if (may_be_missing)
                return ds_err_set(err, DS_CONFLICT, "\"%.200s\": \"%.*s\" is a file, not a folder", rel,
                                  (int)(seg + len - rel), rel);
            return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "\"%.200s\" does not exist", rel);
        }
        seg = slash ? slash + 1 : NULL;
    }
    if (!put(out, outsz, cur))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "path \"%.200s\" is too long", rel);
    return DS_OK;
}
