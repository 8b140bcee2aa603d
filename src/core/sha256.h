/*
 * sha256.h - streaming SHA-256 over OpenSSL's libcrypto.
 *
 * Uploads are hashed while they are received, so the hash runs at the speed
 * of the network: OpenSSL's SHA-256 (SHA extensions / AVX2 code paths) is
 * several times faster than libsodium's portable one on the same machine
 * (docs/performance.md). Digests are written as 64 lowercase hex digits.
 * A hasher is used by one thread at a time; different hashers are independent.
 */
#ifndef DS_CORE_SHA256_H
#define DS_CORE_SHA256_H

#include <stdbool.h>
#include <stddef.h>

#define DS_SHA256_HEX 65 /* 64 hex digits + NUL */

typedef struct ds_sha256 ds_sha256_t;

/* A fresh hasher (free with ds_sha256_free), or NULL when memory is exhausted. */
ds_sha256_t *ds_sha256_new(void);
/* Adds n bytes of data. False when libcrypto refused (the digest is then unusable). */
bool ds_sha256_update(ds_sha256_t *h, const void *data, size_t n);
/* Finishes the digest into hex; the hasher takes no more data afterwards. False on a libcrypto failure. */
bool ds_sha256_final_hex(ds_sha256_t *h, char hex[DS_SHA256_HEX]);
/* Frees *h (NULL is fine) and sets it to NULL. */
void ds_sha256_free(ds_sha256_t **h);
/* One-shot digest of data into hex; false on a libcrypto failure. */
bool ds_sha256_hex(const void *data, size_t n, char hex[DS_SHA256_HEX]);

#endif
