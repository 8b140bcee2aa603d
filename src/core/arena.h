/*
 * arena.h - per-request memory.
 *
 * Everything allocated for one request comes from its arena and dies with it
 * in ds_arena_destroy, which also runs the cleanup hooks (DuckDB results, file
 * descriptors) in reverse order of registration. Chunks grow geometrically;
 * large allocations get their own chunk. One owner thread; not thread-safe.
 */
#ifndef DS_CORE_ARENA_H
#define DS_CORE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ds_arena ds_arena_t;
typedef void (*ds_cleanup_cb)(void *p);

/* New empty arena, or NULL. Destroy with ds_arena_destroy. */
ds_arena_t *ds_arena_create(void);
/* Runs the cleanup hooks, frees all memory, sets *a to NULL. Accepts NULL. */
void ds_arena_destroy(ds_arena_t **a);
/* n zeroed bytes aligned for any type, or NULL on exhaustion. */
void *ds_arena_alloc(ds_arena_t *a, size_t n);
/* A copy of s (NULL gives NULL). */
char *ds_arena_strdup(ds_arena_t *a, const char *s);
char *ds_arena_strndup(ds_arena_t *a, const char *s, size_t n);
/* printf into the arena. */
char *ds_arena_printf(ds_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * True when any allocation from a (or a cleanup registration) failed since it
 * was created: whatever the request built may be incomplete, so it must fail
 * with an out-of-memory error (the command layer and transports check this).
 */
bool ds_arena_failed(const ds_arena_t *a);
/* Registers cb(p) to run when the arena is destroyed. Returns 0, or -1 on exhaustion (cb then runs now). */
int ds_arena_on_destroy(ds_arena_t *a, ds_cleanup_cb cb, void *p);
/*
 * Runs the cleanup hooks registered so far now (reverse order) and forgets
 * them; the memory stays until ds_arena_destroy. A transport calls it once a
 * request's answer is built, so what the command held (write slots, project
 * pins, results) is let go before a slow client has read the answer. Hooks
 * registered afterwards run at destroy. Accepts NULL.
 */
void ds_arena_run_hooks(ds_arena_t *a);

#endif
