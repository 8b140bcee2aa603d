/*
 * test_wq.c - core/wq.c: FIFO order, the depth bound, and a cancelled waiter
 * giving up its place without disturbing the order of the others.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/wq.h"

typedef struct {
    ds_wq_t *wq;
    ds_cancel_t *cancel;
    int id;
    ds_status_t st;
    double waited_s;
} waiter_t;

static atomic_int order_[8];
static atomic_int n_order_;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define KEY "t/p/b/t"

/* Enters KEY, notes the order in which holders got it, leaves. */
static void *enter_and_leave(void *arg)
{
    waiter_t *w = arg;
    ds_wq_slot_t *slot = NULL;
    ds_err_t err = {0};
    double t0 = now_s();
    w->st = ds_wq_enter(w->wq, KEY, 0, w->cancel, &slot, &err);
    w->waited_s = now_s() - t0;
    if (w->st == DS_OK) {
        order_[atomic_fetch_add(&n_order_, 1)] = w->id;
        ds_wq_leave(w->wq, slot);
    }
    return NULL;
}

/* Starts a waiter and waits until it queued (the set's waiting count grew). */
static void start_waiter(pthread_t *t, waiter_t *w, int64_t expect_waiting)
{
    pthread_create(t, NULL, enter_and_leave, w);
    for (int i = 0; i < 2000 && ds_wq_waiting(w->wq) < expect_waiting; i++)
        usleep(1000);
    cr_assert_eq(ds_wq_waiting(w->wq), expect_waiting, "waiter %d: %lld waiting, status %d", w->id,
                 (long long)ds_wq_waiting(w->wq), (int)w->st);
}

Test(wq, cancelled_waiter_leaves_and_the_others_keep_their_order)
{
    ds_wq_t *wq = ds_wq_create(8);
    ds_wq_slot_t *held = NULL;
    ds_err_t err = {0};
    atomic_store(&n_order_, 0);
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &held, &err), DS_OK);

    waiter_t w[3] = {{wq, NULL, 1, 0, 0}, {wq, ds_cancel_create(), 2, 0, 0}, {wq, NULL, 3, 0, 0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        start_waiter(&t[i], &w[i], i + 1);

    ds_cancel_fire(w[1].cancel, "deadline exceeded");
    pthread_join(t[1], NULL);
    cr_assert_eq(w[1].st, DS_CANCELLED);
    cr_assert_eq(ds_wq_waiting(wq), 2);

    ds_wq_leave(wq, held);
    pthread_join(t[0], NULL);
    pthread_join(t[2], NULL);
    cr_assert_eq(w[0].st, DS_OK);
    cr_assert_eq(w[2].st, DS_OK, "the waiter behind the cancelled one never got its turn");
    cr_assert_eq(atomic_load(&n_order_), 2);
    cr_assert_eq(order_[0], 1);
    cr_assert_eq(order_[1], 3);
    cr_assert_eq(ds_wq_waiting(wq), 0);
    cr_assert_eq(ds_wq_active(wq), 0);

    /* The key works as before afterwards. */
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &held, &err), DS_OK);
    ds_wq_leave(wq, held);
    ds_cancel_free(&w[1].cancel);
    ds_wq_destroy(&wq);
}

Test(wq, already_cancelled_waiter_does_not_wait_but_a_free_slot_is_taken)
{
    ds_wq_t *wq = ds_wq_create(8);
    ds_wq_slot_t *held = NULL, *mine = NULL;
    ds_err_t err = {0};
    ds_cancel_t *c = ds_cancel_create();
    ds_cancel_fire(c, "cancelled by the client");
    /* Nothing to wait for: entering succeeds (the work itself is refused later, by the backend). */
    cr_assert_eq(ds_wq_enter(wq, "p/x", 0, c, &mine, &err), DS_OK);
    ds_wq_leave(wq, mine);
    cr_assert_eq(ds_wq_enter(wq, "p/x", 0, NULL, &held, &err), DS_OK);
    double t0 = now_s();
    cr_assert_eq(ds_wq_enter(wq, "p/x", 0, c, &mine, &err), DS_CANCELLED);
    cr_assert_lt(now_s() - t0, 1.0);
    ds_wq_leave(wq, held);
    cr_assert_eq(ds_wq_active(wq), 0);
    ds_cancel_free(&c);
    ds_wq_destroy(&wq);
}

