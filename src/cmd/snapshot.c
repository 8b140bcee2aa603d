/*
 * snapshot.c - table snapshots (cmd/snapshot.h): create, list, get, delete,
 * restore, automatic snapshots before destructive operations, retention.
 *
 * DESIGN
 * Layout: <data>/snapshots/project_<id>/
 *     <snapshot id>/metadata.json      who, when, why, expiry, the tables
 *     <snapshot id>/t<i>/data.parquet  table i's rows: every column and _timestamp
 *     settings.json                    the automatic-snapshot switches
 * The snapshot's folder is its index entry (no catalog row, no row in the
 * project file). It is written as .tmp-<id> (Parquet by the backend's
 * table_export, then metadata.json, both fsynced) and renamed to <id>: the
 * rename is the commit. A kill -9 before it leaves a .tmp- folder that no
 * listing shows and the next start removes; after it the snapshot is
 * complete. A delete renames <id> to .del-<id> (gone at once for every
 * reader), then removes the bytes; the sweep finishes what a crash left.
 * Nothing else refers to a snapshot, so no second record can disagree.
 *
 * Consistency: a snapshot of a table is taken inside the table's write slot,
 * so the definition recorded and the rows exported are of one moment. A
 * bucket snapshot takes the project's catalog slot (no table created,
 * dropped or altered meanwhile) and exports each table as of its own export.
 * An automatic snapshot is taken by the destructive command inside the slot
 * it already holds, before its write.
 *
 * Retention: expires_at is fixed when the snapshot is made (snapshot_expiry
 * is the one place that decides it). An expired snapshot is invisible at once
 * and the files sweep (cmd/files.c) removes it.
 *
 * Thread-safety: snapshot ids are random; settings.json is rewritten under
 * settings_mu (read, change, write to a temp file, rename).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "cmd/internal.h"
#include "cmd/snapshot.h"
#include "core/log.h"
#include "core/quarantine.h"
#include "core/types.h"

const char *const ds_snap_trigger_names[DS_SNAP_N_TRIGGERS] = {"drop_table", "truncate", "delete_all_rows",
                                                               "drop_column"};

#define SNAP_ID_LEN 20
#define MAX_EXPIRES_IN ((int64_t)100 * 365 * 86400)

static pthread_mutex_t settings_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *data_dir(void) { return ds_service_config()->data_dir; }

static ds_status_t oom(ds_ctx_t *ctx) { return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory"); }

/* <data>/snapshots/project_<id> (arena). */
static const char *area_of(ds_arena_t *a, const char *project)
{
    return ds_arena_printf(a, "%s/snapshots/project_%s", data_dir(), project);
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (char *c = buf + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Removes path and everything under it; 0 when it is gone. */
static int rm_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fsync_path(const char *path, bool dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Snapshot ids are what this file generates: lower-case hex, SNAP_ID_LEN long. */
static bool valid_id(const char *id)
{
    if (!id || strlen(id) != SNAP_ID_LEN)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/*
 * The one place a snapshot's expiry is decided. Automatic snapshots: the
 * server's DUCKSTORE_SNAPSHOT_RETENTION when set, else the project's data
 * retention, else (a project without time travel) 7 days. Manual ones: their
 * expires_in, or never.
 */
static int64_t auto_keep(const ds_proj_t *p)
{
    int64_t keep = ds_service_config()->snapshot_retention;
    if (keep <= 0)
        keep = ds_cmd_retention_seconds(&p->rec);
    return keep > 0 ? keep : 7 * 86400;
}

static int64_t snapshot_expiry(const ds_proj_t *p, bool automatic, int64_t expires_in, int64_t now)
{
    if (automatic)
        return now + auto_keep(p);
    return expires_in > 0 ? now + expires_in : 0;
}

/* ---- metadata.json ---- */

static json_t *table_json(const ds_be_table_t *t, const char *file)
{
    json_t *cols = json_array(), *pk = json_array();
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        json_array_append_new(cols, json_pack("{s:s, s:s, s:b, s:o}", "name", c->name, "type", c->type, "nullable",
                                              c->nullable, "default",
                                              c->default_value ? json_string(c->default_value) : json_null()));
    }
    for (size_t i = 0; i < t->n_primary_key; i++)
        json_array_append_new(pk, json_string(t->primary_key[i]));
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:s}", "name", t->name, "columns", cols, "primary_key", pk, "rows",
                     (json_int_t)t->rows, "bytes", (json_int_t)t->bytes, "created_at", (json_int_t)t->created_at,
                     "file", file);
}

static json_t *snapshot_json(const ds_snapshot_t *s, json_t *tables)
{
    return json_pack("{s:i, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:o}", "format", 1, "id", s->id,
                     "branch", s->branch ? json_string(s->branch) : json_null(), "bucket", s->bucket, "table",
                     s->table ? json_string(s->table) : json_null(), "description",
                     s->description ? json_string(s->description) : json_null(), "kind",
                     s->automatic ? "auto" : "manual", "trigger", s->trigger ? json_string(s->trigger) : json_null(),
                     "key_id", s->key_id ? json_string(s->key_id) : json_null(), "created_at",
                     (json_int_t)s->created_at, "expires_at", (json_int_t)s->expires_at, "rows", (json_int_t)s->rows,
                     "bytes", (json_int_t)s->bytes, "tables", tables);
}

static const char *jstr(ds_arena_t *a, json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? ds_arena_strdup(a, json_string_value(v)) : NULL;
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/*
 * Reads dir/metadata.json into *s (arena). files (may be NULL) receives each
 * table's data file, absolute. false when it is not a valid snapshot record.
 */
static bool read_meta(ds_arena_t *a, const char *dir, ds_snapshot_t *s, const char ***files)
{
    json_t *doc = json_load_file(ds_arena_printf(a, "%s/metadata.json", dir), 0, NULL);
    memset(s, 0, sizeof(*s));
    json_t *tables = doc ? json_object_get(doc, "tables") : NULL;
    if (!doc || jint(doc, "format") != 1 || !json_is_array(tables) || json_array_size(tables) == 0) {
        json_decref(doc);
        return false;
    }
    s->id = jstr(a, doc, "id");
    s->branch = jstr(a, doc, "branch");
    s->bucket = jstr(a, doc, "bucket");
    s->table = jstr(a, doc, "table");
    s->description = jstr(a, doc, "description");
    const char *kind = jstr(a, doc, "kind");
    s->automatic = kind && strcmp(kind, "auto") == 0;
    s->trigger = jstr(a, doc, "trigger");
    s->key_id = jstr(a, doc, "key_id");
    s->created_at = jint(doc, "created_at");
    s->expires_at = jint(doc, "expires_at");
    s->rows = jint(doc, "rows");
    s->bytes = jint(doc, "bytes");
    s->n_tables = json_array_size(tables);
    s->tables = ds_arena_alloc(a, sizeof(*s->tables) * s->n_tables);
    const char **f = ds_arena_alloc(a, sizeof(char *) * s->n_tables);
    bool ok = s->id && s->bucket && s->tables && f;
    for (size_t i = 0; ok && i < s->n_tables; i++) {
        json_t *t = json_array_get(tables, i), *cols = json_object_get(t, "columns"), *pk = json_object_get(t, "primary_key");
        ds_be_table_t *d = &s->tables[i];
        d->bucket = s->bucket;
        d->name = jstr(a, t, "name");
        d->rows = jint(t, "rows");
        d->bytes = jint(t, "bytes");
        d->created_at = jint(t, "created_at");
        const char *file = jstr(a, t, "file");
        ok = d->name && file && json_is_array(cols) && json_array_size(cols) > 0 && json_is_array(pk) &&
             !strstr(file, "..") && file[0] != '/';
        if (!ok)
            break;
        f[i] = ds_arena_printf(a, "%s/%s", dir, file);
        d->n_columns = json_array_size(cols);
        d->columns = ds_arena_alloc(a, sizeof(*d->columns) * d->n_columns);
        d->n_primary_key = json_array_size(pk);
        d->primary_key = ds_arena_alloc(a, sizeof(char *) * (d->n_primary_key ? d->n_primary_key : 1));
        ok = d->columns && d->primary_key;
        for (size_t c = 0; ok && c < d->n_columns; c++) {
            json_t *cj = json_array_get(cols, c);
            d->columns[c].name = jstr(a, cj, "name");
            d->columns[c].type = jstr(a, cj, "type");
            d->columns[c].nullable = json_is_true(json_object_get(cj, "nullable"));
            d->columns[c].default_value = jstr(a, cj, "default");
            ok = d->columns[c].name && d->columns[c].type;
        }
        for (size_t k = 0; ok && k < d->n_primary_key; k++)
            ok = (d->primary_key[k] = json_is_string(json_array_get(pk, k))
                                          ? ds_arena_strdup(a, json_string_value(json_array_get(pk, k)))
                                          : NULL) != NULL;
    }
    json_decref(doc);
    if (ok && files)
        *files = f;
    return ok;
}

/* ---- writing a snapshot ---- */

typedef struct {
    const char *phys_bucket; /* where the rows are read */
    const char *phys_table;
    ds_be_table_t def; /* the definition recorded (bucket logical) */
} snap_src_t;

/*
 * Writes a snapshot of srcs into the project's area: .tmp-<id>, Parquet
 * through the backend, metadata.json, rename. *out (arena) describes it.
 */
static ds_status_t write_snapshot(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, snap_src_t *srcs,
                                  size_t n, const char *description, bool automatic, const char *trigger,
                                  int64_t expires_in, ds_snapshot_t *out)
{
    ds_arena_t *a = ctx->arena;
    unsigned char rnd[SNAP_ID_LEN / 2];
    char id[SNAP_ID_LEN + 1];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
    const char *area = area_of(a, p->rec.id);
    const char *tmp = ds_arena_printf(a, "%s/.tmp-%s", area, id);
    const char *final = ds_arena_printf(a, "%s/%s", area, id);
    if (!area || !tmp || !final)
        return oom(ctx);
    if (mkdir_p(tmp) != 0)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot create the snapshot folder: %s", strerror(errno));
    int64_t now = ds_now();
    memset(out, 0, sizeof(*out));
    out->id = ds_arena_strdup(a, id);
    out->branch = p->branch;
    out->bucket = bucket;
    out->table = table;
    out->description = description;
    out->automatic = automatic;
    out->trigger = trigger;
    out->key_id = ctx->key_id;
    out->created_at = now;
    out->expires_at = snapshot_expiry(p, automatic, expires_in, now);
    out->tables = ds_arena_alloc(a, sizeof(*out->tables) * (n ? n : 1));
    out->n_tables = n;
    json_t *tables = json_array();
    ds_status_t st = out->tables && tables ? DS_OK : oom(ctx);
    for (size_t i = 0; i < n && st == DS_OK; i++) {
        ds_be_table_t *d = &srcs[i].def;
        const char *sub = ds_arena_printf(a, "%s/t%zu", tmp, i);
        if (!sub || mkdir(sub, 0750) != 0) {
            st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot create the snapshot folder: %s", strerror(errno));
            break;
        }
        const char **cols = ds_arena_alloc(a, sizeof(char *) * (d->n_columns + 1));
        if (!cols) {
            st = oom(ctx);
            break;
        }
        for (size_t c = 0; c < d->n_columns; c++)
            cols[c] = d->columns[c].name;
        cols[d->n_columns] = "_timestamp";
        ds_export_t ex = {.format = DS_FORMAT_PARQUET, .columns = cols, .n_columns = d->n_columns + 1};
        const char **paths = NULL;
        size_t n_paths = 0;
        int64_t rows = 0;
        st = DS_BE_CALL(p->be, &p->call, table_export, srcs[i].phys_bucket, srcs[i].phys_table, &ex, sub, 0, &paths,
                        &n_paths, &rows);
        if (st == DS_OK && n_paths != 1)
            st = ds_err_set(&ctx->err, DS_INTERNAL, "the backend wrote %zu files for one snapshot table", n_paths);
        if (st != DS_OK)
            break;
        struct stat sb;
        d->rows = rows;
        d->bytes = stat(paths[0], &sb) == 0 ? (int64_t)sb.st_size : 0;
        fsync_path(paths[0], false);
        const char *base = strrchr(paths[0], '/');
        json_array_append_new(tables, table_json(d, ds_arena_printf(a, "t%zu/%s", i, base ? base + 1 : paths[0])));
        out->tables[i] = *d;
        out->rows += rows;
        out->bytes += d->bytes;
    }
    if (st == DS_OK) {
        json_t *doc = snapshot_json(out, tables);
        tables = NULL;
        const char *meta = ds_arena_printf(a, "%s/metadata.json", tmp);
        if (!doc || !meta || json_dump_file(doc, meta, JSON_COMPACT) != 0)
            st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot write the snapshot's metadata");
        json_decref(doc);
        if (st == DS_OK) {
            fsync_path(meta, false);
            fsync_path(tmp, true);
            ds_cmd_test_crash_point("snapshot_files");
            if (rename(tmp, final) != 0)
                st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot publish the snapshot: %s", strerror(errno));
            else
                fsync_path(area, true);
        }
    }
    json_decref(tables);
    if (st != DS_OK) {
        if (rm_tree(tmp) != 0)
            ds_log(DS_LOG_WARN, "snapshot %s: cannot remove its unfinished folder; the next start will", id);
        return st;
    }
    ds_log(DS_LOG_INFO, "project %s: snapshot %s of %s%s%s (%s%s%s): %lld rows, %lld bytes", p->rec.id, id, bucket,
           table ? "." : "", table ? table : "", automatic ? "auto before " : "manual", automatic ? trigger : "",
           p->branch ? ", in a branch" : "", (long long)out->rows, (long long)out->bytes);
    ds_cmd_test_crash_point("snapshot_create");
    return DS_OK;
}

/* DS_OK when p's backend can write (Parquet export) and restore (DS_CAP_SNAPSHOTS) snapshots. */
static ds_status_t require_snapshots(ds_ctx_t *ctx, ds_proj_t *p)
{
    ds_status_t st = ds_cmd_require_cap(ctx, p, DS_CAP_SNAPSHOTS, "snapshots");
    ds_export_t ex = {.format = DS_FORMAT_PARQUET};
    return st == DS_OK ? ds_cmd_require_export(ctx, p, &ex) : st;
}

static ds_status_t check_description(ds_ctx_t *ctx, const char *d)
{
    if (d && strlen(d) > 4096)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "description", "description is longer than 4096 bytes");
    return DS_OK;
}

ds_status_t ds_cmd_snapshot_create(ds_ctx_t *ctx, const char *project, const ds_snapshot_create_t *in,
                                   ds_snapshot_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    /* A key that may not write learns that first, whatever else is wrong. */
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st != DS_OK)
        return st;
    if (!in->bucket)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "bucket", "bucket is required");
    if ((st = ds_ident_check_bucket(in->bucket, "bucket", &ctx->err)) != DS_OK ||
        (in->table && (st = ds_ident_check_name(in->table, "table", &ctx->err)) != DS_OK) ||
        (st = check_description(ctx, in->description)) != DS_OK)
        return st;
    if (in->expires_in < 0 || in->expires_in > MAX_EXPIRES_IN)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "expires_in",
                           "expires_in must be a number of seconds between 1 and %lld (or absent: kept until deleted)",
                           (long long)MAX_EXPIRES_IN);
    if ((st = require_snapshots(ctx, &p)) != DS_OK)
        return st;
    const char *bucket = in->bucket, *table = in->table;
    if (table) {
        snap_src_t src;
        if ((st = ds_cmd_resolve_table(ctx, &p, &bucket, &table, false, NULL, NULL)) != DS_OK)
            return st;
        /* The write slot of the table read: no write changes it while it is copied. */
        if ((st = ds_cmd_enter_table(ctx, p.rec.id, bucket, table)) != DS_OK)
            return st;
        if ((st = DS_BE_CALL(p.be, &p.call, table_get, bucket, table, &src.def)) != DS_OK)
            return st;
        src.phys_bucket = bucket;
        src.phys_table = table;
        src.def.bucket = ds_cmd_branch_logical(&p, bucket);
        return write_snapshot(ctx, &p, src.def.bucket, src.def.name, &src, 1, in->description, false, NULL,
                              in->expires_in, out);
    }
    if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK)
        return st;
    const char *logical = ds_cmd_branch_logical(&p, bucket);
    /* The catalog slot: no table of the bucket is created, dropped or altered while it is copied. */
    if ((st = ds_cmd_enter_ddl(ctx, p.rec.id)) != DS_OK)
        return st;
    ds_be_table_t *items;
    size_t n;
    st = p.branch ? ds_cmd_branch_table_list(ctx, &p, logical, &items, &n)
                  : ds_be_table_list(p.be, &p.call, bucket, &items, &n);
    if (st != DS_OK)
        return st;
    if (n == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "bucket", "bucket \"%s\" has no tables to snapshot", logical);
    snap_src_t *srcs = ds_arena_alloc(ctx->arena, sizeof(*srcs) * n);
    if (!srcs)
        return oom(ctx);
    for (size_t i = 0; i < n; i++) {
        const char *b = logical, *t = items[i].name;
        if ((st = ds_cmd_resolve_table(ctx, &p, &b, &t, false, &srcs[i].def, NULL)) != DS_OK)
            return st;
        srcs[i].phys_bucket = b;
        srcs[i].phys_table = t;
        srcs[i].def.bucket = logical;
    }
    return write_snapshot(ctx, &p, logical, NULL, srcs, n, in->description, false, NULL, in->expires_in, out);
}

