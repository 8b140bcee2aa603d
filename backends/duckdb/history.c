/*
 * history.c - the row history behind time travel in the DuckDB backend.
 *
 * DESIGN
 * Every table has a history (a "generation": one per CREATE, so a table
 * dropped and created again has two), kept in the project's own file next to
 * the data and written in the same transaction as the write it describes:
 *   _ds.hist_tables  one row per generation: hid, bucket, name, horizon_us
 *                    (the earliest moment it can reconstruct), dropped_us;
 *   _ds.hist_writes  one row per write: hid, ver (from _ds.hist_seq: the
 *                    order of the writes), at_us (its time), full (it
 *                    removed every row), how many rows it removed/added,
 *                    ts_hi and stamp_lo (below: "Stamped writes");
 *   _ds.hist_cols    the column set (name, type, nullability, default,
 *                    primary key position, slot) after every write that
 *                    changed it, keyed by the write's ver;
 *   _ds.h_<hid>      the rows each write removed (_h_add false) and added
 *                    (_h_add true), tagged with its ver, _timestamp included,
 *                    each column in its "slot" c<k>: a column keeps its slot
 *                    for its life; a retyped column gets a new slot.
 * The table at moment T, with vT the last write at or before T and v* the
 * first write after vT that removed every row (a full load, an unfiltered
 * delete, a drop of a column, a retype, the drop of the table):
 *   base    = v* ? the rows v* removed : the table now
 *   T-state = (keep(base) UNION ALL keep(rows removed by writes in (vT, v*)))
 *             EXCEPT ALL (rows added by writes in (vT, v*) and recorded)
 * projected on the columns the table had at vT. Multiset arithmetic, so a
 * row added and removed again after T, or duplicates, come out exact. Writes
 * record only what they change except those that remove everything, which
 * store the old rows once, and a full write never needs its added rows
 * (nothing before it reads past it).
 *
 * Stamped writes. Most writes append rows that all carry the write's own
 * _timestamp, later than any the table had: such rows need no copy, they
 * can be told apart by that _timestamp alone. Each write row keeps ts_hi, a
 * bound on the _timestamp of every row the table had up to it (NULL with
 * history off, or in files written before it was kept: then the next write
 * takes the largest _timestamp of the table and of the history's rows, which
 * hold every row of every moment still reachable). A write whose appended
 * rows (counted, no NULL) share one _timestamp above the previous ts_hi is
 * stamped: its rows are not copied and stamp_lo keeps that previous ts_hi.
 * Any other write (a _timestamp from the source, none, a clock that went
 * back) copies its rows as before. keep() drops the rows whose _timestamp is
 * above the lowest stamp_lo of the writes in (vT, v*): every row the table
 * had at T is at or below it, every row a stamped write after vT appended is
 * above it, and rows a copied write appended come out through EXCEPT ALL
 * either way. So an upsert of 1,000 rows into a big table stores only the
 * rows it replaced. What a write removes with a condition (an upsert's key match, a
 * delete's WHERE) is selected once, as row ids in a temp table that both the
 * copy and the DELETE join on rowid (ddb_hist_delete): the condition's join
 * runs once, and the copy reads only the rows between the first and the last
 * of those ids (DuckDB's join filter on rowid), so rows an upsert replaces
 * again (they sit at the table's end) cost what they are, not the whole
 * table. Both are joins, not "rowid IN (SELECT ...)": DuckDB plans that as a
 * mark join, which took 1.1 s instead of 0.4 (the copy) and 0.44 s instead of
 * 0.05 (the DELETE) for 70,000 rows spread over 7 million. What a
 * write added is the rows it appended in its own transaction: DuckDB gives
 * those row ids from MAX_ROW_ID (DDB_HIST_LOCAL_ROWID) until the commit, and
 * the filter on it is in DuckDB's scan (only those rows are read); the count
 * is checked against the statement's own count, so a change of that rule
 * fails the write instead of keeping a wrong history (stamped rows are
 * counted the same way).
 *
 * Invariants: a write's history is in its own transaction (atomic with the
 * data, also under kill -9); at_us grows strictly per generation, taken right
 * before the commit; nothing here UPDATEs (rows are rewritten as DELETE and
 * INSERT, see ddb_meta_write for why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "ddb.h"
#include "internal.h"

int64_t ddb_hist_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * SQL for a TIMESTAMP expression x as epoch microseconds, with the infinite
 * values DuckDB accepts ('infinity', '-infinity', for which epoch_us gives
 * NULL) as DDB_TS_INF and -DDB_TS_INF, so a bound that met one stays
 * infinite (nothing is stamped above it) and filters order them right.
 */
#define TS_US(x)                                                                                                   \
    "CASE WHEN (" x ") IS NULL THEN NULL WHEN isfinite(" x ") THEN epoch_us(" x ") WHEN (" x ") > TIMESTAMP "       \
    "'epoch' THEN 9223372036854775807 ELSE -9223372036854775807 END"

static void hist_name(ds_buf_t *b, int64_t hid) { ds_buf_printf(b, META ".\"h_%lld\"", (long long)hid); }

static ds_status_t one_int(use_t *u, const char *sql, int n, const char *const *params, int64_t *out, bool *null)
{
    /* Set on failure too: callers read them before they look at the status (found in an engine failure drill). */
    *out = 0;
    if (null)
        *null = true;
    duckdb_result r;
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, sql, n, params);
    if (st != DS_OK)
        return st;
    bool is_null = duckdb_row_count(&r) == 0 || duckdb_value_is_null(&r, 0, 0);
    *out = is_null ? 0 : ds_ddb_int(&r, 0, 0);
    if (null)
        *null = is_null;
    duckdb_destroy_result(&r);
    return DS_OK;
}

