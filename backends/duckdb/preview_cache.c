/*
 * preview_cache.c - recent table previews, kept in memory until the project's
 * data changes.
 *
 * DESIGN
 * A preview (the first rows of a table, maybe filtered, ordered, some
 * columns) is the request dashboards and people poll, and each one costs a
 * DuckDB connection and a query: about 2 ms of CPU, against the 0.05 ms an
 * answer from memory costs. The data changes only through this backend's own
 * calls, so an answer stays right until the next of them.
 *
 * Validity: every project entry carries a data epoch (proj_t.data_epoch). Any
 * call that may have changed the project (every db use not marked read-only)
 * gives it a new one when it ends, before the call returns, so before a write
 * is acknowledged; attaching the file again does the same. Epochs come from
 * one backend-wide counter, so a project dropped and created again under the
 * same id never meets its predecessor's entries. An entry answers only while
 * its epoch is the project's current one; it is stored only when the epoch
 * read before its query ran is still current afterwards, so a query that ran
 * beside a write never caches rows the write replaced once the write has
 * returned. A write's rows become visible at its COMMIT, a little before its
 * epoch changes: a preview in that gap may still see the earlier rows, as it
 * would had it started a moment sooner; the write is not acknowledged yet.
 *
 * Keys hold the project id and everything the preview's rows depend on
 * (bucket, table, columns, order, filters, limit), length-prefixed so no two
 * requests share one. The rows are kept as one block (pointer arrays, then
 * the strings) that a hit copies into the call's arena with one memcpy and a
 * relocation of its pointers.
 *
 * Memory: at most max_bytes (DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE, default
 * 64MiB, 0 turns it off) of entries, least recently used evicted first; a
 * single preview larger than an eighth of it is not kept. A project's entries
 * are freed when its file is detached: attaching it again gives it a new
 * epoch, so they could never answer again. One mutex guards it
 * (held only to find, copy or link an entry, never across a query).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "internal.h"

typedef struct pc_entry {
    struct pc_entry *hnext;      /* hash chain */
    struct pc_entry *prev, *nxt; /* recency list: head is the most recent */
    uint64_t hash;
    uint64_t epoch;
    char *key;
    size_t key_len;
    char *blk; /* pointers (columns, types, rows, cells), then strings */
    size_t blk_len;
    size_t n_columns, n_rows;
} pc_entry_t;

struct ddb_pcache {
    pthread_mutex_t lock;
    pc_entry_t **slots;
    size_t n_slots; /* a power of two */
    size_t n_entries;
    pc_entry_t *head, *tail;
    size_t bytes, max_bytes;
    uint64_t hits, misses;
};

#define PC_SLOTS 1024

ddb_pcache_t *ddb_pcache_create(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    ddb_pcache_t *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return NULL;
    pc->slots = calloc(PC_SLOTS, sizeof(*pc->slots));
    if (!pc->slots) {
        free(pc);
        return NULL;
    }
    pc->n_slots = PC_SLOTS;
    pc->max_bytes = max_bytes;
    pthread_mutex_init(&pc->lock, NULL);
    return pc;
}

static size_t entry_size(const pc_entry_t *e) { return sizeof(*e) + e->key_len + e->blk_len; }

static void entry_free(pc_entry_t *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->blk);
    free(e);
}

void ddb_pcache_destroy(ddb_pcache_t **pcp)
{
    ddb_pcache_t *pc = pcp ? *pcp : NULL;
    if (!pc)
        return;
    for (pc_entry_t *e = pc->head, *n; e; e = n) {
        n = e->nxt;
        entry_free(e);
    }
    free(pc->slots);
    pthread_mutex_destroy(&pc->lock);
    free(pc);
    *pcp = NULL;
}

