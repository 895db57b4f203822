/* jwt: HS256 access tokens, issued and verified (libjwt 1.10 for the
 * encoding; every check by hand, since libjwt 1.10 checks no claims). */
#ifndef WATTLINE_JWT_H
#define WATTLINE_JWT_H

#include <stdbool.h>
#include <stddef.h>

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
