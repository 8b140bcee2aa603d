/*
 * quarantine.c - recovery's holding area. See quarantine.h.
 *
 * Folder names start with the UTC time of the move ("20261130T041500Z"),
 * so they sort by age and purge can tell their age without trusting mtimes
 * (a restored backup has new ones).
 */
#include "core/quarantine.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The folder that holds every quarantine folder, created when missing. */
static ds_status_t root(const char *data_dir, char *out, size_t outsz, ds_err_t *err)
{
    int k = snprintf(out, outsz, "%s/%s", data_dir, DS_QUARANTINE_DIR);
    if (k < 0 || (size_t)k >= outsz)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "data directory path is too long");
    if (mkdir(out, 0750) != 0 && errno != EEXIST)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot create %s: %s", out, strerror(errno));
    return DS_OK;
}

ds_status_t ds_quarantine_open(const char *data_dir, const char *reason, const char *what, const char *from, char *dir,
                               size_t dirsz, ds_err_t *err)
{
    char base[PATH_MAX], stamp[32], moved_at[32];
    ds_status_t st = root(data_dir, base, sizeof(base), err);
    if (st != DS_OK)
        return st;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    ds_time_rfc3339((int64_t)now, moved_at, sizeof(moved_at));
    for (int n = 1;; n++) {
        int k = n == 1 ? snprintf(dir, dirsz, "%s/%s-%s", base, stamp, reason)
                       : snprintf(dir, dirsz, "%s/%s-%s-%d", base, stamp, reason, n);
        if (k < 0 || (size_t)k >= dirsz)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "quarantine path is too long");
        if (mkdir(dir, 0750) == 0)
            break;
        if (errno != EEXIST || n > 10000)
            return ds_err_set(err, DS_UNAVAILABLE, "cannot create %s: %s", dir, strerror(errno));
    }
    json_t *why = json_pack("{s:s, s:s, s:s, s:s}", "reason", reason, "what", what, "from", from ? from : "",
                            "moved_at", moved_at);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/why.json", dir);
    int rc = why ? json_dump_file(why, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : -1;
    json_decref(why);
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(path);
        rmdir(dir);
        return ds_err_set(err, DS_UNAVAILABLE, "cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    return DS_OK;
}

/* mkdir -p of the folders above path, below stop (which exists). */
static int make_parents(const char *stop, const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    size_t n = strlen(stop);
    for (char *s = strchr(p + n + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return 0;
}

ds_status_t ds_quarantine_move_into(const char *dir, const char *path, const char *name, ds_err_t *err)
{
    char target[PATH_MAX];
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? ds_err_set(err, DS_NOT_FOUND, "%s does not exist", path)
                               : ds_err_set(err, DS_UNAVAILABLE, "cannot read %s: %s", path, strerror(errno));
    int k = snprintf(target, sizeof(target), "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= sizeof(target) || strstr(name, "..") || name[0] == '/')
        return ds_err_set(err, DS_INVALID_ARGUMENT, "cannot quarantine %s: bad name", path);
    if (make_parents(dir, target) != 0 || rename(path, target) != 0)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot move %s into %s: %s", path, dir, strerror(errno));
    return DS_OK;
}

void ds_quarantine_close(const char *dir, bool moved, const char *reason, const char *what)
{
    if (!moved) {
        char why[PATH_MAX + 16];
        snprintf(why, sizeof(why), "%s/why.json", dir);
        unlink(why);
        rmdir(dir);
        return;
    }
    sync_dir(dir);
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        sync_dir(parent);
    }
    ds_log(DS_LOG_WARN, "quarantine: moved %s to %s (reason: %s); nothing was deleted, see `duckstore quarantine list`",
           what, dir, reason);
}

ds_status_t ds_quarantine_path(const char *data_dir, const char *reason, const char *what, const char *path,
                               ds_err_t *err)
{
    char dir[PATH_MAX];
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return ds_err_set(err, DS_NOT_FOUND, "%s does not exist", path);
    ds_status_t st = ds_quarantine_open(data_dir, reason, what, path, dir, sizeof(dir), err);
    if (st != DS_OK)
        return st;
    const char *base = strrchr(path, '/');
    st = ds_quarantine_move_into(dir, path, base ? base + 1 : path, err);
    ds_quarantine_close(dir, st == DS_OK, reason, what);
    return st;
}

/* ---- the operator's commands ---- */

static int64_t tree_bytes(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    if (!S_ISDIR(sb.st_mode))
        return (int64_t)sb.st_size;
    int64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        int k = snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (k > 0 && (size_t)k < sizeof(child))
            total += tree_bytes(child);
    }
    if (d)
        closedir(d);
    return total;
}

int ds_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    int rc = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        int k = snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (k < 0 || (size_t)k >= sizeof(child) || ds_remove_tree(child) != 0)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

/* The time in a folder name ("20261130T041500Z-..."), or -1 when it has none. */
static int64_t folder_time(const char *name)
{
    struct tm tm = {0};
    char z;
    if (strlen(name) < 16 ||
        sscanf(name, "%4d%2d%2dT%2d%2d%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &z) != 7 ||
        z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The quarantine folder names, sorted (malloc'd array of malloc'd strings; *n entries). */
static ds_status_t folders(const char *data_dir, char *base, size_t basesz, char ***names, size_t *n, ds_err_t *err)
{
    *names = NULL;
    *n = 0;
    int k = snprintf(base, basesz, "%s/%s", data_dir, DS_QUARANTINE_DIR);
    if (k < 0 || (size_t)k >= basesz)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "data directory path is too long");
    DIR *d = opendir(base);
    if (!d)
        return errno == ENOENT ? DS_OK : ds_err_set(err, DS_UNAVAILABLE, "cannot read %s: %s", base, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || folder_time(e->d_name) < 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **bigger = realloc(*names, cap * sizeof(char *));
            if (!bigger)
                break;
            *names = bigger;
        }
        if (((*names)[*n] = strdup(e->d_name)) != NULL)
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof(char *), cmp_str);
    return DS_OK;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The "what" of a folder's why.json into out ("" when unreadable). */
static void read_what(const char *dir, char *out, size_t outsz)
{
    char path[PATH_MAX + 512];
    snprintf(path, sizeof(path), "%s/why.json", dir);
    json_t *why = json_load_file(path, 0, NULL);
    const char *what = why ? json_string_value(json_object_get(why, "what")) : NULL;
    snprintf(out, outsz, "%s", what ? what : "(no why.json)");
    json_decref(why);
}

int ds_quarantine_list(const char *data_dir, FILE *out, ds_err_t *err)
{
    char base[PATH_MAX];
    char **names;
    size_t n;
    if (folders(data_dir, base, sizeof(base), &names, &n, err) != DS_OK)
        return -1;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        char dir[PATH_MAX + 256], what[1024];
        snprintf(dir, sizeof(dir), "%s/%s", base, names[i]);
        read_what(dir, what, sizeof(what));
        char why[PATH_MAX + 512];
        snprintf(why, sizeof(why), "%s/why.json", dir);
        int64_t age = now - folder_time(names[i]);
        /* The bytes set aside, without the note that says why. */
        fprintf(out, "%s\t%lldh\t%lld bytes\t%s\n", names[i], (long long)(age > 0 ? age / 3600 : 0),
                (long long)(tree_bytes(dir) - tree_bytes(why)), what);
    }
    free_names(names, n);
    return (int)n;
}

ds_status_t ds_quarantine_purge(const char *data_dir, int64_t older_than, FILE *out, int *removed, ds_err_t *err)
{
    char base[PATH_MAX];
    char **names;
    size_t n;
    *removed = 0;
    ds_status_t st = folders(data_dir, base, sizeof(base), &names, &n, err);
    if (st != DS_OK)
        return st;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n && st == DS_OK; i++) {
        if (now - folder_time(names[i]) < older_than)
            continue;
        char dir[PATH_MAX + 256];
        snprintf(dir, sizeof(dir), "%s/%s", base, names[i]);
        if (ds_remove_tree(dir) != 0) {
            st = ds_err_set(err, DS_UNAVAILABLE, "cannot remove %s: %s", dir, strerror(errno));
            break;
        }
        fprintf(out, "removed %s\n", names[i]);
        (*removed)++;
    }
    free_names(names, n);
    return st;
}