Test(wq, cancelled_places_do_not_count_against_the_depth)
{
    ds_wq_t *wq = ds_wq_create(1);
    ds_wq_slot_t *held = NULL;
    ds_err_t err = {0};
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &held, &err), DS_OK);
    waiter_t a = {wq, ds_cancel_create(), 1, 0, 0};
    pthread_t ta;
    start_waiter(&ta, &a, 1);
    ds_cancel_fire(a.cancel, "deadline exceeded");
    pthread_join(ta, NULL);
    cr_assert_eq(a.st, DS_CANCELLED);
    /* The queue holds one waiter again, not zero. */
    waiter_t b = {wq, NULL, 2, 0, 0};
    pthread_t tb;
    start_waiter(&tb, &b, 1);
    ds_wq_slot_t *extra = NULL;
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &extra, &err), DS_QUEUE_FULL);
    ds_wq_leave(wq, held);
    pthread_join(tb, NULL);
    cr_assert_eq(b.st, DS_OK);
    cr_assert_eq(ds_wq_active(wq), 0);
    ds_cancel_free(&a.cancel);
    ds_wq_destroy(&wq);
}

/* A parked ticket: counts its grants and notes the order in which they came. */
typedef struct {
    int id;
    atomic_int granted;
} parked_t;

static void on_grant(void *arg)
{
    parked_t *pk = arg;
    atomic_fetch_add(&pk->granted, 1);
    order_[atomic_fetch_add(&n_order_, 1)] = pk->id;
}

Test(wq, parked_tickets_are_granted_in_order_without_a_thread)
{
    ds_wq_t *wq = ds_wq_create(8);
    ds_err_t err = {0};
    atomic_store(&n_order_, 0);
    ds_wq_slot_t *held = NULL, *s1 = NULL, *s3 = NULL;
    bool granted = false;
    parked_t first = {.id = 0}, p1 = {.id = 1}, p3 = {.id = 3};
    /* A free slot is held at once and no callback comes. */
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &first, &held, &granted, &err), DS_OK);
    cr_assert(granted);
    cr_assert_eq(ds_wq_active(wq), 1);
    /* Parked, a blocking waiter, parked again: one FIFO for both kinds. */
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &p1, &s1, &granted, &err), DS_OK);
    cr_assert_not(granted);
    cr_assert_eq(ds_wq_waiting(wq), 1);
    pthread_t t;
    waiter_t w2 = {.wq = wq, .id = 2};
    start_waiter(&t, &w2, 2);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &p3, &s3, &granted, &err), DS_OK);
    cr_assert_not(granted);
    cr_assert_eq(ds_wq_waiting(wq), 3);
    /* Leaving grants p1 by callback, on this thread, before the blocked thread. */
    ds_wq_leave(wq, held);
    cr_assert_eq(atomic_load(&p1.granted), 1);
    cr_assert_eq(atomic_load(&p3.granted), 0);
    cr_assert_eq(ds_wq_active(wq), 1);
    cr_assert_eq(ds_wq_waiting(wq), 2);
    usleep(100 * 1000);
    cr_assert_eq(atomic_load(&n_order_), 1, "the blocked waiter went before the parked holder left");
    /* p1 leaves: the blocked waiter runs, and its leave grants p3. */
    ds_wq_leave(wq, s1);
    pthread_join(t, NULL);
    cr_assert_eq(w2.st, DS_OK);
    cr_assert_eq(atomic_load(&p3.granted), 1);
    cr_assert_eq(s3, s1, "one key, one slot");
    cr_assert_eq(ds_wq_waiting(wq), 0);
    cr_assert_eq(ds_wq_active(wq), 1);
    ds_wq_leave(wq, s3);
    cr_assert_eq(ds_wq_active(wq), 0);
    int want[] = {1, 2, 3};
    cr_assert_eq(atomic_load(&n_order_), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(order_[i], want[i], "position %d: %d got the slot, expected %d", i, order_[i], want[i]);
    ds_wq_destroy(&wq);
}

