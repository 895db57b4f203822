/* auth/jwt: verifying and issuing access tokens.
 *
 * JWTs under test are built here by hand (OpenSSL's base64 and HMAC, not the
 * module's own encoder), so a bug in the module cannot hide itself. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strnlen */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../auth/jwt.h"

static const unsigned char SECRET[] = "test-secret-0123456789-abcdefghijklmnop";
#define SECRET_LEN (sizeof SECRET - 1)
static const char ISS[] = "wattline";
static const long long NOW = 1700000000LL;

/* ---- helpers: independent base64url, HMAC and token builder -------------- */

static char *b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    assert_non_null(out);
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    return out;
}

/* Decodes a base64url segment (no padding) into a malloc'd NUL-terminated buffer. */
static char *unb64url(const char *in, size_t n)
{
    size_t padded = (n + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    unsigned char *out = malloc(padded + 1);
    assert_non_null(tmp);
    assert_non_null(out);
    for (size_t i = 0; i < padded; i++) {
        char c = i < n ? in[i] : '=';
        tmp[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
    assert_true(len >= 0);
    len -= (int)(padded - n); /* EVP_DecodeBlock counts padding as zero bytes */
    out[len] = '\0';
    free(tmp);
    return (char *)out;
}

/* "h.p.HMAC(h.p)" for already encoded segments. */
static char *sign_segments(const char *h, const char *p, const unsigned char *secret,
                           size_t secret_len)
{
    size_t signed_len = strlen(h) + 1 + strlen(p);
    char *signing_input = malloc(signed_len + 1);
    assert_non_null(signing_input);
    snprintf(signing_input, signed_len + 1, "%s.%s", h, p);

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len,
                         (const unsigned char *)signing_input, signed_len, mac, &mac_len));
    char *s = b64url(mac, mac_len);

    size_t total = signed_len + 1 + strlen(s) + 1;
    char *token = malloc(total);
    assert_non_null(token);
    snprintf(token, total, "%s.%s", signing_input, s);
    free(s);
    free(signing_input);
    return token;
}

static char *make_jwt_with(const char *header, const char *payload, const unsigned char *secret,
                           size_t secret_len)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char *token = sign_segments(h, p, secret, secret_len);
    free(h);
    free(p);
    return token;
}

static char *make_jwt(const char *header, const char *payload)
{
    return make_jwt_with(header, payload, SECRET, SECRET_LEN);
}

