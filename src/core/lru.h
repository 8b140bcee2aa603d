/*
 * lru.h - least-recently-used order of string keys (the open project files).
 *
 * Keeps keys in recency order. The owner decides what may be evicted: victim()
 * walks from the least recent key and returns the first one the callback
 * accepts (the caller's "nobody is using it" test). Not thread-safe: the owner
 * holds its own lock around every call.
 */
#ifndef DS_CORE_LRU_H
#define DS_CORE_LRU_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ds_lru ds_lru_t;

/* Returns true when key may be evicted. */
typedef bool (*ds_lru_evictable_cb)(const char *key, void *ud);

/* Creates an empty LRU. NULL on allocation failure. Destroy with ds_lru_destroy. */
ds_lru_t *ds_lru_create(void);
/* Frees the LRU and its keys; *lru set to NULL. Accepts NULL. */
void ds_lru_destroy(ds_lru_t **lru);
/* Adds key as most recent, or moves it there. Returns false on allocation failure. */
bool ds_lru_touch(ds_lru_t *lru, const char *key);
/* Removes key. Returns true when it was present. */
bool ds_lru_remove(ds_lru_t *lru, const char *key);
/* True when key is present. */
bool ds_lru_contains(const ds_lru_t *lru, const char *key);
/* Number of keys. */
size_t ds_lru_count(const ds_lru_t *lru);
/*
 * The least recent key for which cb returns true (cb NULL accepts all), or
 * NULL. The returned pointer is owned by the LRU and valid until the key is
 * removed.
 */
const char *ds_lru_victim(const ds_lru_t *lru, ds_lru_evictable_cb cb, void *ud);

#endif
