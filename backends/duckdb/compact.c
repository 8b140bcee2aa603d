/*
 * compact.c - project_compact: returns a project file's free space to the disk.
 *
 * DESIGN
 * DuckDB reuses the blocks that dropped tables, dropped branch schemas and
 * expired history free, but never shrinks its file (it truncates only free
 * blocks at the very end). Compaction rewrites the file:
 *   1. take the project (ddb_compact_take): no pin but ours; calls that
 *      arrive meanwhile wait in acquire (bounded), calls already running are
 *      waited for at most in->wait_ms, then the compaction gives up (nothing
 *      changed; the caller retries later);
 *   2. CHECKPOINT the file, measure it, ATTACH a new file next to it
 *      (<file>.compact), COPY FROM DATABASE old TO new (DuckDB 1.4 carries
 *      schemas, tables with their defaults and NOT NULLs, views, and every
 *      sequence started after its last value, so _ds.version_seq keeps
 *      counting upward), verify (the same tables, every table's exact row
 *      count, every sequence not behind), CHECKPOINT and DETACH the new file;
 *   3. DETACH the old file and make sure neither file has a WAL (a stale WAL
 *      next to a renamed file would be replayed into it), fsync the new
 *      file, rename it over the old one (the rename is the commit), fsync the
 *      directory, ATTACH again and reload the metadata cache.
 * A kill -9 before the rename leaves the old file whole (the leftover
 * <file>.compact is removed at the next attach or start); after it, the new
 * one. The metadata cache is read from the file again on attach.
 *
 * Test hooks (DUCKSTORE_TEST_HOOKS=1): DUCKSTORE_TEST_CRASH_AFTER_COMMIT=
 * compact_copied dies after the new file is complete and before the rename,
 * =compact_renamed right after the rename; DUCKSTORE_TEST_COMPACT_PAUSE_MS=n
 * holds the project taken for n ms before the copy starts, so a test can send
 * calls that must wait, or kill the process in the middle.
 */
#include "core/buf.h"
#include "ddb.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMP_SUFFIX ".compact"

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* The file and its WAL, in bytes. */
static int64_t storage_bytes(const char *path)
{
    char wal[4300];
    snprintf(wal, sizeof(wal), "%s.wal", path);
    return file_size(path) + file_size(wal);
}

void ddb_compact_leftovers(const char *path)
{
    char tmp[4300], tmpwal[4400];
    snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path);
    snprintf(tmpwal, sizeof(tmpwal), "%s.wal", tmp);
    unlink(tmpwal);
    unlink(tmp);
}

static void crash_point(be_t *be, const char *what)
{
    const char *at = getenv("DUCKSTORE_TEST_CRASH_AFTER_COMMIT");
    if (!be->test_hooks || !at || strcmp(at, what) != 0)
        return;
    be->host->log(2, "duckdb", "test hook: dying like kill -9 during a compaction (%s)", what);
    raise(SIGKILL);
}

static void test_pause(be_t *be)
{
    const char *ms = getenv("DUCKSTORE_TEST_COMPACT_PAUSE_MS");
    if (be->test_hooks && ms && atoi(ms) > 0)
        usleep((useconds_t)atoi(ms) * 1000);
}

static ds_status_t fsync_path(const char *path, bool dir, ds_err_t *err)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ds_err_set(err, DS_UNAVAILABLE, "compaction: cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return ds_err_set(err, DS_UNAVAILABLE, "compaction: cannot fsync %s: %s", path, strerror(e));
    return DS_OK;
}

/* Free bytes inside the file of database alias (its free blocks), as of its last checkpoint. */
static ds_status_t free_bytes_of(duckdb_connection c, const char *alias, int64_t *out, ds_err_t *err)
{
    duckdb_result r;
    const char *params[] = {alias};
    ds_status_t st = ds_ddb_run(c, err, &r,
                                "SELECT coalesce(block_size * free_blocks, 0)::BIGINT FROM pragma_database_size() "
                                "WHERE database_name = $1",
                                1, params);
    if (st != DS_OK)
        return st;
    *out = duckdb_row_count(&r) ? ds_ddb_int(&r, 0, 0) : 0;
    duckdb_destroy_result(&r);
    return DS_OK;
}

/*
 * CHECKPOINT of database alias, so its freed blocks show as free and its WAL
 * is folded into the file. DuckDB refuses one while another transaction
 * writes; a few tries, then the caller goes on without.
 */
static ds_status_t checkpoint(duckdb_connection c, const char *alias, ds_err_t *err)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "CHECKPOINT ");
    ds_buf_ident(&sql, alias);
    ds_status_t st = DS_OK;
    for (int attempt = 0; attempt < 20; attempt++) {
        ds_err_clear(err);
        if ((st = ds_ddb_exec(c, err, ds_buf_cstr(&sql))) == DS_OK || ds_ddb_err_is_engine_failure(err))
            break;
        usleep(50000);
    }
    ds_buf_free(&sql);
    return st;
}

