/*
 * memtrim.c - see memtrim.h.
 */
#include "core/memtrim.h"

#include <stdatomic.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/periodic.h"
#include "core/pool.h"

static ds_periodic_t *trimmer;
static atomic_int_fast64_t trims;
/* The tick's own state: only the trim thread (or a test, with the thread stopped) touches it. */
static int64_t seen_started = -1, seen_finished = -1, trimmed_at = 0;

void ds_memtrim_tick(void)
{
    int64_t started, finished;
    ds_pool_activity(&started, &finished);
    if (started != finished || started != seen_started || finished != seen_finished) {
        /* a job ran, started or ended since the last look: the workers have not rested a whole interval */
        seen_started = started;
        seen_finished = finished;
        return;
    }
    if (started == trimmed_at) /* rested, and trimmed since the last job */
        return;
    trimmed_at = started;
#if defined(__GLIBC__)
    malloc_trim(0);
    atomic_fetch_add(&trims, 1);
#endif
}

static void tick(void *ud)
{
    (void)ud;
    ds_memtrim_tick();
}

ds_status_t ds_memtrim_start(int64_t interval_s, ds_err_t *err)
{
    return interval_s > 0 ? ds_periodic_start(&trimmer, "mem-trim", interval_s, tick, NULL, err) : DS_OK;
}

void ds_memtrim_stop(void) { ds_periodic_stop(&trimmer); }

int64_t ds_memtrim_count(void) { return atomic_load(&trims); }