/* The column set of hid recorded at the latest version <= ver (ver < 0: the latest), into *cols (call arena). */
static ds_status_t load_cols(use_t *u, int64_t hid, int64_t ver, ddb_hcol_t **cols, size_t *n)
{
    char h[32], v[32];
    snprintf(h, sizeof(h), "%lld", (long long)hid);
    snprintf(v, sizeof(v), "%lld", (long long)(ver < 0 ? INT64_MAX : ver));
    const char *params[] = {h, v};
    duckdb_result r;
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT name, type, nullable, dflt, slot, pk_pos FROM " META ".hist_cols "
                                "WHERE hid = CAST($1 AS BIGINT) AND ver = (SELECT max(ver) FROM " META ".hist_cols "
                                "WHERE hid = CAST($1 AS BIGINT) AND ver <= CAST($2 AS BIGINT)) ORDER BY pos",
                                2, params);
    if (st != DS_OK)
        return st;
    idx_t rows = duckdb_row_count(&r);
    ddb_hcol_t *c = u->be->host->alloc(u->call, sizeof(*c) * (rows ? rows : 1));
    if (!c) {
        duckdb_destroy_result(&r);
        return ddb_oom(u->err);
    }
    bool oom = false;
    for (idx_t i = 0; i < rows; i++) {
        char *v0 = ds_ddb_cell(&r, 0, i), *v1 = ds_ddb_cell(&r, 1, i), *v3 = ds_ddb_cell(&r, 3, i),
             *v4 = ds_ddb_cell(&r, 4, i);
        c[i].name = u->be->host->strdup(u->call, v0);
        c[i].type = u->be->host->strdup(u->call, v1);
        c[i].nullable = duckdb_value_boolean(&r, 2, i);
        c[i].dflt = v3 ? u->be->host->strdup(u->call, v3) : NULL;
        c[i].slot = u->be->host->strdup(u->call, v4);
        c[i].pk_pos = duckdb_value_is_null(&r, 5, i) ? -1 : (int)ds_ddb_int(&r, 5, i);
        oom = oom || !c[i].name || !c[i].type || !c[i].slot || (v3 && !c[i].dflt);
        free(v0);
        free(v1);
        free(v3);
        free(v4);
    }
    duckdb_destroy_result(&r);
    if (oom)
        return ddb_oom(u->err);
    *cols = c;
    *n = rows;
    return DS_OK;
}

static int pk_pos_of(const ds_be_table_t *t, const char *name)
{
    for (size_t k = 0; k < t->n_primary_key; k++)
        if (strcasecmp(t->primary_key[k], name) == 0)
            return (int)k;
    return -1;
}

