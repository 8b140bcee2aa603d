/*
 * files.c - Storage Files commands, import/export helpers and the sweep.
 * The contract is files.h; the operator's view is docs/files.md.
 *
 * DESIGN
 * Layout: <data>/files/project_<id>/ is a project's area, with
 *   objects/<key>     the files, by key (a key's "/" are real folders)
 *   staging/<id>      uploads in progress (and "<id>.old" during a replace)
 *   scratch/<random>  private directories for exports (ds_files_scratch_dir)
 *   index/<id>.json   the file's index row as JSON (its "sidecar")
 * The index rows live in the catalog (src/catalog/files.h). The sidecars are
 * their copy next to the bytes, so a lost catalog's file index is rebuilt
 * from them (ds_files_rebuild_index); the catalog wins whenever both exist.
 * A sidecar is written (synced) before its row is published and removed
 * after its row is deleted, so every published row has one.
 *
 * Publishing a file (upload finish, adopt) happens under files_lock: check
 * the key is free (409) or replaceable; make the key's folders; keep a hard
 * link of the file being replaced in staging/; rename the new bytes over the
 * key; publish the index rows in one catalog transaction. If the catalog
 * refuses, the renames are undone from the hard links, so a failed request
 * changes nothing. A crash between rename and index leaves either an object
 * no row names or a row whose object is gone; ds_files_start reconciles both
 * before the first request (and a replaced file's old row may briefly describe
 * the new bytes - the one window this order leaves). Reconciliation never
 * deletes stored bytes: objects no row names and the areas of unknown
 * projects go to <data>/quarantine/ (core/quarantine.h).
 *
 * Uploads in progress are registered in `actives` (project + id) for their
 * whole life. The sweep removes any staging file no active upload owns, so a
 * crash or a broken connection never leaves bytes behind for long, and never
 * touches an upload that is still writing, however long it takes.
 *
 * Expiry is decided by time at read: a READY row with 0 < expires_at <= now
 * is not found by any command, before the sweep deletes it. The sweep thread
 * wakes every clamp(TTL/4, 1 s, 60 s), and ds_files_stop wakes it at once.
 *
 * Errors: messages for clients name keys and ids, never host paths; an I/O
 * failure logs its path for the operator (io_error) and tells the client what
 * failed.
 *
 * Locks: files_lock (this file) is taken before the catalog mutex (inside
 * ds_catalog_* calls), never after; the sweep thread (core/periodic.c) holds its own lock only for its
 * sleep, never with another lock. files_lock is held only for
 * renames, unlinks and single catalog statements, never during uploads' I/O,
 * hashing or fsync.
 */
#include "cmd/files.h"
#include "cmd/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/files.h"
#include "cmd/internal.h"
#include "core/log.h"
#include "core/periodic.h"
#include "core/quarantine.h"
#include "core/sha256.h"

#define STAGING_MAX_AGE 86400 /* prepared uploads and scratch directories live at most a day */
#define DIR_MODE 0750
#define FILE_MODE 0640
/*
 * An upload starts the disk write of every WRITEBACK_STEP bytes as soon as
 * they are written (sync_file_range), so the fsync before the file is
 * reported stored waits only for the last few megabytes, not for the whole
 * file: on a 282 MB upload that fsync took 0.21 s of 0.72 s.
 */
#define WRITEBACK_STEP (8 * 1024 * 1024)

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct active {
    char project[DS_PROJECT_ID_MAX + 1];
    char id[DS_FILE_ID_HEX + 1];
    struct active *next;
} active_t;
static active_t *actives; /* under files_lock */

static ds_periodic_t *sweeper;

struct ds_upload {
    char project[DS_PROJECT_ID_MAX + 1];
    char id[DS_FILE_ID_HEX + 1];
    const char *name;
    const char *area;    /* resolved project area */
    const char *staging; /* staging/<id> */
    bool permanent, sliced, overwrite, prepared;
    bool discard; /* an idempotent repeat: the bytes are hashed and counted, never stored */
    int fd;
    int64_t size, max;
    int64_t written_back; /* bytes whose disk write was started (WRITEBACK_STEP) */
    ds_sha256_t *sha; /* freed with the request's arena */
    ds_status_t failed; /* sticky: DS_OK until a write fails */
    ds_err_t fail_err;
    bool finished, released;
};

/* ---- small helpers ---- */

/* Arena cleanup of an upload's hasher. */
static void free_sha(void *h)
{
    ds_sha256_t *sha = h;
    ds_sha256_free(&sha);
}

static const char *data_dir(void) { return ds_service_config()->data_dir; }

static int64_t file_ttl(void)
{
    int64_t ttl = ds_service_config()->file_ttl;
    return ttl > 0 ? ttl : 15 * 86400;
}

static int64_t staging_lifetime(void)
{
    int64_t ttl = file_ttl();
    return ttl < STAGING_MAX_AGE ? ttl : STAGING_MAX_AGE;
}

static bool visible(const ds_file_rec_t *r, int64_t now)
{
    return r->state == DS_FILE_READY && (r->expires_at == 0 || r->expires_at > now);
}

static void new_id(char out[DS_FILE_ID_HEX + 1])
{
    unsigned char raw[DS_FILE_ID_HEX / 2];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, DS_FILE_ID_HEX + 1, raw, sizeof(raw));
}

static bool is_file_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != DS_FILE_ID_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static ds_status_t file_not_found(ds_err_t *err, const char *id)
{
    return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "file \"%.100s\" not found", id ? id : "");
}

/*
 * An I/O failure: the log gets the path (for the operator), the client a
 * message without it (host paths are not the client's business). Uses errno.
 * A full volume (ENOSPC, EDQUOT) is DS_INSUFFICIENT_STORAGE whatever st says.
 */
static ds_status_t io_error(ds_err_t *err, ds_status_t st, const char *what, const char *path)
{
    int e = errno;
    ds_log(DS_LOG_ERROR, "files: %s (%s): %s", what, path ? path : "-", strerror(e));
    if (e == ENOSPC || e == EDQUOT)
        return ds_err_set(err, DS_INSUFFICIENT_STORAGE, "%s: no space left on the data volume", what);
    return ds_err_set(err, st, "%s: %s", what, strerror(e));
}

/* Strict UTF-8 (no overlongs, no surrogates): keys become JSON strings. */
static bool valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s, n;
        uint32_t cp;
        if (c < 0x80) {
            s++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            n = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            n = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            n = 3, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

/* A file key: REST.md's rules (ds_ident_check_file_key), valid UTF-8, and naming a file, not a folder. */
static ds_status_t check_key(const char *key, ds_err_t *err)
{
    ds_status_t st = ds_ident_check_file_key(key, err);
    if (st != DS_OK)
        return st;
    size_t n = strlen(key);
    if (key[n - 1] == '/')
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                           "invalid file key \"%.200s\": a key may not end with \"/\" (that names a folder)", key);
    if (!valid_utf8((const unsigned char *)key))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name", "invalid file key: it is not valid UTF-8");
    for (const char *seg = key; seg;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (len > NAME_MAX)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                               "invalid file key: a segment between \"/\" is longer than %d bytes", NAME_MAX);
        seg = slash ? slash + 1 : NULL;
    }
    return DS_OK;
}

/* "<data>/files/project_<id>" (not resolved), in the arena. */
static char *area_path(ds_arena_t *a, const char *data, const char *project)
{
    return ds_arena_printf(a, "%s/files/project_%s", data, project);
}

/* A path the arena could not build is an out-of-memory failure of the request (nothing changed). */
static ds_status_t no_path(ds_err_t *err)
{
    return ds_err_set(err, DS_UNAVAILABLE, "out of memory while building a path of the file store; nothing was changed");
}

static ds_status_t make_dir(const char *path, ds_err_t *err)
{
    if (!path)
        return no_path(err);
    if (mkdir(path, DIR_MODE) != 0 && errno != EEXIST)
        return io_error(err, DS_UNAVAILABLE, "cannot create a folder of the file store", path);
    return DS_OK;
}

/*
 * Creates the project's area with objects/ and staging/ when missing and
 * returns its resolved path (arena).
 */
static ds_status_t ensure_area(ds_arena_t *a, const char *project, const char **out, ds_err_t *err)
{
    const char *area = area_path(a, data_dir(), project);
    char real[PATH_MAX];
    ds_status_t st = make_dir(ds_arena_printf(a, "%s/files", data_dir()), err);
    if (st == DS_OK)
        st = make_dir(area, err);
    if (st == DS_OK)
        st = make_dir(ds_arena_printf(a, "%s/objects", area), err);
    if (st == DS_OK)
        st = make_dir(ds_arena_printf(a, "%s/staging", area), err);
    if (st != DS_OK)
        return st;
    if (!realpath(area, real))
        return io_error(err, DS_UNAVAILABLE, "cannot open the project's file store", area);
    return (*out = ds_arena_strdup(a, real)) ? DS_OK : no_path(err);
}

/* The resolved area of project, or DS_NOT_FOUND when it has none yet. */
static ds_status_t existing_area(ds_arena_t *a, const char *project, const char **out, ds_err_t *err)
{
    char real[PATH_MAX];
    const char *area = area_path(a, data_dir(), project);
    if (!area)
        return no_path(err);
    if (!realpath(area, real)) {
        if (errno == ENOENT)
            return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "project \"%s\" has no files", project);
        return io_error(err, DS_UNAVAILABLE, "cannot open the project's file store", area);
    }
    return (*out = ds_arena_strdup(a, real)) ? DS_OK : no_path(err);
}