static const char HS256_HEADER[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Claims as raw JSON values; NULL leaves the claim out. */
struct claims_spec {
    const char *iss, *typ, *sub, *role, *jti, *exp, *iat, *nbf, *extra;
};

static char exp_ok[32], iat_ok[32];

static struct claims_spec valid_spec(void)
{
    snprintf(exp_ok, sizeof exp_ok, "%lld", NOW + 900);
    snprintf(iat_ok, sizeof iat_ok, "%lld", NOW);
    return (struct claims_spec){.iss = "\"wattline\"",
                                .typ = "\"access\"",
                                .sub = "\"42\"",
                                .role = "\"client\"",
                                .jti = "\"abcDEF123_-\"",
                                .exp = exp_ok,
                                .iat = iat_ok};
}

static void append_claim(char *buf, size_t cap, const char *name, const char *value)
{
    if (value == NULL)
        return;
    size_t used = strlen(buf);
    snprintf(buf + used, cap - used, "%s\"%s\":%s", buf[used - 1] == '{' ? "" : ",", name, value);
}

static char *payload_json(const struct claims_spec *spec)
{
    size_t cap = 16384;
    char *buf = malloc(cap);
    assert_non_null(buf);
    strcpy(buf, "{");
    append_claim(buf, cap, "iss", spec->iss);
    append_claim(buf, cap, "typ", spec->typ);
    append_claim(buf, cap, "sub", spec->sub);
    append_claim(buf, cap, "role", spec->role);
    append_claim(buf, cap, "jti", spec->jti);
    append_claim(buf, cap, "exp", spec->exp);
    append_claim(buf, cap, "iat", spec->iat);
    append_claim(buf, cap, "nbf", spec->nbf);
    append_claim(buf, cap, "pad", spec->extra);
    strcat(buf, "}");
    return buf;
}

static enum jwt_verdict verify_token(const char *token, long long now)
{
    struct jwt_claims claims;
    return jwt_verify(SECRET, SECRET_LEN, ISS, token, now, &claims);
}

static enum jwt_verdict verify_spec_header(const char *header, const struct claims_spec *spec)
{
    char *payload = payload_json(spec);
    char *token = make_jwt(header, payload);
    enum jwt_verdict verdict = verify_token(token, NOW);
    free(payload);
    free(token);
    return verdict;
}

static enum jwt_verdict verify_spec(const struct claims_spec *spec)
{
    return verify_spec_header(HS256_HEADER, spec);
}

static char *valid_token(void)
{
    struct claims_spec spec = valid_spec();
    char *payload = payload_json(&spec);
    char *token = make_jwt(HS256_HEADER, payload);
    free(payload);
    return token;
}

/* assert_int_equal for table-driven cases: names the failing case. */
static void expect_int(int got, int want, const char *label, const char *input)
{
    if (got != want)
        print_message("failing case %s: %s\n", label, input);
    assert_int_equal(got, want);
}

/* ---- JWT verification ------------------------------------------------------------ */

static void test_jwt_valid_token(void **state)
{
    (void)state;
    char *token = valid_token();
    struct jwt_claims claims;
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW, &claims), JWT_VALID);
    assert_string_equal(claims.sub, "42");
    assert_string_equal(claims.role, "client");
    assert_string_equal(claims.jti, "abcDEF123_-");
    assert_int_equal(claims.iat, NOW);
    assert_int_equal(claims.exp, NOW + 900);
    /* out may be NULL */
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW, NULL), JWT_VALID);
    free(token);

    /* typ in the header is optional; extra harmless header fields are fine. */
    struct claims_spec spec = valid_spec();
    assert_int_equal(verify_spec_header("{\"alg\":\"HS256\"}", &spec), JWT_VALID);
    assert_int_equal(verify_spec_header("{\"alg\":\"HS256\",\"kid\":\"k1\"}", &spec), JWT_VALID);
    spec.role = "\"admin\"";
    assert_int_equal(verify_spec(&spec), JWT_VALID);
    /* The longest jti that fits struct jwt_claims (47 characters). */
    spec.jti = "\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU\"";
    assert_int_equal(verify_spec(&spec), JWT_VALID);
}

static void test_jwt_rejects_other_algorithms(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"NoNe\",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
        "{\"alg\":256,\"typ\":\"JWT\"}",
        "{\"alg\":null}",
        "{\"typ\":\"JWT\"}",
    };
    struct claims_spec spec = valid_spec();
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        /* Correctly HMAC-signed, so only the alg can be the reason. */
        expect_int(verify_spec_header(headers[i], &spec), JWT_BAD_ALG, "header", headers[i]);
    }

    /* A classic unsigned "none" token: header.payload. with no signature. */
    char *payload = payload_json(&spec);
    char *h = b64url((const unsigned char *)"{\"alg\":\"none\"}", 14);
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char token[2048];
    snprintf(token, sizeof token, "%s.%s.", h, p);
    assert_int_not_equal(verify_token(token, NOW), JWT_VALID);
    free(payload);
    free(h);
    free(p);
}

static void test_jwt_rejects_bad_signatures(void **state)
{
    (void)state;
    char *token = valid_token();
    char *sig = strrchr(token, '.') + 1;

    /* Flip one character of the signature. */
    char saved = sig[0];
    sig[0] = saved == 'A' ? 'B' : 'A';
    assert_int_equal(verify_token(token, NOW), JWT_BAD_SIGNATURE);
    sig[0] = saved;
    assert_int_equal(verify_token(token, NOW), JWT_VALID);

    /* Signature truncated by one character. */
    char *truncated = strdup(token);
    assert_non_null(truncated);
    truncated[strlen(truncated) - 1] = '\0';
    assert_int_equal(verify_token(truncated, NOW), JWT_BAD_SIGNATURE);
    free(truncated);

    /* A different payload under the original signature (privilege escalation). */
    struct claims_spec spec = valid_spec();
    spec.role = "\"admin\"";
    char *payload = payload_json(&spec);
    char *forged_payload = b64url((const unsigned char *)payload, strlen(payload));
    char *dot1 = strchr(token, '.');
    char forged[2048];
    snprintf(forged, sizeof forged, "%.*s.%s.%s", (int)(dot1 - token), token, forged_payload, sig);
    assert_int_equal(verify_token(forged, NOW), JWT_BAD_SIGNATURE);
    free(payload);
    free(forged_payload);

    /* Signed with another secret. */
    spec = valid_spec();
    payload = payload_json(&spec);
    static const unsigned char other[] = "another-secret-0123456789-abcdefghijklm";
    char *foreign = make_jwt_with(HS256_HEADER, payload, other, sizeof other - 1);
    assert_int_equal(verify_token(foreign, NOW), JWT_BAD_SIGNATURE);
    free(foreign);
    free(payload);
    free(token);
}

