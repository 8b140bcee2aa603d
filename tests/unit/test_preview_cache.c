/*
 * test_preview_cache.c - the DuckDB backend's cache of recent previews
 * (backends/duckdb/preview_cache.c) on its own: keys that tell every request
 * apart, answers only for the current epoch, no store after the epoch moved,
 * rows (NULLs included) copied out intact, the memory bound, LRU order.
 */
#include "be_call_fixture.h"
#include "../../backends/duckdb/internal.h"
#include "core/arena.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void *t_alloc(ds_be_call_t *call, size_t n)
{
    void *p = ds_arena_alloc(call->arena, n);
    if (p)
        memset(p, 0, n);
    return p;
}

static ds_host_api_t host = {.alloc = t_alloc};

/* A result of nr rows of "r<i>c<j>" (NULL where i == j) over nc columns, in the call's arena. */
static ds_preview_result_t result(ds_be_call_t *call, size_t nr, size_t nc)
{
    ds_preview_result_t r = {0};
    r.n_columns = nc;
    r.n_rows = nr;
    r.columns = t_alloc(call, sizeof(char *) * nc);
    r.types = t_alloc(call, sizeof(char *) * nc);
    const char ***rows = t_alloc(call, sizeof(char **) * (nr ? nr : 1));
    for (size_t c = 0; c < nc; c++) {
        char *n = t_alloc(call, 16), *t = t_alloc(call, 16);
        snprintf(n, 16, "col%zu", c);
        snprintf(t, 16, "VARCHAR");
        ((const char **)r.columns)[c] = n;
        ((const char **)r.types)[c] = t;
    }
    for (size_t i = 0; i < nr; i++) {
        const char **row = t_alloc(call, sizeof(char *) * nc);
        for (size_t c = 0; c < nc; c++) {
            if (i == c)
                continue;
            char *v = t_alloc(call, 24);
            snprintf(v, 24, "r%zuc%zu", i, c);
            row[c] = v;
        }
        rows[i] = row;
    }
    r.rows = rows;
    return r;
}

static void same(const ds_preview_result_t *a, const ds_preview_result_t *b)
{
    cr_assert_eq(a->n_columns, b->n_columns);
    cr_assert_eq(a->n_rows, b->n_rows);
    for (size_t c = 0; c < a->n_columns; c++) {
        cr_assert_str_eq(a->columns[c], b->columns[c]);
        cr_assert_str_eq(a->types[c], b->types[c]);
    }
    for (size_t i = 0; i < a->n_rows; i++)
        for (size_t c = 0; c < a->n_columns; c++) {
            if (!a->rows[i][c])
                cr_assert_null(b->rows[i][c], "row %zu col %zu should be NULL", i, c);
            else
                cr_assert_str_eq(a->rows[i][c], b->rows[i][c]);
        }
}

static void key_of(ds_buf_t *b, const char *project, const char *table, const ds_preview_t *in)
{
    ds_buf_reset(b);
    ddb_pcache_key(b, project, "in.c-b", table, in);
}

Test(preview_cache, keys_tell_every_request_apart)
{
    const char *cols_a[] = {"a", "b"}, *cols_ab[] = {"ab"}, *v1[] = {"1"}, *v2[] = {"2"}, *empty[] = {""};
    ds_order_t asc = {"a", false, NULL}, desc = {"a", true, NULL};
    ds_filter_t f1 = {"a", DS_OP_EQ, v1, 1, NULL}, f2 = {"a", DS_OP_EQ, v2, 1, NULL};
    ds_filter_t fne = {"a", DS_OP_NE, v1, 1, NULL}, fempty = {"a", DS_OP_EQ, empty, 1, NULL};
    ds_filter_t fnull = {"a", DS_OP_EQ, (const char *[]){NULL}, 1, NULL};
    ds_preview_t reqs[] = {
        {.limit = 100},
        {.limit = 10},
        {.columns = cols_a, .n_columns = 2, .limit = 100},
        {.columns = cols_ab, .n_columns = 1, .limit = 100},
        {.order = &asc, .n_order = 1, .limit = 100},
        {.order = &desc, .n_order = 1, .limit = 100},
        {.where = {.filters = &f1, .n_filters = 1}, .limit = 100},
        {.where = {.filters = &f2, .n_filters = 1}, .limit = 100},
        {.where = {.filters = &fne, .n_filters = 1}, .limit = 100},
        {.where = {.filters = &fempty, .n_filters = 1}, .limit = 100},
        {.where = {.filters = &fnull, .n_filters = 1}, .limit = 100},
        {.where = {.changed_since = "2026-01-01 00:00:00.000000"}, .limit = 100},
        {.where = {.changed_until = "2026-01-01 00:00:00.000000"}, .limit = 100},
    };
    size_t n = sizeof(reqs) / sizeof(reqs[0]);
    ds_buf_t k[16] = {{0}};
    for (size_t i = 0; i < n; i++)
        key_of(&k[i], "p1", "t", &reqs[i]);
    key_of(&k[n], "p2", "t", &reqs[0]);     /* another project */
    key_of(&k[n + 1], "p1", "t2", &reqs[0]); /* another table */
    for (size_t i = 0; i < n + 2; i++)
        for (size_t j = i + 1; j < n + 2; j++)
            cr_assert(k[i].len != k[j].len || memcmp(k[i].data, k[j].data, k[i].len) != 0, "requests %zu and %zu share a key",
                      i, j);
    /* the same request gives the same key */
    ds_buf_t again = {0};
    key_of(&again, "p1", "t", &reqs[6]);
    cr_assert(again.len == k[6].len && memcmp(again.data, k[6].data, again.len) == 0);
    ds_buf_free(&again);
    for (size_t i = 0; i < n + 2; i++)
        ds_buf_free(&k[i]);
}

