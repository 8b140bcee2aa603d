/*
 * bodymem.c - the request-body memory budget (see bodymem.h).
 */
#include "core/bodymem.h"

#include <stdatomic.h>

static atomic_llong limit_ = INT64_MAX;
static atomic_llong held_;

void ds_bodymem_set_limit(int64_t limit) { atomic_store(&limit_, limit); }

int64_t ds_bodymem_limit(void) { return atomic_load(&limit_); }

bool ds_bodymem_take(int64_t n)
{
    if (n <= 0)
        return true;
    if (atomic_fetch_add(&held_, n) + n > atomic_load(&limit_)) {
        atomic_fetch_sub(&held_, n);
        return false;
    }
    return true;
}

void ds_bodymem_give(int64_t n)
{
    if (n > 0)
        atomic_fetch_sub(&held_, n);
}

int64_t ds_bodymem_held(void) { return atomic_load(&held_); }