/* Every live snapshot of project (arena), newest first. */
static int cmp_newest(const void *x, const void *y)
{
    const ds_snapshot_t *a = x, *b = y;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? 1 : -1;
    return strcmp(a->id, b->id);
}

ds_status_t ds_cmd_snapshot_list(ds_ctx_t *ctx, const char *project, ds_snapshot_t **items, size_t *n)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    *items = NULL;
    *n = 0;
    const char *area = area_of(ctx->arena, p.rec.id);
    if (!area)
        return oom(ctx);
    DIR *d = opendir(area);
    if (!d)
        return DS_OK;
    size_t cap = 16;
    ds_snapshot_t *list = ds_arena_alloc(ctx->arena, sizeof(*list) * cap);
    int64_t now = ds_now();
    struct dirent *e;
    while (list && (e = readdir(d)) != NULL) {
        if (!valid_id(e->d_name))
            continue;
        if (*n == cap) {
            ds_snapshot_t *bigger = ds_arena_alloc(ctx->arena, sizeof(*list) * cap * 2);
            if (!bigger) {
                list = NULL;
                break;
            }
            memcpy(bigger, list, sizeof(*list) * cap);
            list = bigger;
            cap *= 2;
        }
        ds_snapshot_t s;
        const char *dir = ds_arena_printf(ctx->arena, "%s/%s", area, e->d_name);
        struct stat sb;
        if (!read_meta(ctx->arena, dir, &s, NULL)) {
            /* A folder deleted meanwhile is simply gone; one that stays unreadable is worth a line. */
            if (dir && stat(dir, &sb) == 0)
                ds_log(DS_LOG_WARN, "project %s: snapshot folder %s has no valid metadata; not listed", p.rec.id,
                       e->d_name);
            continue;
        }
        if (s.expires_at && s.expires_at <= now)
            continue;
        list[(*n)++] = s;
    }
    closedir(d);
    if (!list)
        return oom(ctx);
    qsort(list, *n, sizeof(*list), cmp_newest);
    *items = list;
    return DS_OK;
}

