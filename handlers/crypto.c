/* crypto: random secrets, token digests, scrypt password hashes, HS256 JWTs.
 *
 * The only module that calls OpenSSL primitives and libjwt. See crypto.h for
 * the contract; the comments here explain why the code is shaped as it is.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strnlen, pthread_condattr_setclock */
#endif

#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

const struct password_params PASSWORD_PARAMS_DEFAULT = {.log2_n = 17, .r = 8, .p = 1};

/* ---- base64 without padding (standard and URL alphabets) ---------------- */

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters needed to encode n bytes without padding (a constant expression,
 * so buffers sized with it are ordinary arrays). */
#define B64_LEN(n) ((n) / 3 * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))

/* Encodes n bytes into out, which must hold B64_LEN(n) + 1 bytes. */
static void b64_encode(const unsigned char *in, size_t n, const char *alphabet, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        unsigned long group = (unsigned long)in[i] << 16;
        if (left > 1)
            group |= (unsigned long)in[i + 1] << 8;
        if (left > 2)
            group |= in[i + 2];
        size_t chars = left >= 3 ? 4 : left + 1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = alphabet[(group >> (18 - 6 * c)) & 0x3f];
    }
    out[o] = '\0';
}

static int b64_value(char ch, const char *alphabet)
{
    if (ch == '\0')
        return -1;
    const char *hit = strchr(alphabet, ch);
    return hit ? (int)(hit - alphabet) : -1;
}

/* Strict decoding: only the given alphabet, no padding, no whitespace, and
 * the unused low bits of the last character must be zero, so every byte
 * string has exactly one accepted encoding. Returns false when the input is
 * not canonical or the output would exceed cap. */
static bool b64_decode(const char *in, size_t len, const char *alphabet, unsigned char *out,
                       size_t cap, size_t *out_len)
{
    if (len % 4 == 1)
        return false;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n > cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        size_t chars = len - i >= 4 ? 4 : len - i;
        unsigned long group = 0;
        for (size_t c = 0; c < 4; c++) {
            int v = c < chars ? b64_value(in[i + c], alphabet) : 0;
            if (v < 0)
                return false;
            group = group << 6 | (unsigned long)v;
        }
        size_t bytes = chars - 1;
        /* Bits below the last full byte must be zero (canonical form). */
        if (bytes < 3 && (group & ((1UL << (8 * (3 - bytes))) - 1)) != 0)
            return false;
        for (size_t b = 0; b < bytes; b++)
            out[o++] = (unsigned char)(group >> (16 - 8 * b));
    }
    *out_len = o;
    return true;
}

/* ---- random tokens and digests ------------------------------------------ */

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
    b64_encode(raw, sizeof raw, B64_URL, out);
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

/* ---- passwords ------------------------------------------------------------ */

#define SCRYPT_SALT_LEN 16
#define SCRYPT_HASH_LEN 32
/* OpenSSL's default limit (32 MiB) is below the 128 MiB that N=2^17, r=8
 * needs. The same bound, checked while parsing, keeps a corrupted row from
 * asking for gigabytes. */
#define SCRYPT_MAXMEM (256ULL * 1024 * 1024)
#define SCRYPT_LN_MIN 1
#define SCRYPT_LN_MAX 22
#define SCRYPT_R_MAX  32
#define SCRYPT_P_MAX  16

static const char SCRYPT_PREFIX[] = "$scrypt$";

/* Within the bounds above, and the V array (128 * r * N bytes) plus the B
 * array (128 * r * p bytes) fit in SCRYPT_MAXMEM. */
static bool params_acceptable(const struct password_params *params)
{
    if (params->log2_n < SCRYPT_LN_MIN || params->log2_n > SCRYPT_LN_MAX)
        return false;
    if (params->r < 1 || params->r > SCRYPT_R_MAX || params->p < 1 || params->p > SCRYPT_P_MAX)
        return false;
    unsigned long long n = 1ULL << params->log2_n;
    unsigned long long bytes = 128ULL * (unsigned long long)params->r * (n + params->p + 2);
    return bytes <= SCRYPT_MAXMEM;
}

