/*
 * test_readahead.c - the storage scan read ahead on a thread of its own
 * (src/ws/readahead.c): the rows come in order and whole, the wrapped scan is
 * read on another thread and ahead of the reader, an error reaches the
 * reader after the chunks before it, closing midway stops and frees
 * everything, and past the thread cap (or with read-ahead off) a scan is read
 * directly.
 */
#include "ws/readahead.h"

#include <criterion/criterion.h>
#include <duckdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* A fake engine scan: n_chunks chunks of one BIGINT column, chunk i holding rows 100*i .. 100*i+99. */
typedef struct {
    ds_be_scan_t pub;
    int n_chunks, next_chunk, fail_at; /* fail_at >= 0: next() fails instead of giving chunk fail_at */
    size_t text_len;                   /* > 0: one VARCHAR column of values this long instead */
    pthread_t caller;                  /* the thread of the last next() */
    atomic_int calls;
    atomic_int *closed;
    duckdb_logical_type type;
} fake_t;

static ds_status_t fake_next(ds_be_scan_t *s, void **chunk, ds_err_t *err)
{
    fake_t *f = (fake_t *)s;
    f->caller = pthread_self();
    atomic_fetch_add(&f->calls, 1);
    *chunk = NULL;
    if (f->next_chunk == f->fail_at)
        return ds_err_set(err, DS_UNAVAILABLE, "the engine failed at chunk %d", f->fail_at);
    if (f->next_chunk >= f->n_chunks)
        return DS_OK;
    duckdb_data_chunk c = duckdb_create_data_chunk(&f->type, 1);
    if (f->text_len) {
        char *text = malloc(f->text_len);
        cr_assert_not_null(text);
        memset(text, 'x', f->text_len);
        for (idx_t i = 0; i < 2048; i++)
            duckdb_vector_assign_string_element_len(duckdb_data_chunk_get_vector(c, 0), i, text, f->text_len);
        free(text);
        duckdb_data_chunk_set_size(c, 2048);
        f->next_chunk++;
        *chunk = c;
        return DS_OK;
    }
    int64_t *v = duckdb_vector_get_data(duckdb_data_chunk_get_vector(c, 0));
    for (int i = 0; i < 100; i++)
        v[i] = (int64_t)f->next_chunk * 100 + i;
    duckdb_data_chunk_set_size(c, 100);
    f->next_chunk++;
    *chunk = c;
    return DS_OK;
}

static void fake_close(ds_be_scan_t *s)
{
    fake_t *f = (fake_t *)s;
    atomic_fetch_add(f->closed, 1);
    duckdb_destroy_logical_type(&f->type);
    free(f);
}

static const char *fake_names[] = {"id"};

static fake_t *fake_new_typed(int n_chunks, int fail_at, size_t text_len, atomic_int *closed)
{
    fake_t *f = calloc(1, sizeof(*f));
    cr_assert_not_null(f);
    f->text_len = text_len;
    f->type = duckdb_create_logical_type(text_len ? DUCKDB_TYPE_VARCHAR : DUCKDB_TYPE_BIGINT);
    f->pub.n_columns = 1;
    f->pub.names = fake_names;
    f->pub.types = (void **)&f->type;
    f->pub.next = fake_next;
    f->pub.close = fake_close;
    f->n_chunks = n_chunks;
    f->fail_at = fail_at;
    f->closed = closed;
    return f;
}

static fake_t *fake_new(int n_chunks, int fail_at, atomic_int *closed)
{
    return fake_new_typed(n_chunks, fail_at, 0, closed);
}

/* Reads every chunk of s; checks their rows run on from *expect; returns the status of the last next(). */
static ds_status_t drain(ds_be_scan_t *s, int64_t *expect, ds_err_t *err)
{
    for (;;) {
        void *chunk = NULL;
        ds_status_t st = s->next(s, &chunk, err);
        if (st != DS_OK || !chunk)
            return st;
        duckdb_data_chunk c = chunk;
        idx_t n = duckdb_data_chunk_get_size(c);
        int64_t *v = duckdb_vector_get_data(duckdb_data_chunk_get_vector(c, 0));
        for (idx_t i = 0; i < n; i++, (*expect)++)
            cr_assert_eq(v[i], *expect, "row %lld came as %lld", (long long)*expect, (long long)v[i]);
        duckdb_destroy_data_chunk(&c);
    }
}

/*
 * Takes one chunk of s, then gives its reader up to 5 s to have read `calls` chunks of f and 0.1 s more
 * (a reader that would read past its bound has the time to do so).
 */