static void test_jwt_rejects_bad_structure(void **state)
{
    (void)state;
    char *token = valid_token();
    const char *first_dot = strchr(token, '.');
    const char *last_dot = strrchr(token, '.');
    assert_non_null(first_dot);
    assert_non_null(last_dot);
    int up_to_last_dot = (int)(last_dot - token);
    char buf[4096];

    /* Empty signature segment. */
    snprintf(buf, sizeof buf, "%.*s.", up_to_last_dot, token);
    assert_int_equal(verify_token(buf, NOW), JWT_MALFORMED);
    /* Four segments, two segments, empty header or payload. */
    snprintf(buf, sizeof buf, "%s.%s", token, "AAAA");
    assert_int_equal(verify_token(buf, NOW), JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s", up_to_last_dot, token);
    assert_int_equal(verify_token(buf, NOW), JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s", first_dot);
    assert_int_equal(verify_token(buf, NOW), JWT_MALFORMED);
    assert_int_equal(verify_token("a..b", NOW), JWT_MALFORMED);
    assert_int_equal(verify_token("", NOW), JWT_MALFORMED);
    assert_int_equal(verify_token("..", NOW), JWT_MALFORMED);
    assert_int_equal(verify_token("not a token", NOW), JWT_MALFORMED);
    /* Header that is not base64url, and header that is not a JSON object. */
    assert_int_equal(verify_token("e30!.e30.AAAA", NOW), JWT_MALFORMED);
    char *not_object = make_jwt("[\"alg\",\"HS256\"]", "{}");
    assert_int_equal(verify_token(not_object, NOW), JWT_MALFORMED);
    free(not_object);
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, NULL, NOW, NULL), JWT_MALFORMED);
    free(token);

    /* Duplicate claims are ambiguous: rejected even though correctly signed. */
    struct claims_spec spec = valid_spec();
    spec.extra = "1,\"sub\":\"1\"";
    assert_int_equal(verify_spec(&spec), JWT_MALFORMED);
}

static void test_jwt_rejects_noncanonical_base64(void **state)
{
    (void)state;
    struct claims_spec spec = valid_spec();
    char *payload = payload_json(&spec);
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char h[128], bad[256];
    char *token;

    /* Sanity: the same segments, correctly encoded, verify. */
    static const char header16[] = "{\"alg\":\"HS256\" }"; /* 16 bytes: 4 spare bits */
    char *h16 = b64url((const unsigned char *)header16, strlen(header16));
    assert_int_equal(strlen(h16), 22);
    token = sign_segments(h16, p, SECRET, SECRET_LEN);
    assert_int_equal(verify_token(token, NOW), JWT_VALID);
    free(token);

    /* Spare bits set in the last character: decodes to the same bytes, but
     * only one encoding of a header is accepted. */
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    snprintf(h, sizeof h, "%s", h16);
    h[21] = url[(strchr(url, h[21]) - url) | 1];
    token = sign_segments(h, p, SECRET, SECRET_LEN);
    assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
    free(token);

    /* Padding, a stray character (length 1 mod 4), the standard alphabet. */
    snprintf(bad, sizeof bad, "%s==", h16);
    token = sign_segments(bad, p, SECRET, SECRET_LEN);
    assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
    free(token);
    char *h36 = b64url((const unsigned char *)HS256_HEADER, strlen(HS256_HEADER));
    assert_int_equal(strlen(h36) % 4, 0);
    snprintf(bad, sizeof bad, "%sA", h36);
    token = sign_segments(bad, p, SECRET, SECRET_LEN);
    assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
    free(token);
    snprintf(bad, sizeof bad, "%s+/", h16);
    token = sign_segments(bad, p, SECRET, SECRET_LEN);
    assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
    free(token);

    free(h16);
    free(h36);
    free(p);
    free(payload);
}