Test(preview_cache, answers_only_its_epoch_and_keeps_rows_intact)
{
    call_t fx;
    call_init(&fx, "p1");
    ddb_pcache_t *pc = ddb_pcache_create(1 << 20);
    cr_assert_not_null(pc);
    ds_buf_t key = {0};
    ds_preview_t in = {.limit = 100};
    key_of(&key, "p1", "t", &in);
    ds_preview_result_t r = result(&fx.call, 5, 3), out;
    _Atomic uint64_t current = 7;
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &key, 7, &out), "an empty cache answered");
    ddb_pcache_put(pc, &key, 7, &current, &r);
    cr_assert(ddb_pcache_get(pc, &host, &fx.call, &key, 7, &out));
    same(&r, &out);
    cr_assert_neq(out.rows, r.rows, "the answer must be a copy in the call's arena");
    /* the project's data changed: the entry no longer answers, and is dropped */
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &key, 8, &out));
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &key, 7, &out), "a stale entry came back");
    ddb_pcache_stats_t st;
    ddb_pcache_stats(pc, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.hits, 1);
    cr_assert_eq(st.misses, 3);
    /* a query that ran while a write ended (the epoch moved meanwhile) is not kept */
    current = 9;
    ddb_pcache_put(pc, &key, 8, &current, &r);
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &key, 8, &out));
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &key, 9, &out));
    /* zero rows is an answer too */
    ds_preview_result_t none = result(&fx.call, 0, 2);
    ddb_pcache_put(pc, &key, 9, &current, &none);
    cr_assert(ddb_pcache_get(pc, &host, &fx.call, &key, 9, &out));
    same(&none, &out);
    ds_buf_free(&key);
    ddb_pcache_destroy(&pc);
    cr_assert_null(pc);
    call_done(&fx);
}

Test(preview_cache, stays_within_its_bound_and_evicts_the_least_recent)
{
    call_t fx;
    call_init(&fx, "p1");
    size_t bound = 64 * 1024;
    ddb_pcache_t *pc = ddb_pcache_create(bound);
    ds_preview_result_t r = result(&fx.call, 20, 4), out;
    _Atomic uint64_t current = 1;
    ds_buf_t keys[200] = {{0}};
    for (int i = 0; i < 200; i++) {
        ds_preview_t in = {.limit = i + 1};
        key_of(&keys[i], "p1", "t", &in);
        ddb_pcache_put(pc, &keys[i], 1, &current, &r);
        if (i >= 1) /* keep the first one recent: it must survive */
            cr_assert(ddb_pcache_get(pc, &host, &fx.call, &keys[0], 1, &out), "the most recently used entry was evicted at %d", i);
        ddb_pcache_stats_t st;
        ddb_pcache_stats(pc, &st);
        cr_assert_leq(st.bytes, bound, "%zu bytes held with a bound of %zu", st.bytes, bound);
    }
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &keys[1], 1, &out), "the least recent entry survived");
    cr_assert(ddb_pcache_get(pc, &host, &fx.call, &keys[199], 1, &out));
    /* one answer larger than an eighth of the bound is not kept */
    ds_preview_result_t big = result(&fx.call, 400, 4);
    ds_buf_t bk = {0};
    ds_preview_t bin = {.limit = 1000};
    key_of(&bk, "p1", "big", &bin);
    ddb_pcache_put(pc, &bk, 1, &current, &big);
    cr_assert_not(ddb_pcache_get(pc, &host, &fx.call, &bk, 1, &out));
    ds_buf_free(&bk);
    for (int i = 0; i < 200; i++)
        ds_buf_free(&keys[i]);
    ddb_pcache_destroy(&pc);
    call_done(&fx);
}

Test(preview_cache, off_when_its_bound_is_zero)
{
    cr_assert_null(ddb_pcache_create(0));
    ddb_pcache_stats_t st;
    ddb_pcache_stats(NULL, &st);
    cr_assert_eq(st.entries, 0);
}
