/* fuzz_jwt: auth/jwt's verifier, with a fixed secret and an injected clock.
 *
 * The first byte picks how the rest becomes a token:
 *   0  the rest is the token as an Authorization header would carry it
 *      (the corpus holds tokens made by jwt_issue, which verify);
 *   1  the rest is "HEADER\nPAYLOAD": two JSON texts that the target encodes
 *      and signs with the secret, so that the claim checks behind the
 *      signature are reached with any header and claims.
 *
 * Properties, for every token jwt_verify accepts (abort on violation),
 * checked with OpenSSL's own base64 and HMAC rather than the module's:
 *  - it is signed with the secret, HMAC-SHA256, and its header's alg is
 *    exactly "HS256";
 *  - exp is an integer and NOW is at most exp + JWT_LEEWAY_S (unexpired);
 *  - sub is a string of 1..31 decimal digits, role is admin or client, iss
 *    is ours, and the claims handed back are the token's;
 * and for every token: the verdict does not depend on out, and out is
 * zeroed unless the token is valid.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../auth/jwt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char SECRET[] = "fuzz-secret-0123456789-abcdefghijklmnop";
#define SECRET_LEN (sizeof SECRET - 1)
static const char ISS[] = "wattline";
static const long long NOW = 1700000000LL; /* the injected clock */

static void check(int ok, const char *what, const char *token)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jwt: %s: %s\n", what, token);
        abort();
    }
}

/* ---- OpenSSL's base64url, independent of base/base64 -------------------- */

static char *b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        abort();
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

/* Decodes a base64url segment into a malloc'd, NUL-terminated buffer, or NULL. */
static unsigned char *unb64url(const char *in, size_t n, size_t *out_len)
{
    size_t padded = (n + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    unsigned char *out = malloc(padded + 1);
    if (!tmp || !out)
        abort();
    size_t pad = padded - n;
    for (size_t i = 0; i < padded; i++) {
        char c = i < n ? in[i] : '=';
        tmp[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    int len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded);
    free(tmp);
    if (len < 0 || (size_t)len < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)len - pad;
    out[*out_len] = '\0';
    return out;
}

static json_t *segment_json(const char *seg, size_t n)
{
    size_t len;
    unsigned char *raw = unb64url(seg, n, &len);
    json_t *j = raw ? json_loadb((const char *)raw, len, 0, NULL) : NULL;
    free(raw);
    return j;
}

/* ---- the properties of an accepted token --------------------------------- */

static void check_accepted(const char *token, const struct jwt_claims *claims)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.')) {
        check(0, "accepted without three segments", token);
        return;
    }

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), SECRET, (int)SECRET_LEN, (const unsigned char *)token,
         (size_t)(dot2 - token), mac, &mac_len);
    size_t sig_len;
    unsigned char *sig = unb64url(dot2 + 1, strlen(dot2 + 1), &sig_len);
    check(sig && sig_len == 32 && mac_len == 32 && !CRYPTO_memcmp(sig, mac, 32),
          "accepted without our HMAC-SHA256", token);
    free(sig);

    json_t *header = segment_json(token, (size_t)(dot1 - token));
    const char *alg = json_string_value(json_object_get(header, "alg"));
    check(alg && !strcmp(alg, "HS256"), "accepted with an alg other than HS256", token);
    json_decref(header);

    json_t *payload = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    check(json_is_object(payload), "accepted without a JSON object payload", token);
    json_t *exp = json_object_get(payload, "exp");
    check(json_is_integer(exp) && NOW <= json_integer_value(exp) + JWT_LEEWAY_S,
          "accepted an expired token", token);
    const char *sub = json_string_value(json_object_get(payload, "sub"));
    size_t n = sub ? strlen(sub) : 0;
    check(n >= 1 && n <= 31 && strspn(sub, "0123456789") == n, "accepted a sub that is not an id",
          token);
    const char *role = json_string_value(json_object_get(payload, "role"));
    check(role && (!strcmp(role, "admin") || !strcmp(role, "client")), "accepted a bad role",
          token);
    const char *iss = json_string_value(json_object_get(payload, "iss"));
    check(iss && !strcmp(iss, ISS), "accepted another issuer", token);
    check(!strcmp(claims->sub, sub) && !strcmp(claims->role, role) &&
              claims->exp == json_integer_value(exp),
          "the claims handed back are not the token's", token);
    json_decref(payload);
}

static void verify(const char *token)
{
    struct jwt_claims claims;
    memset(&claims, 0x5A, sizeof claims);
    enum jwt_verdict v = jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW, &claims);
    check(v == jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW, NULL), "out changes the verdict",
          token);
    if (v == JWT_VALID) {
        check_accepted(token, &claims);
        return;
    }
    static const struct jwt_claims zero;
    check(!memcmp(&claims, &zero, sizeof zero), "a refused token left claims", token);
}

/* "HEADER\nPAYLOAD" -> b64(HEADER).b64(PAYLOAD).b64(HMAC), or NULL. */
static char *sign(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl)
        return NULL;
    char *h = b64url(data, (size_t)(nl - data));
    char *p = b64url(nl + 1, size - (size_t)(nl + 1 - data));
    size_t signed_len = strlen(h) + 1 + strlen(p);
    char *token = malloc(signed_len + 1 + 44);
    if (!token)
        abort();
    sprintf(token, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), SECRET, (int)SECRET_LEN, (const unsigned char *)token, signed_len, mac,
         &mac_len);
    char *s = b64url(mac, mac_len);
    sprintf(token + signed_len, ".%s", s);
    free(h);
    free(p);
    free(s);
    return token;
}

/* A token from jwt_issue must pass: a wrong secret or clock here would make
 * every run meaningless. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *token = NULL;
    struct jwt_claims claims;
    if (!jwt_issue(SECRET, SECRET_LEN, ISS, "42", "client", NOW - 100, 900, &token, &claims) ||
        jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW, NULL) != JWT_VALID) {
        fprintf(stderr, "fuzz_jwt: a token from jwt_issue does not verify\n");
        abort();
    }
    free(token);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > JWT_HEADER_MAX + 64)
        return 0;
    char *token = NULL;
    if (data[0] == 1) {
        token = sign(data + 1, size - 1);
    } else if (data[0] == 0) {
        token = malloc(size);
        if (!token)
            abort();
        memcpy(token, data + 1, size - 1);
        token[size - 1] = '\0';
    }
    if (token)
        verify(token);
    free(token);
    return 0;
}
