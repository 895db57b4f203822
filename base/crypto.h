/* crypto: the OpenSSL primitives every layer may use: random bytes, opaque
 * tokens, SHA-256 digests of tokens and constant-time comparison. Pure: no
 * I/O, no globals. (Password hashing and JWTs are auth/'s.) */
#ifndef WATTLINE_CRYPTO_H
#define WATTLINE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

/* Fills buf with n cryptographically random bytes. Returns false on failure. */
bool crypto_random(unsigned char *buf, size_t n);

/* A new opaque secret: 32 random bytes, base64url without padding (43 chars).
 * out must hold CRYPTO_TOKEN_LEN + 1 bytes. */
#define CRYPTO_TOKEN_LEN 43
bool crypto_token_new(char out[CRYPTO_TOKEN_LEN + 1]);

/* SHA-256 of a token, as 64 lowercase hex characters plus NUL. out is ""
 * only if OpenSSL cannot compute digests at all (it then matches nothing). */
#define CRYPTO_SHA256_HEX_LEN 64
void crypto_sha256_hex(const char *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Constant-time equality of two equally long buffers (CRYPTO_memcmp). */
bool crypto_equal(const void *a, const void *b, size_t n);

#endif
