/* password: scrypt password hashes, and the process-wide bound on how many
 * are computed at once (the caller creates and owns the limiter). */
#ifndef WATTLINE_PASSWORD_H
#define WATTLINE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