/* Whether free_bytes of a file of file_bytes (checkpointed) meet in's thresholds. */
static bool worth(const ds_be_compact_t *in, int64_t free_bytes, int64_t file_bytes)
{
    if (!in->only_if_worth)
        return true;
    if (in->min_free_ratio <= 0 || file_bytes <= 0)
        return false;
    return free_bytes >= in->min_free_bytes && (double)free_bytes >= in->min_free_ratio * (double)file_bytes;
}

/*
 * The new database carries what the old one holds: the same tables (by
 * schema and name), each with the same exact row count, and every sequence
 * starting no lower than the old one's next value.
 */
static ds_status_t verify_copy(duckdb_connection c, const char *id, const char *old_db, const char *new_db,
                               ds_err_t *err)
{
    duckdb_result r;
    const char *params[] = {old_db, new_db};
    ds_status_t st =
        ds_ddb_run(c, err, &r,
                   "SELECT coalesce(o.schema_name, n.schema_name), coalesce(o.table_name, n.table_name), "
                   "o.table_name IS NOT NULL, n.table_name IS NOT NULL FROM "
                   "(SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = $1) o FULL JOIN "
                   "(SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = $2) n "
                   "ON o.schema_name = n.schema_name AND o.table_name = n.table_name ORDER BY 1, 2",
                   2, params);
    if (st != DS_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        char *schema = ds_ddb_cell(&r, 0, i), *table = ds_ddb_cell(&r, 1, i);
        if (!duckdb_value_boolean(&r, 2, i) || !duckdb_value_boolean(&r, 3, i)) {
            st = ds_err_set(err, DS_INTERNAL, "compaction of project \"%s\" refused: table %s.%s is %s the copy", id,
                            schema ? schema : "?", table ? table : "?",
                            duckdb_value_boolean(&r, 2, i) ? "missing from" : "only in");
        } else {
            ds_buf_t sql = {0};
            const char *dbs[] = {old_db, new_db};
            ds_buf_puts(&sql, "SELECT ");
            for (int k = 0; k < 2; k++) {
                ds_buf_puts(&sql, k ? ", (SELECT count(*) FROM " : "(SELECT count(*) FROM ");
                ds_buf_ident(&sql, dbs[k]);
                ds_buf_puts(&sql, ".");
                ds_buf_ident(&sql, schema ? schema : "");
                ds_buf_puts(&sql, ".");
                ds_buf_ident(&sql, table ? table : "");
                ds_buf_puts(&sql, ")");
            }
            duckdb_result cr;
            st = ds_ddb_run(c, err, &cr, ds_buf_cstr(&sql), 0, NULL);
            ds_buf_free(&sql);
            if (st == DS_OK) {
                int64_t a = ds_ddb_int(&cr, 0, 0), b = ds_ddb_int(&cr, 1, 0);
                duckdb_destroy_result(&cr);
                if (a != b)
                    st = ds_err_set(err, DS_INTERNAL,
                                    "compaction of project \"%s\" refused: table %s.%s has %lld rows but its copy "
                                    "%lld",
                                    id, schema, table, (long long)a, (long long)b);
            }
        }
        duckdb_free(schema);
        duckdb_free(table);
    }
    duckdb_destroy_result(&r);
    if (st != DS_OK)
        return st;
    /*
     * Sequences: duckdb_sequences() cannot tell the next value (after a
     * file is attached again it shows it as last_value), so each pair hands
     * out one number and the copy's must not be lower. The gap this leaves
     * is harmless: only increase matters.
     */
    st = ds_ddb_run(c, err, &r,
                    "SELECT o.schema_name, o.sequence_name, n.sequence_name IS NOT NULL FROM "
                    "(SELECT * FROM duckdb_sequences() WHERE database_name = $1) o LEFT JOIN "
                    "(SELECT * FROM duckdb_sequences() WHERE database_name = $2) n "
                    "ON o.schema_name = n.schema_name AND o.sequence_name = n.sequence_name ORDER BY 1, 2",
                    2, params);
    if (st != DS_OK)
        return st;
    n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        char *schema = ds_ddb_cell(&r, 0, i), *seq = ds_ddb_cell(&r, 1, i);
        const char *dbs[] = {old_db, new_db};
        int64_t next[2] = {0, 0};
        if (!duckdb_value_boolean(&r, 2, i))
            st = ds_err_set(err, DS_INTERNAL,
                            "compaction of project \"%s\" refused: sequence %s.%s is missing from "
                            "the copy",
                            id, schema ? schema : "?", seq ? seq : "?");
        /* One statement each: a transaction may write one attached database only. */
        for (int k = 0; k < 2 && st == DS_OK; k++) {
            ds_buf_t name = {0}, sql = {0};
            ds_buf_ident(&name, dbs[k]);
            ds_buf_puts(&name, ".");
            ds_buf_ident(&name, schema ? schema : "");
            ds_buf_puts(&name, ".");
            ds_buf_ident(&name, seq ? seq : "");
            ds_buf_puts(&sql, "SELECT nextval(");
            ds_buf_literal(&sql, ds_buf_cstr(&name));
            ds_buf_puts(&sql, ")");
            duckdb_result sr;
            if ((st = ds_ddb_run(c, err, &sr, ds_buf_cstr(&sql), 0, NULL)) == DS_OK) {
                next[k] = ds_ddb_int(&sr, 0, 0);
                duckdb_destroy_result(&sr);
            }
            ds_buf_free(&name);
            ds_buf_free(&sql);
        }
        if (st == DS_OK && next[1] < next[0])
            st = ds_err_set(err, DS_INTERNAL,
                            "compaction of project \"%s\" refused: sequence %s.%s would go back from %lld to %lld", id,
                            schema, seq, (long long)next[0], (long long)next[1]);
        duckdb_free(schema);
        duckdb_free(seq);
    }
    duckdb_destroy_result(&r);
    return st;
}