/* Loads snapshot id of p (404 when absent or expired); *dir and *files (arena) may be NULL. */
static ds_status_t load(ds_ctx_t *ctx, ds_proj_t *p, const char *id, ds_snapshot_t *out, const char **dir,
                        const char ***files)
{
    if (!valid_id(id))
        return ds_err_setf(&ctx->err, DS_NOT_FOUND, "snapshot", "snapshot \"%s\" not found (snapshot ids are %d hex digits)",
                           id ? id : "", SNAP_ID_LEN);
    const char *path = ds_arena_printf(ctx->arena, "%s/%s", area_of(ctx->arena, p->rec.id), id);
    struct stat sb;
    if (!path)
        return oom(ctx);
    if (stat(path, &sb) != 0 || !read_meta(ctx->arena, path, out, files) ||
        (out->expires_at && out->expires_at <= ds_now()))
        return ds_err_setf(&ctx->err, DS_NOT_FOUND, "snapshot", "snapshot \"%s\" not found", id);
    if (dir)
        *dir = path;
    return DS_OK;
}

ds_status_t ds_cmd_snapshot_get(ds_ctx_t *ctx, const char *project, const char *id, ds_snapshot_t *out)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    return st == DS_OK ? load(ctx, &p, id, out, NULL, NULL) : st;
}

