/*
 * wq.c - bounded FIFO write queues. See wq.h.
 *
 * One mutex guards the key table; each slot has its own condition variable on
 * that mutex. A slot lives while anyone holds or waits for it (refs) and is
 * freed by the last one out, so the table only holds keys in use.
 *
 * A waiter whose request is cancelled gives up its ticket: the ticket goes on
 * the slot's "gone" list and ds_wq_leave skips it when its turn comes, so the
 * order of the others is kept. Invariant: serving is never a gone ticket, so
 * while anyone waits its holder (or the next waiter to wake) has a ref.
 *
 * Parked tickets (ds_wq_enter_async) are on the slot's "parked" list with
 * their callback; the ds_wq_leave that makes one the serving ticket takes it
 * off the list, counts it active and calls its callback after unlocking.
 */
#include "core/wq.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cancel.h"

#define N_BUCKETS 256
/* How often a cancellable waiter looks at its cancellation. */
#define CANCEL_POLL_MS 50
/* Hold times remembered (by key hash; a colliding key replaces the older one). */
#define N_HOLDS 1024
/* Weight of the newest hold in a key's average. */
#define HOLD_WEIGHT 0.25

typedef struct parked {
    struct parked *next;
    uint64_t ticket;
    ds_wq_grant_cb cb;
    void *arg;
} parked_t;

struct ds_wq_slot {
    struct ds_wq_slot *next;
    parked_t *parked; /* tickets waiting without a thread, in no particular order */
    char *key;
    uint64_t next_ticket;
    uint64_t serving;
    double granted_at; /* when the serving ticket got its turn (monotonic seconds) */
    int64_t refs;
    pthread_cond_t cond;
    uint64_t *gone; /* tickets given up by cancelled waiters, not yet skipped */
    size_t n_gone, cap_gone;
};

/*
 * A key's hold times, kept after its slot is freed: the next queue on that
 * key starts from them. The average and the mean deviation are moving ones
 * (as TCP keeps a round trip's: RFC 6298).
 */
typedef struct {
    uint64_t hash; /* 0: empty */
    double avg;    /* seconds */
    double dev;    /* seconds: mean deviation from avg */
} hold_t;

struct ds_wq {
    pthread_mutex_t lock;
    int64_t depth;
    int64_t waiting;
    int64_t active;
    ds_wq_slot_t *buckets[N_BUCKETS];
    hold_t holds[N_HOLDS];
};

static uint64_t hash64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

