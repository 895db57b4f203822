#include "crypto.h"

#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.h"

bool crypto_random(unsigned char *buf, size_t n)
{
    if (n == 0)
        return true;
    if (n > INT_MAX)
        return false;
    return RAND_bytes(buf, (int)n) == 1;
}

bool crypto_token_new(char out[CRYPTO_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    _Static_assert(CRYPTO_TOKEN_LEN == 43, "32 bytes are 43 base64url characters");
    out[0] = '\0';
    if (!crypto_random(raw, sizeof raw))
        return false;
    base64_encode(raw, sizeof raw, BASE64_URL, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return true;
}

void crypto_sha256_hex(const char *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    out[0] = '\0';
    /* SHA256() only fails if OpenSSL cannot fetch the digest at all; the
     * empty string then matches no stored digest, which fails closed. */
    if (SHA256((const unsigned char *)data, len, md) == NULL)
        return;
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[CRYPTO_SHA256_HEX_LEN] = '\0';
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