static bool same_text(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/*
 * Brings h->cols in line with the table's definition as this transaction
 * sees it: a new column, or one whose type changed, gets a new slot (a column
 * of _ds.h_<hid>); any difference is kept for ddb_hist_end to record.
 */
static ds_status_t count_slots(use_t *u, int64_t hid, int64_t *n);

static ds_status_t sync_cols(use_t *u, ddb_hist_t *h)
{
    ds_be_table_t t = {0};
    ds_status_t st = DS_OK;
    if (h->known)
        t = *h->known;
    else if ((st = ddb_table_describe(u, u->call, h->bucket, h->table, &t)) != DS_OK)
        return st;
    ddb_hcol_t *now = u->be->host->alloc(u->call, sizeof(*now) * (t.n_columns ? t.n_columns : 1));
    if (!now)
        return ddb_oom(u->err);
    /* New slots: one ALTER TABLE each, or the columns of the CREATE TABLE of a generation just begun. */
    ds_buf_t slots = {0};
    bool changed = t.n_columns != h->n_cols;
    for (size_t i = 0; i < t.n_columns && st == DS_OK; i++) {
        const ds_be_column_t *c = &t.columns[i];
        ddb_hcol_t *old = NULL;
        for (size_t j = 0; j < h->n_cols && !old; j++)
            if (strcasecmp(h->cols[j].name, c->name) == 0 && strcmp(h->cols[j].type, c->type) == 0)
                old = &h->cols[j];
        now[i] = (ddb_hcol_t){.name = c->name, .type = c->type, .nullable = c->nullable, .dflt = c->default_value,
                              .pk_pos = pk_pos_of(&t, c->name)};
        if (old) {
            now[i].slot = old->slot;
        } else {
            char slot[32];
            if (h->next_slot < 0 && (st = count_slots(u, h->hid, &h->next_slot)) != DS_OK)
                break;
            snprintf(slot, sizeof(slot), "c%lld", (long long)h->next_slot++);
            if (!(now[i].slot = u->be->host->strdup(u->call, slot))) {
                st = ddb_oom(u->err);
                break;
            }
            if (h->rows_table_pending) {
                ds_buf_printf(&slots, ", %s %s", slot, c->type);
            } else {
                ds_buf_t sql = {0};
                ds_buf_puts(&sql, "ALTER TABLE ");
                hist_name(&sql, h->hid);
                ds_buf_printf(&sql, " ADD COLUMN %s %s", slot, c->type);
                st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
                ds_buf_free(&sql);
            }
        }
        changed = changed || !old || i >= h->n_cols || strcmp(h->cols[i].slot, now[i].slot) != 0 ||
                  strcmp(h->cols[i].name, c->name) != 0 || h->cols[i].nullable != c->nullable ||
                  !same_text(h->cols[i].dflt, c->default_value) || h->cols[i].pk_pos != now[i].pk_pos;
    }
    if (st == DS_OK && h->rows_table_pending) {
        /* A wide table's history starts with one statement, not one per column (3,000 took 20 s). */
        ds_buf_t sql = {0};
        ds_buf_puts(&sql, "CREATE TABLE ");
        hist_name(&sql, h->hid);
        ds_buf_puts(&sql, " (_h_ver BIGINT NOT NULL, _h_add BOOLEAN NOT NULL, \"_timestamp\" TIMESTAMP");
        ds_buf_append_buf(&sql, &slots);
        ds_buf_puts(&sql, ")");
        st = ds_buf_failed(&sql) ? ddb_oom(u->err) : ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
        ds_buf_free(&sql);
        h->rows_table_pending = false;
    }
    ds_buf_free(&slots);
    if (st != DS_OK)
        return st;
    h->cols = now;
    h->n_cols = t.n_columns;
    h->cols_changed = h->cols_changed || changed;
    return DS_OK;
}

/* Records h's column set as of version ver: rows of _ds.hist_cols, many to a statement. */
static ds_status_t write_cols(use_t *u, ddb_hist_t *h, int64_t ver)
{
    ds_status_t st = DS_OK;
    const size_t per_statement = 256;
    for (size_t first = 0; first < h->n_cols && st == DS_OK; first += per_statement) {
        ds_buf_t sql = {0};
        ds_buf_puts(&sql, "INSERT INTO " META ".hist_cols VALUES ");
        for (size_t i = first; i < h->n_cols && i < first + per_statement; i++) {
            const ddb_hcol_t *c = &h->cols[i];
            ds_buf_printf(&sql, "%s(%lld, %lld, %zu, ", i > first ? ", " : "", (long long)h->hid, (long long)ver, i);
            ds_buf_literal(&sql, c->name);
            ds_buf_puts(&sql, ", ");
            ds_buf_literal(&sql, c->type);
            ds_buf_printf(&sql, ", %s, ", c->nullable ? "true" : "false");
            if (c->dflt)
                ds_buf_literal(&sql, c->dflt);
            else
                ds_buf_puts(&sql, "NULL");
            ds_buf_puts(&sql, ", ");
            ds_buf_literal(&sql, c->slot);
            if (c->pk_pos >= 0)
                ds_buf_printf(&sql, ", %d)", c->pk_pos);
            else
                ds_buf_puts(&sql, ", NULL)");
        }
        st = ds_buf_failed(&sql) ? ddb_oom(u->err) : ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
        ds_buf_free(&sql);
    }
    h->cols_changed = false;
    return st;
}

/* A write's time: now, but always after the generation's previous write (h->last_at, read by begin). */
static int64_t write_time(const ddb_hist_t *h)
{
    int64_t now = ddb_hist_now_us();
    return !h->has_last_at || now > h->last_at ? now : h->last_at + 1;
}

/* A write's row; ts_hi and stamp_lo are NULL when their has_ flag is false. */
static ds_status_t write_row(use_t *u, int64_t hid, int64_t ver, int64_t at, bool full, int64_t removed,
                             int64_t added, bool has_hi, int64_t ts_hi, bool has_stamp, int64_t stamp_lo)
{
    char h[32], v[32], a[32], r[32], d[32], hi[32], lo[32];
    snprintf(h, sizeof(h), "%lld", (long long)hid);
    snprintf(v, sizeof(v), "%lld", (long long)ver);
    snprintf(a, sizeof(a), "%lld", (long long)at);
    snprintf(r, sizeof(r), "%lld", (long long)removed);
    snprintf(d, sizeof(d), "%lld", (long long)added);
    snprintf(hi, sizeof(hi), "%lld", (long long)ts_hi);
    snprintf(lo, sizeof(lo), "%lld", (long long)stamp_lo);
    const char *params[] = {h, v, a, full ? "true" : "false", r, d, has_hi ? hi : NULL, has_stamp ? lo : NULL};
    return ds_ddb_run(u->conn, u->err, NULL,
                      "INSERT INTO " META ".hist_writes (hid, ver, at_us, \"full\", removed, added, ts_hi, stamp_lo) "
                      "VALUES (CAST($1 AS BIGINT), CAST($2 AS BIGINT), CAST($3 AS BIGINT), CAST($4 AS BOOLEAN), "
                      "CAST($5 AS BIGINT), CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($8 AS BIGINT))",
                      8, params);
}

static ds_status_t next_ver(use_t *u, int64_t *ver)
{
    return one_int(u, "SELECT nextval('" META ".hist_seq')", 0, NULL, ver, NULL);
}

/* The live generation of table $2 in bucket $1 (NULL: none), as one column "hid". */
#define LIVE_HID_SQL                                                                                               \
    "SELECT max(hid) AS hid FROM " META ".hist_tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2) " \
    "AND dropped_us IS NULL"

/* The live generation of bucket.table: *hid, or *found false. */
static ds_status_t live_hid(use_t *u, const char *bucket, const char *table, int64_t *hid, bool *found)
{
    const char *params[] = {bucket, table};
    bool none;
    ds_status_t st = one_int(u, LIVE_HID_SQL, 2, params, hid, &none);
    *found = !none;
    return st;
}

/*
 * What a write needs of bucket.table's live generation, in one statement:
 * h->hid, the time of its last write (h->last_at), the ts_hi that write left
 * (*ts_hi, *ts_hi_null when it kept none) and this write's version (h->ver).
 * *found false: the table has no live generation (h->ver is taken anyway).
 */
static ds_status_t look_up(use_t *u, ddb_hist_t *h, bool *found, int64_t *ts_hi, bool *ts_hi_null)
{
    const char *params[] = {h->bucket, h->table};
    duckdb_result r;
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT g.*, nextval('" META ".hist_seq') FROM (SELECT g.hid, max(w.at_us), "
                                "arg_max_null(w.ts_hi, w.ver) FROM (" LIVE_HID_SQL ") g "
                                "LEFT JOIN " META ".hist_writes w ON w.hid = g.hid GROUP BY g.hid) g",
                                2, params);
    *found = false;
    *ts_hi_null = true;
    if (st != DS_OK)
        return st;
    idx_t rows = duckdb_row_count(&r);
    if (rows != 1) {
        duckdb_destroy_result(&r);
        return ds_err_set(u->err, DS_INTERNAL, "the history lookup of %s.%s gave %llu rows", h->bucket, h->table,
                          (unsigned long long)rows);
    }
    *found = !duckdb_value_is_null(&r, 0, 0);
    h->hid = *found ? ds_ddb_int(&r, 0, 0) : 0;
    h->has_last_at = !duckdb_value_is_null(&r, 1, 0);
    h->last_at = h->has_last_at ? ds_ddb_int(&r, 1, 0) : 0;
    *ts_hi_null = duckdb_value_is_null(&r, 2, 0);
    *ts_hi = *ts_hi_null ? 0 : ds_ddb_int(&r, 2, 0);
    h->ver = ds_ddb_int(&r, 3, 0);
    duckdb_destroy_result(&r);
    return DS_OK;
}

/*
 * The number of slots _ds.h_<hid> has (its columns past _h_ver, _h_add and
 * _timestamp). pragma_table_info reads one table; duckdb_columns() would hold
 * every attached database while it runs (see ddb_load_columns).
 */
static ds_status_t count_slots(use_t *u, int64_t hid, int64_t *n)
{
    ds_buf_t name = {0}, sql = {0};
    ds_buf_ident(&name, u->p->alias);
    ds_buf_printf(&name, "." META ".\"h_%lld\"", (long long)hid);
    ds_buf_puts(&sql, "SELECT count(*) FROM pragma_table_info(");
    ds_buf_literal(&sql, ds_buf_cstr(&name));
    ds_buf_puts(&sql, ")");
    ds_status_t st = ds_buf_failed(&sql) ? ddb_oom(u->err) : one_int(u, ds_buf_cstr(&sql), 0, NULL, n, NULL);
    ds_buf_free(&name);
    ds_buf_free(&sql);
    *n -= 3;
    return st;
}

/*
 * Starts bucket.table's history (a generation) if it has none: its rows as
 * they are now are where its history begins (horizon: now). The table exists.
 * Reads what a write needs of the generation (look_up; *ts_hi as there) and
 * takes this write's version after the generation's start.
 */
static ds_status_t ensure(use_t *u, ddb_hist_t *h, int64_t *ts_hi, bool *ts_hi_null)
{
    bool found;
    ds_status_t st = look_up(u, h, &found, ts_hi, ts_hi_null);
    if (st != DS_OK)
        return st;
    h->next_slot = -1; /* counted when a column needs a new slot (sync_cols) */
    if (found)
        return load_cols(u, h->hid, -1, &h->cols, &h->n_cols);
    int64_t ver;
    if ((st = next_ver(u, &h->hid)) != DS_OK || (st = next_ver(u, &ver)) != DS_OK)
        return st;
    int64_t now = ddb_hist_now_us();
    char hid[32], at[32];
    snprintf(hid, sizeof(hid), "%lld", (long long)h->hid);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    const char *params[] = {hid, h->bucket, h->table, at};
    st = ds_ddb_run(u->conn, u->err, NULL,
                    "INSERT INTO " META ".hist_tables VALUES (CAST($1 AS BIGINT), $2, $3, CAST($4 AS BIGINT), NULL)",
                    4, params);
    if (st != DS_OK)
        return st;
    /* sync_cols creates _ds.h_<hid> with a slot for each column. */
    h->cols = NULL;
    h->n_cols = 0;
    h->next_slot = 0;
    h->rows_table_pending = true;
    st = sync_cols(u, h);
    if (st == DS_OK)
        st = write_cols(u, h, ver);
    if (st == DS_OK)
        st = write_row(u, h->hid, ver, now, false, 0, 0, false, 0, false, 0);
    h->last_at = now;
    h->has_last_at = true;
    *ts_hi_null = true;
    return st == DS_OK ? next_ver(u, &h->ver) : st;
}

ds_status_t ddb_hist_register(use_t *u, const char *bucket, const char *table)
{
    ddb_hist_t h = {.bucket = bucket, .table = table};
    int64_t ts_hi;
    bool ts_hi_null;
    return ensure(u, &h, &ts_hi, &ts_hi_null);
}

/* Appends "<bucket>.<table> t". */
static void table_ref(ds_buf_t *b, const ddb_hist_t *h)
{
    ds_buf_ident(b, h->bucket);
    ds_buf_puts(b, ".");
    ds_buf_ident(b, h->table);
    ds_buf_puts(b, " t");
}

/*
 * h->ts_lo: the _timestamp bound the generation's last write left (ts_hi,
 * read by look_up), or when that is not known (a generation just begun, or
 * written before the bound was kept, or with history off) the largest
 * _timestamp of the table and of its recorded rows: every row of every
 * moment the history can still rebuild is one of those.
 */
static ds_status_t read_ts_lo(use_t *u, ddb_hist_t *h, int64_t ts_hi, bool ts_hi_null)
{
    if (u->call->history_off)
        return DS_OK;
    if (!ts_hi_null) {
        h->ts_lo = ts_hi;
        h->ts_lo_known = true;
        return DS_OK;
    }
    bool none;
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "SELECT " TS_US("max(m)") " FROM (SELECT max(t.\"_timestamp\") AS m FROM ");
    table_ref(&sql, h);
    ds_buf_puts(&sql, " UNION ALL SELECT max(\"_timestamp\") FROM ");
    hist_name(&sql, h->hid);
    ds_buf_puts(&sql, ")");
    ds_status_t st = ds_buf_failed(&sql) ? ddb_oom(u->err) : one_int(u, ds_buf_cstr(&sql), 0, NULL, &h->ts_lo, &none);
    ds_buf_free(&sql);
    if (st == DS_OK && none)
        h->ts_lo = DDB_TS_NONE;
    h->ts_lo_known = st == DS_OK;
    return st;
}