Test(wq, parked_tickets_count_against_the_depth)
{
    ds_wq_t *wq = ds_wq_create(2);
    ds_err_t err = {0};
    ds_wq_slot_t *held = NULL, *s = NULL;
    bool granted = false;
    parked_t a = {.id = 0}, b = {.id = 1}, c = {.id = 2};
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &a, &held, &granted, &err), DS_OK);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &b, &s, &granted, &err), DS_OK);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &c, &s, &granted, &err), DS_OK);
    ds_wq_slot_t *over = NULL;
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &c, &over, &granted, &err), DS_QUEUE_FULL);
    cr_assert_eq(ds_wq_waiting(wq), 2);
    ds_wq_leave(wq, held);
    ds_wq_leave(wq, s);
    ds_wq_leave(wq, s);
    cr_assert_eq(atomic_load(&b.granted) + atomic_load(&c.granted), 2);
    cr_assert_eq(ds_wq_active(wq), 0);
    ds_wq_destroy(&wq);
}

Test(wq, an_abandoned_parked_ticket_is_skipped_and_never_granted)
{
    ds_wq_t *wq = ds_wq_create(8);
    ds_err_t err = {0};
    ds_wq_slot_t *held = NULL, *s1 = NULL, *s2 = NULL;
    bool granted = false;
    parked_t a = {.id = 0}, p1 = {.id = 1}, p2 = {.id = 2};
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &a, &held, &granted, &err), DS_OK);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &p1, &s1, &granted, &err), DS_OK);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0, on_grant, &p2, &s2, &granted, &err), DS_OK);
    cr_assert_eq(ds_wq_waiting(wq), 2);
    /* p1 gives up while it waits: it leaves the line at once. */
    cr_assert(ds_wq_abandon(wq, s1, &p1));
    cr_assert_eq(ds_wq_waiting(wq), 1);
    /* The holder leaves: p2 is next, p1 never hears of its turn. */
    ds_wq_leave(wq, held);
    cr_assert_eq(atomic_load(&p1.granted), 0);
    cr_assert_eq(atomic_load(&p2.granted), 1);
    /* A ticket whose turn came cannot be given up: its owner holds the slot. */
    cr_assert_not(ds_wq_abandon(wq, s2, &p2));
    cr_assert_eq(ds_wq_active(wq), 1);
    ds_wq_leave(wq, s2);
    cr_assert_eq(ds_wq_active(wq), 0);
    cr_assert_eq(ds_wq_waiting(wq), 0);
    ds_wq_destroy(&wq);
}

/* Holds KEY for about ms milliseconds, then leaves: one hold for the key's average. */
static void hold_for(ds_wq_t *wq, int ms)
{
    ds_wq_slot_t *s = NULL;
    ds_err_t err = {0};
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &s, &err), DS_OK);
    usleep((useconds_t)ms * 1000u);
    ds_wq_leave(wq, s);
}