/* FNV-1a, 64 bits: keys are short and hashed once per request. */
static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Unlinks e from its chain and the recency list. Caller holds the lock. */
static void unlink_entry(ddb_pcache_t *pc, pc_entry_t *e)
{
    pc_entry_t **pp = &pc->slots[e->hash & (pc->n_slots - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    if (e->prev)
        e->prev->nxt = e->nxt;
    else
        pc->head = e->nxt;
    if (e->nxt)
        e->nxt->prev = e->prev;
    else
        pc->tail = e->prev;
    pc->bytes -= entry_size(e);
    pc->n_entries--;
}

static void push_front(ddb_pcache_t *pc, pc_entry_t *e)
{
    e->prev = NULL;
    e->nxt = pc->head;
    if (pc->head)
        pc->head->prev = e;
    pc->head = e;
    if (!pc->tail)
        pc->tail = e;
}

static pc_entry_t *find(ddb_pcache_t *pc, const char *key, size_t key_len, uint64_t hash)
{
    for (pc_entry_t *e = pc->slots[hash & (pc->n_slots - 1)]; e; e = e->hnext)
        if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    return NULL;
}

/* ---- keys ---- */

static void put_part(ds_buf_t *b, const char *s)
{
    /* A NULL part and an empty one differ: a NULL is 0xff, which no length's first byte is. */
    if (!s) {
        ds_buf_append(b, "\xff", 1);
        return;
    }
    ds_buf_printf(b, "%zu:", strlen(s));
    ds_buf_puts(b, s);
}

static void put_num(ds_buf_t *b, int64_t v) { ds_buf_printf(b, "%lld;", (long long)v); }

void ddb_pcache_key(ds_buf_t *b, const char *project, const char *bucket, const char *table, const ds_preview_t *in)
{
    put_part(b, project);
    put_part(b, bucket);
    put_part(b, table);
    put_num(b, (int64_t)in->n_columns);
    for (size_t i = 0; i < in->n_columns; i++)
        put_part(b, in->columns[i]);
    put_num(b, (int64_t)in->n_order);
    for (size_t i = 0; i < in->n_order; i++) {
        put_part(b, in->order[i].column);
        put_num(b, in->order[i].desc);
        put_part(b, in->order[i].data_type);
    }
    put_num(b, in->limit);
    const ds_where_t *w = &in->where;
    put_num(b, (int64_t)w->n_filters);
    for (size_t i = 0; i < w->n_filters; i++) {
        const ds_filter_t *f = &w->filters[i];
        put_part(b, f->column);
        put_num(b, f->op);
        put_part(b, f->data_type);
        put_num(b, (int64_t)f->n_values);
        for (size_t v = 0; v < f->n_values; v++)
            put_part(b, f->values[v]);
    }
    put_part(b, w->changed_since);
    put_part(b, w->changed_until);
    put_part(b, w->in_column);
    put_part(b, w->in_bucket);
    put_part(b, w->in_table);
    put_part(b, w->in_ref_column);
    put_num(b, w->in_negate);
}

/* ---- the rows as one block ---- */

static size_t n_pointers(size_t nc, size_t nr) { return 2 * nc + nr + nr * nc; }

/* Packs r into one malloc'd block whose pointers point into itself; NULL on allocation failure. */
static char *pack(const ds_preview_result_t *r, size_t *len)
{
    size_t nc = r->n_columns, nr = r->n_rows;
    size_t np = n_pointers(nc, nr), strs = 0;
    for (size_t c = 0; c < nc; c++)
        strs += strlen(r->columns[c]) + 1 + strlen(r->types[c]) + 1;
    for (size_t i = 0; i < nr; i++)
        for (size_t c = 0; c < nc; c++)
            strs += r->rows[i][c] ? strlen(r->rows[i][c]) + 1 : 0;
    size_t total = np * sizeof(char *) + strs;
    char *blk = malloc(total ? total : 1);
    if (!blk)
        return NULL;
    char **ptr = (char **)blk;
    char *o = blk + np * sizeof(char *);
    char **cols = ptr, **types = ptr + nc, **rows = ptr + 2 * nc, **cells = ptr + 2 * nc + nr;
    for (size_t c = 0; c < nc; c++) {
        size_t n = strlen(r->columns[c]) + 1;
        cols[c] = memcpy(o, r->columns[c], n);
        o += n;
        n = strlen(r->types[c]) + 1;
        types[c] = memcpy(o, r->types[c], n);
        o += n;
    }
    for (size_t i = 0; i < nr; i++) {
        rows[i] = (char *)&cells[i * nc];
        for (size_t c = 0; c < nc; c++) {
            const char *v = r->rows[i][c];
            if (!v) {
                cells[i * nc + c] = NULL;
                continue;
            }
            size_t n = strlen(v) + 1;
            cells[i * nc + c] = memcpy(o, v, n);
            o += n;
        }
    }
    *len = total;
    return blk;
}

/* Copies e's block into the call's arena, relocating its pointers, and points out at it. */
static bool unpack(const ds_host_api_t *h, ds_be_call_t *call, const pc_entry_t *e, ds_preview_result_t *out)
{
    char *blk = h->alloc(call, e->blk_len ? e->blk_len : 1);
    if (!blk)
        return false;
    memcpy(blk, e->blk, e->blk_len);
    size_t nc = e->n_columns, nr = e->n_rows;
    char **ptr = (char **)blk;
    for (size_t i = 0, np = n_pointers(nc, nr); i < np; i++)
        if (ptr[i])
            ptr[i] = blk + (ptr[i] - e->blk);
    out->columns = (const char **)ptr;
    out->types = (const char **)(ptr + nc);
    out->rows = (const char ***)(ptr + 2 * nc);
    out->n_columns = nc;
    out->n_rows = nr;
    return true;
}

/* ---- lookups and stores ---- */

bool ddb_pcache_get(ddb_pcache_t *pc, const ds_host_api_t *h, ds_be_call_t *call, const ds_buf_t *key,
                    uint64_t epoch, ds_preview_result_t *out)
{
    if (!pc)
        return false;
    const char *k = ds_buf_cstr(key);
    size_t kl = key->len;
    uint64_t hash = key_hash(k, kl);
    bool hit = false;
    pc_entry_t *stale = NULL;
    pthread_mutex_lock(&pc->lock);
    pc_entry_t *e = find(pc, k, kl, hash);
    if (e && e->epoch != epoch) {
        unlink_entry(pc, e);
        stale = e;
    } else if (e) {
        memset(out, 0, sizeof(*out));
        hit = unpack(h, call, e, out);
        if (hit && pc->head != e) {
            /* to the front of the recency list (not the head, so it has a prev) */
            e->prev->nxt = e->nxt;
            if (e->nxt)
                e->nxt->prev = e->prev;
            else
                pc->tail = e->prev;
            push_front(pc, e);
        }
    }
    if (hit)
        pc->hits++;
    else
        pc->misses++;
    pthread_mutex_unlock(&pc->lock);
    entry_free(stale);
    return hit;
}

void ddb_pcache_put(ddb_pcache_t *pc, const ds_buf_t *key, uint64_t epoch, const _Atomic uint64_t *current,
                    const ds_preview_result_t *r)
{
    if (!pc)
        return;
    pc_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    e->key_len = key->len;
    e->key = malloc(e->key_len ? e->key_len : 1);
    e->blk = pack(r, &e->blk_len);
    if (!e->key || !e->blk || entry_size(e) > pc->max_bytes / 8) {
        entry_free(e);
        return;
    }
    memcpy(e->key, ds_buf_cstr(key), e->key_len);
    e->hash = key_hash(e->key, e->key_len);
    e->epoch = epoch;
    e->n_columns = r->n_columns;
    e->n_rows = r->n_rows;
    pc_entry_t *old = NULL, *evicted = NULL;
    pthread_mutex_lock(&pc->lock);
    /* Read under the lock: a write that ended after the query ran has moved it on, and nothing is kept. */
    if (atomic_load(current) != epoch) {
        pthread_mutex_unlock(&pc->lock);
        entry_free(e);
        return;
    }
    if ((old = find(pc, e->key, e->key_len, e->hash)))
        unlink_entry(pc, old);
    size_t s = e->hash & (pc->n_slots - 1);
    e->hnext = pc->slots[s];
    pc->slots[s] = e;
    push_front(pc, e);
    pc->bytes += entry_size(e);
    pc->n_entries++;
    /* Evicted entries are chained through hnext (no longer in any chain) and freed after the lock. */
    while (pc->bytes > pc->max_bytes && pc->tail && pc->tail != e) {
        pc_entry_t *v = pc->tail;
        unlink_entry(pc, v);
        v->hnext = evicted;
        evicted = v;
    }
    pthread_mutex_unlock(&pc->lock);
    entry_free(old);
    while (evicted) {
        pc_entry_t *n = evicted->hnext;
        entry_free(evicted);
        evicted = n;
    }
}

void ddb_pcache_forget(ddb_pcache_t *pc, const char *project)
{
    if (!pc)
        return;
    ds_buf_t prefix = {0};
    put_part(&prefix, project);
    if (ds_buf_failed(&prefix)) {
        ds_buf_free(&prefix);
        return;
    }
    pthread_mutex_lock(&pc->lock);
    for (pc_entry_t *e = pc->head, *n; e; e = n) {
        n = e->nxt;
        if (e->key_len >= prefix.len && memcmp(e->key, prefix.data, prefix.len) == 0) {
            unlink_entry(pc, e);
            entry_free(e);
        }
    }
    pthread_mutex_unlock(&pc->lock);
    ds_buf_free(&prefix);
}

void ddb_pcache_stats(ddb_pcache_t *pc, ddb_pcache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!pc)
        return;
    pthread_mutex_lock(&pc->lock);
    out->entries = pc->n_entries;
    out->bytes = pc->bytes;
    out->max_bytes = pc->max_bytes;
    out->hits = pc->hits;
    out->misses = pc->misses;
    pthread_mutex_unlock(&pc->lock);
}
