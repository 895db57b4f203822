/* crypto: the one module that touches OpenSSL primitives and libjwt.
 *
 * Random secrets, SHA-256 digests of tokens, constant-time comparison,
 * scrypt password hashes and HS256 JWTs. Everything here is pure (no I/O,
 * no globals) except the process-wide semaphore that bounds concurrent
 * scrypt work, which the caller creates and owns (struct password_limiter).
 */
#ifndef WATTLINE_CRYPTO_H
#define WATTLINE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random tokens and digests ---------------------------------------- */

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

/* ---- passwords ---------------------------------------------------------- */

/* Stored form: "$scrypt$ln=17,r=8,p=1$<salt b64>$<hash b64>" (self-describing,
 * so parameters can be raised later). */
#define PASSWORD_HASH_MAX 160

struct password_params {
    int log2_n; /* N = 2^log2_n */
    int r;
    int p;
};

/* OWASP's current minimum for scrypt: N=2^17, r=8, p=1. */
extern const struct password_params PASSWORD_PARAMS_DEFAULT;

/* Hashes password with a fresh 16-byte salt into out (NUL-terminated).
 * Returns false on failure (out is then empty), including parameters outside
 * the accepted bounds: 1 <= log2_n <= 22, 1 <= r <= 32, 1 <= p <= 16, and at
 * most 256 MiB of scrypt memory (128 * r * (N + p + 2) bytes). */
bool password_hash(const char *password, size_t len, const struct password_params *params,
                   char out[PASSWORD_HASH_MAX]);

enum password_verdict {
    PASSWORD_MISMATCH = 0,
    PASSWORD_MATCH,
    PASSWORD_MATCH_REHASH, /* correct, but stored with weaker parameters */
    PASSWORD_BAD_HASH,     /* the stored string cannot be parsed */
};

/* Verifies password against a stored hash; compares with CRYPTO_memcmp.
 * When stored is NULL (unknown user), does the same work against a dummy
 * hash and returns PASSWORD_MISMATCH, so timing does not reveal the user.
 * REHASH when any stored parameter is below `current` (NULL means the
 * default). A failed derivation (out of memory) fails closed as MISMATCH. */
enum password_verdict password_verify(const char *password, size_t len, const char *stored,
                                      const struct password_params *current);

/* Parses the parameters of a stored hash; false when malformed or outside
 * the bounds above (a corrupted row must not make us allocate gigabytes). */
bool password_parse_params(const char *stored, struct password_params *out);

/* ---- bounded concurrency for scrypt ------------------------------------- */

/* At most `slots` hashes run at once; others wait up to wait_ms, then give up
 * (the caller answers 503). 128 MiB per hash at the default parameters.
 * create returns NULL when slots < 1 or on allocation failure; free(NULL) is
 * a no-op; wait_ms <= 0 only tries; leave once per successful enter. */
struct password_limiter;
struct password_limiter *password_limiter_create(int slots);
void password_limiter_free(struct password_limiter *limiter);
bool password_limiter_enter(struct password_limiter *limiter, int wait_ms);
void password_limiter_leave(struct password_limiter *limiter);

/* ---- JWT (HS256, libjwt 1.10) ------------------------------------------- */

#define JWT_SECRET_MIN 32
#define JWT_LEEWAY_S   60   /* clock skew allowed on exp, iat and nbf */
#define JWT_HEADER_MAX 4096 /* Authorization headers longer than this are 401 */

enum jwt_type { JWT_TYPE_ACCESS = 0 };

struct jwt_claims {
    char sub[32];  /* user id as a decimal string */
    char role[16]; /* "admin" | "client" */
    char jti[48];
    long long iat;
    long long exp;
};

enum jwt_verdict {
    JWT_VALID = 0,
    JWT_MALFORMED, /* not three segments, bad base64/JSON, too long */
    JWT_BAD_ALG,   /* header alg is not exactly "HS256" */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_BAD_CLAIMS, /* exp/iat/nbf missing or not integers, iat/nbf in the future,
                       iss or token type wrong, sub/role/jti invalid, forbidden
                       header (crit, jku, jwk, x5u, x5c; typ other than "JWT") */
};

/* Issues an access token for (sub, role) valid for ttl seconds from now.
 * Writes a malloc'd string to *token (caller frees with free()) and fills
 * *claims_out when not NULL. iss is the issuer string ("wattline"). Returns
 * false (and *token = NULL) on failure, including a secret shorter than
 * JWT_SECRET_MIN, sub not 1..31 decimal digits, role not admin|client,
 * an empty iss or ttl <= 0. */
bool jwt_issue(const unsigned char *secret, size_t secret_len, const char *iss, const char *sub,
               const char *role, long long now, long long ttl, char **token,
               struct jwt_claims *claims_out);

/* Verifies a token by hand (libjwt 1.10 checks no claims): a secret shorter
 * than JWT_SECRET_MIN (or empty) is JWT_BAD_SIGNATURE; alg exactly HS256;
 * signature checked in constant time, then again by libjwt; exp present,
 * integer, not past (60 s leeway); iat/nbf integers not in the future (60 s
 * leeway); iss and token type ("typ": "access") exact; sub 1..31 digits; role
 * admin|client; jti a non-empty string; crit/jku/jwk/x5u/x5c headers and a
 * header typ other than "JWT" rejected; duplicate JSON keys and non-canonical
 * base64url are JWT_MALFORMED; tokens longer than JWT_HEADER_MAX rejected
 * before decoding. out may be NULL; it is filled only on JWT_VALID and
 * zeroed otherwise. */
enum jwt_verdict jwt_verify(const unsigned char *secret, size_t secret_len, const char *iss,
                            const char *token, long long now, struct jwt_claims *out);

#endif
