/*
 * test_lru.c - recency order, eviction choice with a refusing callback,
 * removal, key ownership, and behaviour at a few thousand keys.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/lru.h"

static ds_lru_t *lru;

static void make_lru(void)
{
    lru = ds_lru_create();
    cr_assert_not_null(lru);
}

static void destroy_lru(void) { ds_lru_destroy(&lru); }

TestSuite(lru, .init = make_lru, .fini = destroy_lru);

/* Accepts every key except those listed in ud (a NULL-terminated array). */
static bool not_busy(const char *key, void *ud)
{
    for (const char *const *busy = ud; *busy; busy++)
        if (strcmp(*busy, key) == 0)
            return false;
    return true;
}

/* Counts calls, accepts nothing. */
static bool refuse_all(const char *key, void *ud)
{
    (void)key;
    (*(int *)ud)++;
    return false;
}

Test(lru, empty)
{
    cr_assert_eq(ds_lru_count(lru), 0);
    cr_assert_null(ds_lru_victim(lru, NULL, NULL));
    cr_assert_not(ds_lru_contains(lru, "a"));
    cr_assert_not(ds_lru_remove(lru, "a"));
}

Test(lru, victim_is_the_least_recently_touched)
{
    ds_lru_touch(lru, "a");
    ds_lru_touch(lru, "b");
    ds_lru_touch(lru, "c");
    cr_assert_eq(ds_lru_count(lru), 3);
    cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), "a");

    /* Touching "a" again makes it the most recent; "b" is now the oldest. */
    cr_assert(ds_lru_touch(lru, "a"));
    cr_assert_eq(ds_lru_count(lru), 3, "a touch of a present key does not add it twice");
    cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), "b");
}

Test(lru, eviction_order_follows_recency)
{
    const char *touches[] = {"p1", "p2", "p3", "p2", "p4", "p1"};
    for (size_t i = 0; i < sizeof(touches) / sizeof(touches[0]); i++)
        cr_assert(ds_lru_touch(lru, touches[i]));
    const char *want[] = {"p3", "p2", "p4", "p1"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = ds_lru_victim(lru, NULL, NULL);
        cr_assert_not_null(v);
        cr_assert_str_eq(v, want[i], "eviction %zu", i);
        cr_assert(ds_lru_remove(lru, v));
    }
    cr_assert_eq(ds_lru_count(lru), 0);
    cr_assert_null(ds_lru_victim(lru, NULL, NULL));
}

Test(lru, victim_skips_keys_the_callback_refuses)
{
    ds_lru_touch(lru, "a");
    ds_lru_touch(lru, "b");
    ds_lru_touch(lru, "c");
    const char *busy_a[] = {"a", NULL};
    cr_assert_str_eq(ds_lru_victim(lru, not_busy, busy_a), "b");
    const char *busy_ab[] = {"a", "b", NULL};
    cr_assert_str_eq(ds_lru_victim(lru, not_busy, busy_ab), "c");
    const char *busy_all[] = {"a", "b", "c", NULL};
    cr_assert_null(ds_lru_victim(lru, not_busy, busy_all), "nothing evictable");
    /* The refused keys stay in place. */
    cr_assert_eq(ds_lru_count(lru), 3);
    cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), "a");
}

Test(lru, callback_sees_each_key_once_per_walk)
{
    for (int i = 0; i < 10; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        ds_lru_touch(lru, k);
    }
    int calls = 0;
    cr_assert_null(ds_lru_victim(lru, refuse_all, &calls));
    cr_assert_eq(calls, 10);
}

Test(lru, remove_takes_the_key_out_of_the_order)
{
    ds_lru_touch(lru, "a");
    ds_lru_touch(lru, "b");
    ds_lru_touch(lru, "c");
    cr_assert(ds_lru_remove(lru, "b"));
    cr_assert_not(ds_lru_remove(lru, "b"), "second remove finds nothing");
    cr_assert_not(ds_lru_contains(lru, "b"));
    cr_assert_eq(ds_lru_count(lru), 2);

    cr_assert(ds_lru_remove(lru, "a"));
    cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), "c");
    cr_assert(ds_lru_remove(lru, "c"));
    cr_assert_eq(ds_lru_count(lru), 0);

    /* A removed key can come back, as the most recent. */
    ds_lru_touch(lru, "x");
    ds_lru_touch(lru, "a");
    cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), "x");
}

Test(lru, keys_are_copied)
{
    char key[16] = "project-1";
    cr_assert(ds_lru_touch(lru, key));
    strcpy(key, "changed");
    cr_assert(ds_lru_contains(lru, "project-1"));
    cr_assert_not(ds_lru_contains(lru, "changed"));
    const char *v = ds_lru_victim(lru, NULL, NULL);
    cr_assert_str_eq(v, "project-1");
    cr_assert_neq((void *)v, (void *)key);
}

Test(lru, keys_are_compared_by_content)
{
    ds_lru_touch(lru, "ab");
    ds_lru_touch(lru, "a");
    ds_lru_touch(lru, "abc");
    cr_assert_eq(ds_lru_count(lru), 3);
    cr_assert(ds_lru_remove(lru, "a"));
    cr_assert(ds_lru_contains(lru, "ab"));
    cr_assert(ds_lru_contains(lru, "abc"));
    cr_assert_not(ds_lru_contains(lru, "AB"));
}

Test(lru, thousands_of_keys_keep_order_and_membership)
{
    enum { N = 5000 };
    char k[16];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "proj-%d", i);
        cr_assert(ds_lru_touch(lru, k));
    }
    cr_assert_eq(ds_lru_count(lru), N);
    /* Touch the even ones again: the odd ones become the oldest, in order. */
    for (int i = 0; i < N; i += 2) {
        snprintf(k, sizeof(k), "proj-%d", i);
        cr_assert(ds_lru_touch(lru, k));
    }
    cr_assert_eq(ds_lru_count(lru), N);
    for (int i = 1; i < N; i += 2) {
        snprintf(k, sizeof(k), "proj-%d", i);
        cr_assert_str_eq(ds_lru_victim(lru, NULL, NULL), k);
        cr_assert(ds_lru_remove(lru, k));
    }
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "proj-%d", i);
        cr_assert_eq(ds_lru_contains(lru, k), i % 2 == 0, "%s", k);
    }
    cr_assert_eq(ds_lru_count(lru), N / 2);
}

Test(lru, null_arguments_are_harmless)
{
    cr_assert_not(ds_lru_touch(lru, NULL));
    cr_assert_not(ds_lru_touch(NULL, "a"));
    cr_assert_not(ds_lru_contains(NULL, "a"));
    cr_assert_eq(ds_lru_count(NULL), 0);
    cr_assert_null(ds_lru_victim(NULL, NULL, NULL));
    ds_lru_t *none = NULL;
    ds_lru_destroy(&none);
    ds_lru_destroy(NULL);
}

Test(lru, destroy_sets_the_pointer_to_null)
{
    ds_lru_touch(lru, "a");
    ds_lru_destroy(&lru);
    cr_assert_null(lru);
}