Test(wq, a_turn_expected_later_than_the_request_may_wait_is_refused_at_once)
{
    ds_wq_t *wq = ds_wq_create(16);
    ds_err_t err = {0};
    /* No average known yet: a bound admits (the queue cannot tell how long a turn takes). */
    ds_wq_slot_t *held = NULL, *s = NULL;
    parked_t pk = {9, 0};
    bool granted = true;
    cr_assert_eq(ds_wq_enter(wq, "t/p/b/other", 0, NULL, &held, &err), DS_OK);
    cr_assert_eq(ds_wq_enter_async(wq, "t/p/b/other", 0.001, on_grant, &pk, &s, &granted, &err), DS_OK);
    cr_assert(!granted);
    ds_wq_leave(wq, held);
    cr_assert_eq(atomic_load(&pk.granted), 1);
    ds_wq_leave(wq, s);
    /* Learned after the queue emptied: holds of about 200 ms. */
    hold_for(wq, 200);
    hold_for(wq, 200);
    cr_assert_eq(ds_wq_enter(wq, KEY, 0, NULL, &held, &err), DS_OK);
    /* The holder just began: its rest and the request's own turn (~0.4 s) are over 0.05 s. */
    double t0 = now_s();
    cr_assert_eq(ds_wq_enter(wq, KEY, 0.05, NULL, &s, &err), DS_QUEUE_FULL);
    cr_assert_lt(now_s() - t0, 0.05, "the refusal waited");
    cr_assert(strstr(err.message, "busy") && strstr(err.message, "0.05 s it may wait"), "message: %s", err.message);
    cr_assert_eq(ds_wq_waiting(wq), 0, "a refused request took a place");
    /* Without a bound, or with a long one, the request queues as before. */
    waiter_t a = {wq, NULL, 1, 0, 0};
    pthread_t ta;
    start_waiter(&ta, &a, 1);
    atomic_store(&pk.granted, 0);
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 5.0, on_grant, &pk, &s, &granted, &err), DS_OK);
    cr_assert(!granted);
    /* Three ahead now (the holder, a and the parked one), then its own turn: about 0.8 s, over 0.3 s. */
    ds_wq_slot_t *t = NULL;
    err = (ds_err_t){0};
    cr_assert_eq(ds_wq_enter_async(wq, KEY, 0.3, on_grant, &pk, &t, &granted, &err), DS_QUEUE_FULL);
    cr_assert(strstr(err.message, "2 waiting"), "message: %s", err.message);
    ds_wq_leave(wq, held);
    pthread_join(ta, NULL);
    cr_assert_eq(a.st, DS_OK);
    cr_assert_eq(atomic_load(&pk.granted), 1, "the parked request was not granted when a left");
    ds_wq_leave(wq, s);
    cr_assert_eq(ds_wq_active(wq), 0);
    ds_wq_destroy(&wq);
}

Test(wq, turns_that_vary_need_room_beyond_their_average)
{
    ds_err_t err = {0};
    ds_wq_slot_t *held = NULL, *s = NULL;
    /* Turns of 20 and 400 ms: about 0.12 s on average, but as far again either way. */
    ds_wq_t *varied = ds_wq_create(16);
    hold_for(varied, 20);
    hold_for(varied, 400);
    cr_assert_eq(ds_wq_enter(varied, KEY, 0, NULL, &held, &err), DS_OK);
    /* The holder's rest and its own turn average about 0.23 s, under 0.4 s; a slower pair is not. */
    cr_assert_eq(ds_wq_enter(varied, KEY, 0.4, NULL, &s, &err), DS_QUEUE_FULL);
    cr_assert(strstr(err.message, "allowing for slower turns") && strstr(err.message, "0.4 s it may wait"),
              "message: %s", err.message);
    ds_wq_leave(varied, held);
    ds_wq_destroy(&varied);
    /* Steady turns of the same average leave the room: the request queues. */
    ds_wq_t *steady = ds_wq_create(16);
    for (int i = 0; i < 4; i++)
        hold_for(steady, 115);
    cr_assert_eq(ds_wq_enter(steady, KEY, 0, NULL, &held, &err), DS_OK);
    parked_t pk = {7, 0};
    bool granted = true;
    err = (ds_err_t){0};
    cr_assert_eq(ds_wq_enter_async(steady, KEY, 0.4, on_grant, &pk, &s, &granted, &err), DS_OK, "%s", err.message);
    cr_assert(!granted);
    ds_wq_leave(steady, held);
    cr_assert_eq(atomic_load(&pk.granted), 1);
    ds_wq_leave(steady, s);
    ds_wq_destroy(&steady);
}
