/*
 * memtrim.h - gives the server's free heap memory back to the system once
 * the request workers go idle.
 *
 * glibc's malloc keeps what a burst of requests freed in its per-thread
 * arenas: after 1,024 connections of previews the server kept tens of MB it
 * no longer used. A background thread looks once a second (DUCKSTORE_MEMORY_TRIM);
 * when no pool job (ds_pool_activity) ran or started since its last look but
 * some did since the last trim, it calls malloc_trim(0), which returns the free pages
 * of every arena. Busy servers are never trimmed (the look costs two atomic
 * loads); an idle one is trimmed once per burst. DuckDB's own memory is not
 * glibc's (the engine returns it itself: allocator_flush_threshold, and the
 * idle detach of projects). A no-op where the C library is not glibc.
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