/* Removes the empty folders above path, up to (not including) stop. */
static void prune_dirs(const char *stop, const char *path)
{
    char p[PATH_MAX];
    if (!stop || !path)
        return;
    size_t n = strlen(stop);
    snprintf(p, sizeof(p), "%s", path);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash)
            return;
        *slash = '\0';
        if (strlen(p) <= n || strncmp(p, stop, n) != 0 || p[n] != '/')
            return;
        if (rmdir(p) != 0)
            return;
    }
}

/* mkdir -p for the folders above path (path itself is not created). */
static ds_status_t make_parents(const char *path, ds_err_t *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    char *last = strrchr(p, '/');
    if (!last || last == p)
        return DS_OK;
    *last = '\0';
    for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
        if (s)
            *s = '\0';
        if (mkdir(p, DIR_MODE) != 0 && errno != EEXIST)
            return io_error(err, errno == ENOTDIR ? DS_CONFLICT : DS_UNAVAILABLE, "cannot create the key's folders", p);
        if (!s)
            break;
        *s = '/';
    }
    return DS_OK;
}

static void sync_dir_of(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    char *slash = strrchr(p, '/');
    if (!slash)
        return;
    *slash = '\0';
    int fd = open(*p ? p : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static ds_status_t write_all(int fd, const void *data, size_t n, ds_err_t *err)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return io_error(err, DS_UNAVAILABLE, "cannot write the file", NULL);
        }
        p += w;
        n -= (size_t)w;
    }
    return DS_OK;
}

/* Fills a ds_file_t from an index row (strings in the arena). */
static void to_file(ds_arena_t *a, const ds_file_rec_t *r, ds_file_t *out)
{
    out->id = ds_arena_strdup(a, r->id);
    out->name = ds_arena_strdup(a, r->name);
    out->size = r->size;
    out->sha256 = ds_arena_strdup(a, r->sha256);
    out->created_at = r->created_at;
    out->expires_at = r->expires_at;
    out->permanent = r->permanent;
    out->sliced = r->sliced;
}

/* ---- sidecars: index/<id>.json, the index row next to the bytes ---- */

static ds_status_t sidecar_write(ds_arena_t *a, const char *area, const ds_file_rec_t *r, ds_err_t *err)
{
    const char *dir = ds_arena_printf(a, "%s/index", area);
    const char *path = ds_arena_printf(a, "%s/%s.json", dir, r->id);
    const char *tmp = ds_arena_printf(a, "%s/%s.json.tmp", dir, r->id);
    ds_status_t st = make_dir(dir, err);
    if (st != DS_OK)
        return st;
    json_t *doc = json_pack("{s:i, s:s, s:s, s:I, s:s, s:I, s:I, s:b, s:b}", "format", 1, "id", r->id, "name",
                            r->name, "size", (json_int_t)r->size, "sha256", r->sha256, "created_at",
                            (json_int_t)r->created_at, "expires_at", (json_int_t)r->expires_at, "permanent",
                            r->permanent, "sliced", r->sliced);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE);
    st = fd < 0 ? io_error(err, DS_UNAVAILABLE, "cannot write the file's metadata", tmp)
                : write_all(fd, text, strlen(text), err);
    free(text);
    if (st == DS_OK && fsync(fd) != 0)
        st = io_error(err, DS_UNAVAILABLE, "cannot sync the file's metadata", tmp);
    if (fd >= 0)
        close(fd);
    if (st == DS_OK && rename(tmp, path) != 0)
        st = io_error(err, DS_UNAVAILABLE, "cannot store the file's metadata", path);
    if (st != DS_OK)
        unlink(tmp);
    return st;
}

static void sidecar_remove(ds_arena_t *a, const char *area, const char *id)
{
    unlink(ds_arena_printf(a, "%s/index/%s.json", area, id));
}

/* Writes the sidecars of recs before they are published; all or none. */
static ds_status_t sidecars_write(ds_arena_t *a, const char *area, const ds_file_rec_t *recs, size_t n, ds_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        ds_status_t st = sidecar_write(a, area, &recs[i], err);
        if (st != DS_OK) {
            while (i-- > 0)
                sidecar_remove(a, area, recs[i].id);
            return st;
        }
    }
    sync_dir_of(ds_arena_printf(a, "%s/index/x", area));
    return DS_OK;
}

/* The project exists and is READY (checked under files_lock before publishing). */
static ds_status_t project_ready(const char *project, ds_err_t *err)
{
    ds_project_rec_t rec;
    ds_status_t st = ds_catalog_project_get(project, &rec, err);
    if (st == DS_OK && rec.state != DS_PROJECT_READY)
        st = ds_err_setk(err, DS_NOT_FOUND, DS_KBC_DATABASE_NOT_FOUND, "project \"%s\" not found", project);
    return st;
}

/* ---- active uploads (under files_lock) ---- */

static bool is_active(const char *project, const char *id)
{
    for (active_t *a = actives; a; a = a->next)
        if (strcmp(a->id, id) == 0 && strcmp(a->project, project) == 0)
            return true;
    return false;
}

static bool add_active(const char *project, const char *id)
{
    active_t *a = calloc(1, sizeof(*a));
    if (!a)
        return false;
    snprintf(a->project, sizeof(a->project), "%s", project);
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->next = actives;
    actives = a;
    return true;
}

static void remove_active(const char *project, const char *id)
{
    for (active_t **pp = &actives; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0 && strcmp((*pp)->project, project) == 0) {
            active_t *a = *pp;
            *pp = a->next;
            free(a);
            return;
        }
}

/* ---- manifests ---- */

/* Reads a whole (small) file into a malloc'd buffer; 400 beyond max bytes. */
static ds_status_t read_small(const char *path, int64_t max, char **data, size_t *len, ds_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        ds_status_t st = io_error(err, DS_UNAVAILABLE, "cannot read the manifest", path);
        if (fd >= 0)
            close(fd);
        return st;
    }
    if (sb.st_size > max) {
        close(fd);
        return ds_err_set(err, DS_INVALID_ARGUMENT, "manifest is larger than %lld bytes", (long long)max);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)sb.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)sb.st_size) {
        free(buf);
        return io_error(err, DS_UNAVAILABLE, "cannot read the manifest", path);
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return DS_OK;
}

static int64_t manifest_max(void)
{
    int64_t m = ds_service_config()->max_json_bytes;
    return m > 0 ? m : 16 << 20;
}

/*
 * Parses a manifest {"entries": [{"url": "..."}, ...]} and returns the entry
 * urls (arena). what names the manifest in messages.
 */
static ds_status_t parse_manifest(ds_arena_t *a, const char *data, size_t len, const char *what, const char ***urls,
                                  size_t *n, ds_err_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    if (!root)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "manifest %.200s is not valid JSON (line %d: %s)", what, je.line,
                          je.text);
    json_t *entries = json_is_object(root) ? json_object_get(root, "entries") : NULL;
    if (!json_is_array(entries)) {
        json_decref(root);
        return ds_err_set(err, DS_INVALID_ARGUMENT,
                          "manifest %.200s must be an object {\"entries\": [{\"url\": ...}, ...]}", what);
    }
    size_t k = json_array_size(entries);
    const char **out = ds_arena_alloc(a, sizeof(char *) * (k ? k : 1));
    if (!out) {
        json_decref(root);
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(entries, i);
        json_t *url = json_is_object(e) ? json_object_get(e, "url") : NULL;
        if (!json_is_string(url)) {
            json_decref(root);
            return ds_err_set(err, DS_INVALID_ARGUMENT, "manifest %.200s: entry %zu has no \"url\" string", what, i);
        }
        out[i] = ds_arena_strdup(a, json_string_value(url));
    }
    json_decref(root);
    *urls = out;
    *n = k;
    return DS_OK;
}

/*
 * The key an entry url names: the url itself, or what follows the bucket in
 * "s3://<bucket>/<key>". Other schemes and bad keys are 400.
 */
static ds_status_t entry_key(const char *url, const char *what, const char **key, ds_err_t *err)
{
    const char *k = url;
    if (strncmp(url, "s3://", 5) == 0) {
        const char *slash = strchr(url + 5, '/');
        if (!slash || !slash[1])
            return ds_err_set(err, DS_INVALID_ARGUMENT, "manifest %.200s: entry \"%.200s\" names no key", what, url);
        k = slash + 1;
    } else if (strstr(url, "://")) {
        return ds_err_set(err, DS_INVALID_ARGUMENT,
                          "manifest %.200s: entry \"%.200s\": only keys and s3://<bucket>/<key> urls are supported",
                          what, url);
    }
    ds_err_t e = {0};
    if (ds_ident_check_file_key(k, &e) != DS_OK || !valid_utf8((const unsigned char *)k))
        return ds_err_set(err, DS_INVALID_ARGUMENT,
                          "manifest %.200s: entry \"%.200s\" leaves the project's files (keys are relative, "
                          "without \"..\" or empty segments)",
                          what, url);
    *key = k;
    return DS_OK;
}

/* ---- uploads ---- */

static void release_upload(void *p)
{
    ds_upload_t *up = p;
    if (up->released)
        return;
    up->released = true;
    if (up->fd >= 0)
        close(up->fd);
    up->fd = -1;
    if (!up->finished && up->staging)
        unlink(up->staging);
    pthread_mutex_lock(&files_lock);
    remove_active(up->project, up->id);
    pthread_mutex_unlock(&files_lock);
}

/*
 * Opens the staging file of a new upload (id given) and registers it as
 * active. With exclusive, an upload of the same id already running is a 409.
 */