static void test_jwt_rejects_oversized_token(void **state)
{
    (void)state;
    /* Correctly signed and otherwise valid, but 8 KiB long. */
    char *pad = malloc(8192 + 3);
    assert_non_null(pad);
    pad[0] = '"';
    memset(pad + 1, 'x', 8192);
    pad[8193] = '"';
    pad[8194] = '\0';
    struct claims_spec spec = valid_spec();
    spec.extra = pad;
    char *payload = payload_json(&spec);
    char *token = make_jwt(HS256_HEADER, payload);
    assert_true(strlen(token) > 8192);
    assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
    free(token);
    free(payload);

    /* At the boundary: JWT_HEADER_MAX characters verify, one more do not. */
    bool seen_max = false, seen_over = false;
    for (size_t n = 2500; n < 3200; n++) {
        pad[n + 1] = '"';
        pad[n + 2] = '\0';
        payload = payload_json(&spec);
        token = make_jwt(HS256_HEADER, payload);
        if (strlen(token) == JWT_HEADER_MAX) {
            assert_int_equal(verify_token(token, NOW), JWT_VALID);
            seen_max = true;
        } else if (strlen(token) == JWT_HEADER_MAX + 1) {
            assert_int_equal(verify_token(token, NOW), JWT_MALFORMED);
            seen_over = true;
        }
        free(token);
        free(payload);
        pad[n + 1] = 'x';
        pad[n + 2] = 'x';
    }
    assert_true(seen_max);
    assert_true(seen_over);

    /* A large but acceptable token (under the limit) still verifies. */
    pad[2000] = '"';
    pad[2001] = '\0';
    payload = payload_json(&spec);
    token = make_jwt(HS256_HEADER, payload);
    assert_true(strlen(token) < JWT_HEADER_MAX);
    assert_int_equal(verify_token(token, NOW), JWT_VALID);
    free(token);
    free(payload);
    free(pad);
}

static void test_jwt_rejects_forbidden_headers(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jku\":\"https://evil.example/keys\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5u\":\"https://evil.example/cert\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5c\":[\"MIIB\"]}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}",
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":1}",
    };
    struct claims_spec spec = valid_spec();
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        expect_int(verify_spec_header(headers[i], &spec), JWT_BAD_CLAIMS, "header", headers[i]);
    }
}

static void test_jwt_expiry_and_leeway(void **state)
{
    (void)state;
    struct claims_spec spec = valid_spec();
    char value[32];
    spec.exp = value;

    snprintf(value, sizeof value, "%lld", NOW - 61);
    assert_int_equal(verify_spec(&spec), JWT_EXPIRED);
    snprintf(value, sizeof value, "%lld", NOW - 3600);
    assert_int_equal(verify_spec(&spec), JWT_EXPIRED);
    snprintf(value, sizeof value, "%lld", NOW - 60);
    assert_int_equal(verify_spec(&spec), JWT_VALID);
    snprintf(value, sizeof value, "%lld", NOW - 30);
    assert_int_equal(verify_spec(&spec), JWT_VALID);
}

static void test_jwt_rejects_bad_exp(void **state)
{
    (void)state;
    struct claims_spec spec = valid_spec();
    char value[64];

    spec.exp = NULL;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "\"%lld\"", NOW + 900);
    spec.exp = value;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld.0", NOW + 900);
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld.5", NOW + 900);
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    spec.exp = "1.7000009e9";
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    spec.exp = "true";
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    spec.exp = "null";
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    spec.exp = "-1";
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    spec.exp = "9223372036854775807"; /* leeway arithmetic must not overflow */
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
}