static ds_status_t begin(use_t *u, const char *bucket, const char *table, const ds_be_table_t *known, ddb_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->bucket = bucket;
    h->table = table;
    h->known = known;
    int64_t ts_hi;
    bool ts_hi_null;
    ds_status_t st = ensure(u, h, &ts_hi, &ts_hi_null);
    if (st == DS_OK)
        st = read_ts_lo(u, h, ts_hi, ts_hi_null);
    /* A change no write recorded (there should be none) is at least named as of this write. */
    if (st == DS_OK)
        st = sync_cols(u, h);
    return st;
}

ds_status_t ddb_hist_begin(use_t *u, const char *bucket, const char *table, ddb_hist_t *h)
{
    return begin(u, bucket, table, NULL, h);
}

ds_status_t ddb_hist_begin_known(use_t *u, const ds_be_table_t *known, ddb_hist_t *h)
{
    return begin(u, known->bucket, known->name, known, h);
}

/*
 * Copies the table's rows (alias t) [join ...] [WHERE cond; NULL: all rows]
 * into the history as removed (add false) or added rows.
 */
static ds_status_t record(use_t *u, ddb_hist_t *h, bool add, const char *join, const char *cond, int64_t *n)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "INSERT INTO ");
    hist_name(&sql, h->hid);
    ds_buf_puts(&sql, " (_h_ver, _h_add, \"_timestamp\"");
    for (size_t i = 0; i < h->n_cols; i++)
        ds_buf_printf(&sql, ", %s", h->cols[i].slot);
    ds_buf_printf(&sql, ") SELECT %lld, %s, t.\"_timestamp\"", (long long)h->ver, add ? "true" : "false");
    for (size_t i = 0; i < h->n_cols; i++) {
        ds_buf_puts(&sql, ", t.");
        ds_buf_ident(&sql, h->cols[i].name);
    }
    ds_buf_puts(&sql, " FROM ");
    table_ref(&sql, h);
    if (join)
        ds_buf_puts(&sql, join);
    if (cond) {
        ds_buf_puts(&sql, " WHERE ");
        ds_buf_puts(&sql, cond);
    }
    duckdb_result r;
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    *n = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    return DS_OK;
}

ds_status_t ddb_hist_removed(use_t *u, ddb_hist_t *h, const char *cond, int64_t *n)
{
    int64_t k = 0;
    ds_status_t st = u->call->history_off ? DS_OK : record(u, h, false, NULL, cond, &k);
    h->removed += k;
    if (!cond)
        h->full = true;
    if (n)
        *n = k;
    return st;
}

/*
 * With history the rows to remove are selected once: their row ids go into a
 * temp table that both the copy into the history and the DELETE read, so the
 * write's selection (a join of the whole table, for an upsert) runs once and
 * the history holds exactly the rows the DELETE removed (counted, too).
 */