static ds_status_t start_upload(ds_ctx_t *ctx, const char *project, const char *id, const char *name, bool permanent,
                                bool sliced, bool overwrite, bool prepared, ds_upload_t **out)
{
    ds_upload_t *up = ds_arena_alloc(ctx->arena, sizeof(*up));
    if (!up)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    up->fd = -1;
    up->released = true; /* nothing to release until the staging file exists */
    snprintf(up->project, sizeof(up->project), "%s", project);
    snprintf(up->id, sizeof(up->id), "%s", id);
    up->name = ds_arena_strdup(ctx->arena, name);
    up->permanent = permanent;
    up->sliced = sliced;
    up->overwrite = overwrite;
    up->prepared = prepared;
    up->max = ds_service_config()->max_upload_bytes;
    if (!(up->sha = ds_sha256_new()) || ds_arena_on_destroy(ctx->arena, free_sha, up->sha) != 0 ||
        ds_arena_on_destroy(ctx->arena, release_upload, up) != 0)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");

    ds_status_t st;
    pthread_mutex_lock(&files_lock);
    if (is_active(project, id)) {
        st = ds_err_set(&ctx->err, DS_CONFLICT, "an upload of file \"%s\" is already in progress", id);
        goto out;
    }
    if ((st = ensure_area(ctx->arena, project, &up->area, &ctx->err)) != DS_OK)
        goto out;
    up->staging = ds_arena_printf(ctx->arena, "%s/staging/%s", up->area, id);
    up->fd = open(up->staging, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
    if (up->fd < 0) {
        st = io_error(&ctx->err, DS_UNAVAILABLE, "cannot create the upload's staging file", up->staging);
        goto out;
    }
    if (!add_active(project, id)) {
        close(up->fd);
        up->fd = -1;
        unlink(up->staging);
        st = ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
        goto out;
    }
    up->released = false;
    *out = up;
out:
    pthread_mutex_unlock(&files_lock);
    return st;
}

/* 409 when a visible file named key exists in project. */
static ds_status_t check_free(ds_ctx_t *ctx, const char *project, const char *key, ds_file_rec_t *existing,
                              bool *exists)
{
    ds_err_t e = {0};
    ds_file_rec_t rec;
    *exists = false;
    ds_status_t st = ds_catalog_file_by_name(ctx->arena, project, key, &rec, &e);
    if (st == DS_NOT_FOUND)
        return DS_OK;
    if (st != DS_OK) {
        ctx->err = e;
        return st;
    }
    if (existing)
        *existing = rec;
    *exists = visible(&rec, ds_now());
    return DS_OK;
}

static ds_status_t conflict(ds_err_t *err, const char *key)
{
    return ds_err_setf(err, DS_ALREADY_EXISTS, "name",
                       "a file named \"%.200s\" already exists; upload with overwrite=true to replace it", key);
}

ds_status_t ds_cmd_file_upload_begin(ds_ctx_t *ctx, const char *project, const ds_file_upload_in_t *in,
                                     ds_upload_t **up)
{
    ds_proj_t p;
    bool exists;
    *up = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx); /* Storage Files writes take no write slot */
    if (st != DS_OK)
        return st;
    if (!in->name)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "the file's name (its key) is required");
    if ((st = check_key(in->name, &ctx->err)) != DS_OK)
        return st;
    if ((st = check_free(ctx, project, in->name, NULL, &exists)) != DS_OK)
        return st;
    if (exists && !in->overwrite)
        return conflict(&ctx->err, in->name);
    char id[DS_FILE_ID_HEX + 1];
    new_id(id);
    return start_upload(ctx, project, id, in->name, in->permanent, in->sliced, in->overwrite, false, up);
}

ds_status_t ds_cmd_file_prepare(ds_ctx_t *ctx, const char *project, const ds_file_upload_in_t *in, ds_file_t *out)
{
    ds_proj_t p;
    bool exists;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx); /* Storage Files writes take no write slot */
    if (st != DS_OK)
        return st;
    if ((st = check_key(in->name, &ctx->err)) != DS_OK)
        return st;
    if ((st = check_free(ctx, project, in->name, NULL, &exists)) != DS_OK)
        return st;
    if (exists && !in->overwrite)
        return conflict(&ctx->err, in->name);
    ds_file_rec_t rec = {0};
    new_id(rec.id);
    snprintf(rec.project, sizeof(rec.project), "%s", project);
    rec.name = in->name;
    rec.created_at = ds_now();
    rec.expires_at = rec.created_at + staging_lifetime();
    rec.permanent = in->permanent;
    rec.sliced = in->sliced;
    rec.overwrite = in->overwrite;
    rec.state = DS_FILE_STAGING;
    if ((st = ds_catalog_file_insert(&rec, &ctx->err)) != DS_OK)
        return st;
    to_file(ctx->arena, &rec, out);
    return DS_OK;
}

ds_status_t ds_cmd_file_upload_begin_prepared(ds_ctx_t *ctx, const char *project, const char *file_id,
                                              ds_upload_t **up)
{
    ds_proj_t p;
    ds_file_rec_t rec;
    ds_err_t e = {0};
    *up = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx); /* Storage Files writes take no write slot */
    if (st != DS_OK)
        return st;
    if (!is_file_id(file_id))
        return file_not_found(&ctx->err, file_id);
    st = ds_catalog_file_get(ctx->arena, project, file_id, &rec, &e);
    if (st == DS_NOT_FOUND)
        return file_not_found(&ctx->err, file_id);
    if (st != DS_OK) {
        ctx->err = e;
        return st;
    }
    if (rec.state == DS_FILE_READY)
        return ds_err_set(&ctx->err, DS_CONFLICT, "file \"%s\" already has its content; prepare a new upload",
                          file_id);
    if (rec.expires_at <= ds_now())
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND,
                           "prepared upload \"%s\" expired before its content arrived", file_id);
    return start_upload(ctx, project, file_id, rec.name, rec.permanent, rec.sliced, rec.overwrite, true, up);
}

ds_status_t ds_cmd_file_upload_write(ds_ctx_t *ctx, ds_upload_t *up, const void *data, size_t n)
{
    if (!up || up->released || up->finished)
        return ds_err_set(&ctx->err, DS_INTERNAL, "upload is not open");
    if (up->failed != DS_OK) {
        ctx->err = up->fail_err;
        return up->failed;
    }
    ds_status_t st;
    if (up->max > 0 && (int64_t)n > up->max - up->size)
        st = ds_err_set(&up->fail_err, DS_PAYLOAD_TOO_LARGE,
                        "the file is larger than DUCKSTORE_MAX_UPLOAD_BYTES (%lld bytes)", (long long)up->max);
    else if (!ds_sha256_update(up->sha, data, n)) /* hashed while received: no second pass over the file */
        st = ds_err_set(&up->fail_err, DS_INTERNAL, "the upload's SHA-256 could not be computed");
    else if (!up->discard)
        st = write_all(up->fd, data, n, &up->fail_err);
    else
        st = DS_OK;
    if (st != DS_OK) {
        up->failed = st;
        ctx->err = up->fail_err;
        /*
         * The partial file goes now, not when the request ends: the client may
         * look (or retry) as soon as it has the error, and on a full volume
         * its bytes are the space the retry needs.
         */
        if (up->fd >= 0)
            close(up->fd);
        up->fd = -1;
        if (up->staging)
            unlink(up->staging);
        return st;
    }
    up->size += (int64_t)n;
    if (!up->discard && up->size - up->written_back >= WRITEBACK_STEP) {
        /*
         * Only a head start for the fsync at finish, which still covers every
         * byte and reports any error: a failure here changes nothing.
         */
        (void)sync_file_range(up->fd, up->written_back, up->size - up->written_back, SYNC_FILE_RANGE_WRITE);
        up->written_back = up->size;
    }
    return DS_OK;
}

ds_status_t ds_cmd_file_upload_begin_discard(ds_ctx_t *ctx, const char *project, ds_upload_t **up)
{
    ds_proj_t p;
    *up = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st != DS_OK)
        return st;
    ds_upload_t *u = ds_arena_alloc(ctx->arena, sizeof(*u));
    if (!u)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    u->fd = -1;
    u->released = false; /* nothing on disk and no id registered: release only closes it */
    u->discard = true;
    snprintf(u->project, sizeof(u->project), "%s", project);
    u->max = ds_service_config()->max_upload_bytes;
    if (!(u->sha = ds_sha256_new()) || ds_arena_on_destroy(ctx->arena, free_sha, u->sha) != 0)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    *up = u;
    return DS_OK;
}

ds_status_t ds_cmd_file_upload_digest(ds_ctx_t *ctx, ds_upload_t *up, char hex[65])
{
    if (!up || !up->discard || up->released || up->finished)
        return ds_err_set(&ctx->err, DS_INTERNAL, "upload is not open for a digest");
    if (up->failed != DS_OK) {
        ctx->err = up->fail_err;
        return up->failed;
    }
    if (!ds_sha256_final_hex(up->sha, hex))
        return ds_err_set(&ctx->err, DS_INTERNAL, "the upload's SHA-256 could not be computed");
    up->finished = true;
    return DS_OK;
}