static void test_jwt_rejects_future_iat_and_nbf(void **state)
{
    (void)state;
    struct claims_spec spec = valid_spec();
    char value[64];

    snprintf(value, sizeof value, "%lld", NOW + 120);
    spec.iat = value;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld", NOW + 30); /* within leeway: clock skew */
    assert_int_equal(verify_spec(&spec), JWT_VALID);
    spec.iat = NULL;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld.0", NOW);
    spec.iat = value;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);

    spec = valid_spec();
    snprintf(value, sizeof value, "%lld", NOW + 120);
    spec.nbf = value;
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld", NOW + 30);
    assert_int_equal(verify_spec(&spec), JWT_VALID);
    snprintf(value, sizeof value, "%lld", NOW - 10);
    assert_int_equal(verify_spec(&spec), JWT_VALID);
    snprintf(value, sizeof value, "\"%lld\"", NOW - 10);
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
    snprintf(value, sizeof value, "%lld.0", NOW - 10);
    assert_int_equal(verify_spec(&spec), JWT_BAD_CLAIMS);
}

static void test_jwt_rejects_bad_identity_claims(void **state)
{
    (void)state;
    struct {
        size_t offset;
        const char *value;
    } cases[] = {
        {offsetof(struct claims_spec, iss), "\"other\""},
        {offsetof(struct claims_spec, iss), "\"wattlinex\""},
        {offsetof(struct claims_spec, iss), "\"Wattline\""},
        {offsetof(struct claims_spec, iss), "[\"wattline\"]"},
        {offsetof(struct claims_spec, iss), NULL},
        {offsetof(struct claims_spec, typ), "\"refresh\""},
        {offsetof(struct claims_spec, typ), "\"Access\""},
        {offsetof(struct claims_spec, typ), NULL},
        {offsetof(struct claims_spec, sub), "42"},
        {offsetof(struct claims_spec, sub), "\"\""},
        {offsetof(struct claims_spec, sub), "\"abc\""},
        {offsetof(struct claims_spec, sub), "\"12345678901234567890123456789012\""},
        {offsetof(struct claims_spec, sub), NULL},
        {offsetof(struct claims_spec, role), "\"root\""},
        {offsetof(struct claims_spec, role), "\"Admin\""},
        {offsetof(struct claims_spec, role), NULL},
        {offsetof(struct claims_spec, jti), "123"},
        {offsetof(struct claims_spec, jti), "\"\""},
        {offsetof(struct claims_spec, jti), NULL},
        /* 48 characters would not fit struct jwt_claims.jti */
        {offsetof(struct claims_spec, jti), "\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct claims_spec spec = valid_spec();
        memcpy((char *)&spec + cases[i].offset, &cases[i].value, sizeof(const char *));
        char *payload = payload_json(&spec);
        enum jwt_verdict verdict = verify_spec(&spec);
        if (verdict != JWT_BAD_CLAIMS)
            print_message("failing case payload: %s\n", payload);
        free(payload);
        assert_int_equal(verdict, JWT_BAD_CLAIMS);
    }
}

static void test_jwt_rejects_weak_secret(void **state)
{
    (void)state;
    char *token = valid_token();
    struct jwt_claims claims;
    memset(&claims, 0x55, sizeof claims);
    assert_int_equal(jwt_verify(SECRET, 0, ISS, token, NOW, &claims), JWT_BAD_SIGNATURE);
    /* out is cleared on failure */
    assert_string_equal(claims.sub, "");
    assert_int_equal(claims.exp, 0);
    assert_int_equal(jwt_verify((const unsigned char *)"", 0, ISS, token, NOW, NULL),
                     JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify(NULL, 0, ISS, token, NOW, NULL), JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify(SECRET, JWT_SECRET_MIN - 1, ISS, token, NOW, NULL),
                     JWT_BAD_SIGNATURE);
    free(token);
}

/* ---- JWT issuing ------------------------------------------------------------------ */

static void test_jwt_issue_round_trip(void **state)
{
    (void)state;
    char *token = NULL;
    struct jwt_claims issued, verified;
    assert_true(jwt_issue(SECRET, SECRET_LEN, ISS, "7", "admin", NOW, 900, &token, &issued));
    assert_non_null(token);
    assert_string_equal(issued.sub, "7");
    assert_string_equal(issued.role, "admin");
    assert_int_equal(issued.iat, NOW);
    assert_int_equal(issued.exp, NOW + 900);
    assert_int_equal(strlen(issued.jti), 22);

    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW + 10, &verified), JWT_VALID);
    assert_string_equal(verified.sub, issued.sub);
    assert_string_equal(verified.role, issued.role);
    assert_string_equal(verified.jti, issued.jti);
    assert_int_equal(verified.iat, issued.iat);
    assert_int_equal(verified.exp, issued.exp);

    /* Inspect the token independently: header and every claim. */
    const char *dot1 = strchr(token, '.');
    const char *dot2 = strchr(dot1 + 1, '.');
    char *header_text = unb64url(token, (size_t)(dot1 - token));
    char *payload_text = unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    json_t *header = json_loads(header_text, 0, NULL);
    json_t *payload = json_loads(payload_text, 0, NULL);
    assert_non_null(header);
    assert_non_null(payload);
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(payload, "typ")), "access");
    assert_string_equal(json_string_value(json_object_get(payload, "iss")), "wattline");
    assert_string_equal(json_string_value(json_object_get(payload, "sub")), "7");
    assert_string_equal(json_string_value(json_object_get(payload, "role")), "admin");
    assert_string_equal(json_string_value(json_object_get(payload, "jti")), issued.jti);
    assert_true(json_is_integer(json_object_get(payload, "iat")));
    assert_true(json_is_integer(json_object_get(payload, "exp")));
    json_decref(header);
    json_decref(payload);
    free(header_text);
    free(payload_text);

    /* Expires after ttl plus leeway; other secrets and issuers refuse it. */
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW + 960, NULL), JWT_VALID);
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, ISS, token, NOW + 961, NULL), JWT_EXPIRED);
    static const unsigned char other[] = "another-secret-0123456789-abcdefghijklm";
    assert_int_equal(jwt_verify(other, sizeof other - 1, ISS, token, NOW, NULL), JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify(SECRET, SECRET_LEN, "other", token, NOW, NULL), JWT_BAD_CLAIMS);
    free(token);
}

