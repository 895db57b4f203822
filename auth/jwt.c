#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "../base/base64.h"
#include "../base/crypto.h"

#define JWT_JTI_BYTES 16
#define JWT_HMAC_LEN  32
/* 9999-12-31T23:59:59Z: integer claims beyond this are garbage, and the bound
 * keeps the leeway arithmetic far from overflow. */
#define JWT_TIME_MAX   253402300799LL
#define JWT_TOKEN_TYPE "access"

static bool is_decimal_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_role(const char *s)
{
    return strcmp(s, "admin") == 0 || strcmp(s, "client") == 0;
}

static bool secret_usable(const unsigned char *secret, size_t secret_len)
{
    return secret != NULL && secret_len >= JWT_SECRET_MIN && secret_len <= INT_MAX;
}

static bool jwt_add_claims(jwt_t *jwt, const char *iss, const char *sub, const char *role,
                           const char *jti, long long iat, long long exp)
{
    return jwt_add_grant(jwt, "iss", iss) == 0 && jwt_add_grant(jwt, "sub", sub) == 0 &&
           jwt_add_grant(jwt, "role", role) == 0 && jwt_add_grant(jwt, "jti", jti) == 0 &&
           jwt_add_grant(jwt, "typ", JWT_TOKEN_TYPE) == 0 &&
           jwt_add_grant_int(jwt, "iat", (long)iat) == 0 &&
           jwt_add_grant_int(jwt, "exp", (long)exp) == 0;
}

bool jwt_issue(const unsigned char *secret, size_t secret_len, const char *iss, const char *sub,
               const char *role, long long now, long long ttl, char **token,
               struct jwt_claims *claims_out)
{
    *token = NULL;
    if (!secret_usable(secret, secret_len) || iss == NULL || iss[0] == '\0' || sub == NULL ||
        !is_decimal_id(sub) || role == NULL || !is_role(role))
        return false;
    /* libjwt stores integer grants as long. */
    if (now < 0 || ttl <= 0 || now > JWT_TIME_MAX || ttl > JWT_TIME_MAX - now ||
        now + ttl > LONG_MAX)
        return false;

    unsigned char jti_raw[JWT_JTI_BYTES];
    char jti[BASE64_LEN(JWT_JTI_BYTES) + 1];
    if (!crypto_random(jti_raw, sizeof jti_raw))
        return false;
    base64_encode(jti_raw, sizeof jti_raw, BASE64_URL, jti);

    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return false;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int)secret_len) == 0 &&
        jwt_add_claims(jwt, iss, sub, role, jti, now, now + ttl))
        *token = jwt_encode_str(jwt); /* malloc'd by libjwt: the caller frees */
    jwt_free(jwt);
    if (*token == NULL)
        return false;

    if (claims_out != NULL) {
        memset(claims_out, 0, sizeof *claims_out);
        snprintf(claims_out->sub, sizeof claims_out->sub, "%s", sub);
        snprintf(claims_out->role, sizeof claims_out->role, "%s", role);
        snprintf(claims_out->jti, sizeof claims_out->jti, "%s", jti);
        claims_out->iat = now;
        claims_out->exp = now + ttl;
    }
    return true;
}

/* The three segments of a compact JWS, pointing into the token. */
struct jwt_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *signature;
    size_t signature_len;
};

static bool jwt_split(const char *token, size_t len, struct jwt_parts *parts)
{
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return false;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return false;
    parts->header = token;
    parts->header_len = (size_t)(dot1 - token);
    parts->payload = dot1 + 1;
    parts->payload_len = (size_t)(dot2 - parts->payload);
    parts->signature = dot2 + 1;
    parts->signature_len = len - (size_t)(parts->signature - token);
    return parts->header_len > 0 && parts->payload_len > 0 && parts->signature_len > 0;
}

/* base64url segment -> JSON object (duplicate keys rejected), or NULL. */
static json_t *jwt_segment_json(const char *segment, size_t len)
{
    unsigned char raw[JWT_HEADER_MAX];
    size_t raw_len;
    if (!base64_decode(segment, len, BASE64_URL, raw, sizeof raw, &raw_len))
        return NULL;
    json_t *json = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    if (json != NULL && !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }
    return json;
}

static enum jwt_verdict jwt_check_header(const struct jwt_parts *parts)
{
    static const char *const forbidden[] = {"crit", "jku", "jwk", "x5u", "x5c"};
    json_t *header = jwt_segment_json(parts->header, parts->header_len);
    if (header == NULL)
        return JWT_MALFORMED;

