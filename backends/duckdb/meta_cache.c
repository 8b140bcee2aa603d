/*
 * meta_cache.c - the in-memory catalog of each attached project's bucket and
 * table metadata.
 *
 * DESIGN
 * Table and bucket metadata is small and changes only through this backend's
 * own writes, yet reading it through SQL (a connection, the _ds tables,
 * pragma_table_info) costs a millisecond or more per request and grows with
 * the project. So each attached project keeps a copy in memory: its buckets
 * (_ds.buckets) and its tables (_ds.tables: key, times, the exact row count
 * every write stores, bytes measured after it) with their columns as DuckDB's catalog shows
 * them. table_get, table_list, bucket_get, bucket_list and project_stats
 * answer from it without touching DuckDB.
 *
 * The copy is:
 *   - loaded when the project's file is attached (in one read transaction, so
 *     it is one consistent state), and loaded again on demand whenever it was
 *     dropped (a failed refresh, a new file);
 *   - refreshed by every committed write: the statements that change
 *     metadata note the table or bucket they change (ddb_mcat_note_*), and
 *     ddb_in_txn, once the transaction committed and before the write
 *     returns, reads those entries again from the committed state
 *     (ddb_mcat_apply), measuring the bytes the write left unmeasured
 *     (DDB_BYTES_UNMEASURED: inside its transaction DuckDB's storage does not
 *     show its own rows). A rolled-back transaction notes nothing. So a
 *     write is acknowledged only after the copy shows it, and the copy never
 *     shows what was not committed;
 *   - dropped when the file is detached, and with the whole entry when the
 *     engine is reopened.
 * A refresh that fails drops the copy (the next read loads it again); a read
 * that cannot load it answers from SQL, as before the cache existed.
 *
 * Locks: `apply` serializes loads and refreshes of one project (each reads
 * the committed state afresh, so the last one to run leaves the newest
 * state); `lock` (a rwlock) guards the arrays and is held only to copy
 * entries in or out, never across a statement. Order: apply, then lock; the
 * backend's be->lock is never held with either. Callers hold a pin on the
 * project (and a db use), so it can neither be detached nor dropped while
 * they read or refresh.
 */
#include <duckdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "ddb.h"
#include "internal.h"

typedef struct {
    char *bucket;
    char *name;
    char **pk;
    size_t n_pk;
    int64_t created_at;
    int64_t last_import_at;
    int64_t last_change_at;
    int64_t rows;
    int64_t bytes;
    ds_be_column_t *columns; /* strings malloc'd */
    size_t n_columns;
} mc_table_t;

typedef struct {
    char *id;
    char *stage;
    char *name;
    char *description;
    int64_t created_at;
} mc_bucket_t;

struct ddb_mcat {
    pthread_mutex_t apply;
    pthread_rwlock_t lock;
    bool valid;
    mc_bucket_t **buckets; /* sorted by id (byte order, as the SQL lists them) */
    size_t n_buckets;
    mc_table_t **tables; /* sorted by bucket, then name, both ignoring case */
    size_t n_tables;
    int64_t rows, bytes; /* the sums over tables, kept with them: a project's stats read no table */
};

/* ---- entries ---- */

static void free_table(mc_table_t *t)
{
    if (!t)
        return;
    free(t->bucket);
    free(t->name);
    for (size_t i = 0; i < t->n_pk; i++)
        free(t->pk[i]);
    free(t->pk);
    for (size_t i = 0; i < t->n_columns; i++) {
        free((char *)t->columns[i].name);
        free((char *)t->columns[i].type);
        free((char *)t->columns[i].default_value);
    }
    free(t->columns);
    free(t);
}

static void free_bucket(mc_bucket_t *b)
{
    if (!b)
        return;
    free(b->id);
    free(b->stage);
    free(b->name);
    free(b->description);
    free(b);
}

static void free_arrays(mc_bucket_t **buckets, size_t nb, mc_table_t **tables, size_t nt)
{
    for (size_t i = 0; i < nb; i++)
        free_bucket(buckets[i]);
    free(buckets);
    for (size_t i = 0; i < nt; i++)
        free_table(tables[i]);
    free(tables);
}

static int table_cmp_names(const char *b1, const char *n1, const char *b2, const char *n2)
{
    int c = strcasecmp(b1, b2);
    return c ? c : strcasecmp(n1, n2);
}

static int table_cmp(const void *a, const void *b)
{
    const mc_table_t *x = *(mc_table_t *const *)a, *y = *(mc_table_t *const *)b;
    return table_cmp_names(x->bucket, x->name, y->bucket, y->name);
}