static void test_jwt_issue_unique_jti(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL;
    struct jwt_claims ca, cb;
    assert_true(jwt_issue(SECRET, SECRET_LEN, ISS, "1", "client", NOW, 60, &a, &ca));
    assert_true(jwt_issue(SECRET, SECRET_LEN, ISS, "1", "client", NOW, 60, &b, &cb));
    assert_string_not_equal(ca.jti, cb.jti);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_jwt_issue_rejects_bad_input(void **state)
{
    (void)state;
    char *token = (char *)"sentinel";
    assert_false(jwt_issue(SECRET, 0, ISS, "1", "client", NOW, 60, &token, NULL));
    assert_null(token);
    assert_false(jwt_issue(SECRET, JWT_SECRET_MIN - 1, ISS, "1", "client", NOW, 60, &token, NULL));
    assert_false(jwt_issue(SECRET, SECRET_LEN, ISS, "abc", "client", NOW, 60, &token, NULL));
    assert_false(jwt_issue(SECRET, SECRET_LEN, ISS, "", "client", NOW, 60, &token, NULL));
    assert_false(jwt_issue(SECRET, SECRET_LEN, ISS, "1", "root", NOW, 60, &token, NULL));
    assert_false(jwt_issue(SECRET, SECRET_LEN, ISS, "1", "client", NOW, 0, &token, NULL));
    assert_false(jwt_issue(SECRET, SECRET_LEN, "", "1", "client", NOW, 60, &token, NULL));
    assert_null(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_valid_token),
        cmocka_unit_test(test_jwt_rejects_other_algorithms),
        cmocka_unit_test(test_jwt_rejects_bad_signatures),
        cmocka_unit_test(test_jwt_rejects_bad_structure),
        cmocka_unit_test(test_jwt_rejects_noncanonical_base64),
        cmocka_unit_test(test_jwt_rejects_oversized_token),
        cmocka_unit_test(test_jwt_rejects_forbidden_headers),
        cmocka_unit_test(test_jwt_expiry_and_leeway),
        cmocka_unit_test(test_jwt_rejects_bad_exp),
        cmocka_unit_test(test_jwt_rejects_future_iat_and_nbf),
        cmocka_unit_test(test_jwt_rejects_bad_identity_claims),
        cmocka_unit_test(test_jwt_rejects_weak_secret),
        cmocka_unit_test(test_jwt_issue_round_trip),
        cmocka_unit_test(test_jwt_issue_unique_jti),
        cmocka_unit_test(test_jwt_issue_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
