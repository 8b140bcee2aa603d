/*
 * keys.c - API key generation, hashing and comparison. See keys.h.
 *
 * DESIGN
 * A key is 32 random bytes from libsodium's CSPRNG, written as 43 characters
 * of URL-safe base64 without padding, after an optional "<prefix>-". Only the
 * SHA-256 of the whole key string (prefix included) is ever stored, as 64
 * lowercase hex digits.
 *
 * Comparisons never use strcmp on secrets. ds_key_matches hashes the presented
 * key and compares the 32-byte digests with sodium_memcmp; ds_key_equal hashes
 * both sides first, so it takes the same time for any two strings of given
 * lengths and reveals nothing about their content when the lengths differ.
 * Digests and raw random bytes are wiped before returning.
 *
 * Thread-safe: libsodium's functions used here are, once sodium_init() ran.
 */
#include "core/keys.h"

#include <sodium.h>
#include <string.h>

#define DS_KEY_RANDOM_BYTES 32
#define DS_KEY_B64_LEN 43 /* base64 of 32 bytes, URL-safe, no padding */

bool ds_keys_init(void)
{
    /* 0 = initialized now, 1 = already initialized, -1 = failure. */
    return sodium_init() >= 0;
}

bool ds_key_generate(const char *prefix, char *out, size_t outsz)
{
    unsigned char raw[DS_KEY_RANDOM_BYTES];
    char b64[sodium_base64_ENCODED_LEN(DS_KEY_RANDOM_BYTES,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    size_t plen;
    if (!out || outsz == 0)
        return false;
    out[0] = '\0';
    if (!prefix)
        prefix = "";
    plen = strlen(prefix);
    if (plen + (plen ? 1 : 0) + DS_KEY_B64_LEN + 1 > outsz)
        return false;
    /* Cheap when already initialized, and makes a forgotten ds_keys_init() harmless. */
    if (sodium_init() < 0)
        return false;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    if (plen) {
        memcpy(out, prefix, plen);
        out[plen++] = '-';
    }
    memcpy(out + plen, b64, DS_KEY_B64_LEN + 1);
    sodium_memzero(b64, sizeof(b64));
    return true;
}

static void digest(const char *s, unsigned char d[crypto_hash_sha256_BYTES])
{
    if (!s)
        s = "";
    crypto_hash_sha256(d, (const unsigned char *)s, strlen(s));
}

void ds_key_hash(const char *key, char hex[DS_KEY_HASH_HEX])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    digest(key, d);
    sodium_bin2hex(hex, DS_KEY_HASH_HEX, d, sizeof(d));
    sodium_memzero(d, sizeof(d));
}

bool ds_key_matches(const char *key, const char *hash_hex)
{
    unsigned char want[crypto_hash_sha256_BYTES], got[crypto_hash_sha256_BYTES];
    size_t binlen = 0;
    const char *end = NULL;
    bool ok = false;
    if (!key || !hash_hex || strlen(hash_hex) != DS_KEY_HASH_HEX - 1)
        return false;
    if (sodium_hex2bin(want, sizeof(want), hash_hex, DS_KEY_HASH_HEX - 1, NULL, &binlen, &end) != 0 ||
        binlen != sizeof(want) || *end != '\0')
        goto done;
    digest(key, got);
    ok = sodium_memcmp(want, got, sizeof(got)) == 0;
done:
    sodium_memzero(got, sizeof(got));
    sodium_memzero(want, sizeof(want));
    return ok;
}

bool ds_key_equal(const char *a, const char *b)
{
    unsigned char da[crypto_hash_sha256_BYTES], db[crypto_hash_sha256_BYTES];
    bool eq;
    /* A missing key never equals anything, not even another missing key. */
    if (!a || !b)
        return false;
    digest(a, da);
    digest(b, db);
    eq = sodium_memcmp(da, db, sizeof(da)) == 0;
    sodium_memzero(da, sizeof(da));
    sodium_memzero(db, sizeof(db));
    return eq;
}
