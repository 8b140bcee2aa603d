/*
 * sha256.c - streaming SHA-256 over OpenSSL's EVP interface (see sha256.h).
 * The EVP context is the hasher itself; EVP picks the fastest implementation
 * the CPU supports at run time.
 */
#include "core/sha256.h"

#include <openssl/evp.h>

struct ds_sha256 {
    EVP_MD_CTX *ctx;
    bool ok; /* false once libcrypto refused a step */
};

ds_sha256_t *ds_sha256_new(void)
{
    ds_sha256_t *h = OPENSSL_zalloc(sizeof(*h));
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx) {
        OPENSSL_free(h);
        return NULL;
    }
    h->ok = EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1;
    return h;
}

bool ds_sha256_update(ds_sha256_t *h, const void *data, size_t n)
{
    if (h->ok && n > 0)
        h->ok = EVP_DigestUpdate(h->ctx, data, n) == 1;
    return h->ok;
}

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = '\0';
}

bool ds_sha256_final_hex(ds_sha256_t *h, char hex[DS_SHA256_HEX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hex[0] = '\0';
    if (h->ok)
        h->ok = EVP_DigestFinal_ex(h->ctx, d, &n) == 1 && n == 32;
    if (!h->ok)
        return false;
    to_hex(d, n, hex);
    h->ok = false; /* finished: no more data */
    return true;
}

void ds_sha256_free(ds_sha256_t **h)
{
    if (!h || !*h)
        return;
    EVP_MD_CTX_free((*h)->ctx);
    OPENSSL_free(*h);
    *h = NULL;
}

bool ds_sha256_hex(const void *data, size_t n, char hex[DS_SHA256_HEX])
{
    ds_sha256_t *h = ds_sha256_new();
    bool ok = h && ds_sha256_update(h, data, n) && ds_sha256_final_hex(h, hex);
    ds_sha256_free(&h);
    if (!ok)
        hex[0] = '\0';
    return ok;
}
