#include "authn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/credentials.h"
#include "../base/clock.h"
#include "../base/crypto.h"
#include "jwt.h"

/* Direct-mapped caches: a slot per key modulo the size, overwritten on
 * collision. Small, bounded, and a miss only costs one indexed query. User
 * ids are sequential, so they rarely collide. */
#define CACHE_SLOTS 1024

/* How long a look-up waits for a pooled connection before answering 503. */
#define AUTHN_DB_WAIT_MS 2000

/* Device tokens hash to random slots: direct-mapped, a thousand devices
 * would leave six in ten sharing a slot and evicting each other on every
 * request. Four ways per set keep them all. */
#define DEVICE_SETS 1024
#define DEVICE_WAYS 4

struct user_slot {
    long long user_id;
    enum role role; /* ROLE_NONE: the user does not exist */
    double fetched;
};

struct device_slot {
    char token_hash[CRYPTO_SHA256_HEX_LEN + 1];
    long long device_id;
    enum reading_type reading_type;
    double fetched;
};

/* A token that verified, so the next request with it skips two HMACs and
 * four JSON parses. Only verified tokens get in; a hit still checks expiry. */
struct token_slot {
    unsigned long long hash;
    char *token; /* owned copy */
    size_t len;
    long long user_id;
    long long exp;
};

struct authn {
    struct db_pool *pool;
    const char *jwt_secret;
    size_t jwt_secret_len;
    pthread_mutex_t mutex;
    struct token_slot tokens[CACHE_SLOTS];
    struct user_slot users[CACHE_SLOTS];
    struct device_slot devices[DEVICE_SETS][DEVICE_WAYS];
};

struct authn *authn_create(struct db_pool *pool, const char *jwt_secret, size_t jwt_secret_len)
{
    struct authn *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->pool = pool;
    a->jwt_secret = jwt_secret;
    a->jwt_secret_len = jwt_secret_len;
    pthread_mutex_init(&a->mutex, NULL);
    return a;
}

void authn_free(struct authn *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(a->tokens[i].token);
    pthread_mutex_destroy(&a->mutex);
    free(a);
}

static bool user_cached(struct authn *a, long long id, enum role *role)
{
    struct user_slot *s = &a->users[(unsigned long long)id % CACHE_SLOTS];
    pthread_mutex_lock(&a->mutex);
    bool hit =
        s->user_id == id && s->fetched > 0 && clock_mono_s() - s->fetched < AUTHN_CACHE_TTL_S;
    if (hit)
        *role = s->role;
    pthread_mutex_unlock(&a->mutex);
    return hit;
}

static void user_store(struct authn *a, long long id, enum role role)
{
    struct user_slot *s = &a->users[(unsigned long long)id % CACHE_SLOTS];
    pthread_mutex_lock(&a->mutex);
    *s = (struct user_slot){.user_id = id, .role = role, .fetched = clock_mono_s()};
    pthread_mutex_unlock(&a->mutex);
}

/* FNV-1a: spreads tokens over the slots; not a security boundary (a hit is
 * confirmed by comparing the whole token in constant time). */
static unsigned long long token_hash(const char *token, size_t len)
{
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    return h;
}

static bool token_cached(struct authn *a, const char *token, size_t len, unsigned long long hash,
                         long long now, long long *user_id, long long *exp)
{
    struct token_slot *s = &a->tokens[hash % CACHE_SLOTS];
    pthread_mutex_lock(&a->mutex);
    bool hit = s->token && s->hash == hash && s->len == len && crypto_equal(s->token, token, len) &&
               now <= s->exp + JWT_LEEWAY_S;
    if (hit) {
        *user_id = s->user_id;
        *exp = s->exp;
    }
    pthread_mutex_unlock(&a->mutex);
    return hit;
}

static void token_store(struct authn *a, const char *token, size_t len, unsigned long long hash,
                        long long user_id, long long exp)
{
    char *copy = malloc(len);
    if (!copy)
        return; /* the cache is an optimisation */
    memcpy(copy, token, len);
    struct token_slot *s = &a->tokens[hash % CACHE_SLOTS];
    pthread_mutex_lock(&a->mutex);
    char *old = s->token;
    *s = (struct token_slot){hash, copy, len, user_id, exp};
    pthread_mutex_unlock(&a->mutex);
    free(old);
    // cppcheck-suppress memleak ; the slot owns copy now
}

/* The user id and expiry of a token that verifies, from the token cache or
 * by checking the JWT (then cached). False for a bad token. */
static bool user_token_verify(struct authn *a, const char *token, long long *id, long long *exp)
{
    long long now = (long long)time(NULL);
    size_t len = strlen(token);
    unsigned long long hash = token_hash(token, len);
    if (token_cached(a, token, len, hash, now, id, exp))
        return true;
    struct jwt_claims claims;
    enum jwt_verdict v = jwt_verify((const unsigned char *)a->jwt_secret, a->jwt_secret_len,
                                    JWT_ISSUER, token, now, &claims);
    if (v != JWT_VALID)
        return false;
    char *end;
    *id = strtoll(claims.sub, &end, 10);
    if (*end || *id <= 0)
        return false;
    *exp = claims.exp;
    token_store(a, token, len, hash, *id, *exp);
    return true;
}

static enum authn_verdict user_caller(long long id, enum role role, long long exp,
                                      struct caller *out)
{
    if (role == ROLE_NONE)
        return AUTHN_UNAUTHORIZED;
    *out = (struct caller){.kind = CALLER_USER, .user_id = id, .role = role, .token_exp = exp};
    return AUTHN_OK;
}