/* A staged file that claims to be a manifest must be one. */
static ds_status_t check_manifest_file(ds_ctx_t *ctx, const char *path, const char *name)
{
    char *data;
    size_t len;
    const char **urls;
    size_t n;
    ds_status_t st = read_small(path, manifest_max(), &data, &len, &ctx->err);
    if (st != DS_OK)
        return st == DS_INVALID_ARGUMENT ? st : ds_err_set(&ctx->err, st, "cannot read the uploaded manifest");
    st = parse_manifest(ctx->arena, data, len, name, &urls, &n, &ctx->err);
    free(data);
    for (size_t i = 0; st == DS_OK && i < n; i++) {
        const char *key;
        st = entry_key(urls[i], name, &key, &ctx->err);
    }
    return st;
}

/*
 * Moves src over objects/<key> of area, keeping a hard link of a replaced
 * file at backup (set *had_backup) so undo_move can restore it. Under files_lock.
 */
static ds_status_t move_in(ds_ctx_t *ctx, const char *area, const char *src, const char *key, const char *backup,
                           const char **target, bool *had_backup)
{
    char path[PATH_MAX];
    *had_backup = false;
    ds_status_t st = ds_files_confine(area, ds_arena_printf(ctx->arena, "objects/%s", key), true, path, sizeof(path),
                                      &ctx->err);
    if (st == DS_CONFLICT)
        return ds_err_setf(&ctx->err, DS_CONFLICT, "name",
                           "cannot store \"%.200s\": a file exists where the key needs a folder", key);
    if (st != DS_OK)
        return st;
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return ds_err_setf(&ctx->err, DS_CONFLICT, "name",
                               "cannot store \"%.200s\": files exist under \"%.200s/\"", key, key);
        unlink(backup);
        if (link(path, backup) != 0)
            return io_error(&ctx->err, DS_UNAVAILABLE, "cannot keep the replaced file", path);
        *had_backup = true;
    }
    if ((st = make_parents(path, &ctx->err)) != DS_OK)
        return st;
    if (rename(src, path) != 0) {
        st = ds_err_set(&ctx->err, errno == EISDIR || errno == ENOTDIR ? DS_CONFLICT : DS_UNAVAILABLE,
                        "cannot store \"%.200s\": %s", key, strerror(errno));
        if (*had_backup)
            unlink(backup);
        *had_backup = false;
        return st;
    }
    *target = ds_arena_strdup(ctx->arena, path);
    return DS_OK;
}

/* Puts src back from target, and the replaced file from backup. */
static void undo_move(const char *objects, const char *src, const char *target, const char *backup, bool had_backup)
{
    if (rename(target, src) != 0)
        unlink(target);
    if (had_backup)
        rename(backup, target);
    else
        prune_dirs(objects, target);
}

ds_status_t ds_cmd_file_upload_finish(ds_ctx_t *ctx, ds_upload_t *up, ds_file_t *out)
{
    if (!up || up->released || up->finished || up->discard)
        return ds_err_set(&ctx->err, DS_INTERNAL, "upload is not open");
    if (up->failed != DS_OK) {
        ctx->err = up->fail_err;
        return up->failed;
    }
    ds_file_rec_t rec = {0};
    if (!ds_sha256_final_hex(up->sha, rec.sha256))
        return ds_err_set(&ctx->err, DS_INTERNAL, "the upload's SHA-256 could not be computed");
    snprintf(rec.id, sizeof(rec.id), "%s", up->id);
    snprintf(rec.project, sizeof(rec.project), "%s", up->project);
    rec.name = up->name;
    rec.size = up->size;
    rec.permanent = up->permanent;
    rec.sliced = up->sliced;
    rec.state = DS_FILE_READY;

    ds_status_t st = DS_OK;
    if (up->sliced)
        st = check_manifest_file(ctx, up->staging, up->name);
    if (st == DS_OK && fsync(up->fd) != 0)
        st = io_error(&ctx->err, DS_UNAVAILABLE, "cannot sync the file to disk", up->staging);
    if (st != DS_OK)
        goto failed;
    close(up->fd);
    up->fd = -1;

    const char *objects = ds_arena_printf(ctx->arena, "%s/objects", up->area);
    const char *backup = ds_arena_printf(ctx->arena, "%s.old", up->staging);
    const char *target = NULL;
    bool had_backup = false, exists;
    ds_file_rec_t staged, replaced = {0};
    ds_err_t e = {0};
    rec.created_at = ds_now();
    rec.expires_at = rec.permanent ? 0 : rec.created_at + file_ttl();
    /* The sidecar before the row (and outside files_lock: it syncs). */
    if ((st = sidecars_write(ctx->arena, up->area, &rec, 1, &ctx->err)) != DS_OK)
        goto failed;
    pthread_mutex_lock(&files_lock);
    if ((st = project_ready(up->project, &ctx->err)) != DS_OK)
        goto out;
    if (up->prepared) {
        /* The sweep never drops the row of an active upload, but a project reset could have. */
        st = ds_catalog_file_get(ctx->arena, up->project, up->id, &staged, &e);
        if (st != DS_OK || staged.state != DS_FILE_STAGING) {
            st = file_not_found(&ctx->err, up->id);
            goto out;
        }
    }
    if ((st = check_free(ctx, up->project, up->name, &replaced, &exists)) != DS_OK)
        goto out;
    if (exists && !up->overwrite) {
        st = conflict(&ctx->err, up->name);
        goto out;
    }
    if ((st = move_in(ctx, up->area, up->staging, up->name, backup, &target, &had_backup)) != DS_OK)
        goto out;
    if ((st = ds_catalog_file_publish(&rec, 1, &ctx->err)) != DS_OK) {
        undo_move(objects, up->staging, target, backup, had_backup);
        goto out;
    }
    if (replaced.id[0] && strcmp(replaced.id, rec.id) != 0)
        sidecar_remove(ctx->arena, up->area, replaced.id);
    if (had_backup)
        unlink(backup);
    sync_dir_of(target);
    up->finished = true;
out:
    pthread_mutex_unlock(&files_lock);
    if (st != DS_OK) {
        sidecar_remove(ctx->arena, up->area, rec.id);
        goto failed;
    }
    to_file(ctx->arena, &rec, out);
    ds_log(DS_LOG_DEBUG, "project %s: stored file %s (%s, %lld bytes)", up->project, rec.id, rec.name,
           (long long)rec.size);
    release_upload(up);
    return DS_OK;
failed:
    /* The upload is spent: later calls repeat this error; abort removes the staging file. */
    up->failed = st;
    up->fail_err = ctx->err;
    return st;
}

void ds_cmd_file_upload_abort(ds_upload_t **up)
{
    if (!up || !*up)
        return;
    release_upload(*up);
    *up = NULL;
}

/* ---- reads and delete ---- */

/* The visible row id of project into rec (404 otherwise). */
static ds_status_t get_visible(ds_ctx_t *ctx, const char *project, const char *id, ds_file_rec_t *rec)
{
    ds_err_t e = {0};
    if (!is_file_id(id))
        return file_not_found(&ctx->err, id);
    ds_status_t st = ds_catalog_file_get(ctx->arena, project, id, rec, &e);
    if (st == DS_NOT_FOUND || (st == DS_OK && !visible(rec, ds_now())))
        return file_not_found(&ctx->err, id);
    if (st != DS_OK)
        ctx->err = e;
    return st;
}

ds_status_t ds_cmd_file_list(ds_ctx_t *ctx, const char *project, const char *prefix, ds_file_t **items, size_t *n)
{
    ds_proj_t p;
    ds_file_rec_t *recs;
    size_t k;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if ((st = ds_catalog_file_list(ctx->arena, project, prefix, ds_now(), &recs, &k, &ctx->err)) != DS_OK)
        return st;
    ds_file_t *out = ds_arena_alloc(ctx->arena, sizeof(*out) * (k ? k : 1));
    if (!out)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
    for (size_t i = 0; i < k; i++)
        to_file(ctx->arena, &recs[i], &out[i]);
    *items = out;
    *n = k;
    return DS_OK;
}

ds_status_t ds_cmd_file_get(ds_ctx_t *ctx, const char *project, const char *file_id, ds_file_t *out)
{
    ds_proj_t p;
    ds_file_rec_t rec;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = get_visible(ctx, project, file_id, &rec);
    if (st == DS_OK)
        to_file(ctx->arena, &rec, out);
    return st;
}

/*
 * Unlinks objects/<key> of project's area (if it is there and confined) and
 * prunes its folders; then the sidecar of file id.
 */
static void remove_object(ds_arena_t *a, const char *project, const char *key, const char *id)
{
    const char *area;
    char path[PATH_MAX];
    ds_err_t e = {0};
    if (existing_area(a, project, &area, &e) != DS_OK)
        return;
    sidecar_remove(a, area, id);
    if (ds_files_confine(area, ds_arena_printf(a, "objects/%s", key), false, path, sizeof(path), &e) != DS_OK) {
        if (e.status != DS_NOT_FOUND)
            ds_log(DS_LOG_WARN, "project %s: not removing object \"%s\": %s", project, key, e.message);
        return;
    }
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode) && unlink(path) != 0)
        ds_log(DS_LOG_WARN, "project %s: cannot remove object \"%s\": %s", project, key, strerror(errno));
    prune_dirs(ds_arena_printf(a, "%s/objects", area), path);
}

ds_status_t ds_cmd_file_delete(ds_ctx_t *ctx, const char *project, const char *file_id)
{
    ds_proj_t p;
    ds_file_rec_t rec;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx); /* Storage Files writes take no write slot */
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&files_lock);
    st = get_visible(ctx, project, file_id, &rec);
    if (st == DS_OK)
        st = ds_catalog_file_delete(project, rec.id, &ctx->err);
    if (st == DS_OK)
        remove_object(ctx->arena, project, rec.name, rec.id);
    pthread_mutex_unlock(&files_lock);
    return st;
}