/* Detaches database alias if attached; a failure is logged and returned (the file must then not be renamed). */
static ds_status_t detach_new(be_t *be, const char *alias)
{
    ds_buf_t sql = {0};
    ds_err_t e = {0};
    ds_buf_puts(&sql, "DETACH DATABASE IF EXISTS ");
    ds_buf_ident(&sql, alias);
    ds_status_t st = ddb_admin_exec(be, ds_buf_cstr(&sql), &e);
    if (st != DS_OK)
        be->host->log(2, "duckdb", "compaction: cannot detach %s: %s", alias, e.message);
    ds_buf_free(&sql);
    return st;
}

/*
 * Steps 2 and 3 of the design note, with p taken and attached. On failure
 * before the rename the old file stays in service (attached again when it
 * was detached) and the temporary file is removed.
 */
static ds_status_t rewrite(be_t *be, proj_t *p, const ds_be_compact_t *in, ds_be_compact_result_t *out, ds_err_t *err)
{
    char path[4200], wal[4300], tmp[4300], tmpwal[4400], tmp_alias[DS_PROJECT_ID_MAX + 16];
    ddb_project_path(be, p->id, path, sizeof(path));
    snprintf(wal, sizeof(wal), "%s.wal", path);
    snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path);
    snprintf(tmpwal, sizeof(tmpwal), "%s.wal", tmp);
    snprintf(tmp_alias, sizeof(tmp_alias), "compact_%s", p->id);

    duckdb_connection c;
    if (duckdb_connect(be->db, &c) == DuckDBError)
        return ds_err_set(err, DS_UNAVAILABLE, "cannot open a DuckDB connection");
    test_pause(be);
    out->bytes_before = storage_bytes(path);
    ds_err_t ce = {0};
    if (checkpoint(c, p->alias, &ce) != DS_OK)
        be->host->log(2, "duckdb", "project %s: checkpoint before compaction failed: %s", p->id, ce.message);
    ds_status_t st = free_bytes_of(c, p->alias, &out->free_bytes, err);
    int64_t checkpointed = storage_bytes(path);
    out->bytes_after = checkpointed;
    if (st != DS_OK || !worth(in, out->free_bytes, checkpointed)) {
        out->skipped = st == DS_OK;
        duckdb_disconnect(&c);
        return st;
    }
    /* The copy needs room for the live data (what is not free) next to the old file. */
    struct statvfs vfs;
    int64_t need = checkpointed - out->free_bytes;
    if (statvfs(be->dir, &vfs) == 0 && (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize < need + need / 10) {
        duckdb_disconnect(&c);
        return ds_err_set(err, DS_INSUFFICIENT_STORAGE,
                          "project \"%s\" was not compacted: the copy needs about %lld bytes of free disk and the "
                          "data directory has %lld",
                          p->id, (long long)(need + need / 10), (long long)vfs.f_bavail * (long long)vfs.f_frsize);
    }

    ddb_compact_leftovers(path);
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "ATTACH ");
    ds_buf_literal(&sql, tmp);
    ds_buf_puts(&sql, " AS ");
    ds_buf_ident(&sql, tmp_alias);
    ds_buf_puts(&sql, "; COPY FROM DATABASE ");
    ds_buf_ident(&sql, p->alias);
    ds_buf_puts(&sql, " TO ");
    ds_buf_ident(&sql, tmp_alias);
    st = ds_ddb_exec(c, err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_OK)
        st = verify_copy(c, p->id, p->alias, tmp_alias, err);
    if (st == DS_OK)
        st = checkpoint(c, tmp_alias, err);
    duckdb_disconnect(&c);
    ds_status_t dst = detach_new(be, tmp_alias);
    if (st == DS_OK && dst != DS_OK)
        st = ds_err_set(err, DS_UNAVAILABLE, "compaction of project \"%s\": the new file cannot be closed", p->id);
    if (st == DS_OK && exists(tmpwal))
        st = ds_err_set(err, DS_INTERNAL, "compaction of project \"%s\": the new file kept a WAL after its checkpoint",
                        p->id);
    if (st != DS_OK)
        goto fail;
    crash_point(be, "compact_copied");

    /* The old file is closed; it must have no WAL, or the WAL would be replayed into the new file. */
    if ((st = ddb_compact_detach(be, p, err)) != DS_OK)
        goto fail;
    if (exists(wal)) {
        /* Fold it into the old file (attach, checkpoint, detach), or give up. */
        if ((st = ddb_compact_attach(be, p, err)) == DS_OK) {
            if (duckdb_connect(be->db, &c) == DuckDBError) {
                st = ds_err_set(err, DS_UNAVAILABLE, "cannot open a DuckDB connection");
            } else {
                st = checkpoint(c, p->alias, err);
                duckdb_disconnect(&c);
            }
            if (st == DS_OK)
                st = ddb_compact_detach(be, p, err);
        }
        if (st == DS_OK && exists(wal))
            st = ds_err_set(err, DS_INTERNAL, "compaction of project \"%s\": its file kept a WAL after its checkpoint",
                            p->id);
        if (st != DS_OK)
            goto fail;
    }
    if ((st = fsync_path(tmp, false, err)) != DS_OK)
        goto fail;
    if (rename(tmp, path) != 0) {
        st = ds_err_set(err, DS_UNAVAILABLE, "compaction of project \"%s\": cannot rename the new file: %s", p->id,
                        strerror(errno));
        goto fail;
    }
    /* The rename is the commit: from here on the new file is the project's. */
    if (fsync_path(be->dir, true, &ce) != DS_OK)
        be->host->log(2, "duckdb", "project %s: %s", p->id, ce.message);
    crash_point(be, "compact_renamed");
    st = ddb_compact_attach(be, p, err);
    out->bytes_after = storage_bytes(path);
    return st;