ds_status_t ddb_hist_delete(use_t *u, ddb_hist_t *h, const char *where, int64_t *deleted)
{
    ds_buf_t sql = {0};
    ds_status_t st = DS_OK;
    duckdb_result r;
    bool off = u->call->history_off;
    if (!off) {
        ds_buf_puts(&sql, "CREATE OR REPLACE TEMP TABLE __ds_hist_gone AS SELECT t.rowid AS r FROM ");
        table_ref(&sql, h);
        ds_buf_puts(&sql, where);
        st = ds_buf_failed(&sql) ? ddb_oom(u->err) : ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
        ds_buf_reset(&sql);
    }
    int64_t kept = 0;
    if (st == DS_OK && !off)
        st = record(u, h, false, " SEMI JOIN __ds_hist_gone g ON t.rowid = g.r", NULL, &kept);
    if (st == DS_OK) {
        ds_buf_puts(&sql, "DELETE FROM ");
        table_ref(&sql, h);
        ds_buf_puts(&sql, off ? where : " USING __ds_hist_gone g WHERE t.rowid = g.r");
        st = ds_buf_failed(&sql) ? ddb_oom(u->err) : ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    }
    ds_buf_free(&sql);
    if (!off) {
        ds_err_t ignored = {0};
        ds_ddb_exec(u->conn, &ignored, "DROP TABLE IF EXISTS __ds_hist_gone");
    }
    if (st != DS_OK)
        return st;
    *deleted = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    if (!off && *deleted != kept)
        return ds_err_set(u->err, DS_INTERNAL,
                          "the history of %s.%s kept %lld rows where the write removed %lld; the write was not applied",
                          h->bucket, h->table, (long long)kept, (long long)*deleted);
    h->removed += kept;
    return DS_OK;
}

/*
 * The rows this write appended (row ids from DDB_HIST_LOCAL_ROWID): how many,
 * and whether they all carry one _timestamp above h->ts_lo (then they are
 * "stamped" and need no copy), else they are copied. Either way their count
 * must be the write's own (expected, unless < 0).
 */
ds_status_t ddb_hist_appended(use_t *u, ddb_hist_t *h, int64_t expected)
{
    ds_status_t st = sync_cols(u, h);
    if (st != DS_OK || u->call->history_off || h->full)
        return st;
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "SELECT count(*), count(t.\"_timestamp\"), " TS_US("min(t.\"_timestamp\")") ", "
                      TS_US("max(t.\"_timestamp\")") " FROM ");
    table_ref(&sql, h);
    ds_buf_puts(&sql, " WHERE t.rowid >= " DDB_HIST_LOCAL_ROWID);
    duckdb_result r;
    st = ds_buf_failed(&sql) ? ddb_oom(u->err) : ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    int64_t n = ds_ddb_int(&r, 0, 0), n_ts = ds_ddb_int(&r, 1, 0);
    int64_t lo = n_ts ? ds_ddb_int(&r, 2, 0) : 0, hi = n_ts ? ds_ddb_int(&r, 3, 0) : 0;
    duckdb_destroy_result(&r);
    int64_t k = n;
    h->stamped = expected >= 0 && n == expected && n > 0 && n_ts == n && lo == hi && h->ts_lo_known && lo > h->ts_lo &&
                 lo < DDB_TS_INF;
    if (!h->stamped && (st = record(u, h, true, NULL, "t.rowid >= " DDB_HIST_LOCAL_ROWID, &k)) != DS_OK)
        return st;
    if ((expected >= 0 && k != expected) || k != n)
        return ds_err_set(u->err, DS_INTERNAL,
                          "the history of %s.%s found %lld appended rows where the write appended %lld; the write was "
                          "not applied",
                          h->bucket, h->table, (long long)k, (long long)(expected >= 0 ? expected : n));
    if (n_ts && (!h->has_added || hi > h->ts_added)) {
        h->ts_added = hi;
        h->has_added = true;
    }
    h->added += k;
    return DS_OK;
}

/*
 * Rewrites generation hid's row (DELETE and INSERT, never UPDATE): dropped_us
 * when dropped >= 0, and the horizon raised to at least horizon.
 */
static ds_status_t rewrite_table_row(use_t *u, int64_t hid, int64_t horizon, int64_t dropped)
{
    char h[32], hz[32], dr[32];
    snprintf(h, sizeof(h), "%lld", (long long)hid);
    snprintf(hz, sizeof(hz), "%lld", (long long)horizon);
    snprintf(dr, sizeof(dr), "%lld", (long long)dropped);
    const char *hp[] = {h};
    ds_status_t st = ds_ddb_run(u->conn, u->err, NULL,
                                "CREATE OR REPLACE TEMP TABLE __ds_hist_row AS SELECT * FROM " META ".hist_tables "
                                "WHERE hid = CAST($1 AS BIGINT)",
                                1, hp);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".hist_tables WHERE hid = CAST($1 AS BIGINT)", 1,
                        hp);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "INSERT INTO " META ".hist_tables SELECT hid, bucket, name, greatest(horizon_us, "
                        "CAST($1 AS BIGINT)), CASE WHEN CAST($2 AS BIGINT) >= 0 THEN CAST($2 AS BIGINT) ELSE "
                        "dropped_us END FROM __ds_hist_row",
                        2, (const char *const[]){hz, dr});
    ds_err_t ignored = {0};
    ds_ddb_exec(u->conn, &ignored, "DROP TABLE IF EXISTS __ds_hist_row");
    return st;
}

/*
 * The bound this write leaves (ts_hi, the next write's ts_lo): ts_lo raised to
 * what it appended; after a write that replaced every row, to the largest
 * _timestamp the table holds now (its rows may not be local appends).
 */
static ds_status_t ts_after(use_t *u, const ddb_hist_t *h, int64_t *hi)
{
    *hi = h->ts_lo;
    if (!h->full) {
        if (h->has_added && h->ts_added > *hi)
            *hi = h->ts_added;
        return DS_OK;
    }
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "SELECT " TS_US("max(t.\"_timestamp\")") " FROM ");
    table_ref(&sql, h);
    int64_t m;
    bool none;
    ds_status_t st = ds_buf_failed(&sql) ? ddb_oom(u->err) : one_int(u, ds_buf_cstr(&sql), 0, NULL, &m, &none);
    ds_buf_free(&sql);
    if (st == DS_OK && !none && m > *hi)
        *hi = m;
    return st;
}

ds_status_t ddb_hist_end(use_t *u, ddb_hist_t *h)
{
    int64_t at = 0, hi = 0;
    ds_status_t st = sync_cols(u, h);
    if (st == DS_OK && h->cols_changed)
        st = write_cols(u, h, h->ver);
    if (st == DS_OK)
        at = write_time(h);
    if (st == DS_OK && h->ts_lo_known)
        st = ts_after(u, h, &hi);
    if (st == DS_OK)
        st = write_row(u, h->hid, h->ver, at, h->full, h->removed, h->added, h->ts_lo_known, hi, h->stamped,
                       h->ts_lo);
    /* Without history (retention 0) no moment before this write can be rebuilt any more. */
    if (st == DS_OK && u->call->history_off)
        st = rewrite_table_row(u, h->hid, at, -1);
    return st;
}