static unsigned hash_key(const char *s) { return (unsigned)(hash64(s) % N_BUCKETS); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The key's hold times, or NULL when none is known. */
static const hold_t *hold_of(const ds_wq_t *wq, const char *key)
{
    uint64_t h = hash64(key);
    const hold_t *e = &wq->holds[h % N_HOLDS];
    return e->hash == h ? e : NULL;
}

/* Counts a finished hold of s (the serving ticket's turn ends now). */
static void note_hold(ds_wq_t *wq, ds_wq_slot_t *s, double now)
{
    double held = now - s->granted_at;
    uint64_t h = hash64(s->key);
    hold_t *e = &wq->holds[h % N_HOLDS];
    if (e->hash == h) {
        e->dev += HOLD_WEIGHT * (fabs(held - e->avg) - e->dev);
        e->avg += HOLD_WEIGHT * (held - e->avg);
    } else {
        *e = (hold_t){h, held, held / 2};
    }
}

ds_wq_t *ds_wq_create(int64_t depth)
{
    ds_wq_t *wq = calloc(1, sizeof(*wq));
    if (!wq)
        return NULL;
    pthread_mutex_init(&wq->lock, NULL);
    wq->depth = depth;
    return wq;
}

void ds_wq_destroy(ds_wq_t **wqp)
{
    if (!wqp || !*wqp)
        return;
    ds_wq_t *wq = *wqp;
    for (int i = 0; i < N_BUCKETS; i++)
        for (ds_wq_slot_t *s = wq->buckets[i]; s;) {
            ds_wq_slot_t *next = s->next;
            pthread_cond_destroy(&s->cond);
            for (parked_t *pk = s->parked; pk;) {
                parked_t *pn = pk->next;
                free(pk);
                pk = pn;
            }
            free(s->gone);
            free(s->key);
            free(s);
            s = next;
        }
    pthread_mutex_destroy(&wq->lock);
    free(wq);
    *wqp = NULL;
}

/* Removes ticket from s's gone list; true when it was there. */
static bool take_gone(ds_wq_slot_t *s, uint64_t ticket)
{
    for (size_t i = 0; i < s->n_gone; i++)
        if (s->gone[i] == ticket) {
            s->gone[i] = s->gone[--s->n_gone];
            return true;
        }
    return false;
}

static bool add_gone(ds_wq_slot_t *s, uint64_t ticket)
{
    if (s->n_gone == s->cap_gone) {
        size_t cap = s->cap_gone ? s->cap_gone * 2 : 8;
        uint64_t *g = realloc(s->gone, cap * sizeof(*g));
        if (!g)
            return false;
        s->gone = g;
        s->cap_gone = cap;
    }
    s->gone[s->n_gone++] = ticket;
    return true;
}

/* Waits on s->cond; with a cancellation, at most CANCEL_POLL_MS. */
static void wait_turn(ds_wq_t *wq, ds_wq_slot_t *s, ds_cancel_t *cancel)
{
    if (!cancel) {
        pthread_cond_wait(&s->cond, &wq->lock);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += CANCEL_POLL_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&s->cond, &wq->lock, &until);
}

/*
 * Finds or creates key's slot and takes a ticket on it (a ref). Called and
 * returns with wq->lock held; NULL with err set when the queue is full, the
 * turn is expected later than max_wait_s (> 0), or memory is out.
 */
static ds_wq_slot_t *take_ticket(ds_wq_t *wq, const char *key, double max_wait_s, uint64_t *ticket, ds_err_t *err)
{
    unsigned h = hash_key(key);
    ds_wq_slot_t *s = wq->buckets[h];
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || !(s->key = strdup(key))) {
            free(s);
            ds_err_set(err, DS_INTERNAL, "out of memory entering write queue");
            return NULL;
        }
        pthread_cond_init(&s->cond, NULL);
        s->next = wq->buckets[h];
        wq->buckets[h] = s;
    }
    /* Waiters for this key = tickets handed out minus the one being served. */
    int64_t waiters = (int64_t)(s->next_ticket - s->serving) - (s->refs > 0 ? 1 : 0) - (int64_t)s->n_gone;
    if (s->refs > 0 && waiters >= wq->depth) {
        ds_err_set(err, DS_QUEUE_FULL, "too many requests waiting for the same object (%lld queued); retry later",
                   (long long)waiters);
        return NULL;
    }
    double now = now_s();
    const hold_t *hold = s->refs > 0 && max_wait_s > 0 ? hold_of(wq, key) : NULL;
    if (hold) {
        /*
         * When the request would be done: the holder's expected rest (none once
         * it is past the average), one average per waiter, and its own turn;
         * then room for turns that take longer than the average: two mean
         * deviations per turn (the holder's, the waiters', its own). The turns of a busy server are slow together
         * (they share its cores with everything else), so their deviations add
         * up rather than averaging out: with the square root of the number of
         * turns (independent turns), a 30 s mix at 256 connections had one
         * admitted import in seven end after its client gave up. An admitted
         * request should end within its bound, not merely on average.
         */
        double rest = hold->avg - (now - s->granted_at);
        double expect = (rest > 0 ? rest : 0) + (double)(waiters + 1) * hold->avg;
        double worst = expect + 2 * hold->dev * (double)(waiters + 2); /* the holder's turn, theirs, its own */
        if (worst > max_wait_s) {
            ds_err_set(err, DS_QUEUE_FULL,
                       "the same object is busy: this request would be done in about %.1f s, %.1f s allowing for "
                       "slower turns (after %lld waiting, %.2f s per turn on average), later than the %g s it may "
                       "wait; retry later",
                       expect, worst, (long long)waiters, hold->avg, max_wait_s);
            return NULL;
        }
    }
    *ticket = s->next_ticket++;
    if (s->refs == 0)
        s->granted_at = now;
    s->refs++;
    return s;
}