fail:
    ddb_compact_leftovers(path);
    if (!p->attached) {
        ds_err_t ae = {0};
        if (ddb_compact_attach(be, p, &ae) != DS_OK)
            be->host->log(2, "duckdb", "project %s: cannot attach it again after a failed compaction: %s", p->id,
                          ae.message);
    }
    return st;
}

ds_status_t ddb_project_compact(void *self, ds_be_call_t *call, const ds_be_compact_t *in, ds_be_compact_result_t *out)
{
    be_t *be = self;
    memset(out, 0, sizeof(*out));
    if (in->only_if_worth) {
        /* Measured without taking the project first, so a compaction not worth doing blocks no call. */
        use_t u;
        char path[4200];
        ds_status_t st = ddb_use_begin(be, call, false, &u);
        if (st != DS_OK)
            return st;
        ds_err_t ce = {0};
        ddb_project_path(be, u.p->id, path, sizeof(path));
        out->bytes_before = storage_bytes(path);
        if (checkpoint(u.conn, u.p->alias, &ce) != DS_OK)
            be->host->log(1, "duckdb", "project %s: checkpoint before measuring failed: %s", u.p->id, ce.message);
        st = free_bytes_of(u.conn, u.p->alias, &out->free_bytes, call->err);
        out->bytes_after = storage_bytes(path);
        ddb_use_end(&u);
        if (st != DS_OK)
            return st;
        if (!worth(in, out->free_bytes, out->bytes_after)) {
            out->skipped = true;
            return DS_OK;
        }
    }
    proj_t *p;
    ds_status_t st = ddb_db_enter(be, call->err);
    if (st != DS_OK)
        return st;
    if ((st = ddb_compact_take(be, call->project_id, in->wait_ms, &p, call->err)) == DS_OK) {
        st = rewrite(be, p, in, out, call->err);
        ddb_compact_give(be, p);
    }
    ddb_db_leave(be);
    if (st == DS_OK && !out->skipped)
        be->host->log(1, "duckdb", "project %s compacted: %lld -> %lld bytes", call->project_id,
                      (long long)out->bytes_before, (long long)out->bytes_after);
    return st;
}

void ddb_compact_leftovers_all(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), sl = strlen(TMP_SUFFIX);
        bool tmp = n > sl && strcmp(e->d_name + n - sl, TMP_SUFFIX) == 0;
        bool tmpwal = n > sl + 4 && strcmp(e->d_name + n - sl - 4, TMP_SUFFIX ".wal") == 0;
        if (!tmp && !tmpwal)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}