ds_status_t ddb_hist_end_drop(use_t *u, ddb_hist_t *h)
{
    int64_t at = write_time(h);
    ds_status_t st = write_row(u, h->hid, h->ver, at, true, h->removed, 0, false, 0, false, 0);
    return st == DS_OK ? rewrite_table_row(u, h->hid, u->call->history_off ? at : 0, at) : st;
}

ds_status_t ddb_hist_drop(use_t *u, const char *bucket, const char *table)
{
    ddb_hist_t h;
    ds_status_t st = ddb_hist_begin(u, bucket, table, &h);
    if (st == DS_OK)
        st = ddb_hist_removed(u, &h, NULL, NULL);
    return st == DS_OK ? ddb_hist_end_drop(u, &h) : st;
}

/* Drops generation hid's rows table and records. */
static ds_status_t forget_hid(use_t *u, int64_t hid)
{
    char h[32];
    snprintf(h, sizeof(h), "%lld", (long long)hid);
    const char *hp[] = {h};
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "DROP TABLE IF EXISTS ");
    hist_name(&sql, hid);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".hist_writes WHERE hid = CAST($1 AS BIGINT)", 1,
                        hp);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".hist_cols WHERE hid = CAST($1 AS BIGINT)", 1, hp);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".hist_tables WHERE hid = CAST($1 AS BIGINT)", 1,
                        hp);
    return st;
}

ds_status_t ddb_hist_forget(use_t *u, const char *prefix)
{
    duckdb_result r;
    const char *params[] = {prefix};
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT hid FROM " META ".hist_tables WHERE starts_with(lower(bucket), lower($1))", 1,
                                params);
    if (st != DS_OK)
        return st;
    for (idx_t i = 0; i < duckdb_row_count(&r) && st == DS_OK; i++)
        st = forget_hid(u, ds_ddb_int(&r, 0, i));
    duckdb_destroy_result(&r);
    return st;
}

/* ---- time travel ---- */

typedef struct {
    const ds_be_time_travel_t *in;
    ds_be_call_t *call;
    int64_t rows;
} tt_t;

static void slot_list(ds_buf_t *b, const ddb_hcol_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ds_buf_printf(b, "%s, ", cols[i].slot);
    ds_buf_puts(b, "\"_timestamp\"");
}