/* Hides folder dir of area at once (rename to .del-<name>), then removes it. */
static int remove_snapshot_dir(ds_arena_t *a, const char *area, const char *name)
{
    const char *from = ds_arena_printf(a, "%s/%s", area, name), *to = ds_arena_printf(a, "%s/.del-%s", area, name);
    if (!from || !to)
        return -1;
    if (rename(from, to) != 0)
        return -1;
    fsync_path(area, true);
    if (rm_tree(to) != 0)
        ds_log(DS_LOG_WARN, "snapshot %s: cannot remove its files now; the sweep will", name);
    return 0;
}

ds_status_t ds_cmd_snapshot_delete(ds_ctx_t *ctx, const char *project, const char *id)
{
    ds_proj_t p;
    ds_snapshot_t s;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st == DS_OK)
        st = load(ctx, &p, id, &s, NULL, NULL);
    if (st != DS_OK)
        return st;
    if (remove_snapshot_dir(ctx->arena, area_of(ctx->arena, p.rec.id), id) != 0)
        return errno == ENOENT ? ds_err_setf(&ctx->err, DS_NOT_FOUND, "snapshot", "snapshot \"%s\" not found", id)
                               : ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot delete snapshot \"%s\": %s", id,
                                            strerror(errno));
    ds_log(DS_LOG_INFO, "project %s: snapshot %s deleted", p.rec.id, id);
    return DS_OK;
}