ds_status_t ds_cmd_file_open(ds_ctx_t *ctx, const char *project, const char *file_id, int *fd, ds_file_t *out)
{
    ds_proj_t p;
    ds_file_rec_t rec;
    const char *area;
    char path[PATH_MAX];
    *fd = -1;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    /* Under the lock, so the row and the bytes belong together even during a replace. */
    pthread_mutex_lock(&files_lock);
    st = get_visible(ctx, project, file_id, &rec);
    if (st == DS_OK)
        st = existing_area(ctx->arena, project, &area, &ctx->err);
    if (st == DS_OK)
        st = ds_files_confine(area, ds_arena_printf(ctx->arena, "objects/%s", rec.name), false, path, sizeof(path),
                              &ctx->err);
    if (st == DS_OK) {
        *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (*fd < 0)
            st = ds_err_set(&ctx->err, errno == ENOENT ? DS_NOT_FOUND : DS_UNAVAILABLE,
                            "cannot open file \"%s\": %s", file_id, strerror(errno));
    }
    pthread_mutex_unlock(&files_lock);
    if (st == DS_NOT_FOUND)
        return file_not_found(&ctx->err, file_id);
    if (st != DS_OK)
        return st;
    struct stat sb;
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(*fd);
        *fd = -1;
        return file_not_found(&ctx->err, file_id);
    }
    rec.size = sb.st_size;
    to_file(ctx->arena, &rec, out);
    return DS_OK;
}

/* ---- import and export helpers ---- */

typedef struct {
    const char **items;
    size_t n, cap;
} paths_t;

static ds_status_t push_path(ds_ctx_t *ctx, paths_t *p, const char *path)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        const char **items = ds_arena_alloc(ctx->arena, sizeof(char *) * cap);
        if (!items)
            return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
        if (p->n)
            memcpy(items, p->items, sizeof(char *) * p->n);
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n++] = path;
    return DS_OK;
}

/* The confined local path of a file row; it must be a regular file. */
static ds_status_t object_path(ds_ctx_t *ctx, const char *area, const ds_file_rec_t *rec, const char **out)
{
    char path[PATH_MAX];
    ds_status_t st = ds_files_confine(area, ds_arena_printf(ctx->arena, "objects/%s", rec->name), false, path,
                                      sizeof(path), &ctx->err);
    if (st == DS_NOT_FOUND)
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "the content of file \"%.200s\" is missing",
                           rec->name);
    if (st != DS_OK)
        return st;
    char objects[PATH_MAX + 16];
    snprintf(objects, sizeof(objects), "%s/objects/", area);
    struct stat sb;
    if (strncmp(path, objects, strlen(objects)) != 0 || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "file \"%.200s\" does not resolve to a stored file",
                          rec->name);
    *out = ds_arena_strdup(ctx->arena, path);
    return DS_OK;
}

/* Every visible, non-manifest file under the folder prefix (ending in "/"), by key. */
static ds_status_t add_folder(ds_ctx_t *ctx, const char *project, const char *area, const char *prefix, paths_t *out)
{
    ds_file_rec_t *recs;
    size_t k, added = 0;
    ds_status_t st = ds_catalog_file_list(ctx->arena, project, prefix, ds_now(), &recs, &k, &ctx->err);
    for (size_t i = 0; st == DS_OK && i < k; i++) {
        const char *path;
        if (recs[i].sliced)
            continue;
        if ((st = object_path(ctx, area, &recs[i], &path)) == DS_OK)
            st = push_path(ctx, out, path);
        added++;
    }
    if (st == DS_OK && added == 0)
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "no files under \"%.200s\"", prefix);
    return st;
}

/* One file row: its own path, or, for a manifest, the paths of its entries. */
static ds_status_t add_file(ds_ctx_t *ctx, const char *project, const char *area, const ds_file_rec_t *rec,
                            paths_t *out)
{
    const char *path;
    ds_status_t st = object_path(ctx, area, rec, &path);
    if (st != DS_OK || !rec->sliced)
        return st == DS_OK ? push_path(ctx, out, path) : st;
    char *data;
    size_t len, n;
    const char **urls;
    if ((st = read_small(path, manifest_max(), &data, &len, &ctx->err)) != DS_OK)
        return st;
    st = parse_manifest(ctx->arena, data, len, rec->name, &urls, &n, &ctx->err);
    free(data);
    for (size_t i = 0; st == DS_OK && i < n; i++) {
        const char *key;
        ds_file_rec_t entry;
        if ((st = entry_key(urls[i], rec->name, &key, &ctx->err)) != DS_OK)
            break;
        if (key[strlen(key) - 1] == '/') {
            st = add_folder(ctx, project, area, key, out);
            continue;
        }
        ds_err_t e = {0};
        st = ds_catalog_file_by_name(ctx->arena, project, key, &entry, &e);
        if (st == DS_NOT_FOUND || (st == DS_OK && !visible(&entry, ds_now())))
            st = ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND,
                             "file \"%.200s\" named by manifest \"%.200s\" not found", key, rec->name);
        else if (st != DS_OK)
            ctx->err = e;
        if (st == DS_OK && (st = object_path(ctx, area, &entry, &path)) == DS_OK)
            st = push_path(ctx, out, path);
    }
    return st;
}

static void remove_links(void *dir) { ds_remove_tree(dir); }

/*
 * Replaces every resolved object path in p by a hard link to the same file
 * in a new scratch directory, removed when the request ends. DuckDB's readers
 * expand glob characters (* ? [ ] and **) in every path they are given, and
 * a key may contain them ("a[1].csv" would read "a1.csv", "*" the whole
 * folder), so a reader is never given a path a client chose: link names are
 * "<n>-<basename>" with every byte outside [A-Za-z0-9._-] replaced by "_"
 * (the extension stays, it tells the reader about compression), under
 * .../objects/ so that reader errors still name the file without host paths.
 * A link also pins the bytes: a file replaced during the import is read as
 * it was when the import resolved it.
 */
static ds_status_t link_paths(ds_ctx_t *ctx, const char *project, paths_t *p)
{
    const char *dir;
    if (p->n == 0)
        return DS_OK;
    ds_status_t st = ds_files_scratch_dir(ctx, project, &dir);
    if (st != DS_OK)
        return st;
    ds_arena_on_destroy(ctx->arena, remove_links, (void *)dir);
    if (strpbrk(dir, "*?[]{}\\")) {
        ds_log(DS_LOG_ERROR, "files: the data directory's path (%s) contains a glob character, which DuckDB's "
               "readers would expand; rename it", dir);
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "the server's data directory cannot be read safely (see its log)");
    }
    const char *objects = ds_arena_printf(ctx->arena, "%s/objects", dir);
    if (!objects || mkdir(objects, 0700) != 0)
        return io_error(&ctx->err, DS_UNAVAILABLE, "cannot create a scratch directory", objects ? objects : dir);
    for (size_t i = 0; i < p->n; i++) {
        const char *base = strrchr(p->items[i], '/');
        base = base ? base + 1 : p->items[i];
        char name[NAME_MAX + 1];
        snprintf(name, sizeof(name), "%zu-%.200s", i, base);
        for (char *c = name; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                  *c == '_' || *c == '-'))
                *c = '_';
        const char *target = ds_arena_printf(ctx->arena, "%s/%s", objects, name);
        if (!target)
            return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
        if (link(p->items[i], target) != 0 && symlink(p->items[i], target) != 0) {
            if (errno == ENOENT)
                return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND,
                                   "a file to import was deleted while the import started");
            return io_error(&ctx->err, DS_UNAVAILABLE, "cannot prepare a file for the import", p->items[i]);
        }
        p->items[i] = target;
    }
    return DS_OK;
}

ds_status_t ds_files_resolve(ds_ctx_t *ctx, const char *project, const char *file_id, const char *file_key,
                             const char ***paths, size_t *n)
{
    paths_t out = {0};
    const char *area;
    ds_file_rec_t rec;
    ds_err_t e = {0};
    *paths = NULL;
    *n = 0;
    ds_status_t st = ds_ident_check_project(project, &ctx->err);
    if (st != DS_OK)
        return st;
    bool has_id = file_id && *file_id;
    if (has_id == (file_key && *file_key))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "file_id", "give exactly one of file_id and file_key");
    if (!has_id) {
        if ((st = ds_ident_check_file_key(file_key, &e)) != DS_OK)
            return ds_err_setf(&ctx->err, st, "file_key", "%s", e.message);
        if (!valid_utf8((const unsigned char *)file_key))
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "file_key", "file_key is not valid UTF-8");
    }
    if ((st = existing_area(ctx->arena, project, &area, &ctx->err)) != DS_OK)
        return st;
    if (!has_id && file_key[strlen(file_key) - 1] == '/') {
        st = add_folder(ctx, project, area, file_key, &out);
    } else {
        st = has_id ? (is_file_id(file_id) ? ds_catalog_file_get(ctx->arena, project, file_id, &rec, &e) : DS_NOT_FOUND)
                    : ds_catalog_file_by_name(ctx->arena, project, file_key, &rec, &e);
        if (st == DS_NOT_FOUND || (st == DS_OK && !visible(&rec, ds_now())))
            return file_not_found(&ctx->err, has_id ? file_id : file_key);
        if (st != DS_OK) {
            ctx->err = e;
            return st;
        }
        st = add_file(ctx, project, area, &rec, &out);
    }
    if (st == DS_OK)
        st = link_paths(ctx, project, &out);
    if (st != DS_OK)
        return st;
    *paths = out.items;
    *n = out.n;
    return DS_OK;
}

