/*
 * test_bodymem.c - the request-body budget both transports share
 * (src/core/bodymem.c): takes up to the limit, a take past it takes nothing,
 * given-back bytes can be taken again, and concurrent takers never hold more
 * than the limit together.
 */
#include "core/bodymem.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

Test(bodymem, takes_up_to_the_limit_and_nothing_past_it)
{
    ds_bodymem_set_limit(1000);
    cr_assert_eq(ds_bodymem_limit(), 1000);
    cr_assert(ds_bodymem_take(600));
    cr_assert(ds_bodymem_take(400));
    cr_assert_eq(ds_bodymem_held(), 1000);
    cr_assert_not(ds_bodymem_take(1), "a take past the limit succeeded");
    cr_assert_eq(ds_bodymem_held(), 1000, "a refused take kept its bytes");
    ds_bodymem_give(400);
    cr_assert_not(ds_bodymem_take(401));
    cr_assert(ds_bodymem_take(400));
    ds_bodymem_give(1000);
    cr_assert_eq(ds_bodymem_held(), 0);
    cr_assert(ds_bodymem_take(0), "an empty body needs no budget");
    cr_assert_not(ds_bodymem_take(1001), "one body larger than the whole budget");
    cr_assert_eq(ds_bodymem_held(), 0);
}

/* Bytes the takers hold by their own count (held() also shows a refused take for a moment). */
static atomic_llong ours_, peak_;

static void *taker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        if (!ds_bodymem_take(7))
            continue;
        long long h = atomic_fetch_add(&ours_, 7) + 7;
        long long p = atomic_load(&peak_);
        while (h > p && !atomic_compare_exchange_weak(&peak_, &p, h))
            ;
        atomic_fetch_sub(&ours_, 7);
        ds_bodymem_give(7);
    }
    return NULL;
}

Test(bodymem, concurrent_takers_never_hold_more_than_the_limit)
{
    ds_bodymem_set_limit(20);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, taker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_leq(atomic_load(&peak_), 20);
    cr_assert_eq(ds_bodymem_held(), 0);
}