ds_status_t ds_cmd_snapshot_restore(ds_ctx_t *ctx, const char *project, const char *id,
                                    const ds_snapshot_restore_t *in, ds_be_table_t **tables, size_t *n,
                                    bool *whole_bucket)
{
    ds_proj_t p;
    ds_snapshot_t s;
    const char **files;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st == DS_OK)
        st = load(ctx, &p, id, &s, NULL, &files);
    if (st != DS_OK)
        return st;
    if (in->bucket && (st = ds_ident_check_bucket(in->bucket, "bucket", &ctx->err)) != DS_OK)
        return st;
    if (in->table && (st = ds_ident_check_name(in->table, "table", &ctx->err)) != DS_OK)
        return st;
    if (in->table && !s.table)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "table",
                           "snapshot \"%s\" is of a whole bucket: give only \"bucket\" to restore it elsewhere", id);
    if ((st = ds_cmd_require_cap(ctx, &p, DS_CAP_SNAPSHOTS, "snapshot restore")) != DS_OK)
        return st;
    for (size_t i = 0; i < s.n_tables; i++)
        if ((st = ds_cmd_require_types(ctx, &p, s.tables[i].columns, s.tables[i].n_columns)) != DS_OK)
            return st;
    const char *dst_bucket = in->bucket ? in->bucket : s.bucket;
    ds_be_restore_t *items = ds_arena_alloc(ctx->arena, sizeof(*items) * s.n_tables);
    const char **dst_b = ds_arena_alloc(ctx->arena, sizeof(char *) * s.n_tables);
    const char **dst_t = ds_arena_alloc(ctx->arena, sizeof(char *) * s.n_tables);
    bool *exists = ds_arena_alloc(ctx->arena, sizeof(bool) * s.n_tables);
    if (!items || !dst_b || !dst_t || !exists)
        return oom(ctx);
    /* Every destination is checked before any slot is taken: a refusal changes nothing. */
    for (size_t i = 0; i < s.n_tables; i++) {
        dst_b[i] = dst_bucket;
        dst_t[i] = s.n_tables == 1 && in->table ? in->table : s.tables[i].name;
        if ((st = ds_cmd_resolve_table(ctx, &p, &dst_b[i], &dst_t[i], true, NULL, &exists[i])) != DS_OK)
            return st;
        if (exists[i] && !in->overwrite)
            return ds_err_setk(&ctx->err, DS_ALREADY_EXISTS, 0,
                               "table \"%s.%s\" already exists; give \"overwrite\": true to restore over it, or "
                               "another \"bucket\"/\"table\"",
                               ds_cmd_branch_logical(&p, dst_b[i]), dst_t[i]);
    }
    /*
     * In a branch the destinations are the branch's own tables (main is never
     * written); the marks of main's tables the branch takes over commit with
     * the rows (ds_cmd_branch_replace).
     */
    ds_be_move_t *moves = NULL;
    size_t n_moves = 0;
    if (p.branch) {
        if ((st = ds_cmd_branch_replace(ctx, &p, dst_b, dst_t, s.n_tables, exists, &moves, &n_moves)) != DS_OK)
            return st;
    } else {
        for (size_t i = 0; i < s.n_tables; i++)
            if ((st = ds_cmd_enter_table(ctx, p.rec.id, dst_b[i], dst_t[i])) != DS_OK)
                return st;
        if ((st = ds_cmd_enter_ddl(ctx, p.rec.id)) != DS_OK)
            return st;
    }
    int64_t now = ds_now();
    for (size_t i = 0; i < s.n_tables; i++) {
        ds_be_table_t *def = ds_arena_alloc(ctx->arena, sizeof(*def));
        if (!def)
            return oom(ctx);
        *def = s.tables[i];
        def->bucket = dst_b[i];
        def->name = dst_t[i];
        def->created_at = now;
        def->rows = 0;
        def->bytes = 0;
        ds_be_table_t cur;
        /* Inside the slots: what exists now decides between create and replace (in a branch: what it sees). */
        st = DS_BE_CALL(p.be, &p.call, table_get, dst_b[i], dst_t[i], &cur);
        if (st != DS_OK && st != DS_NOT_FOUND)
            return st;
        ds_err_clear(&ctx->err);
        bool replace = st == DS_OK;
        if ((replace || (p.branch && exists[i])) && !in->overwrite)
            return ds_err_setk(&ctx->err, DS_ALREADY_EXISTS, 0, "table \"%s.%s\" already exists",
                               ds_cmd_branch_logical(&p, dst_b[i]), dst_t[i]);
        items[i] = (ds_be_restore_t){.def = def, .paths = &files[i], .n_paths = 1, .replace = replace};
    }
    st = p.branch ? ds_be_tables_move_restore(p.be, &p.call, moves, n_moves, items, s.n_tables)
                  : ds_be_tables_restore(p.be, &p.call, items, s.n_tables);
    if (st != DS_OK)
        return st;
    ds_cmd_test_crash_point("snapshot_restore");
    ds_log(DS_LOG_INFO, "project %s: snapshot %s restored into %s (%zu tables)", p.rec.id, id,
           ds_cmd_branch_logical(&p, dst_b[0]), s.n_tables);
    *tables = ds_arena_alloc(ctx->arena, sizeof(**tables) * s.n_tables);
    if (!*tables)
        return oom(ctx);
    for (size_t i = 0; i < s.n_tables; i++) {
        if ((st = DS_BE_CALL(p.be, &p.call, table_get, dst_b[i], dst_t[i], &(*tables)[i])) != DS_OK)
            return st;
        (*tables)[i].bucket = ds_cmd_branch_logical(&p, (*tables)[i].bucket);
    }
    *n = s.n_tables;
    *whole_bucket = s.table == NULL;
    return DS_OK;
}