static int bucket_cmp(const void *a, const void *b)
{
    return strcmp((*(mc_bucket_t *const *)a)->id, (*(mc_bucket_t *const *)b)->id);
}

/* Index of the first table not ordered before (bucket, name). */
static size_t table_lower_bound(const ddb_mcat_t *mc, const char *bucket, const char *name)
{
    size_t lo = 0, hi = mc->n_tables;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table_cmp_names(mc->tables[mid]->bucket, mc->tables[mid]->name, bucket, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static mc_table_t *find_table(const ddb_mcat_t *mc, const char *bucket, const char *name, size_t *at)
{
    size_t i = table_lower_bound(mc, bucket, name);
    if (at)
        *at = i;
    if (i < mc->n_tables && table_cmp_names(mc->tables[i]->bucket, mc->tables[i]->name, bucket, name) == 0)
        return mc->tables[i];
    return NULL;
}

/*
 * The range [*from, *to) of the tables of bucket (its id compared ignoring
 * case). Both ends are binary searches: counting a bucket's tables (every
 * bucket list, every project's stats) must not walk 5,000 of them.
 */
static void bucket_range(const ddb_mcat_t *mc, const char *bucket, size_t *from, size_t *to)
{
    size_t lo = table_lower_bound(mc, bucket, ""), hi = mc->n_tables;
    *from = lo;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcasecmp(mc->tables[mid]->bucket, bucket) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *to = lo;
}

static mc_bucket_t *find_bucket(const ddb_mcat_t *mc, const char *id, size_t *at)
{
    for (size_t i = 0; i < mc->n_buckets; i++)
        if (strcasecmp(mc->buckets[i]->id, id) == 0) {
            if (at)
                *at = i;
            return mc->buckets[i];
        }
    return NULL;
}

/* Splits the stored comma list of a primary key; false on exhaustion. */
static bool split_key(const char *list, mc_table_t *t)
{
    t->pk = NULL;
    t->n_pk = 0;
    if (!list || !*list)
        return true;
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    if (!(t->pk = calloc(count, sizeof(char *))))
        return false;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            if (!(t->pk[t->n_pk] = strndup(p, len)))
                return false;
            t->n_pk++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return true;
}

/*
 * A default as DuckDB's catalog shows it ("CAST('x' AS T)", the way table
 * creation writes defaults) becomes the literal inside, unescaped; any other
 * expression stays as it is. Same rule as the SQL answers (malloc'd).
 */
static char *default_text(const char *expr)
{
    size_t n = strlen(expr);
    if (strncmp(expr, "CAST('", 6) != 0)
        return strdup(expr);
    char *out = calloc(1, n);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = expr + 6; *p; p++) {
        if (*p == '\'') {
            if (p[1] != '\'')
                return out;
            p++;
        }
        out[o++] = *p;
    }
    free(out);
    return strdup(expr);
}

/* A table entry from row i of a _ds.tables select (bucket, name, key, 3 times, rows, bytes); NULL on exhaustion. */
static mc_table_t *table_from_row(duckdb_result *r, idx_t i)
{
    mc_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    char *pk = ds_ddb_cell(r, 2, i);
    t->bucket = ds_ddb_cell(r, 0, i);
    t->name = ds_ddb_cell(r, 1, i);
    bool ok = t->bucket && t->name && split_key(pk, t);
    free(pk);
    if (!ok) {
        free_table(t);
        return NULL;
    }
    t->created_at = ds_ddb_int(r, 3, i);
    t->last_import_at = ds_ddb_int(r, 4, i);
    t->last_change_at = ds_ddb_int(r, 5, i);
    t->rows = ds_ddb_int(r, 6, i);
    t->bytes = ds_ddb_int(r, 7, i);
    return t;
}

/* Fills column j of t from result row i, whose columns from `first` are name, type, nullable, default. */
static bool column_from_row(duckdb_result *r, idx_t i, idx_t first, ds_be_column_t *c)
{
    char *nullable = ds_ddb_cell(r, first + 2, i), *dflt = ds_ddb_cell(r, first + 3, i);
    c->name = ds_ddb_cell(r, first, i);
    c->type = ds_ddb_cell(r, first + 1, i);
    c->nullable = nullable && strcmp(nullable, "true") == 0;
    c->default_value = dflt ? default_text(dflt) : NULL;
    bool ok = c->name && c->type && (!dflt || c->default_value);
    free(nullable);
    free(dflt);
    return ok;
}

#define TABLES_SELECT                                                                                                  \
    "SELECT bucket, name, primary_key, created_at, last_import_at, last_change_at, row_count, byte_count FROM "

/* ---- loading ---- */

/*
 * Reads the project's whole metadata on c (any default database: every name
 * is qualified with the project's alias) in one transaction. On success the
 * arrays (sorted) go to the out-parameters, owned by the caller.
 */
static ds_status_t read_all(duckdb_connection c, const char *alias, mc_bucket_t ***bo, size_t *nbo, mc_table_t ***to,
                            size_t *nto, ds_err_t *err)
{
    ds_buf_t q = {0};
    duckdb_result r;
    mc_bucket_t **buckets = NULL;
    mc_table_t **tables = NULL;
    size_t nb = 0, nt = 0;
    bool in_txn = false;
    ds_status_t st = ds_ddb_exec(c, err, "BEGIN TRANSACTION");
    in_txn = st == DS_OK;
    if (st == DS_OK) {
        ds_buf_puts(&q, "SELECT id, stage, name, description, created_at FROM ");
        ds_buf_ident(&q, alias);
        ds_buf_puts(&q, "." META ".buckets");
        st = ds_ddb_run(c, err, &r, ds_buf_cstr(&q), 0, NULL);
        ds_buf_free(&q);
    }
    if (st == DS_OK) {
        idx_t n = duckdb_row_count(&r);
        bool ok = (buckets = calloc(n ? n : 1, sizeof(*buckets))) != NULL;
        for (idx_t i = 0; ok && i < n; i++) {
            mc_bucket_t *b = calloc(1, sizeof(*b));
            if (!(ok = b != NULL))
                break;
            buckets[nb++] = b;
            b->id = ds_ddb_cell(&r, 0, i);
            b->stage = ds_ddb_cell(&r, 1, i);
            b->name = ds_ddb_cell(&r, 2, i);
            b->description = ds_ddb_cell(&r, 3, i);
            b->created_at = ds_ddb_int(&r, 4, i);
            ok = b->id && b->stage && b->name && (b->description || duckdb_value_is_null(&r, 3, i));
        }
        if (!ok)
            st = ddb_oom(err);
        duckdb_destroy_result(&r);
    }
    if (st == DS_OK) {
        ds_buf_puts(&q, TABLES_SELECT);
        ds_buf_ident(&q, alias);
        ds_buf_puts(&q, "." META ".tables");
        st = ds_ddb_run(c, err, &r, ds_buf_cstr(&q), 0, NULL);
        ds_buf_free(&q);
    }
    if (st == DS_OK) {
        idx_t n = duckdb_row_count(&r);
        tables = calloc(n ? n : 1, sizeof(*tables));
        for (idx_t i = 0; tables && i < n; i++) {
            if (!(tables[nt] = table_from_row(&r, i)))
                break;
            nt++;
        }
        if (!tables || nt != n)
            st = ddb_oom(err);
        duckdb_destroy_result(&r);
    }
    /* Bytes that writes left unmeasured since the file was last detached (or before a crash). */
    for (size_t i = 0; i < nt && st == DS_OK; i++)
        st = ddb_bytes_known(c, alias, tables[i]->bucket, tables[i]->name, &tables[i]->bytes, err);
    if (st == DS_OK) {
        qsort(tables, nt, sizeof(*tables), table_cmp);
        qsort(buckets, nb, sizeof(*buckets), bucket_cmp);
        const char *params[] = {alias};
        st = ds_ddb_run(c, err, &r,
                        "SELECT schema_name, table_name, column_name, data_type, is_nullable, column_default "
                        "FROM duckdb_columns() WHERE database_name = $1 AND schema_name <> '" META "' "
                        "AND column_name <> '_timestamp' ORDER BY schema_name, table_name, column_index",
                        1, params);
    }
    if (st == DS_OK) {
        idx_t n = duckdb_row_count(&r), i = 0;
        ddb_mcat_t view = {.tables = tables, .n_tables = nt};
        while (i < n && st == DS_OK) {
            char *s = ds_ddb_cell(&r, 0, i), *tn = ds_ddb_cell(&r, 1, i);
            idx_t end = i + 1;
            while (s && tn && end < n) {
                char *s2 = ds_ddb_cell(&r, 0, end), *t2 = ds_ddb_cell(&r, 1, end);
                bool same = s2 && t2 && strcmp(s, s2) == 0 && strcmp(tn, t2) == 0;
                free(s2);
                free(t2);
                if (!same)
                    break;
                end++;
            }
            mc_table_t *t = s && tn ? find_table(&view, s, tn, NULL) : NULL;
            if (!s || !tn) {
                st = ddb_oom(err);
            } else if (t && strcmp(t->bucket, s) == 0 && strcmp(t->name, tn) == 0) {
                /* Only a table its metadata lists, under the very names it lists (as the SQL answers join). */
                t->columns = calloc(end - i, sizeof(ds_be_column_t));
                if (!t->columns)
                    st = ddb_oom(err);
                for (idx_t k = i; k < end && st == DS_OK; k++) {
                    t->n_columns++;
                    if (!column_from_row(&r, k, 2, &t->columns[k - i]))
                        st = ddb_oom(err);
                }
            }
            free(s);
            free(tn);
            i = end;
        }
        duckdb_destroy_result(&r);
    }
    if (in_txn) {
        ds_err_t ignored = {0};
        ds_ddb_exec(c, &ignored, "COMMIT");
    }
    if (st != DS_OK) {
        free_arrays(buckets, nb, tables, nt);
        return st;
    }
    *bo = buckets;
    *nbo = nb;
    *to = tables;
    *nto = nt;
    return DS_OK;
}

/* Replaces mc's content (or drops it, when valid is false). Caller holds mc->apply. */
static void install(ddb_mcat_t *mc, bool valid, mc_bucket_t **buckets, size_t nb, mc_table_t **tables, size_t nt)
{
    pthread_rwlock_wrlock(&mc->lock);
    mc_bucket_t **ob = mc->buckets;
    mc_table_t **ot = mc->tables;
    size_t onb = mc->n_buckets, ont = mc->n_tables;
    mc->buckets = buckets;
    mc->n_buckets = nb;
    mc->tables = tables;
    mc->n_tables = nt;
    mc->rows = mc->bytes = 0;
    for (size_t i = 0; i < nt; i++) {
        mc->rows += tables[i]->rows;
        mc->bytes += tables[i]->bytes;
    }
    mc->valid = valid;
    pthread_rwlock_unlock(&mc->lock);
    free_arrays(ob, onb, ot, ont);
}

/* Loads p's copy afresh on c. Caller holds mc->apply. */
static ds_status_t load_locked(be_t *be, proj_t *p, duckdb_connection c, ds_err_t *err)
{
    mc_bucket_t **b = NULL;
    mc_table_t **t = NULL;
    size_t nb = 0, nt = 0;
    ds_status_t st = read_all(c, p->alias, &b, &nb, &t, &nt, err);
    if (st == DS_OK)
        install(p->mcat, true, b, nb, t, nt);
    else
        install(p->mcat, false, NULL, 0, NULL, 0);
    (void)be;
    return st;
}

ddb_mcat_t *ddb_mcat_create(void)
{
    ddb_mcat_t *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    pthread_mutex_init(&mc->apply, NULL);
    pthread_rwlock_init(&mc->lock, NULL);
    return mc;
}

void ddb_mcat_destroy(ddb_mcat_t **mcp)
{
    ddb_mcat_t *mc = mcp ? *mcp : NULL;
    if (!mc)
        return;
    free_arrays(mc->buckets, mc->n_buckets, mc->tables, mc->n_tables);
    pthread_mutex_destroy(&mc->apply);
    pthread_rwlock_destroy(&mc->lock);
    free(mc);
    *mcp = NULL;
}

void ddb_mcat_drop(ddb_mcat_t *mc)
{
    if (!mc)
        return;
    pthread_mutex_lock(&mc->apply);
    install(mc, false, NULL, 0, NULL, 0);
    pthread_mutex_unlock(&mc->apply);
}

void ddb_mcat_load(be_t *be, proj_t *p)
{
    duckdb_connection c;
    ds_err_t err = {0};
    if (duckdb_connect(be->db, &c) == DuckDBError)
        return;
    /* The file was (re)attached: what a preview cached before says nothing about it. */
    ddb_data_changed(be, p);
    pthread_mutex_lock(&p->mcat->apply);
    if (load_locked(be, p, c, &err) != DS_OK)
        be->host->log(0, "duckdb", "project %s: metadata not cached at attach: %s", p->id, err.message);
    pthread_mutex_unlock(&p->mcat->apply);
    duckdb_disconnect(&c);
}

/* ---- refreshing after a commit ---- */

static void note(use_t *u, const char *bucket, const char *table)
{
    if (u->mc_all)
        return;
    if (strlen(bucket) >= sizeof(u->mc_note[0].bucket) || strlen(table) >= sizeof(u->mc_note[0].table) ||
        u->n_mc >= DDB_MC_NOTES) {
        u->mc_all = true; /* more than a note can say: the whole copy is read again */
        return;
    }
    for (int i = 0; i < u->n_mc; i++)
        if (strcasecmp(u->mc_note[i].bucket, bucket) == 0 && strcasecmp(u->mc_note[i].table, table) == 0)
            return;
    snprintf(u->mc_note[u->n_mc].bucket, sizeof(u->mc_note[0].bucket), "%s", bucket);
    snprintf(u->mc_note[u->n_mc].table, sizeof(u->mc_note[0].table), "%s", table);
    u->n_mc++;
}

void ddb_mcat_note_table(use_t *u, const char *bucket, const char *table)
{
    if (bucket && table && *table)
        note(u, bucket, table);
    else
        u->mc_all = true;
}

void ddb_mcat_note_bucket(use_t *u, const char *bucket)
{
    if (bucket)
        note(u, bucket, "");
    else
        u->mc_all = true;
}

void ddb_mcat_note_all(use_t *u) { u->mc_all = true; }

void ddb_mcat_notes_clear(use_t *u)
{
    u->n_mc = 0;
    u->mc_all = false;
}

/* Reads bucket.table's committed metadata and columns into *out (NULL: no such table). */
static ds_status_t read_table(use_t *u, const char *bucket, const char *table, mc_table_t **out, ds_err_t *err)
{
    duckdb_result r;
    const char *key[] = {bucket, table};
    *out = NULL;
    ds_status_t st = ds_ddb_run(u->conn, err, &r,
                                TABLES_SELECT META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)",
                                2, key);
    if (st != DS_OK)
        return st;
    mc_table_t *t = NULL;
    if (duckdb_row_count(&r) > 0 && !(t = table_from_row(&r, 0)))
        st = ddb_oom(err);
    duckdb_destroy_result(&r);
    if (st != DS_OK || !t)
        return st;
    /* A write leaves its bytes unmeasured: they are measured now that it committed. */
    if ((st = ddb_bytes_known(u->conn, u->p->alias, t->bucket, t->name, &t->bytes, err)) != DS_OK) {
        free_table(t);
        return st;
    }
    ds_buf_t name = {0}, sql = {0};
    ds_buf_ident(&name, u->p->alias);
    ds_buf_puts(&name, ".");
    ds_buf_ident(&name, t->bucket);
    ds_buf_puts(&name, ".");
    ds_buf_ident(&name, t->name);
    ds_buf_puts(&sql, "SELECT name, type, CASE WHEN \"notnull\" THEN 'false' ELSE 'true' END, dflt_value "
                      "FROM pragma_table_info(");
    ds_buf_literal(&sql, ds_buf_cstr(&name));
    ds_buf_puts(&sql, ") WHERE name <> '_timestamp' ORDER BY cid");
    st = ds_ddb_run(u->conn, err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&name);
    ds_buf_free(&sql);
    if (st == DS_OK) {
        idx_t n = duckdb_row_count(&r);
        t->columns = calloc(n ? n : 1, sizeof(ds_be_column_t));
        if (!t->columns)
            st = ddb_oom(err);
        for (idx_t i = 0; i < n && st == DS_OK; i++) {
            t->n_columns++;
            if (!column_from_row(&r, i, 0, &t->columns[i]))
                st = ddb_oom(err);
        }
        duckdb_destroy_result(&r);
    }
    if (st != DS_OK) {
        free_table(t);
        return st;
    }
    *out = t;
    return DS_OK;
}

