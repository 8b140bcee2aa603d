/*
 * test_cancel.c - core/cancel.c: hooks run once on cancel, never after unhook,
 * and a hook set after the cancel is refused.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "core/cancel.h"

static void count_cb(void *ud) { (*(int *)ud)++; }

Test(cancel, fire_calls_every_registered_hook_once)
{
    ds_cancel_t *c = ds_cancel_create();
    int a = 0, b = 0;
    cr_assert(ds_cancel_hook(c, count_cb, &a));
    cr_assert(ds_cancel_hook(c, count_cb, &b));
    cr_assert_not(ds_cancel_is_set(c));
    cr_assert_null(ds_cancel_reason(c));
    ds_cancel_fire(c, "deadline exceeded");
    ds_cancel_fire(c, "cancelled by the client"); /* a second fire changes nothing */
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 1);
    cr_assert(ds_cancel_is_set(c));
    cr_assert_str_eq(ds_cancel_reason(c), "deadline exceeded");
    ds_cancel_free(&c);
    cr_assert_null(c);
}

Test(cancel, unhooked_hook_is_not_called)
{
    ds_cancel_t *c = ds_cancel_create();
    int a = 0, b = 0;
    cr_assert(ds_cancel_hook(c, count_cb, &a));
    cr_assert(ds_cancel_hook(c, count_cb, &b));
    ds_cancel_unhook(c, &a);
    ds_cancel_fire(c, NULL);
    cr_assert_eq(a, 0);
    cr_assert_eq(b, 1);
    cr_assert_str_eq(ds_cancel_reason(c), "cancelled");
    ds_cancel_free(&c);
}

Test(cancel, hook_after_fire_is_refused)
{
    ds_cancel_t *c = ds_cancel_create();
    int a = 0;
    ds_cancel_fire(c, "deadline exceeded");
    cr_assert_not(ds_cancel_hook(c, count_cb, &a), "work would start on a cancelled request");
    cr_assert_eq(a, 0);
    ds_cancel_free(&c);
}

Test(cancel, hooks_beyond_the_limit_are_refused_and_slots_are_reused)
{
    ds_cancel_t *c = ds_cancel_create();
    int n[DS_CANCEL_MAX_HOOKS + 1];
    memset(n, 0, sizeof(n));
    for (int i = 0; i < DS_CANCEL_MAX_HOOKS; i++)
        cr_assert(ds_cancel_hook(c, count_cb, &n[i]));
    cr_assert_not(ds_cancel_hook(c, count_cb, &n[DS_CANCEL_MAX_HOOKS]));
    ds_cancel_unhook(c, &n[0]);
    cr_assert(ds_cancel_hook(c, count_cb, &n[DS_CANCEL_MAX_HOOKS]));
    ds_cancel_fire(c, NULL);
    cr_assert_eq(n[0], 0);
    for (int i = 1; i <= DS_CANCEL_MAX_HOOKS; i++)
        cr_assert_eq(n[i], 1, "hook %d", i);
    ds_cancel_free(&c);
}

Test(cancel, null_object_is_a_request_that_cannot_be_cancelled)
{
    int a = 0;
    cr_assert(ds_cancel_hook(NULL, count_cb, &a));
    ds_cancel_unhook(NULL, &a);
    ds_cancel_fire(NULL, "x");
    cr_assert_not(ds_cancel_is_set(NULL));
    cr_assert_null(ds_cancel_reason(NULL));
    ds_cancel_free(NULL);
    cr_assert_eq(a, 0);
}

/* A fire racing with hook/unhook from another thread: the hook runs at most once, never after unhook. */
typedef struct {
    ds_cancel_t *c;
    int calls;
    int after_unhook;
    int unhooked;
} race_t;

static void race_cb(void *ud)
{
    race_t *r = ud;
    r->calls++;
    if (__atomic_load_n(&r->unhooked, __ATOMIC_SEQ_CST))
        r->after_unhook++;
}

static void *race_fire(void *ud)
{
    ds_cancel_fire(((race_t *)ud)->c, "x");
    return NULL;
}

Test(cancel, fire_racing_with_unhook)
{
    for (int i = 0; i < 500; i++) {
        race_t r = {.c = ds_cancel_create()};
        bool hooked = ds_cancel_hook(r.c, race_cb, &r);
        pthread_t t;
        pthread_create(&t, NULL, race_fire, &r);
        if (hooked) {
            ds_cancel_unhook(r.c, &r);
            __atomic_store_n(&r.unhooked, 1, __ATOMIC_SEQ_CST);
        }
        pthread_join(t, NULL);
        cr_assert_leq(r.calls, 1);
        cr_assert_eq(r.after_unhook, 0);
        ds_cancel_free(&r.c);
    }
}