ds_status_t ds_wq_enter_async(ds_wq_t *wq, const char *key, double max_wait_s, ds_wq_grant_cb grant_cb, void *arg,
                              ds_wq_slot_t **slot, bool *granted, ds_err_t *err)
{
    parked_t *pk = malloc(sizeof(*pk));
    if (!pk)
        return ds_err_set(err, DS_INTERNAL, "out of memory entering write queue");
    uint64_t ticket;
    pthread_mutex_lock(&wq->lock);
    ds_wq_slot_t *s = take_ticket(wq, key, max_wait_s, &ticket, err);
    if (!s) {
        pthread_mutex_unlock(&wq->lock);
        free(pk);
        return err->status;
    }
    *slot = s;
    *granted = ticket == s->serving;
    if (*granted) {
        wq->active++;
        free(pk);
    } else {
        *pk = (parked_t){.next = s->parked, .ticket = ticket, .cb = grant_cb, .arg = arg};
        s->parked = pk;
        wq->waiting++;
    }
    pthread_mutex_unlock(&wq->lock);
    return DS_OK;
}

ds_status_t ds_wq_enter(ds_wq_t *wq, const char *key, double max_wait_s, ds_cancel_t *cancel, ds_wq_slot_t **slot,
                        ds_err_t *err)
{
    uint64_t ticket;
    pthread_mutex_lock(&wq->lock);
    ds_wq_slot_t *s = take_ticket(wq, key, max_wait_s, &ticket, err);
    if (!s) {
        pthread_mutex_unlock(&wq->lock);
        return err->status;
    }
    if (ticket != s->serving) {
        bool gave_up = false;
        wq->waiting++;
        while (ticket != s->serving && !gave_up) {
            /* Out of memory for the gone list: keep the ticket and wait (the backend refuses the work later). */
            if (ds_cancel_is_set(cancel) && add_gone(s, ticket))
                gave_up = true;
            else
                wait_turn(wq, s, ds_cancel_is_set(cancel) ? NULL : cancel);
        }
        wq->waiting--;
        if (gave_up) {
            s->refs--; /* never the last: the ticket being served has its own */
            pthread_mutex_unlock(&wq->lock);
            return ds_err_set(err, DS_CANCELLED, "the request was cancelled (%s) while it waited for its turn",
                              ds_cancel_reason(cancel));
        }
    }
    wq->active++;
    pthread_mutex_unlock(&wq->lock);
    *slot = s;
    return DS_OK;
}

bool ds_wq_abandon(ds_wq_t *wq, ds_wq_slot_t *s, void *arg)
{
    bool gone = false;
    pthread_mutex_lock(&wq->lock);
    for (parked_t **pp = &s->parked; *pp; pp = &(*pp)->next) {
        parked_t *pk = *pp;
        if (pk->arg != arg)
            continue;
        /* Skipped when its turn comes, like a cancelled blocking waiter's ticket. */
        if (add_gone(s, pk->ticket)) {
            *pp = pk->next;
            free(pk);
            wq->waiting--;
            s->refs--; /* never the last: the ticket being served has its own */
            gone = true;
        }
        break;
    }
    pthread_mutex_unlock(&wq->lock);
    return gone;
}

void ds_wq_leave(ds_wq_t *wq, ds_wq_slot_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&wq->lock);
    double now = now_s();
    note_hold(wq, s, now);
    s->granted_at = now; /* the next turn (if anyone waits) begins */
    wq->active--;
    s->serving++;
    while (take_gone(s, s->serving))
        s->serving++;
    parked_t *next = NULL;
    for (parked_t **pp = &s->parked; *pp; pp = &(*pp)->next)
        if ((*pp)->ticket == s->serving) {
            next = *pp;
            *pp = next->next;
            wq->waiting--;
            wq->active++;
            break;
        }
    if (--s->refs == 0) {
        unsigned h = hash_key(s->key);
        ds_wq_slot_t **pp = &wq->buckets[h];
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
        pthread_cond_destroy(&s->cond);
        free(s->gone);
        free(s->key);
        free(s);
    } else if (!next) {
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&wq->lock);
    if (next) {
        next->cb(next->arg);
        free(next);
    }
}

int64_t ds_wq_waiting(ds_wq_t *wq)
{
    pthread_mutex_lock(&wq->lock);
    int64_t n = wq->waiting;
    pthread_mutex_unlock(&wq->lock);
    return n;
}

int64_t ds_wq_active(ds_wq_t *wq)
{
    pthread_mutex_lock(&wq->lock);
    int64_t n = wq->active;
    pthread_mutex_unlock(&wq->lock);
    return n;
}