/* Reads bucket id's committed row into *out (NULL: no such bucket). */
static ds_status_t read_bucket(use_t *u, const char *id, mc_bucket_t **out, ds_err_t *err)
{
    duckdb_result r;
    const char *params[] = {id};
    *out = NULL;
    ds_status_t st = ds_ddb_run(u->conn, err, &r,
                                "SELECT id, stage, name, description, created_at FROM " META
                                ".buckets WHERE lower(id) = lower($1)",
                                1, params);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) > 0) {
        mc_bucket_t *b = calloc(1, sizeof(*b));
        if (b) {
            b->id = ds_ddb_cell(&r, 0, 0);
            b->stage = ds_ddb_cell(&r, 1, 0);
            b->name = ds_ddb_cell(&r, 2, 0);
            b->description = ds_ddb_cell(&r, 3, 0);
            b->created_at = ds_ddb_int(&r, 4, 0);
        }
        if (!b || !b->id || !b->stage || !b->name || (!b->description && !duckdb_value_is_null(&r, 3, 0))) {
            free_bucket(b);
            st = ddb_oom(err);
        } else {
            *out = b;
        }
    }
    duckdb_destroy_result(&r);
    return st;
}

/* Puts t in place of the entry for (bucket, table), or removes it when t is NULL. Caller holds mc->apply. */
static bool replace_table(ddb_mcat_t *mc, const char *bucket, const char *table, mc_table_t *t)
{
    mc_table_t *old = NULL;
    bool ok = true;
    pthread_rwlock_wrlock(&mc->lock);
    size_t at;
    mc_table_t *cur = find_table(mc, bucket, table, &at);
    if (cur) {
        mc->rows -= cur->rows;
        mc->bytes -= cur->bytes;
    }
    if (t) {
        mc->rows += t->rows;
        mc->bytes += t->bytes;
    }
    if (cur && t) {
        old = cur;
        mc->tables[at] = t;
    } else if (cur) {
        old = cur;
        memmove(&mc->tables[at], &mc->tables[at + 1], (mc->n_tables - at - 1) * sizeof(*mc->tables));
        mc->n_tables--;
    } else if (t) {
        mc_table_t **grown = realloc(mc->tables, (mc->n_tables + 1) * sizeof(*mc->tables));
        if (grown) {
            mc->tables = grown;
            memmove(&mc->tables[at + 1], &mc->tables[at], (mc->n_tables - at) * sizeof(*mc->tables));
            mc->tables[at] = t;
            mc->n_tables++;
        } else {
            mc->rows -= t->rows;
            mc->bytes -= t->bytes;
            old = t;
            ok = false;
        }
    }
    pthread_rwlock_unlock(&mc->lock);
    free_table(old);
    return ok;
}

