/*
 * test_arena.c - the request arena: allocation, cleanup hooks, and what an
 * allocation failure does to a request (it latches; the backend wrappers of
 * src/backend/be.h then refuse to run the call, or fail its result).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "backend/be.h"
#include "core/alloc.h"
#include "core/arena.h"

static ds_arena_t *a;

static void fresh(void) { a = ds_arena_create(); }
static void release(void)
{
    ds_alloc_fail_after(-1);
    ds_arena_destroy(&a);
}

TestSuite(arena, .init = fresh, .fini = release);

Test(arena, allocations_are_zeroed_and_survive_growth)
{
    char *first = ds_arena_strdup(a, "first");
    for (int i = 0; i < 1000; i++)
        cr_assert_not_null(ds_arena_alloc(a, 100));
    char *big = ds_arena_alloc(a, 1 << 20);
    cr_assert_not_null(big);
    cr_assert_eq(big[0], 0);
    cr_assert_eq(big[(1 << 20) - 1], 0);
    cr_assert_str_eq(first, "first");
    cr_assert_str_eq(ds_arena_printf(a, "%s-%d", "x", 7), "x-7");
    cr_assert_not(ds_arena_failed(a));
}

Test(arena, a_failed_allocation_latches)
{
    ds_alloc_fail_after(0);
    cr_assert_null(ds_arena_alloc(a, 16));
    cr_assert_null(ds_arena_printf(a, "%d", 1));
    ds_alloc_fail_after(-1);
    cr_assert(ds_arena_failed(a), "the request must learn that something it built is missing");
    cr_assert_not_null(ds_arena_alloc(a, 16), "memory that comes back is usable again");
    cr_assert(ds_arena_failed(a), "but the failure stays recorded for the request");
    cr_assert_not(ds_arena_failed(NULL));
}

static int calls;

static ds_status_t fake_table_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table)
{
    calls++;
    return DS_OK;
}

static ds_status_t fake_table_get(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                  ds_be_table_t *out)
{
    calls++;
    ds_alloc_fail_after(0);
    out->name = ds_arena_strdup(call->arena, table); /* fails: the result would hold NULL */
    ds_alloc_fail_after(-1);
    return DS_OK;
}

static ds_backend_ops_t fake_ops = {.name = "fake", .table_drop = fake_table_drop, .table_get = fake_table_get};

Test(arena, a_request_whose_arena_failed_never_reaches_the_backend)
{
    ds_backend_t be = {.ops = &fake_ops};
    ds_err_t err = {0};
    ds_be_call_t call = {.arena = a, .err = &err, .project_id = "p"};
    calls = 0;
    cr_assert_eq(ds_be_table_drop(&be, &call, "in.c-b", "t"), DS_OK);
    cr_assert_eq(calls, 1);
    ds_alloc_fail_after(0);
    cr_assert_null(ds_arena_strdup(a, "a name the request needed"));
    ds_alloc_fail_after(-1);
    cr_assert_eq(ds_be_table_drop(&be, &call, "in.c-b", "t"), DS_UNAVAILABLE);
    cr_assert_eq(calls, 1, "the drop must not run");
    cr_assert(strstr(err.message, "out of memory") != NULL, "%s", err.message);
}

Test(arena, a_result_built_with_a_failed_allocation_is_a_503)
{
    ds_backend_t be = {.ops = &fake_ops};
    ds_err_t err = {0};
    ds_be_call_t call = {.arena = a, .err = &err, .project_id = "p"};
    ds_be_table_t t = {0};
    cr_assert_eq(ds_be_table_get(&be, &call, "in.c-b", "t", &t), DS_UNAVAILABLE);
    cr_assert(strstr(err.message, "out of memory") != NULL, "%s", err.message);
}

static char order[16];
static void note(void *p)
{
    size_t n = strlen(order);
    order[n] = *(const char *)p;
    order[n + 1] = '\0';
}

Test(arena, hooks_run_early_once_and_the_memory_stays)
{
    order[0] = '\0';
    char *kept = ds_arena_strdup(a, "kept");
    ds_arena_on_destroy(a, note, "a");
    ds_arena_on_destroy(a, note, "b");
    ds_arena_run_hooks(a);
    /* Reverse order of registration, as at destroy. */
    cr_assert_str_eq(order, "ba");
    cr_assert_str_eq(kept, "kept");
    /* Run again: nothing left to run. A hook added afterwards runs at destroy only. */
    ds_arena_run_hooks(a);
    cr_assert_str_eq(order, "ba");
    ds_arena_on_destroy(a, note, "c");
    ds_arena_destroy(&a);
    cr_assert_str_eq(order, "bac");
    ds_arena_run_hooks(NULL);
}
