/*
 * alloc.h - allocation failure injection, for tests.
 *
 * The buffer (buf.c) and the arena (arena.c) ask ds_alloc_inject_failure()
 * before each malloc/realloc; when it says so they behave exactly as if the
 * allocation had failed. Tests use it to prove that every allocation failure
 * fails the request cleanly (an out-of-memory error, no partial SQL run).
 * The counter is per thread, so a test affects only its own thread; when
 * unset (the default) the check costs one thread-local load.
 */
#ifndef DS_CORE_ALLOC_H
#define DS_CORE_ALLOC_H

#include <stdbool.h>

/*
 * On the calling thread, lets the next n allocations succeed and fails every
 * one after that; n < 0 turns injection off.
 */
void ds_alloc_fail_after(long n);
/* True when the allocation about to be made must fail (counts one allocation). */
bool ds_alloc_inject_failure(void);

#endif
