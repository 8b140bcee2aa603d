/*
 * keys.h - API keys: generation, hashing, constant-time comparison.
 *
 * Keys are shown once and stored only as SHA-256 hex hashes. Comparisons of a
 * presented key against a stored hash hash the key first and compare the two
 * hashes in constant time (libsodium's sodium_memcmp). Thread-safe after
 * ds_keys_init().
 */
#ifndef DS_CORE_KEYS_H
#define DS_CORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define DS_KEY_HASH_HEX 65 /* 64 hex digits + NUL */
#define DS_KEY_MAX 160

/* Initializes libsodium. Returns false when the library cannot start. */
bool ds_keys_init(void);
/*
 * Writes a new random key "<prefix>-<43 url-safe base64 chars>" into out.
 * prefix may be "" (then no dash). Returns false when outsz is too small.
 */
bool ds_key_generate(const char *prefix, char *out, size_t outsz);
/* Writes the SHA-256 of key as 64 lowercase hex digits plus NUL into hex. */
void ds_key_hash(const char *key, char hex[DS_KEY_HASH_HEX]);
/* True when SHA-256(key) equals hash_hex; constant time in the hash. */
bool ds_key_matches(const char *key, const char *hash_hex);
/* Constant-time equality of two NUL-terminated strings of any length. */
bool ds_key_equal(const char *a, const char *b);

#endif