    enum jwt_verdict verdict = JWT_VALID;
    const json_t *alg = json_object_get(header, "alg");
    const json_t *typ = json_object_get(header, "typ");
    /* Exactly "HS256": no "none", no case games, no asymmetric algorithms
     * whose "public key" would be our HMAC secret. */
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        verdict = JWT_BAD_ALG;
    else if (typ != NULL && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        verdict = JWT_BAD_CLAIMS;
    for (size_t i = 0; verdict == JWT_VALID && i < sizeof forbidden / sizeof forbidden[0]; i++)
        if (json_object_get(header, forbidden[i]) != NULL)
            verdict = JWT_BAD_CLAIMS;
    json_decref(header);
    return verdict;
}

/* HMAC-SHA256 over "header.payload", compared in constant time. libjwt 1.10
 * checks the signature too, but with strcmp on the re-encoded string. */
static bool jwt_signature_ok(const unsigned char *secret, size_t secret_len,
                             const struct jwt_parts *parts)
{
    unsigned char given[JWT_HMAC_LEN];
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int expected_len = 0;
    size_t given_len;
    size_t signed_len = parts->header_len + 1 + parts->payload_len;

    if (!base64_decode(parts->signature, parts->signature_len, BASE64_URL, given, sizeof given,
                       &given_len) ||
        given_len != sizeof given)
        return false;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)parts->header,
             signed_len, expected, &expected_len) == NULL ||
        expected_len != sizeof given)
        return false;
    return CRYPTO_memcmp(given, expected, sizeof given) == 0;
}

/* libjwt's own decode with the key, as a second, independent check. */
static enum jwt_verdict jwt_libjwt_check(const unsigned char *secret, size_t secret_len,
                                         const char *token)
{
    jwt_t *jwt = NULL;
    enum jwt_verdict verdict = JWT_VALID;
    if (jwt_decode(&jwt, token, secret, (int)secret_len) != 0 || jwt == NULL)
        verdict = JWT_BAD_SIGNATURE;
    else if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        verdict = JWT_BAD_ALG;
    jwt_free(jwt);
    return verdict;
}

/* An integer claim within [0, JWT_TIME_MAX]; floats and strings are not. */
static bool claim_time(const json_t *claims, const char *name, long long *out)
{
    const json_t *value = json_object_get(claims, name);
    if (!json_is_integer(value))
        return false;
    json_int_t t = json_integer_value(value);
    if (t < 0 || t > JWT_TIME_MAX)
        return false;
    *out = (long long)t;
    return true;
}

static const char *claim_string(const json_t *claims, const char *name)
{
    const json_t *value = json_object_get(claims, name);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

static enum jwt_verdict jwt_check_claims(const json_t *claims, const char *iss, long long now,
                                         struct jwt_claims *out)
{
    long long exp = 0, iat = 0, nbf = 0;
    const char *got_iss = claim_string(claims, "iss");
    const char *typ = claim_string(claims, "typ");
    const char *sub = claim_string(claims, "sub");
    const char *role = claim_string(claims, "role");
    const char *jti = claim_string(claims, "jti");

    if (!claim_time(claims, "exp", &exp) || !claim_time(claims, "iat", &iat))
        return JWT_BAD_CLAIMS;
    if (json_object_get(claims, "nbf") != NULL &&
        (!claim_time(claims, "nbf", &nbf) || nbf > now + JWT_LEEWAY_S))
        return JWT_BAD_CLAIMS;
    if (iat > now + JWT_LEEWAY_S)
        return JWT_BAD_CLAIMS;
    if (got_iss == NULL || strcmp(got_iss, iss) != 0 || typ == NULL ||
        strcmp(typ, JWT_TOKEN_TYPE) != 0)
        return JWT_BAD_CLAIMS;
    if (sub == NULL || !is_decimal_id(sub) || role == NULL || !is_role(role) || jti == NULL ||
        jti[0] == '\0' || strlen(jti) >= sizeof out->jti)
        return JWT_BAD_CLAIMS;
    if (now > exp + JWT_LEEWAY_S)
        return JWT_EXPIRED;

    snprintf(out->sub, sizeof out->sub, "%s", sub);
    snprintf(out->role, sizeof out->role, "%s", role);
    snprintf(out->jti, sizeof out->jti, "%s", jti);
    out->iat = iat;
    out->exp = exp;
    return JWT_VALID;
}

enum jwt_verdict jwt_verify(const unsigned char *secret, size_t secret_len, const char *iss,
                            const char *token, long long now, struct jwt_claims *out)
{
    struct jwt_claims claims;
    memset(&claims, 0, sizeof claims);
    if (out != NULL)
        *out = claims;

    /* Never verify with an empty or short key: an HMAC with a known key
     * proves nothing. */
    if (!secret_usable(secret, secret_len))
        return JWT_BAD_SIGNATURE;
    if (token == NULL || iss == NULL || now < 0 || now > JWT_TIME_MAX)
        return JWT_MALFORMED;
    size_t len = strnlen(token, JWT_HEADER_MAX + 1);
    struct jwt_parts parts;
    if (len > JWT_HEADER_MAX || !jwt_split(token, len, &parts))
        return JWT_MALFORMED;

    enum jwt_verdict verdict = jwt_check_header(&parts);
    if (verdict != JWT_VALID)
        return verdict;
    if (!jwt_signature_ok(secret, secret_len, &parts))
        return JWT_BAD_SIGNATURE;
    verdict = jwt_libjwt_check(secret, secret_len, token);
    if (verdict != JWT_VALID)
        return verdict;

    /* Claims come from our own parse, where integer and float differ. */
    json_t *payload = jwt_segment_json(parts.payload, parts.payload_len);
    if (payload == NULL)
        return JWT_MALFORMED;
    verdict = jwt_check_claims(payload, iss, now, &claims);
    json_decref(payload);
    if (verdict == JWT_VALID && out != NULL)
        *out = claims;
    return verdict;
}
