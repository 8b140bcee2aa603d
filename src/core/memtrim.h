/*
 * memtrim.h - gives the server's free heap memory back to the system once
 * the request workers go idle.
 *
 * glibc's malloc keeps what a burst of requests freed in its per-thread
 * arenas: after 1,024 connections of previews the server kept tens of MB it
 * no longer used. A background thread looks every DUCKSTORE_MEMORY_TRIM
 * (default 1 s) at the pools' job counters (ds_pool_activity); when a whole
 * interval passed with no job running, starting or ending, and some job ran
 * since the last trim, it calls malloc_trim(0), which returns the free pages
 * of every arena. A busy server is never trimmed (a look is two atomic
 * loads); a resting one once per burst, one to two intervals after it. Work
 * answered on the event threads (/health) is not a pool job and leads to no
 * trim. DuckDB's own memory is not glibc's (the engine returns it itself:
 * allocator_flush_threshold, and the idle detach of projects). Where the C
 * library is not glibc nothing is trimmed and the count stays 0.
 */
#ifndef DS_CORE_MEMTRIM_H
#define DS_CORE_MEMTRIM_H

#include <stdint.h>

#include "core/status.h"

/* Looks every interval_s seconds (DUCKSTORE_MEMORY_TRIM); 0 starts nothing. */
ds_status_t ds_memtrim_start(int64_t interval_s, ds_err_t *err);
void ds_memtrim_stop(void);
/* The trims made so far (for /metrics and tests). */
int64_t ds_memtrim_count(void);
/* One look, as the thread makes it every second (tests call it directly). */
void ds_memtrim_tick(void);

#endif
