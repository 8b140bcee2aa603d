/*
 * test_sha256.c - core/sha256.c: the digests uploads and exports record are
 * SHA-256 (published test vectors), whether the data arrives at once or in
 * pieces of any size, and a finished hasher takes no more data.
 */
#include "core/sha256.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(sha256, published_vectors)
{
    char hex[DS_SHA256_HEX];
    cr_assert(ds_sha256_hex("", 0, hex));
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cr_assert(ds_sha256_hex("abc", 3, hex));
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cr_assert(ds_sha256_hex(two, strlen(two), hex));
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(sha256, pieces_of_any_size_give_the_same_digest)
{
    /* One million 'a' (the FIPS 180-2 long vector), fed in uneven pieces as a network delivers them. */
    size_t n = 1000000;
    char *a = malloc(n);
    cr_assert_not_null(a);
    memset(a, 'a', n);
    ds_sha256_t *h = ds_sha256_new();
    cr_assert_not_null(h);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        cr_assert(ds_sha256_update(h, a + off, k));
        off += k;
        step = step * 7 % 65537 + 1;
    }
    char hex[DS_SHA256_HEX];
    cr_assert(ds_sha256_final_hex(h, hex));
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    cr_assert_not(ds_sha256_update(h, "x", 1), "a finished hasher must refuse more data");
    ds_sha256_free(&h);
    cr_assert_null(h);
    ds_sha256_free(&h);
    free(a);
}