static void fmt_time(int64_t us, char *out, size_t n)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static ds_status_t tt_txn(use_t *u, void *ud)
{
    tt_t *x = ud;
    const ds_be_time_travel_t *in = x->in;
    const ds_host_api_t *host = u->be->host;
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)in->at_us);
    const char *params[] = {in->bucket, in->table, at};
    int64_t hid = 0, v_t, v_full;
    bool none;
    ds_status_t st = DS_OK;
    /* The generation: the live table's, or for a dropped table the one that was alive at the moment. */
    if (in->dropped)
        st = one_int(u,
                     "SELECT hid FROM " META ".hist_tables WHERE lower(bucket) = lower($1) AND lower(name) = "
                     "lower($2) AND dropped_us IS NOT NULL AND dropped_us > CAST($3 AS BIGINT) ORDER BY dropped_us "
                     "LIMIT 1",
                     3, params, &hid, &none);
    if (st != DS_OK)
        return st;
    if (!in->dropped) {
        bool found;
        if ((st = live_hid(u, in->bucket, in->table, &hid, &found)) != DS_OK)
            return st;
        none = !found;
    }
    if (none && in->dropped)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND,
                           "no dropped table \"%s.%s\" existed at that moment within the data retention", in->bucket,
                           in->table);
    if (none)
        return ds_err_setf(u->err, DS_INVALID_ARGUMENT, "timestamp",
                           "table \"%s.%s\" has no history yet: its history begins with its next write", in->bucket,
                           in->table);
    char h[32];
    snprintf(h, sizeof(h), "%lld", (long long)hid);
    const char *hp[] = {h, at};
    int64_t horizon;
    if ((st = one_int(u, "SELECT horizon_us FROM " META ".hist_tables WHERE hid = CAST($1 AS BIGINT)", 1, hp,
                      &horizon, NULL)) != DS_OK)
        return st;
    if (in->at_us < horizon) {
        char when[40];
        fmt_time(horizon + 999999, when, sizeof(when));
        return ds_err_setf(u->err, DS_INVALID_ARGUMENT, "timestamp",
                           "the history of table \"%s.%s\" begins at %s (its creation, or the oldest moment the data "
                           "retention keeps); the timestamp is before it",
                           in->bucket, in->table, when);
    }
    if ((st = one_int(u,
                      "SELECT max(ver) FROM " META ".hist_writes WHERE hid = CAST($1 AS BIGINT) AND at_us <= "
                      "CAST($2 AS BIGINT)",
                      2, hp, &v_t, &none)) != DS_OK)
        return st;
    if (none)
        return ds_err_setf(u->err, DS_INVALID_ARGUMENT, "timestamp",
                           "table \"%s.%s\" did not exist at that moment", in->bucket, in->table);
    char vt[32];
    snprintf(vt, sizeof(vt), "%lld", (long long)v_t);
    const char *vp[] = {h, vt};
    if ((st = one_int(u,
                      "SELECT min(ver) FROM " META ".hist_writes WHERE hid = CAST($1 AS BIGINT) AND ver > "
                      "CAST($2 AS BIGINT) AND \"full\"",
                      2, vp, &v_full, &none)) != DS_OK)
        return st;
    bool from_now = none;
    /*
     * Rows appended by stamped writes after the moment were not copied: they
     * are the rows whose _timestamp is above the lowest stamp_lo of those
     * writes, which bounds every row the table had at the moment.
     */
    char vf[32];
    snprintf(vf, sizeof(vf), "%lld", (long long)(from_now ? INT64_MAX : v_full));
    const char *sp[] = {h, vt, vf};
    int64_t thr;
    bool no_thr;
    if ((st = one_int(u,
                      "SELECT min(stamp_lo) FROM " META ".hist_writes WHERE hid = CAST($1 AS BIGINT) AND ver > "
                      "CAST($2 AS BIGINT) AND ver < CAST($3 AS BIGINT)",
                      3, sp, &thr, &no_thr)) != DS_OK)
        return st;
    char keep[512] = "true";
    if (!no_thr)
        snprintf(keep, sizeof(keep), "(\"_timestamp\" IS NULL OR " TS_US("\"_timestamp\"") " <= %lld)", (long long)thr);
    ddb_hcol_t *cols, *cur = NULL;
    size_t n, n_cur = 0;
    if ((st = load_cols(u, hid, v_t, &cols, &n)) != DS_OK)
        return st;
    if (n == 0)
        return ds_err_set(u->err, DS_INTERNAL, "the history of table \"%s.%s\" has no column set", in->bucket,
                          in->table);
    if (from_now && (st = load_cols(u, hid, -1, &cur, &n_cur)) != DS_OK)
        return st;

    /* The destination, as the table was defined at the moment. */
    ds_be_table_t def = {.bucket = in->dst_bucket, .name = in->dst_table, .created_at = time(NULL)};
    def.columns = host->alloc(x->call, sizeof(ds_be_column_t) * n);
    def.primary_key = host->alloc(x->call, sizeof(char *) * n);
    if (!def.columns || !def.primary_key)
        return ddb_oom(u->err);
    def.n_columns = n;
    for (size_t i = 0; i < n; i++) {
        def.columns[i] = (ds_be_column_t){cols[i].name, cols[i].type, cols[i].nullable, cols[i].dflt};
        if (cols[i].pk_pos >= 0 && (size_t)cols[i].pk_pos < n) {
            def.primary_key[cols[i].pk_pos] = cols[i].name;
            def.n_primary_key++;
        }
    }
    if ((st = ddb_table_create_txn(u, &def)) != DS_OK)
        return st;

    ds_buf_t sql = {0}, hist = {0};
    hist_name(&hist, hid);
    ds_buf_puts(&sql, "INSERT INTO ");
    ds_buf_ident(&sql, in->dst_bucket);
    ds_buf_puts(&sql, ".");
    ds_buf_ident(&sql, in->dst_table);
    ds_buf_puts(&sql, " (");
    for (size_t i = 0; i < n; i++) {
        ds_buf_ident(&sql, cols[i].name);
        ds_buf_puts(&sql, ", ");
    }
    ds_buf_puts(&sql, "\"_timestamp\") WITH base AS (");
    if (from_now) {
        ds_buf_puts(&sql, "SELECT ");
        for (size_t i = 0; i < n; i++) {
            const char *name = NULL;
            for (size_t j = 0; j < n_cur && !name; j++)
                if (strcmp(cur[j].slot, cols[i].slot) == 0)
                    name = cur[j].name;
            if (name)
                ds_buf_ident(&sql, name);
            else
                ds_buf_printf(&sql, "CAST(NULL AS %s)", cols[i].type);
            ds_buf_printf(&sql, " AS %s, ", cols[i].slot);
        }
        ds_buf_puts(&sql, "\"_timestamp\" FROM ");
        ds_buf_ident(&sql, in->bucket);
        ds_buf_puts(&sql, ".");
        ds_buf_ident(&sql, in->table);
        ds_buf_printf(&sql, " WHERE %s", keep);
    } else {
        ds_buf_puts(&sql, "SELECT ");
        slot_list(&sql, cols, n);
        ds_buf_printf(&sql, " FROM %s WHERE _h_ver = %lld AND NOT _h_add AND %s", ds_buf_cstr(&hist),
                      (long long)v_full, keep);
    }
    ds_buf_puts(&sql, "), ev AS (SELECT _h_add, ");
    slot_list(&sql, cols, n);
    ds_buf_printf(&sql, " FROM %s WHERE _h_ver > %lld AND (_h_add OR %s)", ds_buf_cstr(&hist), (long long)v_t, keep);
    if (!from_now)
        ds_buf_printf(&sql, " AND _h_ver < %lld", (long long)v_full);
    /*
     * (base + removed) - added as multisets. Base rows that equal no added
     * row pass straight (a hash anti-join: the big table is only probed);
     * the others, the removed and the added rows are counted per distinct
     * row, and each row with a positive count comes out that many times.
     */
    ds_buf_t match = {0};
    ds_buf_puts(&match, "(SELECT 1 FROM added a WHERE ");
    for (size_t i = 0; i <= n; i++) {
        const char *c = i < n ? cols[i].slot : "\"_timestamp\"";
        ds_buf_printf(&match, "%sa.%s IS NOT DISTINCT FROM b.%s", i ? " AND " : "", c, c);
    }
    ds_buf_puts(&match, ")");
    ds_buf_puts(&sql, "), added AS (SELECT ");
    slot_list(&sql, cols, n);
    ds_buf_puts(&sql, " FROM ev WHERE _h_add), counted AS (SELECT ");
    slot_list(&sql, cols, n);
    ds_buf_puts(&sql, ", CAST(sum(w) AS BIGINT) AS __k FROM (SELECT b.*, 1 AS w FROM base b WHERE EXISTS ");
    ds_buf_append_buf(&sql, &match);
    ds_buf_puts(&sql, " UNION ALL SELECT ");
    slot_list(&sql, cols, n);
    ds_buf_puts(&sql, ", 1 FROM ev WHERE NOT _h_add UNION ALL SELECT ");
    slot_list(&sql, cols, n);
    ds_buf_puts(&sql, ", -1 FROM added) GROUP BY ALL HAVING sum(w) > 0) SELECT b.* FROM base b WHERE NOT EXISTS ");
    ds_buf_append_buf(&sql, &match);
    ds_buf_puts(&sql, " UNION ALL SELECT ");
    slot_list(&sql, cols, n);
    ds_buf_puts(&sql, " FROM counted, range(counted.__k)");
    ds_buf_free(&match);
    duckdb_result r;
    st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    ds_buf_free(&hist);
    if (st != DS_OK)
        return st;
    x->rows = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    if ((st = ddb_refresh_counts(u, in->dst_bucket, in->dst_table)) != DS_OK)
        return st;
    /* The new table's own history begins with its restored rows. */
    if ((st = ddb_hist_register(u, in->dst_bucket, in->dst_table)) != DS_OK)
        return st;
    return ddb_idem_record(u, 0);
}

ds_status_t ddb_table_time_travel(void *self, ds_be_call_t *call, const ds_be_time_travel_t *in, int64_t *rows)
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    tt_t x = {.in = in, .call = call};
    st = ddb_in_txn(&u, tt_txn, &x);
    if (rows)
        *rows = x.rows;
    ddb_use_end(&u);
    return st;
}

/* ---- retention ---- */

typedef struct {
    int64_t not_before_us;
    int64_t dropped_tables;
    int64_t rows;
    int64_t *next_us; /* NULL: not asked (ddb_history_expire) */
} expire_t;