/* Puts b in place of bucket id's entry, or removes it and its tables when b is NULL. Caller holds mc->apply. */
static bool replace_bucket(ddb_mcat_t *mc, const char *id, mc_bucket_t *b)
{
    mc_bucket_t *old = NULL;
    mc_table_t **gone = NULL;
    size_t n_gone = 0;
    bool ok = true;
    pthread_rwlock_wrlock(&mc->lock);
    size_t at;
    mc_bucket_t *cur = find_bucket(mc, id, &at);
    if (cur) {
        old = cur;
        memmove(&mc->buckets[at], &mc->buckets[at + 1], (mc->n_buckets - at - 1) * sizeof(*mc->buckets));
        mc->n_buckets--;
    }
    if (b) {
        mc_bucket_t **grown = realloc(mc->buckets, (mc->n_buckets + 1) * sizeof(*mc->buckets));
        if (grown) {
            mc->buckets = grown;
            size_t i = 0;
            while (i < mc->n_buckets && strcmp(mc->buckets[i]->id, b->id) < 0)
                i++;
            memmove(&mc->buckets[i + 1], &mc->buckets[i], (mc->n_buckets - i) * sizeof(*mc->buckets));
            mc->buckets[i] = b;
            mc->n_buckets++;
        } else {
            ok = false;
            free_bucket(b);
        }
    } else {
        /* A bucket that is gone took its tables with it. */
        size_t from, to;
        bucket_range(mc, id, &from, &to);
        n_gone = to - from;
        if (n_gone && (gone = malloc(n_gone * sizeof(*gone)))) {
            memcpy(gone, &mc->tables[from], n_gone * sizeof(*gone));
            for (size_t i = 0; i < n_gone; i++) {
                mc->rows -= gone[i]->rows;
                mc->bytes -= gone[i]->bytes;
            }
            memmove(&mc->tables[from], &mc->tables[to], (mc->n_tables - to) * sizeof(*mc->tables));
            mc->n_tables -= n_gone;
        } else if (n_gone) {
            ok = false;
            n_gone = 0;
        }
    }
    pthread_rwlock_unlock(&mc->lock);
    free_bucket(old);
    for (size_t i = 0; i < n_gone; i++)
        free_table(gone[i]);
    free(gone);
    return ok;
}