ds_status_t ds_files_scratch_dir(ds_ctx_t *ctx, const char *project, const char **dir)
{
    const char *area;
    char id[DS_FILE_ID_HEX + 1], real[PATH_MAX];
    ds_status_t st = ds_ident_check_project(project, &ctx->err);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&files_lock);
    st = project_ready(project, &ctx->err);
    if (st == DS_OK)
        st = ensure_area(ctx->arena, project, &area, &ctx->err);
    if (st == DS_OK)
        st = make_dir(ds_arena_printf(ctx->arena, "%s/scratch", area), &ctx->err);
    if (st == DS_OK) {
        new_id(id);
        const char *path = ds_arena_printf(ctx->arena, "%s/scratch/%s", area, id);
        if (mkdir(path, 0700) != 0 || !realpath(path, real))
            st = io_error(&ctx->err, DS_UNAVAILABLE, "cannot create a scratch directory", path);
        else
            *dir = ds_arena_strdup(ctx->arena, real);
    }
    pthread_mutex_unlock(&files_lock);
    return st;
}

/* sha256 (hex) and size of a local file. */
static ds_status_t hash_file(const char *path, char hex[65], int64_t *size, ds_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return io_error(err, DS_UNAVAILABLE, "cannot read an export file", path);
    enum { BUF = 1 << 20 };
    char *buf = malloc(BUF);
    ds_sha256_t *sha = ds_sha256_new();
    int64_t total = 0;
    ssize_t r = -1;
    bool ok = sha != NULL;
    while (buf && ok && ((r = read(fd, buf, BUF)) > 0 || (r < 0 && errno == EINTR))) {
        if (r < 0)
            continue;
        ok = ds_sha256_update(sha, buf, (size_t)r);
        total += r;
    }
    free(buf);
    close(fd);
    ok = ok && buf && r == 0 && ds_sha256_final_hex(sha, hex);
    ds_sha256_free(&sha);
    if (!ok)
        return io_error(err, DS_UNAVAILABLE, "cannot read an export file", path);
    *size = total;
    return DS_OK;
}

typedef struct {
    const char *src;    /* where the bytes are now */
    const char *target; /* objects/<key> once moved */
    const char *backup;
    bool moved, had_backup;
} move_t;

/* Removes the empty directories above path, up to <area>/scratch (exclusive). */
static void prune_scratch(const char *area, const char *path)
{
    char stop[PATH_MAX + 16];
    snprintf(stop, sizeof(stop), "%s/scratch", area);
    size_t n = strlen(stop);
    if (strncmp(path, stop, n) == 0 && path[n] == '/')
        prune_dirs(stop, path);
}

ds_status_t ds_files_adopt(ds_ctx_t *ctx, const char *project, const char *const *paths, size_t n, const char *name,
                           bool sliced, bool permanent, ds_file_t *out)
{
    const char *area;
    ds_status_t st = ds_ident_check_project(project, &ctx->err);
    if (st != DS_OK)
        return st;
    if ((st = check_key(name, &ctx->err)) != DS_OK)
        return st;
    if (n == 0 && !sliced)
        return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "no files to store as \"%.200s\"", name);
    bool multi = sliced || n != 1, manifest_active = false;
    size_t total = n + (multi ? 1 : 0);
    if ((st = ensure_area(ctx->arena, project, &area, &ctx->err)) != DS_OK)
        return st;
    ds_file_rec_t *recs = ds_arena_alloc(ctx->arena, sizeof(*recs) * total);
    move_t *moves = ds_arena_alloc(ctx->arena, sizeof(*moves) * total);
    if (!recs || !moves)
        return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");

    /* Check and hash every source before anything moves. */
    char objects[PATH_MAX + 16];
    snprintf(objects, sizeof(objects), "%s/objects/", area);
    int64_t now = ds_now();
    for (size_t i = 0; i < n; i++) {
        char real[PATH_MAX];
        struct stat sb;
        /* These are the export code's mistakes, not the client's: the log names the path. */
        if (!paths[i] || !realpath(paths[i], real)) {
            ds_log(DS_LOG_ERROR, "files: adopt: cannot resolve %s", paths[i] ? paths[i] : "(null)");
            return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "export file %zu cannot be found", i);
        }
        size_t alen = strlen(area);
        if (strncmp(real, area, alen) != 0 || real[alen] != '/' || strncmp(real, objects, strlen(objects)) == 0) {
            ds_log(DS_LOG_ERROR, "files: adopt: %s is outside project %s's scratch area", real, project);
            return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "export file %zu is not in the project's scratch area",
                              i);
        }
        if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode))
            return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "export file %zu is not a regular file", i);
        ds_file_rec_t *r = &recs[i];
        new_id(r->id);
        snprintf(r->project, sizeof(r->project), "%s", project);
        r->name = multi ? ds_arena_printf(ctx->arena, "%s.part%04zu", name, i) : name;
        if (multi && (st = check_key(r->name, &ctx->err)) != DS_OK)
            return st;
        if ((st = hash_file(real, r->sha256, &r->size, &ctx->err)) != DS_OK)
            return st;
        moves[i].src = ds_arena_strdup(ctx->arena, real);
    }
    if (multi) {
        /* The manifest, written into staging/ and then moved in like the parts. */
        ds_file_rec_t *m = &recs[n];
        new_id(m->id);
        snprintf(m->project, sizeof(m->project), "%s", project);
        m->name = name;
        m->sliced = true;
        json_t *entries = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(entries, json_pack("{s:s}", "url", recs[i].name));
        json_t *root = json_pack("{s:o}", "entries", entries);
        char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (!text)
            return ds_err_set(&ctx->err, DS_INTERNAL, "cannot build the manifest");
        const char *mpath = ds_arena_printf(ctx->arena, "%s/staging/%s", area, m->id);
        /* Registered as an upload, so the sweep leaves the staged manifest alone. */
        pthread_mutex_lock(&files_lock);
        bool registered = add_active(project, m->id);
        pthread_mutex_unlock(&files_lock);
        if (!registered) {
            free(text);
            return ds_err_set(&ctx->err, DS_INTERNAL, "out of memory");
        }
        manifest_active = true;
        int fd = open(mpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
        size_t len = strlen(text);
        bool hashed = ds_sha256_hex(text, len, m->sha256);
        m->size = (int64_t)len;
        st = fd < 0      ? io_error(&ctx->err, DS_UNAVAILABLE, "cannot write the manifest", mpath)
             : !hashed ? ds_err_set(&ctx->err, DS_INTERNAL, "the manifest's SHA-256 could not be computed")
                       : write_all(fd, text, len, &ctx->err);
        if (st == DS_OK && fsync(fd) != 0)
            st = io_error(&ctx->err, DS_UNAVAILABLE, "cannot sync the manifest", mpath);
        free(text);
        if (fd >= 0)
            close(fd);
        moves[n].src = mpath;
        if (st != DS_OK)
            goto fail;
    }
    for (size_t i = 0; i < total; i++) {
        recs[i].permanent = permanent;
        recs[i].state = DS_FILE_READY;
        recs[i].created_at = now;
        recs[i].expires_at = permanent ? 0 : now + file_ttl();
        moves[i].backup = ds_arena_printf(ctx->arena, "%s/staging/%s.old", area, recs[i].id);
        int fd = open(moves[i].src, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }

    size_t done = 0;
    /* The sidecars before the rows (and outside files_lock: they sync). */
    if ((st = sidecars_write(ctx->arena, area, recs, total, &ctx->err)) != DS_OK)
        goto fail;
    pthread_mutex_lock(&files_lock);
    st = project_ready(project, &ctx->err);
    for (size_t i = 0; st == DS_OK && i < total; i++) {
        bool exists;
        if ((st = check_free(ctx, project, recs[i].name, NULL, &exists)) == DS_OK && exists)
            st = ds_err_setf(&ctx->err, DS_ALREADY_EXISTS, "file_name", "a file named \"%.200s\" already exists",
                             recs[i].name);
    }
    for (; st == DS_OK && done < total; done++) {
        st = move_in(ctx, area, moves[done].src, recs[done].name, moves[done].backup, &moves[done].target,
                     &moves[done].had_backup);
        if (st != DS_OK)
            break;
        moves[done].moved = true;
    }
    if (st == DS_OK)
        st = ds_catalog_file_publish(recs, total, &ctx->err);
    objects[strlen(objects) - 1] = '\0';
    for (size_t i = total; i-- > 0;) {
        if (!moves[i].moved)
            continue;
        if (st != DS_OK)
            undo_move(objects, moves[i].src, moves[i].target, moves[i].backup, moves[i].had_backup);
        else if (moves[i].had_backup)
            unlink(moves[i].backup);
    }
    if (st == DS_OK && total)
        sync_dir_of(moves[total - 1].target);
    pthread_mutex_unlock(&files_lock);
    if (st != DS_OK) {
        for (size_t i = 0; i < total; i++)
            sidecar_remove(ctx->arena, area, recs[i].id);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        prune_scratch(area, moves[i].src);
    to_file(ctx->arena, &recs[total - 1], out);
    if (manifest_active) {
        pthread_mutex_lock(&files_lock);
        remove_active(project, recs[n].id);
        pthread_mutex_unlock(&files_lock);
    }
    return DS_OK;
fail:
    if (manifest_active) {
        unlink(moves[n].src);
        pthread_mutex_lock(&files_lock);
        remove_active(project, recs[n].id);
        pthread_mutex_unlock(&files_lock);
    }
    return st;
}

ds_status_t ds_files_drop_project(const char *data, const char *project, ds_err_t *err)
{
    char area[PATH_MAX];
    ds_status_t st = ds_ident_check_project(project, err);
    if (st != DS_OK)
        return st;
    snprintf(area, sizeof(area), "%s/files/project_%s", data, project);
    pthread_mutex_lock(&files_lock);
    st = ds_catalog_file_delete_project(project, err);
    if (st == DS_OK && ds_remove_tree(area) != 0)
        st = io_error(err, DS_UNAVAILABLE, "cannot remove the project's files", area);
    pthread_mutex_unlock(&files_lock);
    return st;
}

/* ---- sweep and startup reconciliation ---- */

/* The project id in a directory name "project_<id>", or NULL. */
static const char *project_of_dir(const char *dname)
{
    if (strncmp(dname, "project_", 8) != 0)
        return NULL;
    ds_err_t e = {0};
    return ds_ident_check_project(dname + 8, &e) == DS_OK ? dname + 8 : NULL;
}

static bool project_known(const char *project)
{
    ds_project_rec_t rec;
    ds_err_t e = {0};
    return ds_catalog_project_get(project, &rec, &e) == DS_OK;
}

/* Removes expired files and abandoned prepared uploads. */
static void sweep_rows(ds_arena_t *a)
{
    ds_file_rec_t *due;
    size_t n;
    ds_err_t e = {0};
    int64_t now = ds_now();
    if (ds_catalog_file_due(a, now, &due, &n, &e) != DS_OK) {
        ds_log(DS_LOG_WARN, "files sweep: cannot list expired files: %s", e.message);
        return;
    }
    for (size_t i = 0; i < n && !ds_periodic_stopping(sweeper); i++) {
        ds_file_rec_t cur;
        pthread_mutex_lock(&files_lock);
        /* Re-read under the lock: a replace or a delete may have come first. */
        if (ds_catalog_file_get(a, due[i].project, due[i].id, &cur, &e) == DS_OK && cur.expires_at > 0 &&
            cur.expires_at <= now && !(cur.state == DS_FILE_STAGING && is_active(cur.project, cur.id))) {
            if (ds_catalog_file_delete(cur.project, cur.id, &e) == DS_OK) {
                if (cur.state == DS_FILE_READY)
                    remove_object(a, cur.project, cur.name, cur.id);
                ds_log(DS_LOG_INFO, "files sweep: project %s: removed %s %s (\"%s\")", cur.project,
                       cur.state == DS_FILE_READY ? "expired file" : "abandoned prepared upload", cur.id, cur.name);
            } else {
                ds_log(DS_LOG_WARN, "files sweep: cannot remove file %s: %s", cur.id, e.message);
            }
        }
        pthread_mutex_unlock(&files_lock);
    }
}

/* Removes the staging files no active upload owns ("<id>" and "<id>.old"). */
static void sweep_staging(const char *area, const char *project)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/staging", area);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !ds_periodic_stopping(sweeper)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char id[DS_FILE_ID_HEX + 1], path[PATH_MAX];
        snprintf(id, sizeof(id), "%.*s", (int)strcspn(e->d_name, "."), e->d_name);
        int k = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof(path))
            continue;
        pthread_mutex_lock(&files_lock);
        if (!is_active(project, id)) {
            if (ds_remove_tree(path) == 0)
                ds_log(DS_LOG_INFO, "files sweep: project %s: removed staging leftover %s", project, e->d_name);
        }
        pthread_mutex_unlock(&files_lock);
    }
    closedir(d);
}