enum authn_verdict authn_user_cached(struct authn *a, const char *token, struct caller *out)
{
    long long id, exp;
    enum role role;
    if (!user_token_verify(a, token, &id, &exp))
        return AUTHN_UNAUTHORIZED;
    if (!user_cached(a, id, &role))
        return AUTHN_NEEDS_LOOKUP;
    return user_caller(id, role, exp, out);
}

enum status authn_user(struct authn *a, const char *token, struct caller *out)
{
    long long id, exp;
    enum role role;
    if (!user_token_verify(a, token, &id, &exp))
        return STATUS_UNAUTHORIZED;
    if (!user_cached(a, id, &role)) {
        struct db_conn *conn = db_pool_acquire(a->pool, AUTHN_DB_WAIT_MS);
        if (!conn)
            return STATUS_UNAVAILABLE;
        enum status st = db_credentials_user_role(conn, id, &role);
        db_pool_release(a->pool, conn);
        if (st == STATUS_NOT_FOUND)
            role = ROLE_NONE;
        else if (st != STATUS_OK)
            return st;
        user_store(a, id, role);
    }
    return user_caller(id, role, exp, out) == AUTHN_OK ? STATUS_OK : STATUS_UNAUTHORIZED;
}

/* The set for a token hash: its first 8 hex digits are uniformly random. */
static struct device_slot *device_set(struct authn *a, const char *hash)
{
    unsigned long v = strtoul(
        (char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], 0}, NULL,
        16);
    return a->devices[v % DEVICE_SETS];
}

static bool device_fresh(const struct device_slot *s, double now)
{
    return s->fetched > 0 && now - s->fetched < AUTHN_CACHE_TTL_S;
}

/* Under the mutex: the fresh slot holding hash, or NULL. */
static const struct device_slot *device_find(struct device_slot *set, const char *hash)
{
    double now = clock_mono_s();
    for (int i = 0; i < DEVICE_WAYS; i++)
        if (device_fresh(&set[i], now) &&
            crypto_equal(set[i].token_hash, hash, CRYPTO_SHA256_HEX_LEN))
            return &set[i];
    return NULL;
}

/* Under the mutex: the slot to store hash in: its own, else the one fetched
 * longest ago (an empty or stale one first). */
static struct device_slot *device_victim(struct device_slot *set, const char *hash)
{
    struct device_slot *victim = &set[0];
    for (int i = 0; i < DEVICE_WAYS; i++) {
        if (crypto_equal(set[i].token_hash, hash, CRYPTO_SHA256_HEX_LEN))
            return &set[i];
        if (set[i].fetched < victim->fetched)
            victim = &set[i];
    }
    return victim;
}

/* The SHA-256 (hex) under which a device token is stored; false for a
 * token no device can have. */
static bool device_token_hash(const char *token, char hash[CRYPTO_SHA256_HEX_LEN + 1])
{
    size_t len = strlen(token);
    if (len < 16 || len > 256)
        return false;
    crypto_sha256_hex(token, len, hash);
    return true;
}

static bool device_cached(struct authn *a, const char *hash, struct caller *out)
{
    struct device_slot *set = device_set(a, hash);
    pthread_mutex_lock(&a->mutex);
    const struct device_slot *hit = device_find(set, hash);
    if (hit)
        *out = (struct caller){
            .kind = CALLER_DEVICE, .device_id = hit->device_id, .reading_type = hit->reading_type};
    pthread_mutex_unlock(&a->mutex);
    return hit != NULL;
}

static void device_store(struct authn *a, const char *hash, long long device_id,
                         enum reading_type type)
{
    struct device_slot *set = device_set(a, hash);
    pthread_mutex_lock(&a->mutex);
    struct device_slot *s = device_victim(set, hash);
    memcpy(s->token_hash, hash, sizeof s->token_hash);
    s->device_id = device_id;
    s->reading_type = type;
    s->fetched = clock_mono_s();
    pthread_mutex_unlock(&a->mutex);
}

enum authn_verdict authn_device_cached(struct authn *a, const char *token, struct caller *out)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!device_token_hash(token, hash))
        return AUTHN_UNAUTHORIZED;
    return device_cached(a, hash, out) ? AUTHN_OK : AUTHN_NEEDS_LOOKUP;
}

enum status authn_device(struct authn *a, const char *token, struct caller *out)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!device_token_hash(token, hash))
        return STATUS_UNAUTHORIZED;
    if (device_cached(a, hash, out))
        return STATUS_OK;
    long long device_id = 0;
    enum reading_type type = READING_CUMULATIVE;
    struct db_conn *conn = db_pool_acquire(a->pool, AUTHN_DB_WAIT_MS);
    if (!conn)
        return STATUS_UNAVAILABLE;
    enum status st = db_credentials_device_by_token(conn, hash, &device_id, &type);
    db_pool_release(a->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return STATUS_UNAUTHORIZED;
    if (st != STATUS_OK)
        return st;
    device_store(a, hash, device_id, type);
    *out = (struct caller){.kind = CALLER_DEVICE, .device_id = device_id, .reading_type = type};
    return STATUS_OK;
}

void authn_forget_user(struct authn *a, long long user_id)
{
    pthread_mutex_lock(&a->mutex);
    struct user_slot *s = &a->users[(unsigned long long)user_id % CACHE_SLOTS];
    if (s->user_id == user_id)
        s->fetched = 0;
    pthread_mutex_unlock(&a->mutex);
}

void authn_forget_device(struct authn *a, long long device_id)
{
    pthread_mutex_lock(&a->mutex);
    for (size_t i = 0; i < DEVICE_SETS; i++)
        for (size_t j = 0; j < DEVICE_WAYS; j++)
            if (a->devices[i][j].device_id == device_id)
                a->devices[i][j].fetched = 0;
    pthread_mutex_unlock(&a->mutex);
}
