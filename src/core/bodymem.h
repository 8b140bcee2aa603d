/*
 * bodymem.h - one budget for the request bodies the server holds in memory
 * (DUCKSTORE_BODY_MEMORY), shared by every transport: REST JSON and bridge
 * bodies while they are read and until their request ends, gRPC
 * DriverRequests from their arrival until their answer.
 *
 * A transport takes a body's bytes before it keeps them and gives them back
 * when it frees them; a take that would pass the limit takes nothing and the
 * request is refused (503 / RESOURCE_EXHAUSTED) without running. Thread-safe
 * (one atomic counter).
 */
#ifndef DS_CORE_BODYMEM_H
#define DS_CORE_BODYMEM_H

#include <stdbool.h>
#include <stdint.h>

/* Sets the limit (bytes); every transport's start sets the configured one. */
void ds_bodymem_set_limit(int64_t limit);
int64_t ds_bodymem_limit(void);
/* Takes n bytes; false (nothing taken) when the bodies held would pass the limit. */
bool ds_bodymem_take(int64_t n);
/* Gives back n bytes taken before. */
void ds_bodymem_give(int64_t n);
/* Bytes held now (the metric duckstore_http_body_bytes). */
int64_t ds_bodymem_held(void);

#endif