/* ---- automatic snapshots and their switches ---- */

/* settings.json of project, or a new empty document (never NULL unless out of memory). Caller holds settings_mu. */
static json_t *settings_load(ds_arena_t *a, const char *project)
{
    json_t *doc = json_load_file(ds_arena_printf(a, "%s/settings.json", area_of(a, project)), 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_object();
    }
    static const char *const levels[] = {"project", "buckets", "tables"};
    for (size_t i = 0; doc && i < 3; i++)
        if (!json_is_object(json_object_get(doc, levels[i])))
            json_object_set_new(doc, levels[i], json_object());
    return doc;
}

static ds_status_t settings_save(ds_ctx_t *ctx, const char *project, json_t *doc)
{
    const char *area = area_of(ctx->arena, project);
    const char *tmp = ds_arena_printf(ctx->arena, "%s/.settings.json.tmp", area);
    const char *path = ds_arena_printf(ctx->arena, "%s/settings.json", area);
    if (!area || !tmp || !path)
        return oom(ctx);
    if (mkdir_p(area) != 0 || json_dump_file(doc, tmp, JSON_COMPACT) != 0)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot write the snapshot settings: %s", strerror(errno));
    fsync_path(tmp, false);
    if (rename(tmp, path) != 0)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot write the snapshot settings: %s", strerror(errno));
    fsync_path(area, true);
    return DS_OK;
}

/* The member of obj named key regardless of case (names are case-insensitive on the backends that fold). */
static json_t *get_folded(json_t *obj, const char *key, const char **stored)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, key) == 0) {
            if (stored)
                *stored = k;
            return v;
        }
    }
    return NULL;
}

