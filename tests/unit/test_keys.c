/*
 * test_keys.c - API keys: generation format and uniqueness, SHA-256 hashing,
 * matching against stored hashes, equality.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/keys.h"

static void init_sodium(void) { cr_assert(ds_keys_init(), "libsodium failed to start"); }

TestSuite(keys, .init = init_sodium);

static bool is_url_safe_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

Test(keys, init_is_idempotent) { cr_assert(ds_keys_init()); }

Test(keys, hash_matches_known_sha256_vectors)
{
    char hex[DS_KEY_HASH_HEX];
    ds_key_hash("abc", hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ds_key_hash("", hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ds_key_hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(keys, generated_key_has_prefix_and_43_url_safe_chars)
{
    char key[DS_KEY_MAX];
    cr_assert(ds_key_generate("dsk", key, sizeof(key)));
    cr_assert_eq(strncmp(key, "dsk-", 4), 0, "key: %s", key);
    cr_assert_eq(strlen(key), 4 + 43, "key: %s", key);
    for (const char *p = key + 4; *p; p++)
        cr_assert(is_url_safe_b64(*p), "character '%c' in %s", *p, key);
}

Test(keys, empty_prefix_means_no_dash)
{
    char key[DS_KEY_MAX];
    cr_assert(ds_key_generate("", key, sizeof(key)));
    cr_assert_eq(strlen(key), 43, "key: %s", key);
    for (const char *p = key; *p; p++)
        cr_assert(is_url_safe_b64(*p), "character '%c' in %s", *p, key);
}

Test(keys, generated_keys_are_unique)
{
    enum { N = 500 };
    static char keys[N][DS_KEY_MAX];
    for (int i = 0; i < N; i++)
        cr_assert(ds_key_generate("p", keys[i], sizeof(keys[i])));
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            cr_assert_str_neq(keys[i], keys[j], "keys %d and %d are equal", i, j);
}

Test(keys, generate_refuses_a_small_buffer)
{
    char key[64];
    memset(key, 'x', sizeof(key));
    /* "ab-" + 43 + NUL = 47 bytes exactly. */
    cr_assert_not(ds_key_generate("ab", key, 46));
    cr_assert_str_eq(key, "", "out is emptied on failure");
    cr_assert(ds_key_generate("ab", key, 47));
    cr_assert_eq(strlen(key), 46);
    cr_assert_not(ds_key_generate("", key, 43));
    cr_assert(ds_key_generate("", key, 44));
}

Test(keys, key_matches_its_own_hash_only)
{
    char key[DS_KEY_MAX], other[DS_KEY_MAX], hex[DS_KEY_HASH_HEX];
    cr_assert(ds_key_generate("adm", key, sizeof(key)));
    cr_assert(ds_key_generate("adm", other, sizeof(other)));
    ds_key_hash(key, hex);
    cr_assert(ds_key_matches(key, hex));
    cr_assert_not(ds_key_matches(other, hex));

    /* A one-character change in the key is a mismatch. */
    size_t n = strlen(key);
    key[n - 1] = key[n - 1] == 'A' ? 'B' : 'A';
    cr_assert_not(ds_key_matches(key, hex));
}

Test(keys, matches_rejects_malformed_hashes)
{
    char hex[DS_KEY_HASH_HEX];
    ds_key_hash("k", hex);
    char shortened[DS_KEY_HASH_HEX];
    memcpy(shortened, hex, 63);
    shortened[63] = '\0';
    cr_assert_not(ds_key_matches("k", shortened));
    cr_assert_not(ds_key_matches("k", ""));
    cr_assert_not(ds_key_matches("k", NULL));
    cr_assert_not(ds_key_matches(NULL, hex));
    char not_hex[DS_KEY_HASH_HEX];
    memcpy(not_hex, hex, sizeof(not_hex));
    not_hex[10] = 'z';
    cr_assert_not(ds_key_matches("k", not_hex));
    char longer[DS_KEY_HASH_HEX + 1];
    memcpy(longer, hex, 64);
    longer[64] = '0';
    longer[65] = '\0';
    cr_assert_not(ds_key_matches("k", longer));
    cr_assert(ds_key_matches("k", hex), "the unmodified hash still matches");
}

Test(keys, equal_compares_whole_strings)
{
    cr_assert(ds_key_equal("secret-key", "secret-key"));
    cr_assert(ds_key_equal("", ""));
    cr_assert_not(ds_key_equal("secret-key", "secret-kez"));
    cr_assert_not(ds_key_equal("secret-key", "secret-key2"));
    cr_assert_not(ds_key_equal("secret", "secret-key"));
    cr_assert_not(ds_key_equal("", "a"));
    cr_assert_not(ds_key_equal(NULL, "a"));
    cr_assert_not(ds_key_equal(NULL, NULL), "a missing key never authenticates");
}