static void take_one_and_wait(ds_be_scan_t *s, fake_t *f, int calls)
{
    void *chunk = NULL;
    ds_err_t err = {0};
    cr_assert_eq(s->next(s, &chunk, &err), DS_OK);
    cr_assert_not_null(chunk);
    duckdb_data_chunk c = chunk;
    duckdb_destroy_data_chunk(&c);
    for (int i = 0; i < 5000 && atomic_load(&f->calls) < calls; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec settle = {0, 100000000};
    nanosleep(&settle, NULL);
}

Test(readahead, rows_come_whole_and_in_order_read_on_another_thread)
{
    ds_readahead_start(2);
    atomic_int closed = 0;
    fake_t *f = fake_new(500, -1, &closed);
    ds_be_scan_t *s = ds_readahead_wrap(&f->pub);
    cr_assert_neq(s, &f->pub, "read-ahead is on, yet the scan was not wrapped");
    cr_assert_eq(s->n_columns, 1);
    cr_assert_str_eq(s->names[0], "id");
    cr_assert_eq(atomic_load(&f->calls), 0, "the engine was read before the first next()");
    int64_t expect = 0;
    ds_err_t err = {0};
    cr_assert_eq(drain(s, &expect, &err), DS_OK, "%s", err.message);
    cr_assert_eq(expect, 500 * 100);
    cr_assert(!pthread_equal(f->caller, pthread_self()), "the engine scan ran on the reader's own thread");
    s->close(s);
    cr_assert_eq(atomic_load(&closed), 1);
    cr_assert_eq(ds_readahead_running(), 0, "the reader's slot was not given back");
}

Test(readahead, the_reader_runs_ahead_of_a_slow_consumer)
{
    ds_readahead_start(1);
    atomic_int closed = 0;
    fake_t *f = fake_new(100, -1, &closed);
    ds_be_scan_t *s = ds_readahead_wrap(&f->pub);
    /* While this thread does nothing, the reader fills its ring of 8 and stops: 9 chunks read, 1 taken. */
    take_one_and_wait(s, f, 1 + 8);
    cr_assert_eq(atomic_load(&f->calls), 1 + 8, "the engine was read %d times for 1 chunk taken (ring of 8)",
                 atomic_load(&f->calls));
    /* Closed midway: the reader stops, the chunks it holds are freed (ASan), the engine scan is closed. */
    s->close(s);
    cr_assert_eq(atomic_load(&closed), 1);
    cr_assert_eq(ds_readahead_running(), 0);
}

Test(readahead, long_strings_bound_what_the_reader_holds)
{
    ds_readahead_start(1);
    atomic_int closed = 0;
    /* 2,048 values of 4 KiB: 8 MiB of strings per chunk, so two reach the 16 MiB the reader may hold. */
    fake_t *f = fake_new_typed(50, -1, 4096, &closed);
    ds_be_scan_t *s = ds_readahead_wrap(&f->pub);
    take_one_and_wait(s, f, 3);
    cr_assert_eq(atomic_load(&f->calls), 3, "the reader read %d chunks of 8 MiB for 1 taken (it may hold 2)",
                 atomic_load(&f->calls));
    s->close(s);
    cr_assert_eq(atomic_load(&closed), 1);
}

Test(readahead, an_engine_error_arrives_after_the_chunks_before_it)
{
    ds_readahead_start(1);
    atomic_int closed = 0;
    fake_t *f = fake_new(50, 30, &closed);
    ds_be_scan_t *s = ds_readahead_wrap(&f->pub);
    int64_t expect = 0;
    ds_err_t err = {0};
    cr_assert_eq(drain(s, &expect, &err), DS_UNAVAILABLE);
    cr_assert_eq(expect, 30 * 100, "rows before the error: %lld", (long long)expect);
    cr_assert(strstr(err.message, "failed at chunk 30"), "message: %s", err.message);
    s->close(s);
    cr_assert_eq(atomic_load(&closed), 1);
}

Test(readahead, past_the_cap_or_when_off_a_scan_is_read_directly)
{
    ds_readahead_start(1);
    atomic_int closed = 0;
    fake_t *f1 = fake_new(100, -1, &closed), *f2 = fake_new(100, -1, &closed);
    ds_be_scan_t *s1 = ds_readahead_wrap(&f1->pub), *s2 = ds_readahead_wrap(&f2->pub);
    void *chunk = NULL;
    ds_err_t err = {0};
    cr_assert_eq(s1->next(s1, &chunk, &err), DS_OK);
    duckdb_data_chunk c = chunk;
    duckdb_destroy_data_chunk(&c);
    cr_assert_eq(ds_readahead_running(), 1);
    /* The one reader is taken: the second scan is read on this thread, and still whole. */
    int64_t expect = 0;
    cr_assert_eq(drain(s2, &expect, &err), DS_OK);
    cr_assert_eq(expect, 100 * 100);
    cr_assert(pthread_equal(f2->caller, pthread_self()));
    s2->close(s2);
    s1->close(s1);
    cr_assert_eq(atomic_load(&closed), 2);
    cr_assert_eq(ds_readahead_running(), 0);

    /* Closed before its first next(): no reader was started, nothing was read. */
    fake_t *f4 = fake_new(10, -1, &closed);
    ds_be_scan_t *s4 = ds_readahead_wrap(&f4->pub);
    cr_assert_neq(s4, &f4->pub);
    cr_assert_eq(atomic_load(&f4->calls), 0);
    s4->close(s4);
    cr_assert_eq(atomic_load(&closed), 3);
    cr_assert_eq(ds_readahead_running(), 0);

    ds_readahead_start(0);
    fake_t *f3 = fake_new(1, -1, &closed);
    cr_assert_eq(ds_readahead_wrap(&f3->pub), &f3->pub, "read-ahead is off, yet the scan was wrapped");
    f3->pub.close(&f3->pub);
}
