/*
 * be_call_fixture.h - a backend call with its own arena and error, for unit
 * tests that drive a backend's ops directly.
 */
#ifndef DS_TEST_BE_CALL_FIXTURE_H
#define DS_TEST_BE_CALL_FIXTURE_H

#include <string.h>

#include "core/arena.h"
#include "duckstore/backend.h"

typedef struct {
    ds_arena_t *arena;
    ds_err_t err;
    ds_be_call_t call;
} call_t;

static inline void call_init(call_t *c, const char *id)
{
    memset(c, 0, sizeof(*c));
    c->arena = ds_arena_create();
    c->call = (ds_be_call_t){.arena = c->arena, .err = &c->err, .project_id = id};
}

static inline void call_done(call_t *c) { ds_arena_destroy(&c->arena); }

#endif