/* Removes scratch directories older than max_age seconds (all with max_age 0). */
static void sweep_scratch(const char *area, int64_t max_age)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/scratch", area);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d)) != NULL && !ds_periodic_stopping(sweeper)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        struct stat sb;
        int k = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof(path) || lstat(path, &sb) != 0)
            continue;
        if (max_age == 0 || (int64_t)(now - sb.st_mtime) > max_age)
            ds_remove_tree(path);
    }
    closedir(d);
}

typedef struct {
    const char *project;
    const char *name;
} key_ref_t;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref_t *x = a, *y = b;
    int c = strcmp(x->project, y->project);
    return c ? c : strcmp(x->name, y->name);
}

typedef struct {
    key_ref_t *keys;
    size_t n;
    const char *project;
    const char *objects;
    int removed;
    char qdir[PATH_MAX]; /* the quarantine folder, opened at the first object to move */
    const char *what;
} reconcile_t;

/* Moves one object no row names into the project's quarantine folder (opened once). */
static void quarantine_object(reconcile_t *rc, const char *path, const char *key)
{
    ds_err_t e = {0};
    if (!rc->qdir[0] && ds_quarantine_open(data_dir(), "unindexed-files", rc->what, rc->objects, rc->qdir,
                                           sizeof(rc->qdir), &e) != DS_OK) {
        ds_log(DS_LOG_ERROR, "files: project %s: cannot quarantine \"%s\": %s", rc->project, key, e.message);
        return;
    }
    char name[PATH_MAX + 16];
    snprintf(name, sizeof(name), "objects/%s", key);
    if (ds_quarantine_move_into(rc->qdir, path, name, &e) == DS_OK)
        rc->removed++;
    else
        ds_log(DS_LOG_ERROR, "files: project %s: cannot quarantine \"%s\": %s", rc->project, key, e.message);
}

/* Walks objects/ recursively; quarantines every non-folder entry no READY row names. */
static void reconcile_walk(reconcile_t *rc, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX], key[PATH_MAX];
        struct stat sb;
        int k1 = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int k2 = snprintf(key, sizeof(key), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (k1 < 0 || (size_t)k1 >= sizeof(path) || k2 < 0 || (size_t)k2 >= sizeof(key) || lstat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            reconcile_walk(rc, path, key);
            rmdir(path); /* only succeeds when it ended up empty */
            continue;
        }
        key_ref_t probe = {rc->project, key};
        if (!bsearch(&probe, rc->keys, rc->n, sizeof(*rc->keys), cmp_key_ref))
            quarantine_object(rc, path, key);
    }
    closedir(d);
}

/* Removes the sidecars in area whose id is not a READY row of project (ids: sorted (project, id) refs). */
static void reconcile_sidecars(ds_arena_t *a, const char *area, const char *project, const key_ref_t *ids, size_t n)
{
    const char *dir = ds_arena_printf(a, "%s/index", area);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char id[DS_FILE_ID_HEX + 1];
        snprintf(id, sizeof(id), "%.*s", (int)strcspn(e->d_name, "."), e->d_name);
        key_ref_t probe = {project, id};
        bool named = strcmp(e->d_name + strlen(id), ".json") == 0 &&
                     bsearch(&probe, ids, n, sizeof(*ids), cmp_key_ref) != NULL;
        if (!named)
            unlink(ds_arena_printf(a, "%s/%s", dir, e->d_name));
    }
    if (d)
        closedir(d);
}

/*
 * Startup (before any request): makes disk and index agree, deleting no
 * stored bytes. Areas of unknown projects go to the quarantine (their rows
 * are dropped); staging and scratch are emptied (unfinished uploads and
 * exports, never acknowledged; nothing can be writing yet); objects no READY
 * row names go to the quarantine; READY rows whose object is missing are
 * removed; every READY row gets its sidecar, stray sidecars go.
 */
