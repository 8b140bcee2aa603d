/*
 * readahead.c - a storage scan read ahead on a thread of its own (see readahead.h).
 */
#include "ws/readahead.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "duckdb.h"

/* Chunks kept ready: enough to cover the sandbox's bursts (a row group written) ... */
#define RA_DEPTH 8
/* ... unless they hold this much (chunk_bytes: wide tables, long strings): then one at a time. */
#define RA_MAX_BYTES ((size_t)16 << 20)

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int slots_max;
static int slots_used;

typedef enum { RA_IDLE, RA_THREAD, RA_DIRECT } ra_mode_t;

typedef struct {
    ds_be_scan_t pub; /* first: the wrapper is a ds_be_scan_t */
    ds_be_scan_t *inner;
    ra_mode_t mode;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *ring[RA_DEPTH];
    size_t bytes[RA_DEPTH]; /* chunk_bytes of each */
    size_t head, count, queued_bytes;
    bool done; /* the reader is finished: no more chunks will come */
    bool stop; /* the scan is closing */
    ds_status_t status;
    ds_err_t err;
} ra_t;

void ds_readahead_start(int max)
{
    pthread_mutex_lock(&slots_lock);
    slots_max = max > 0 ? max : 0;
    pthread_mutex_unlock(&slots_lock);
}

int ds_readahead_running(void)
{
    pthread_mutex_lock(&slots_lock);
    int n = slots_used;
    pthread_mutex_unlock(&slots_lock);
    return n;
}

static bool slot_take(void)
{
    pthread_mutex_lock(&slots_lock);
    bool ok = slots_used < slots_max;
    if (ok)
        slots_used++;
    pthread_mutex_unlock(&slots_lock);
    return ok;
}

static void slot_give(void)
{
    pthread_mutex_lock(&slots_lock);
    slots_used--;
    pthread_mutex_unlock(&slots_lock);
}

/*
 * About the bytes chunk c holds: 16 per value of every column (no flat value
 * of a scalar type is wider; nested values count as one) plus its strings
 * that live outside the vectors (VARCHAR and BLOB values longer than DuckDB
 * keeps inline), which the row count does not bound.
 */
static size_t chunk_bytes(duckdb_data_chunk c)
{
    idx_t rows = duckdb_data_chunk_get_size(c), n = duckdb_data_chunk_get_column_count(c);
    size_t total = (size_t)rows * (size_t)n * 16;
    for (idx_t i = 0; i < n; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(c, i);
        duckdb_logical_type t = duckdb_vector_get_column_type(v);
        duckdb_type id = duckdb_get_type_id(t);
        duckdb_destroy_logical_type(&t);
        if (id != DUCKDB_TYPE_VARCHAR && id != DUCKDB_TYPE_BLOB)
            continue;
        const duckdb_string_t *s = duckdb_vector_get_data(v);
        uint64_t *valid = duckdb_vector_get_validity(v);
        for (idx_t k = 0; s && k < rows; k++)
            if (!valid || duckdb_validity_row_is_valid(valid, k))
                if (!duckdb_string_is_inlined(s[k]))
                    total += s[k].value.pointer.length;
    }
    return total;
}

static void *reader_main(void *arg)
{
    ra_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        if (r->count == RA_DEPTH || (r->count > 0 && r->queued_bytes >= RA_MAX_BYTES)) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        void *chunk = NULL;
        ds_err_t e = {0};
        ds_status_t st = r->inner->next(r->inner, &chunk, &e);
        size_t nb = st == DS_OK && chunk ? chunk_bytes(chunk) : 0;
        pthread_mutex_lock(&r->mu);
        if (st != DS_OK || !chunk) {
            if (chunk) {
                duckdb_data_chunk c = chunk;
                duckdb_destroy_data_chunk(&c);
            }
            r->status = st;
            r->err = e;
            break;
        }
        size_t at = (r->head + r->count) % RA_DEPTH;
        r->ring[at] = chunk;
        r->bytes[at] = nb;
        r->queued_bytes += nb;
        r->count++;
        pthread_cond_broadcast(&r->cv);
    }
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static ds_status_t ra_next(ds_be_scan_t *s, void **chunk, ds_err_t *err)
{
    ra_t *r = (ra_t *)s;
    *chunk = NULL;
    if (r->mode == RA_IDLE) {
        r->mode = RA_DIRECT;
        if (slot_take()) {
            if (pthread_create(&r->thread, NULL, reader_main, r) == 0)
                r->mode = RA_THREAD;
            else
                slot_give();
        }
    }
    if (r->mode == RA_DIRECT)
        return r->inner->next(r->inner, chunk, err);
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && !r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    ds_status_t st = DS_OK;
    if (r->count > 0) {
        *chunk = r->ring[r->head];
        r->queued_bytes -= r->bytes[r->head];
        r->head = (r->head + 1) % RA_DEPTH;
        r->count--;
        pthread_cond_broadcast(&r->cv);
    } else if (r->status != DS_OK) {
        *err = r->err;
        st = r->status;
    }
    pthread_mutex_unlock(&r->mu);
    return st;
}

static void ra_close(ds_be_scan_t *s)
{
    ra_t *r = (ra_t *)s;
    if (!r)
        return;
    if (r->mode == RA_THREAD) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        slot_give();
    }
    while (r->count > 0) {
        duckdb_data_chunk c = r->ring[r->head];
        duckdb_destroy_data_chunk(&c);
        r->head = (r->head + 1) % RA_DEPTH;
        r->count--;
    }
    r->inner->close(r->inner);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

ds_be_scan_t *ds_readahead_wrap(ds_be_scan_t *inner)
{
    pthread_mutex_lock(&slots_lock);
    bool on = slots_max > 0;
    pthread_mutex_unlock(&slots_lock);
    ra_t *r = on ? calloc(1, sizeof(*r)) : NULL;
    if (!r)
        return inner;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return inner;
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return inner;
    }
    r->inner = inner;
    r->pub.n_columns = inner->n_columns;
    r->pub.names = inner->names;
    r->pub.types = inner->types;
    r->pub.next = ra_next;
    r->pub.close = ra_close;
    return &r->pub;
}
