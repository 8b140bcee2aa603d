/*
 * alloc.c - allocation failure injection. See alloc.h.
 */
#include "core/alloc.h"

static _Thread_local long remaining = -1;

void ds_alloc_fail_after(long n) { remaining = n < 0 ? -1 : n; }

bool ds_alloc_inject_failure(void)
{
    if (remaining < 0)
        return false;
    if (remaining == 0)
        return true;
    remaining--;
    return false;
}