static void reconcile(void)
{
    ds_arena_t *a = ds_arena_create();
    ds_file_rec_t *rows;
    size_t n = 0;
    ds_err_t e = {0};
    if (!a)
        return;
    if (ds_catalog_file_all(a, NULL, &rows, &n, &e) != DS_OK) {
        ds_log(DS_LOG_WARN, "files: cannot read the file index for reconciliation: %s", e.message);
        ds_arena_destroy(&a);
        return;
    }
    key_ref_t *keys = ds_arena_alloc(a, sizeof(*keys) * (n ? n : 1));
    size_t nk = 0;
    for (size_t i = 0; keys && i < n; i++)
        if (rows[i].state == DS_FILE_READY)
            keys[nk++] = (key_ref_t){rows[i].project, rows[i].name};
    if (keys)
        qsort(keys, nk, sizeof(*keys), cmp_key_ref);

    /* Rows of projects that no longer exist, and rows whose bytes are gone. */
    for (size_t i = 0; i < n; i++) {
        if (!project_known(rows[i].project)) {
            if (i == 0 || strcmp(rows[i - 1].project, rows[i].project) != 0) {
                ds_log(DS_LOG_WARN, "files: removing the index rows of unknown project %s", rows[i].project);
                ds_catalog_file_delete_project(rows[i].project, &e);
            }
            continue;
        }
        if (rows[i].state != DS_FILE_READY)
            continue;
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/files/project_%s/objects/%s", data_dir(), rows[i].project, rows[i].name);
        if (lstat(path, &sb) != 0 && errno == ENOENT) {
            ds_log(DS_LOG_WARN, "files: project %s: file %s (\"%s\") has no content on disk; removing it",
                   rows[i].project, rows[i].id, rows[i].name);
            ds_catalog_file_delete(rows[i].project, rows[i].id, &e);
            rows[i].state = DS_FILE_STAGING; /* so its sidecar goes too */
            continue;
        }
        /* Files stored before sidecars existed get theirs now. */
        const char *area = area_path(a, data_dir(), rows[i].project);
        if (access(ds_arena_printf(a, "%s/index/%s.json", area, rows[i].id), F_OK) != 0 &&
            sidecar_write(a, area, &rows[i], &e) != DS_OK)
            ds_log(DS_LOG_WARN, "files: project %s: cannot write the metadata of file %s: %s", rows[i].project,
                   rows[i].id, e.message);
    }

    /* The ids of the READY rows left, for the sidecars. */
    key_ref_t *ids = ds_arena_alloc(a, sizeof(*ids) * (n ? n : 1));
    size_t nids = 0;
    for (size_t i = 0; ids && i < n; i++)
        if (rows[i].state == DS_FILE_READY)
            ids[nids++] = (key_ref_t){rows[i].project, rows[i].id};
    if (ids)
        qsort(ids, nids, sizeof(*ids), cmp_key_ref);

    const char *root = ds_arena_printf(a, "%s/files", data_dir());
    DIR *d = opendir(root);
    struct dirent *de;
    while (d && keys && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        const char *area = ds_arena_printf(a, "%s/%s", root, de->d_name);
        const char *project = project_of_dir(de->d_name);
        if (!project) {
            ds_log(DS_LOG_WARN, "files: %s is not a project's area; leaving it alone", area);
            continue;
        }
        if (!project_known(project)) {
            if (ds_quarantine_path(data_dir(), "orphan-file-area",
                                   ds_arena_printf(a, "the Storage Files of project %s (no such project)", project),
                                   area, &e) != DS_OK)
                ds_log(DS_LOG_ERROR, "files: cannot quarantine %s: %s", area, e.message);
            continue;
        }
        sweep_staging(area, project);
        sweep_scratch(area, 0);
        reconcile_t rc = {keys, nk, ds_arena_strdup(a, project), ds_arena_printf(a, "%s/objects", area), 0, {0},
                          ds_arena_printf(a, "Storage Files of project %s that the file index does not name",
                                          project)};
        reconcile_walk(&rc, rc.objects, "");
        if (rc.qdir[0])
            ds_quarantine_close(rc.qdir, rc.removed > 0, "unindexed-files", rc.what);
        if (ids)
            reconcile_sidecars(a, area, project, ids, nids);
    }
    if (d)
        closedir(d);
    ds_arena_destroy(&a);
}

/* One periodic pass: expired rows, then every area's staging and scratch. */
static void sweep_once(void *ud)
{
    (void)ud;
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return;
    sweep_rows(a);
    ds_snapshots_sweep();
    const char *root = ds_arena_printf(a, "%s/files", data_dir());
    DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && !ds_periodic_stopping(sweeper)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        const char *area = ds_arena_printf(a, "%s/%s", root, de->d_name);
        const char *project = project_of_dir(de->d_name);
        if (!project)
            continue;
        pthread_mutex_lock(&files_lock);
        bool known = project_known(project);
        if (!known) {
            /* A deletion that could not finish removing its files: its leftovers go to the quarantine. */
            ds_err_t e = {0};
            ds_catalog_file_delete_project(project, &e);
            if (ds_quarantine_path(data_dir(), "orphan-file-area",
                                   ds_arena_printf(a, "the Storage Files of project %s (no such project)", project),
                                   area, &e) != DS_OK && e.status != DS_NOT_FOUND)
                ds_log(DS_LOG_ERROR, "files sweep: cannot quarantine %s: %s", area, e.message);
        }
        pthread_mutex_unlock(&files_lock);
        if (!known)
            continue;
        sweep_staging(area, project);
        sweep_scratch(area, STAGING_MAX_AGE);
    }
    if (d)
        closedir(d);
    ds_arena_destroy(&a);
}

/* One sidecar into r (strings in a); false when it is not a valid sidecar of project. */
static bool read_sidecar(ds_arena_t *a, const char *path, const char *project, ds_file_rec_t *r)
{
    json_t *doc = json_load_file(path, 0, NULL);
    const char *id = NULL, *name = NULL, *sha = NULL;
    json_int_t size = 0, created = 0, expires = 0;
    int format = 0, permanent = 0, sliced = 0;
    bool ok = doc && json_unpack(doc, "{s:i, s:s, s:s, s:I, s:s, s:I, s:I, s:b, s:b}", "format", &format, "id", &id,
                                 "name", &name, "size", &size, "sha256", &sha, "created_at", &created, "expires_at",
                                 &expires, "permanent", &permanent, "sliced", &sliced) == 0;
    ds_err_t e = {0};
    ok = ok && format == 1 && is_file_id(id) && strlen(sha) == 64 && ds_ident_check_file_key(name, &e) == DS_OK;
    if (ok) {
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", id);
        snprintf(r->project, sizeof(r->project), "%s", project);
        snprintf(r->sha256, sizeof(r->sha256), "%s", sha);
        r->name = ds_arena_strdup(a, name);
        r->size = size;
        r->created_at = created;
        r->expires_at = expires;
        r->permanent = permanent != 0;
        r->sliced = sliced != 0;
        r->state = DS_FILE_READY;
        ok = r->name != NULL;
    }
    json_decref(doc);
    return ok;
}

static int cmp_rec_name_newest(const void *x, const void *y)
{
    const ds_file_rec_t *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->created_at < b->created_at ? 1 : a->created_at > b->created_at ? -1 : strcmp(b->id, a->id);
}

/* Rebuilds the index rows of one project's area from its sidecars. */
static ds_status_t rebuild_area(ds_arena_t *a, const char *area, const char *project, size_t *restored,
                                ds_err_t *err)
{
    const char *dir = ds_arena_printf(a, "%s/index", area);
    DIR *d = opendir(dir);
    if (!d)
        return DS_OK;
    size_t n = 0, cap = 64;
    ds_file_rec_t *recs = ds_arena_alloc(a, sizeof(*recs) * cap);
    struct dirent *e;
    while (recs && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            ds_file_rec_t *bigger = ds_arena_alloc(a, sizeof(*recs) * cap * 2);
            if (!bigger)
                break;
            memcpy(bigger, recs, sizeof(*recs) * n);
            recs = bigger;
            cap *= 2;
        }
        if (!read_sidecar(a, ds_arena_printf(a, "%s/%s", dir, e->d_name), project, &recs[n])) {
            ds_log(DS_LOG_WARN, "files: project %s: sidecar %s is not valid; ignored", project, e->d_name);
            continue;
        }
        n++;
    }
    closedir(d);
    if (!recs)
        return ds_err_set(err, DS_INTERNAL, "out of memory");
    qsort(recs, n, sizeof(*recs), cmp_rec_name_newest);
    /* Per key, the newest sidecar whose object has the recorded size. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && strcmp(recs[k - 1].name, recs[i].name) == 0)
            continue;
        char path[PATH_MAX];
        struct stat sb;
        ds_err_t e2 = {0};
        if (ds_files_confine(area, ds_arena_printf(a, "objects/%s", recs[i].name), false, path, sizeof(path), &e2) !=
                DS_OK ||
            lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != recs[i].size)
            continue;
        recs[k++] = recs[i];
    }
    ds_status_t st = k ? ds_catalog_file_publish(recs, k, err) : DS_OK;
    if (st == DS_OK)
        *restored += k;
    return st;
}

ds_status_t ds_files_rebuild_index(const char *data, ds_err_t *err)
{
    ds_status_t st = ds_catalog_files_init(err);
    ds_arena_t *a = ds_arena_create();
    size_t restored = 0;
    if (st != DS_OK || !a) {
        ds_arena_destroy(&a);
        return st != DS_OK ? st : ds_err_set(err, DS_INTERNAL, "out of memory");
    }
    const char *root = ds_arena_printf(a, "%s/files", data);
    DIR *d = opendir(root);
    struct dirent *de;
    while (st == DS_OK && d && (de = readdir(d)) != NULL) {
        const char *project = project_of_dir(de->d_name);
        char area[PATH_MAX];
        if (!project || !project_known(project))
            continue;
        snprintf(area, sizeof(area), "%s/%s", root, de->d_name);
        if (!realpath(ds_arena_printf(a, "%s/%s", root, de->d_name), area))
            continue;
        st = rebuild_area(a, area, project, &restored, err);
    }
    if (d)
        closedir(d);
    if (st == DS_OK)
        ds_log(DS_LOG_WARN, "recovery: rebuilt the Storage File index from the files' sidecars: %zu files", restored);
    ds_arena_destroy(&a);
    return st;
}

ds_status_t ds_files_start(const ds_config_t *cfg, ds_err_t *err)
{
    ds_status_t st = ds_catalog_files_init(err);
    if (st != DS_OK)
        return st;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/files", cfg->data_dir);
    if ((st = make_dir(root, err)) != DS_OK)
        return st;
    reconcile();

    int64_t ttl = cfg->file_ttl > 0 ? cfg->file_ttl : 15 * 86400;
    int64_t interval = ttl / 4;
    /* The same sweep removes expired snapshots (cmd/snapshot.c): often enough for their retention too. */
    if (cfg->snapshot_retention > 0 && cfg->snapshot_retention / 4 < interval)
        interval = cfg->snapshot_retention / 4;
    if (interval > cfg->files_sweep)
        interval = cfg->files_sweep;
    if (interval < 1)
        interval = 1;
    if ((st = ds_periodic_start(&sweeper, "files-sweep", interval, sweep_once, NULL, err)) != DS_OK)
        return st;
    ds_log(DS_LOG_INFO, "files: sweep every %llds, file TTL %llds", (long long)interval, (long long)ttl);
    return DS_OK;
}

void ds_files_stop(void) { ds_periodic_stop(&sweeper); }
