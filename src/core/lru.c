/*
 * lru.c - recency order of string keys. See lru.h.
 *
 * DESIGN
 * Each key lives in one node that sits on two structures at once:
 * - a doubly-linked recency list, head = most recent, tail = least recent, so
 *   touch and remove relink in O(1) and victim() walks from the tail;
 * - a chained hash table (FNV-1a, power-of-two bucket count) so lookup is O(1)
 *   on average instead of a walk over every open project.
 * The table doubles when the key count reaches the bucket count. If that
 * growth fails for lack of memory the LRU keeps working on the smaller table
 * (longer chains, same results), so only a failed node allocation is an error.
 *
 * Invariants: count equals the length of the list and the number of nodes in
 * all chains; every key is unique; nodes own a copy of their key (the caller's
 * string is never kept). Not thread-safe; the owner serializes calls.
 */
#include "core/lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DS_LRU_MIN_BUCKETS 16

typedef struct ds_lru_node {
    struct ds_lru_node *prev;  /* more recent */
    struct ds_lru_node *next;  /* less recent */
    struct ds_lru_node *chain; /* next node in the same hash bucket */
    size_t hash;
    char key[]; /* the owned copy of the key */
} ds_lru_node_t;

struct ds_lru {
    ds_lru_node_t *head; /* most recent */
    ds_lru_node_t *tail; /* least recent */
    ds_lru_node_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static ds_lru_node_t *lookup(const ds_lru_t *lru, const char *key, size_t hash)
{
    for (ds_lru_node_t *n = lru->buckets[hash & (lru->nbuckets - 1)]; n; n = n->chain)
        if (n->hash == hash && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static void list_unlink(ds_lru_t *lru, ds_lru_node_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        lru->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        lru->tail = n->prev;
    n->prev = n->next = NULL;
}

static void list_push_head(ds_lru_t *lru, ds_lru_node_t *n)
{
    n->prev = NULL;
    n->next = lru->head;
    if (lru->head)
        lru->head->prev = n;
    else
        lru->tail = n;
    lru->head = n;
}

/* Doubles the bucket array; on allocation failure leaves the table as it was. */
static void grow(ds_lru_t *lru)
{
    size_t nb = lru->nbuckets * 2;
    ds_lru_node_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < lru->nbuckets; i++) {
        ds_lru_node_t *n = lru->buckets[i];
        while (n) {
            ds_lru_node_t *next = n->chain;
            n->chain = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(lru->buckets);
    lru->buckets = b;
    lru->nbuckets = nb;
}

ds_lru_t *ds_lru_create(void)
{
    ds_lru_t *lru = calloc(1, sizeof(*lru));
    if (!lru)
        goto fail;
    lru->buckets = calloc(DS_LRU_MIN_BUCKETS, sizeof(*lru->buckets));
    if (!lru->buckets)
        goto fail;
    lru->nbuckets = DS_LRU_MIN_BUCKETS;
    return lru;
fail:
    free(lru);
    return NULL;
}

void ds_lru_destroy(ds_lru_t **lru)
{
    if (!lru || !*lru)
        return;
    ds_lru_node_t *n = (*lru)->head;
    while (n) {
        ds_lru_node_t *next = n->next;
        free(n);
        n = next;
    }
    free((*lru)->buckets);
    free(*lru);
    *lru = NULL;
}

bool ds_lru_touch(ds_lru_t *lru, const char *key)
{
    if (!lru || !key)
        return false;
    size_t hash = hash_key(key);
    ds_lru_node_t *n = lookup(lru, key, hash);
    if (n) {
        list_unlink(lru, n);
        list_push_head(lru, n);
        return true;
    }
    size_t len = strlen(key);
    n = malloc(sizeof(*n) + len + 1);
    if (!n)
        return false;
    memcpy(n->key, key, len + 1);
    n->hash = hash;
    if (lru->count >= lru->nbuckets)
        grow(lru);
    size_t b = hash & (lru->nbuckets - 1);
    n->chain = lru->buckets[b];
    lru->buckets[b] = n;
    list_push_head(lru, n);
    lru->count++;
    return true;
}

bool ds_lru_remove(ds_lru_t *lru, const char *key)
{
    if (!lru || !key)
        return false;
    size_t hash = hash_key(key);
    ds_lru_node_t **link = &lru->buckets[hash & (lru->nbuckets - 1)];
    for (; *link; link = &(*link)->chain) {
        ds_lru_node_t *n = *link;
        if (n->hash != hash || strcmp(n->key, key) != 0)
            continue;
        *link = n->chain;
        list_unlink(lru, n);
        free(n);
        lru->count--;
        return true;
    }
    return false;
}

bool ds_lru_contains(const ds_lru_t *lru, const char *key)
{
    if (!lru || !key)
        return false;
    return lookup(lru, key, hash_key(key)) != NULL;
}

size_t ds_lru_count(const ds_lru_t *lru) { return lru ? lru->count : 0; }

const char *ds_lru_victim(const ds_lru_t *lru, ds_lru_evictable_cb cb, void *ud)
{
    if (!lru)
        return NULL;
    for (const ds_lru_node_t *n = lru->tail; n; n = n->prev)
        if (!cb || cb(n->key, ud))
            return n->key;
    return NULL;
}
