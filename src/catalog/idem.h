/*
 * idem.h - the records of idempotent writes in the global catalog (table
 * idempotency): for each (scope, client key) the hash of the request that
 * first used it and the answer it got, so a repeat answers the same.
 *
 * DESIGN
 * A record is written once the first request's answer is known (cmd/idem.c
 * decides which answers are kept) and read by every request that presents the
 * key again. Records older than the TTL count as absent and are removed by
 * later writes. The answer body is opaque bytes (JSON for REST, a serialized
 * DriverResponse for the driver), stored base64-encoded. Thread-safe (the
 * catalog mutex).
 */
#ifndef DS_CATALOG_IDEM_H
#define DS_CATALOG_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"

typedef struct {
    const char *scope;        /* who used the key: a project id, or "*admin" */
    const char *key;          /* the client's Idempotency-Key */
    const char *request_hash; /* 64 hex digits */
    int status;               /* the answer's status (HTTP) */
    const char *content_type;
    const char *body; /* the answer's bytes */
    size_t body_len;
    int64_t created_at;
} ds_idem_rec_t;

/* Creates the table when missing; after ds_catalog_open. */
ds_status_t ds_catalog_idem_open(ds_err_t *err);
/* The record of (scope, key) created at or after not_before, into out (strings in arena); DS_NOT_FOUND when none. */
ds_status_t ds_catalog_idem_get(ds_arena_t *arena, const char *scope, const char *key, int64_t not_before,
                                ds_idem_rec_t *out, ds_err_t *err);
/* Stores rec, replacing an earlier record of (scope, key); removes records older than not_before. */
ds_status_t ds_catalog_idem_put(const ds_idem_rec_t *rec, int64_t not_before, ds_err_t *err);

#endif