static bool scrypt_derive(const char *password, size_t len, const unsigned char *salt,
                          const struct password_params *params, unsigned char key[SCRYPT_HASH_LEN])
{
    if (!params_acceptable(params))
        return false;
    /* EVP_PBE_scrypt treats a NULL password as "check parameters only". */
    const char *pass = password ? password : "";
    return EVP_PBE_scrypt(pass, password ? len : 0, salt, SCRYPT_SALT_LEN, 1ULL << params->log2_n,
                          (uint64_t)params->r, (uint64_t)params->p, SCRYPT_MAXMEM, key,
                          SCRYPT_HASH_LEN) == 1;
}

static void format_stored(const struct password_params *params,
                          const unsigned char salt[SCRYPT_SALT_LEN],
                          const unsigned char key[SCRYPT_HASH_LEN], char out[PASSWORD_HASH_MAX])
{
    char salt64[B64_LEN(SCRYPT_SALT_LEN) + 1];
    char key64[B64_LEN(SCRYPT_HASH_LEN) + 1];
    b64_encode(salt, SCRYPT_SALT_LEN, B64_STD, salt64);
    b64_encode(key, SCRYPT_HASH_LEN, B64_STD, key64);
    /* Bounded parameters have at most two digits: at most 8 + 15 + 1 + 22 + 1 + 43
     * = 90 characters, far below PASSWORD_HASH_MAX. */
    snprintf(out, PASSWORD_HASH_MAX, "%sln=%d,r=%d,p=%d$%s$%s", SCRYPT_PREFIX, params->log2_n,
             params->r, params->p, salt64, key64);
}

bool password_hash(const char *password, size_t len, const struct password_params *params,
                   char out[PASSWORD_HASH_MAX])
{
    unsigned char salt[SCRYPT_SALT_LEN];
    unsigned char key[SCRYPT_HASH_LEN];
    bool ok = false;

    out[0] = '\0';
    if (!crypto_random(salt, sizeof salt))
        return false;
    if (scrypt_derive(password, len, salt, params, key)) {
        format_stored(params, salt, key, out);
        ok = true;
    }
    OPENSSL_cleanse(key, sizeof key);
    return ok;
}

/* Reads "<name>=<1 or 2 digits, no leading zero>" at *s and advances *s past
 * it. Two digits are enough for every acceptable value. */
static bool parse_field(const char **s, const char *name, int *out)
{
    size_t name_len = strlen(name);
    const char *p = *s;
    if (strncmp(p, name, name_len) != 0 || p[name_len] != '=')
        return false;
    p += name_len + 1;
    if (p[0] < '1' || p[0] > '9')
        return false;
    int value = p[0] - '0';
    p++;
    if (p[0] >= '0' && p[0] <= '9') {
        value = value * 10 + (p[0] - '0');
        p++;
    }
    *out = value;
    *s = p;
    return true;
}

struct stored_hash {
    struct password_params params;
    unsigned char salt[SCRYPT_SALT_LEN];
    unsigned char key[SCRYPT_HASH_LEN];
};

/* Decodes one '$'-terminated (or NUL-terminated when last) base64 field of
 * exactly `want` bytes. */
static bool parse_b64_field(const char **s, bool last, unsigned char *out, size_t want)
{
    const char *start = *s;
    const char *end = last ? start + strlen(start) : strchr(start, '$');
    size_t got;
    if (end == NULL || !b64_decode(start, (size_t)(end - start), B64_STD, out, want, &got) ||
        got != want)
        return false;
    *s = last ? end : end + 1;
    return true;
}

