#include "password.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../base/base64.h"
#include "../base/clock.h"
#include "../base/crypto.h"

const struct password_params PASSWORD_PARAMS_DEFAULT = {.log2_n = 17, .r = 8, .p = 1};

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
    char salt64[BASE64_LEN(SCRYPT_SALT_LEN) + 1];
    char key64[BASE64_LEN(SCRYPT_HASH_LEN) + 1];
    base64_encode(salt, SCRYPT_SALT_LEN, BASE64_STD, salt64);
    base64_encode(key, SCRYPT_HASH_LEN, BASE64_STD, key64);
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
    if (end == NULL || !base64_decode(start, (size_t)(end - start), BASE64_STD, out, want, &got) ||
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

bool password_limiter_enter(struct password_limiter *limiter, int wait_ms)
{
    struct timespec deadline = clock_deadline_ms(CLOCK_MONOTONIC, wait_ms);
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