/* -1 when level (an object or NULL) does not set trigger, else 0/1. */
static int level_value(json_t *level, int trigger)
{
    json_t *v = level ? json_object_get(level, ds_snap_trigger_names[trigger]) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* Whether trigger is on for logical bucket.table: table, then bucket, then project; on when none says. */
static bool auto_enabled(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table, int trigger)
{
    pthread_mutex_lock(&settings_mu);
    json_t *doc = settings_load(ctx->arena, project);
    pthread_mutex_unlock(&settings_mu);
    if (!doc)
        return true;
    const char *tkey = ds_arena_printf(ctx->arena, "%s.%s", bucket, table);
    int v = level_value(tkey ? get_folded(json_object_get(doc, "tables"), tkey, NULL) : NULL, trigger);
    if (v < 0)
        v = level_value(get_folded(json_object_get(doc, "buckets"), bucket, NULL), trigger);
    if (v < 0)
        v = level_value(json_object_get(doc, "project"), trigger);
    json_decref(doc);
    return v != 0;
}

ds_status_t ds_cmd_snapshot_auto(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                 const ds_be_table_t *def, int trigger, const char **taken)
{
    const char *logical = ds_cmd_branch_logical(p, bucket);
    *taken = NULL;
    if (trigger < 0 || trigger >= DS_SNAP_N_TRIGGERS)
        return ds_err_set(&ctx->err, DS_INTERNAL, "unknown automatic snapshot trigger %d", trigger);
    if (!auto_enabled(ctx, p->rec.id, logical, table, trigger))
        return DS_OK;
    ds_err_t saved = ctx->err;
    if (require_snapshots(ctx, p) != DS_OK) {
        ds_log(DS_LOG_INFO, "project %s: no automatic snapshot before %s of %s.%s: %s", p->rec.id,
               ds_snap_trigger_names[trigger], logical, table, ctx->err.message);
        ctx->err = saved;
        return DS_OK;
    }
    snap_src_t src = {.phys_bucket = bucket, .phys_table = table};
    ds_status_t st = DS_OK;
    if (def)
        src.def = *def;
    else if ((st = DS_BE_CALL(p->be, &p->call, table_get, bucket, table, &src.def)) != DS_OK)
        return st;
    /* Nothing to lose: an empty table's rows are not worth a snapshot (a drop still keeps its definition). */
    if (trigger != DS_SNAP_DROP_TABLE && trigger != DS_SNAP_DROP_COLUMN && src.def.rows == 0)
        return DS_OK;
    src.def.bucket = logical;
    ds_snapshot_t out;
    st = write_snapshot(ctx, p, logical, src.def.name, &src, 1, NULL, true, ds_snap_trigger_names[trigger], 0, &out);
    if (st != DS_OK) {
        char why[sizeof(ctx->err.message)];
        snprintf(why, sizeof(why), "%s", ctx->err.message);
        return ds_err_set(&ctx->err, st,
                          "the automatic snapshot before %s of %s.%s failed, so nothing was changed: %s (switch it "
                          "off in the snapshot settings to go on without one)",
                          ds_snap_trigger_names[trigger], logical, table, why);
    }
    *taken = out.id;
    return DS_OK;
}

void ds_cmd_snapshot_discard(ds_ctx_t *ctx, ds_proj_t *p, const char *id)
{
    if (!id)
        return;
    if (remove_snapshot_dir(ctx->arena, area_of(ctx->arena, p->rec.id), id) == 0)
        ds_log(DS_LOG_INFO, "project %s: automatic snapshot %s removed: the operation it was taken for failed",
               p->rec.id, id);
    else
        ds_log(DS_LOG_WARN, "project %s: cannot remove automatic snapshot %s of a failed operation: %s", p->rec.id, id,
               strerror(errno));
}

ds_status_t ds_cmd_snapshot_settings_get(ds_ctx_t *ctx, const char *project, ds_snapshot_setting_t **items,
                                         size_t *n, int64_t *auto_retention_s)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    *auto_retention_s = auto_keep(&p);
    pthread_mutex_lock(&settings_mu);
    json_t *doc = settings_load(ctx->arena, p.rec.id);
    pthread_mutex_unlock(&settings_mu);
    if (!doc)
        return oom(ctx);
    json_t *buckets = json_object_get(doc, "buckets"), *tabs = json_object_get(doc, "tables");
    size_t count = 1 + json_object_size(buckets) + json_object_size(tabs);
    ds_snapshot_setting_t *list = ds_arena_alloc(ctx->arena, sizeof(*list) * count);
    if (!list) {
        json_decref(doc);
        return oom(ctx);
    }
    for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++) {
        int v = level_value(json_object_get(doc, "project"), t);
        list[0].on[t] = v < 0 ? 1 : v;
    }
    size_t k = 1;
    const char *key;
    json_t *v;
    json_object_foreach(buckets, key, v)
    {
        list[k].bucket = ds_arena_strdup(ctx->arena, key);
        for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++)
            list[k].on[t] = level_value(v, t);
        k++;
    }
    json_object_foreach(tabs, key, v)
    {
        /* Stored as "<bucket id>.<table>": the table is after the last dot (table names have none). */
        const char *dot = strrchr(key, '.');
        list[k].bucket = dot ? ds_arena_strndup(ctx->arena, key, (size_t)(dot - key)) : NULL;
        list[k].table = dot ? ds_arena_strdup(ctx->arena, dot + 1) : NULL;
        for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++)
            list[k].on[t] = level_value(v, t);
        if (list[k].bucket && list[k].table)
            k++;
    }
    json_decref(doc);
    *items = list;
    *n = k;
    return DS_OK;
}