void ddb_mcat_apply(use_t *u)
{
    ddb_mcat_t *mc = u->p ? u->p->mcat : NULL;
    if (!mc || (!u->n_mc && !u->mc_all))
        return;
    ds_err_t err = {0};
    ds_status_t st = DS_OK;
    pthread_mutex_lock(&mc->apply);
    pthread_rwlock_rdlock(&mc->lock);
    bool valid = mc->valid;
    pthread_rwlock_unlock(&mc->lock);
    if (!valid) {
        /* Nothing to keep up to date: the next read loads the committed state. */
    } else if (u->mc_all) {
        st = load_locked(u->be, u->p, u->conn, &err);
    } else {
        for (int i = 0; i < u->n_mc && st == DS_OK; i++) {
            const char *b = u->mc_note[i].bucket, *t = u->mc_note[i].table;
            if (*t) {
                mc_table_t *e;
                if ((st = read_table(u, b, t, &e, &err)) == DS_OK && !replace_table(mc, b, t, e))
                    st = ddb_oom(&err);
            } else {
                mc_bucket_t *e;
                if ((st = read_bucket(u, b, &e, &err)) == DS_OK && !replace_bucket(mc, b, e))
                    st = ddb_oom(&err);
            }
        }
        if (st != DS_OK)
            install(mc, false, NULL, 0, NULL, 0);
    }
    pthread_mutex_unlock(&mc->apply);
    if (st != DS_OK)
        u->be->host->log(2, "duckdb", "project %s: metadata cache dropped after a write (it is read again on the next "
                                      "request): %s",
                         u->p->id, err.message);
    ddb_mcat_notes_clear(u);
}