static bool parse_stored(const char *stored, struct stored_hash *out)
{
    const char *s = stored;
    if (stored == NULL || strnlen(stored, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
        return false;
    if (strncmp(s, SCRYPT_PREFIX, sizeof SCRYPT_PREFIX - 1) != 0)
        return false;
    s += sizeof SCRYPT_PREFIX - 1;
    if (!parse_field(&s, "ln", &out->params.log2_n) || *s++ != ',' ||
        !parse_field(&s, "r", &out->params.r) || *s++ != ',' ||
        !parse_field(&s, "p", &out->params.p) || *s++ != '$')
        return false;
    if (!params_acceptable(&out->params))
        return false;
    return parse_b64_field(&s, false, out->salt, sizeof out->salt) &&
           parse_b64_field(&s, true, out->key, sizeof out->key);
}

bool password_parse_params(const char *stored, struct password_params *out)
{
    struct stored_hash parsed;
    if (!parse_stored(stored, &parsed))
        return false;
    *out = parsed.params;
    return true;
}

static bool params_weaker(const struct password_params *stored,
                          const struct password_params *current)
{
    return stored->log2_n < current->log2_n || stored->r < current->r || stored->p < current->p;
}

/* The unknown-user path: the same scrypt work as a real check, result unused. */
static void password_dummy_work(const char *password, size_t len,
                                const struct password_params *params)
{
    unsigned char salt[SCRYPT_SALT_LEN] = {0};
    unsigned char key[SCRYPT_HASH_LEN];
    (void)crypto_random(salt, sizeof salt);
    (void)scrypt_derive(password, len, salt, params, key);
    OPENSSL_cleanse(key, sizeof key);
}

enum password_verdict password_verify(const char *password, size_t len, const char *stored,
                                      const struct password_params *current)
{
    const struct password_params *work = current ? current : &PASSWORD_PARAMS_DEFAULT;
    if (stored == NULL) {
        password_dummy_work(password, len, work);
        return PASSWORD_MISMATCH;
    }

    struct stored_hash parsed;
    if (!parse_stored(stored, &parsed))
        return PASSWORD_BAD_HASH;

    unsigned char key[SCRYPT_HASH_LEN];
    enum password_verdict verdict = PASSWORD_MISMATCH;
    /* A failed derivation (out of memory) fails closed as a mismatch. */
    if (scrypt_derive(password, len, parsed.salt, &parsed.params, key) &&
        CRYPTO_memcmp(key, parsed.key, sizeof key) == 0)
        verdict = params_weaker(&parsed.params, work) ? PASSWORD_MATCH_REHASH : PASSWORD_MATCH;
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(&parsed, sizeof parsed);
    return verdict;
}

/* ---- bounded concurrency for scrypt --------------------------------------- */

struct password_limiter {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* signalled when a slot is given back */
    int slots;
    int available;
};

struct password_limiter *password_limiter_create(int slots)
{
    if (slots < 1)
        return NULL;
    struct password_limiter *limiter = calloc(1, sizeof *limiter);
    if (limiter == NULL)
        return NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        goto fail_free;
    /* Deadlines on the monotonic clock do not jump with wall-clock changes. */
    bool cond_ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                   pthread_cond_init(&limiter->freed, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!cond_ok)
        goto fail_free;
    if (pthread_mutex_init(&limiter->lock, NULL) != 0)
        goto fail_cond;
    limiter->slots = slots;
    limiter->available = slots;
    return limiter;

fail_cond:
    pthread_cond_destroy(&limiter->freed);
fail_free:
    free(limiter);
    return NULL;
}

void password_limiter_free(struct password_limiter *limiter)
{
    if (limiter == NULL)
        return;
    pthread_cond_destroy(&limiter->freed);
    pthread_mutex_destroy(&limiter->lock);
    free(limiter);
}

static struct timespec deadline_after_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

bool password_limiter_enter(struct password_limiter *limiter, int wait_ms)
{
    struct timespec deadline = deadline_after_ms(wait_ms > 0 ? wait_ms : 0);
    pthread_mutex_lock(&limiter->lock);
    /* Any error (ETIMEDOUT, or EINVAL that cannot happen with a normalised
     * deadline) ends the wait rather than spinning. */
    int rc = 0;
    while (limiter->available == 0 && rc == 0)
        rc = pthread_cond_timedwait(&limiter->freed, &limiter->lock, &deadline);
    /* A slot freed exactly at the deadline is still taken. */
    bool entered = limiter->available > 0;
    if (entered)
        limiter->available--;
    pthread_mutex_unlock(&limiter->lock);
    return entered;
}

void password_limiter_leave(struct password_limiter *limiter)
{
    pthread_mutex_lock(&limiter->lock);
    if (limiter->available < limiter->slots)
        limiter->available++;
    pthread_cond_signal(&limiter->freed);
    pthread_mutex_unlock(&limiter->lock);
}

/* ---- JWT ------------------------------------------------------------------ */

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
    char jti[B64_LEN(JWT_JTI_BYTES) + 1];
    if (!crypto_random(jti_raw, sizeof jti_raw))
        return false;
    b64_encode(jti_raw, sizeof jti_raw, B64_URL, jti);

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
    if (!b64_decode(segment, len, B64_URL, raw, sizeof raw, &raw_len))
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

    if (!b64_decode(parts->signature, parts->signature_len, B64_URL, given, sizeof given,
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
