/*
 * arena.c - chunked bump allocator with cleanup hooks. See arena.h.
 */
#include "core/arena.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

typedef struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    max_align_t data[];
} chunk_t;

typedef struct hook {
    struct hook *next;
    ds_cleanup_cb cb;
    void *p;
} hook_t;

struct ds_arena {
    chunk_t *chunks;
    hook_t *hooks;
    size_t next_size;
    bool failed; /* an allocation failed: the request must not succeed */
};

ds_arena_t *ds_arena_create(void)
{
    ds_arena_t *a = calloc(1, sizeof(*a));
    if (a)
        a->next_size = 4096;
    return a;
}

void ds_arena_run_hooks(ds_arena_t *a)
{
    if (!a)
        return;
    /* Detached first: a hook that registers another (or runs this again) never sees a freed one. */
    hook_t *h = a->hooks;
    a->hooks = NULL;
    while (h) {
        hook_t *next = h->next;
        h->cb(h->p);
        free(h);
        h = next;
    }
}

void ds_arena_destroy(ds_arena_t **ap)
{
    if (!ap || !*ap)
        return;
    ds_arena_t *a = *ap;
    ds_arena_run_hooks(a);
    for (chunk_t *c = a->chunks; c;) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    free(a);
    *ap = NULL;
}

void *ds_arena_alloc(ds_arena_t *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    chunk_t *c = a->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = a->next_size;
        while (size < n)
            size *= 2;
        c = ds_alloc_inject_failure() ? NULL : malloc(sizeof(chunk_t) + size);
        if (!c) {
            a->failed = true;
            return NULL;
        }
        c->size = size;
        c->used = 0;
        if (a->chunks && n > a->next_size / 2) {
            /* A large block gets its own chunk behind the current one, so
             * the current chunk's free space is not wasted. */
            c->next = a->chunks->next;
            a->chunks->next = c;
        } else {
            c->next = a->chunks;
            a->chunks = c;
            if (a->next_size < (1u << 20))
                a->next_size *= 2;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *ds_arena_strndup(ds_arena_t *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = ds_arena_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *ds_arena_strdup(ds_arena_t *a, const char *s)
{
    return s ? ds_arena_strndup(a, s, strlen(s)) : NULL;
}

char *ds_arena_printf(ds_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = ds_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool ds_arena_failed(const ds_arena_t *a) { return a && a->failed; }

int ds_arena_on_destroy(ds_arena_t *a, ds_cleanup_cb cb, void *p)
{
    hook_t *h = ds_alloc_inject_failure() ? NULL : malloc(sizeof(*h));
    if (!h) {
        a->failed = true;
        cb(p);
        return -1;
    }
    h->cb = cb;
    h->p = p;
    h->next = a->hooks;
    a->hooks = h;
    return 0;
}