/* ---- reading ---- */

/*
 * Takes mc->lock for reading when the copy can answer, loading it first when
 * it was dropped. False: answer from SQL (nothing held).
 */
static bool read_begin(be_t *be, proj_t *p)
{
    ddb_mcat_t *mc = p->mcat;
    pthread_rwlock_rdlock(&mc->lock);
    if (mc->valid)
        return true;
    pthread_rwlock_unlock(&mc->lock);
    pthread_mutex_lock(&mc->apply);
    pthread_rwlock_rdlock(&mc->lock);
    bool valid = mc->valid;
    pthread_rwlock_unlock(&mc->lock);
    if (!valid) {
        duckdb_connection c;
        ds_err_t err = {0};
        if (duckdb_connect(be->db, &c) == DuckDBSuccess) {
            load_locked(be, p, c, &err);
            duckdb_disconnect(&c);
        }
    }
    pthread_mutex_unlock(&mc->apply);
    pthread_rwlock_rdlock(&mc->lock);
    if (mc->valid)
        return true;
    pthread_rwlock_unlock(&mc->lock);
    return false;
}

static void read_end(proj_t *p) { pthread_rwlock_unlock(&p->mcat->lock); }

bool ddb_mcat_counts(proj_t *p, const char *bucket, const char *table, int64_t *rows, int64_t *bytes)
{
    ddb_mcat_t *mc = p->mcat;
    pthread_rwlock_rdlock(&mc->lock);
    const mc_table_t *t = mc->valid ? find_table(mc, bucket, table, NULL) : NULL;
    if (t) {
        *rows = t->rows;
        *bytes = t->bytes;
    }
    pthread_rwlock_unlock(&mc->lock);
    return t != NULL;
}