/*
 * The earliest not_before_us at which expire_txn would remove something the
 * history keeps now: a generation's drop (its dropped_us), or a live
 * generation's second write (what expire_txn needs is two writes before the
 * moment). INT64_MAX when there is neither.
 */
static ds_status_t next_expiry(use_t *u, int64_t *next_us)
{
    int64_t m;
    bool none;
    ds_status_t st = one_int(u,
                             "SELECT min(x) FROM (SELECT min(dropped_us) AS x FROM " META ".hist_tables WHERE "
                             "dropped_us IS NOT NULL UNION ALL SELECT min(at_us) FROM (SELECT w.at_us, row_number() "
                             "OVER (PARTITION BY w.hid ORDER BY w.at_us) AS n FROM " META ".hist_writes w JOIN " META
                             ".hist_tables t ON t.hid = w.hid WHERE t.dropped_us IS NULL) WHERE n = 2)",
                             0, NULL, &m, &none);
    *next_us = st == DS_OK && !none ? m : INT64_MAX;
    return st;
}

static ds_status_t expire_txn(use_t *u, void *ud)
{
    expire_t *e = ud;
    char nb[32];
    snprintf(nb, sizeof(nb), "%lld", (long long)e->not_before_us);
    const char *params[] = {nb};
    duckdb_result r;
    /* Generations dropped before the oldest moment kept: everything of theirs goes. */
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r,
                                "SELECT hid FROM " META ".hist_tables WHERE dropped_us IS NOT NULL AND dropped_us < "
                                "CAST($1 AS BIGINT)",
                                1, params);
    if (st != DS_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        /* Its rows count as removed too, so the caller knows space is to be returned (compaction). */
        int64_t hid = ds_ddb_int(&r, 0, i);
        ds_buf_t sql = {0};
        /* A generation kept with retention 0 may have no rows table: counted only when there is one. */
        ds_buf_printf(&sql,
                      "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND "
                      "schema_name = '" META "' AND table_name = 'h_%lld'",
                      (long long)hid);
        duckdb_result cr;
        st = ds_ddb_run(u->conn, u->err, &cr, ds_buf_cstr(&sql), 0, NULL);
        ds_buf_free(&sql);
        if (st != DS_OK)
            break;
        bool has_rows = ds_ddb_int(&cr, 0, 0) > 0;
        duckdb_destroy_result(&cr);
        if (has_rows) {
            ds_buf_puts(&sql, "SELECT count(*) FROM ");
            hist_name(&sql, hid);
            st = ds_ddb_run(u->conn, u->err, &cr, ds_buf_cstr(&sql), 0, NULL);
            ds_buf_free(&sql);
            if (st != DS_OK)
                break;
            e->rows += ds_ddb_int(&cr, 0, 0);
            duckdb_destroy_result(&cr);
        }
        st = forget_hid(u, hid);
        e->dropped_tables++;
    }
    duckdb_destroy_result(&r);
    if (st != DS_OK)
        return st;
    /*
     * Live generations: the rows of writes before the oldest moment kept are
     * never read again (a moment T reads only writes after it). The last such
     * write's row stays, so moments after it still find their vT.
     */
    st = ds_ddb_run(u->conn, u->err, &r,
                    "SELECT w.hid, max(w.ver), max(w.at_us) FROM " META ".hist_writes w JOIN " META ".hist_tables t "
                    "ON t.hid = w.hid WHERE w.at_us < CAST($1 AS BIGINT) AND t.dropped_us IS NULL GROUP BY w.hid "
                    "HAVING count(*) > 1",
                    1, params);
    if (st != DS_OK)
        return st;
    n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n && st == DS_OK; i++) {
        int64_t hid = ds_ddb_int(&r, 0, i), cut = ds_ddb_int(&r, 1, i), cut_at = ds_ddb_int(&r, 2, i);
        char h[32], c[32], ca[32];
        snprintf(h, sizeof(h), "%lld", (long long)hid);
        snprintf(c, sizeof(c), "%lld", (long long)cut);
        snprintf(ca, sizeof(ca), "%lld", (long long)cut_at);
        const char *hp[] = {h, c, ca};
        ds_buf_t sql = {0};
        ds_buf_puts(&sql, "DELETE FROM ");
        hist_name(&sql, hid);
        ds_buf_printf(&sql, " WHERE _h_ver <= %lld", (long long)cut);
        duckdb_result dr;
        st = ds_ddb_run(u->conn, u->err, &dr, ds_buf_cstr(&sql), 0, NULL);
        ds_buf_free(&sql);
        if (st == DS_OK) {
            e->rows += ds_ddb_int(&dr, 0, 0);
            duckdb_destroy_result(&dr);
        }
        if (st == DS_OK)
            st = ds_ddb_run(u->conn, u->err, NULL,
                            "DELETE FROM " META ".hist_writes WHERE hid = CAST($1 AS BIGINT) AND ver < "
                            "CAST($2 AS BIGINT)",
                            2, hp);
        if (st == DS_OK)
            st = ds_ddb_run(u->conn, u->err, NULL,
                            "DELETE FROM " META ".hist_cols WHERE hid = CAST($1 AS BIGINT) AND ver < (SELECT "
                            "max(ver) FROM " META ".hist_cols WHERE hid = CAST($1 AS BIGINT) AND ver <= "
                            "CAST($2 AS BIGINT))",
                            2, hp);
        /* Moments before the cut can no longer be rebuilt: the horizon moves to it. */
        if (st == DS_OK)
            st = rewrite_table_row(u, hid, cut_at, -1);
    }
    duckdb_destroy_result(&r);
    if (st == DS_OK && e->next_us)
        st = next_expiry(u, e->next_us);
    return st;
}

/*
 * The sweep (src/cmd/history.c) calls this for every project in turn: it must
 * neither keep an idle project attached (its buffer pool held until the idle
 * detach) nor restart an attached one's idle clock (ddb_idle_save).
 */
ds_status_t ddb_history_expire_next(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows,
                                    int64_t *next_us)
{
    use_t u;
    double idle = ddb_idle_save(self, call->project_id);
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    expire_t e = {.not_before_us = not_before_us, .next_us = next_us};
    st = ddb_in_txn(&u, expire_txn, &e);
    if (rows)
        *rows = e.rows;
    ddb_use_end(&u);
    ddb_idle_restore(self, call->project_id, idle);
    return st;
}

ds_status_t ddb_history_expire(void *self, ds_be_call_t *call, int64_t not_before_us, int64_t *rows)
{
    return ddb_history_expire_next(self, call, not_before_us, rows, NULL);
}
