/*
 * wq.c - bounded FIFO write queues. See wq.h.
 *
 * One mutex guards the key table; each slot has its own condition variable on
 * that mutex. A slot lives while anyone holds or waits for it (refs) and is
 * freed by the last one out, so the table only holds keys in use.
 */
#include "core/wq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 256

struct ds_wq_slot {
    struct ds_wq_slot *next;
    char *key;
    uint64_t next_ticket;
    uint64_t serving;
    int64_t refs;
    pthread_cond_t cond;
};

struct ds_wq {
    pthread_mutex_t lock;
    int64_t depth;
    int64_t waiting;
    int64_t active;
    ds_wq_slot_t *buckets[N_BUCKETS];
};

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % N_BUCKETS;
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
            free(s->key);
            free(s);
            s = next;
        }
    pthread_mutex_destroy(&wq->lock);
    free(wq);
    *wqp = NULL;
}

ds_status_t ds_wq_enter(ds_wq_t *wq, const char *key, ds_wq_slot_t **slot, ds_err_t *err)
{
    unsigned h = hash_key(key);
    pthread_mutex_lock(&wq->lock);
    ds_wq_slot_t *s = wq->buckets[h];
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || !(s->key = strdup(key))) {
            free(s);
            pthread_mutex_unlock(&wq->lock);
            return ds_err_set(err, DS_INTERNAL, "out of memory entering write queue");
        }
        pthread_cond_init(&s->cond, NULL);
        s->next = wq->buckets[h];
        wq->buckets[h] = s;
    }
    /* Waiters for this key = tickets handed out minus the one being served. */
    int64_t waiters = (int64_t)(s->next_ticket - s->serving) - (s->refs > 0 ? 1 : 0);
    if (s->refs > 0 && waiters >= wq->depth) {
        pthread_mutex_unlock(&wq->lock);
        return ds_err_set(err, DS_QUEUE_FULL,
                          "too many requests waiting for the same object (%lld queued); retry later",
                          (long long)waiters);
    }
    uint64_t ticket = s->next_ticket++;
    s->refs++;
    if (ticket != s->serving) {
        wq->waiting++;
        while (ticket != s->serving)
            pthread_cond_wait(&s->cond, &wq->lock);
        wq->waiting--;
    }
    wq->active++;
    pthread_mutex_unlock(&wq->lock);
    *slot = s;
    return DS_OK;
}

void ds_wq_leave(ds_wq_t *wq, ds_wq_slot_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&wq->lock);
    wq->active--;
    s->serving++;
    if (--s->refs == 0) {
        unsigned h = hash_key(s->key);
        ds_wq_slot_t **pp = &wq->buckets[h];
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
        pthread_cond_destroy(&s->cond);
        free(s->key);
        free(s);
    } else {
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&wq->lock);
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