/* Copies s (with its NUL) to *o and advances *o; the copy. */
static const char *put_str(char **o, const char *s, size_t n)
{
    char *d = *o;
    memcpy(d, s, n + 1);
    *o += n + 1;
    return d;
}

/*
 * Copies s into t in ONE allocation of the call's arena: the column array,
 * the key's pointers and every string, in that order (the arena aligns the
 * block, and both arrays hold pointers, so each part stays aligned). A list
 * of 5,000 tables copied field by field made 20 allocations per table.
 */
static bool copy_table(const ds_host_api_t *h, ds_be_call_t *call, const mc_table_t *s, ds_be_table_t *t)
{
    memset(t, 0, sizeof(*t));
    size_t lb = strlen(s->bucket), ln = strlen(s->name);
    size_t size = sizeof(ds_be_column_t) * (s->n_columns ? s->n_columns : 1) + sizeof(char *) * s->n_pk + lb + ln + 2;
    for (size_t i = 0; i < s->n_pk; i++)
        size += strlen(s->pk[i]) + 1;
    for (size_t i = 0; i < s->n_columns; i++) {
        const ds_be_column_t *c = &s->columns[i];
        size += strlen(c->name) + strlen(c->type) + 2 + (c->default_value ? strlen(c->default_value) + 1 : 0);
    }
    char *block = h->alloc(call, size);
    if (!block)
        return false;
    ds_be_column_t *cols = (ds_be_column_t *)block;
    const char **pk = (const char **)(block + sizeof(ds_be_column_t) * (s->n_columns ? s->n_columns : 1));
    char *o = (char *)(pk + s->n_pk);
    t->bucket = put_str(&o, s->bucket, lb);
    t->name = put_str(&o, s->name, ln);
    t->rows = s->rows;
    t->bytes = s->bytes;
    t->created_at = s->created_at;
    t->last_import_at = s->last_import_at;
    t->last_change_at = s->last_change_at;
    for (size_t i = 0; i < s->n_pk; i++)
        pk[i] = put_str(&o, s->pk[i], strlen(s->pk[i]));
    if (s->n_pk) {
        t->primary_key = pk;
        t->n_primary_key = s->n_pk;
    }
    for (size_t i = 0; i < s->n_columns; i++) {
        const ds_be_column_t *c = &s->columns[i];
        cols[i].name = put_str(&o, c->name, strlen(c->name));
        cols[i].type = put_str(&o, c->type, strlen(c->type));
        cols[i].nullable = c->nullable;
        cols[i].default_value = c->default_value ? put_str(&o, c->default_value, strlen(c->default_value)) : NULL;
    }
    t->columns = cols;
    t->n_columns = s->n_columns;
    return true;
}