ds_status_t ds_cmd_snapshot_settings_set(ds_ctx_t *ctx, const char *project, const ds_snapshot_setting_t *in)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st != DS_OK)
        return st;
    for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++)
        if (in->on[t] < -1 || in->on[t] > 2)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, ds_snap_trigger_names[t], "%s must be true, false or null",
                               ds_snap_trigger_names[t]);
    if (in->table && !in->bucket)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "bucket", "a table's switches need its \"bucket\" too");
    const char *bucket = in->bucket, *table = in->table, *key = NULL, *level = "project";
    /* The level must exist as the request's branch sees it; it is stored under its logical name. */
    if (table) {
        if ((st = ds_cmd_resolve_table(ctx, &p, &bucket, &table, false, NULL, NULL)) != DS_OK)
            return st;
        key = ds_arena_printf(ctx->arena, "%s.%s", ds_cmd_branch_logical(&p, bucket), table);
        level = "tables";
    } else if (bucket) {
        if ((st = ds_cmd_resolve_bucket(ctx, &p, &bucket)) != DS_OK)
            return st;
        key = ds_cmd_branch_logical(&p, bucket);
        level = "buckets";
    }
    pthread_mutex_lock(&settings_mu);
    json_t *doc = settings_load(ctx->arena, p.rec.id);
    if (!doc) {
        pthread_mutex_unlock(&settings_mu);
        return oom(ctx);
    }
    json_t *lv = json_object_get(doc, level), *obj = lv;
    if (key) {
        const char *stored = NULL;
        obj = get_folded(lv, key, &stored);
        if (obj && strcmp(stored, key) != 0) {
            json_incref(obj);
            json_object_del(lv, stored);
            json_object_set_new(lv, key, obj);
        } else if (!obj) {
            obj = json_object();
            json_object_set_new(lv, key, obj);
        }
    }
    for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++) {
        if (in->on[t] == -1)
            json_object_del(obj, ds_snap_trigger_names[t]);
        else if (in->on[t] == 0 || in->on[t] == 1)
            json_object_set_new(obj, ds_snap_trigger_names[t], json_boolean(in->on[t]));
    }
    if (key && json_object_size(obj) == 0)
        json_object_del(lv, key);
    st = settings_save(ctx, p.rec.id, doc);
    pthread_mutex_unlock(&settings_mu);
    json_decref(doc);
    return st;
}

ds_status_t ds_cmd_snapshot_may_write(ds_ctx_t *ctx, const char *project)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    return st == DS_OK ? ds_cmd_require_write(ctx) : st;
}

/* ---- start, sweep, project deletion ---- */

static bool has_prefix(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* One project's area: leftovers (.del-, and at start .tmp-) and, when sweeping, expired snapshots. */
static void sweep_area(ds_arena_t *a, const char *area, const char *project, bool at_start)
{
    DIR *d = opendir(area);
    if (!d)
        return;
    int64_t now = ds_now();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *path = ds_arena_printf(a, "%s/%s", area, e->d_name);
        if (!path)
            break;
        if (has_prefix(e->d_name, ".del-") || (at_start && has_prefix(e->d_name, ".tmp-"))) {
            if (rm_tree(path) == 0 && has_prefix(e->d_name, ".tmp-"))
                ds_log(DS_LOG_WARN, "project %s: removed unfinished snapshot %s (the process stopped while writing it)",
                       project, e->d_name + 5);
            continue;
        }
        if (!valid_id(e->d_name))
            continue;
        ds_snapshot_t s;
        if (read_meta(a, path, &s, NULL) && s.expires_at && s.expires_at <= now) {
            if (remove_snapshot_dir(a, area, e->d_name) == 0)
                ds_log(DS_LOG_INFO, "snapshots sweep: project %s: removed expired snapshot %s (%lld bytes)", project,
                       e->d_name, (long long)s.bytes);
        }
    }
    closedir(d);
}

static void sweep_all(bool at_start)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return;
    const char *root = ds_arena_printf(a, "%s/snapshots", data_dir());
    DIR *d = root ? opendir(root) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *path = ds_arena_printf(a, "%s/%s", root, e->d_name);
        if (!path)
            break;
        if (has_prefix(e->d_name, ".del-")) {
            rm_tree(path);
            continue;
        }
        if (!has_prefix(e->d_name, "project_"))
            continue;
        const char *project = e->d_name + 8;
        ds_project_rec_t rec;
        ds_err_t err = {0};
        if (ds_catalog_project_get(project, &rec, &err) == DS_NOT_FOUND) {
            if (at_start && ds_quarantine_path(data_dir(), "orphan-snapshots",
                                               ds_arena_printf(a, "the snapshots of project %s (no such project)",
                                                               project),
                                               path, &err) != DS_OK)
                ds_log(DS_LOG_ERROR, "snapshots: cannot quarantine %s: %s", path, err.message);
            continue;
        }
        sweep_area(a, path, project, at_start);
    }
    if (d)
        closedir(d);
    ds_arena_destroy(&a);
}

ds_status_t ds_snapshots_start(const ds_config_t *cfg, ds_err_t *err)
{
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/snapshots", cfg->data_dir);
    if (mkdir_p(root) != 0)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot create %s: %s", root, strerror(errno));
    sweep_all(true);
    if (cfg->snapshot_retention > 0)
        ds_log(DS_LOG_INFO, "snapshots: automatic snapshots kept %llds (DUCKSTORE_SNAPSHOT_RETENTION)",
               (long long)cfg->snapshot_retention);
    else
        ds_log(DS_LOG_INFO, "snapshots: automatic snapshots kept for each project's data retention");
    return DS_OK;
}

void ds_snapshots_sweep(void) { sweep_all(false); }

void ds_snapshots_drop_project(const char *id)
{
    ds_arena_t *a = ds_arena_create();
    if (!a)
        return;
    unsigned r = randombytes_random();
    const char *area = area_of(a, id);
    const char *to = ds_arena_printf(a, "%s/snapshots/.del-project_%s-%08x", data_dir(), id, r);
    if (area && to && rename(area, to) == 0 && rm_tree(to) != 0)
        ds_log(DS_LOG_WARN, "project %s: cannot remove its snapshots now; the sweep will", id);
    ds_arena_destroy(&a);
}