static void copy_bucket(const ds_host_api_t *h, ds_be_call_t *call, const ddb_mcat_t *mc, const mc_bucket_t *s,
                        ds_be_bucket_t *b, bool *ok)
{
    size_t from, to;
    b->id = h->strdup(call, s->id);
    b->stage = h->strdup(call, s->stage);
    b->name = h->strdup(call, s->name);
    b->description = s->description ? h->strdup(call, s->description) : NULL;
    b->created_at = s->created_at;
    bucket_range(mc, s->id, &from, &to);
    b->table_count = (int64_t)(to - from);
    if (!b->id || !b->stage || !b->name || (s->description && !b->description))
        *ok = false;
}

bool ddb_mcat_table_get(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, const char *table,
                        ds_be_table_t *out, ds_status_t *st)
{
    if (!read_begin(be, p))
        return false;
    const mc_table_t *t = find_table(p->mcat, bucket, table, NULL);
    bool ok = !t || copy_table(be->host, call, t, out);
    read_end(p);
    if (!t)
        *st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found", bucket, table);
    else
        *st = ok ? DS_OK : ddb_oom(call->err);
    return true;
}

static int out_table_cmp(const void *a, const void *b)
{
    return strcmp(((const ds_be_table_t *)a)->name, ((const ds_be_table_t *)b)->name);
}

bool ddb_mcat_table_list(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, ds_be_table_t **items,
                         size_t *n, ds_status_t *st)
{
    if (!read_begin(be, p))
        return false;
    ddb_mcat_t *mc = p->mcat;
    *items = NULL;
    *n = 0;
    if (!find_bucket(mc, bucket, NULL)) {
        read_end(p);
        *st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", bucket);
        return true;
    }
    size_t from, to;
    bucket_range(mc, bucket, &from, &to);
    ds_be_table_t *out = be->host->alloc(call, sizeof(ds_be_table_t) * (to > from ? to - from : 1));
    bool ok = out != NULL;
    for (size_t i = from; ok && i < to; i++)
        ok = copy_table(be->host, call, mc->tables[i], &out[i - from]);
    read_end(p);
    if (!ok) {
        *st = ddb_oom(call->err);
        return true;
    }
    /*
     * As the SQL answer orders them: by name, byte order. The copy keeps
     * them ignoring case, which is the same order unless names differ in case
     * only where it matters; a merge sort would compare all of them anyway.
     */
    size_t count = to - from;
    for (size_t i = 1; i < count; i++)
        if (out_table_cmp(&out[i - 1], &out[i]) > 0) {
            qsort(out, count, sizeof(*out), out_table_cmp);
            break;
        }
    *items = out;
    *n = to - from;
    *st = DS_OK;
    return true;
}

bool ddb_mcat_bucket_get(be_t *be, proj_t *p, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out,
                         ds_status_t *st)
{
    if (!read_begin(be, p))
        return false;
    const mc_bucket_t *b = find_bucket(p->mcat, bucket, NULL);
    bool ok = true;
    if (b)
        copy_bucket(be->host, call, p->mcat, b, out, &ok);
    read_end(p);
    if (!b)
        *st = ds_err_setk(call->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", bucket);
    else
        *st = ok ? DS_OK : ddb_oom(call->err);
    return true;
}

bool ddb_mcat_bucket_list(be_t *be, proj_t *p, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n,
                          ds_status_t *st)
{
    if (!read_begin(be, p))
        return false;
    ddb_mcat_t *mc = p->mcat;
    ds_be_bucket_t *out = be->host->alloc(call, sizeof(ds_be_bucket_t) * (mc->n_buckets ? mc->n_buckets : 1));
    bool ok = out != NULL;
    size_t count = mc->n_buckets;
    for (size_t i = 0; ok && i < count; i++)
        copy_bucket(be->host, call, mc, mc->buckets[i], &out[i], &ok);
    read_end(p);
    *items = ok ? out : NULL;
    *n = ok ? count : 0;
    *st = ok ? DS_OK : ddb_oom(call->err);
    return true;
}

bool ddb_mcat_project_stats(be_t *be, proj_t *p, ds_be_project_stats_t *out)
{
    if (!read_begin(be, p))
        return false;
    ddb_mcat_t *mc = p->mcat;
    out->buckets = (int64_t)mc->n_buckets;
    out->tables = (int64_t)mc->n_tables;
    out->rows = mc->rows;
    out->bytes = mc->bytes;
    read_end(p);
    return true;
}
