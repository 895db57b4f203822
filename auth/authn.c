#include "authn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/credentials.h"
#include "../base/clock.h"
#include "../base/crypto.h"
#include "authn_cache.h"
#include "jwt.h"

/* The JWT cache: direct-mapped by a hash of the token, overwritten on
 * collision. */
#define TOKEN_SLOTS 1024

/* How long a look-up waits for a pooled connection before answering 503. */
#define AUTHN_DB_WAIT_MS 2000

/* A token that verified, so the next request with it skips two HMACs and
 * four JSON parses. Only verified tokens get in; a hit still checks expiry. */
struct token_slot {
    unsigned long long hash;
    char *token; /* owned copy */
    size_t len;
    long long user_id;
    long long exp;
};

/* A device-token miss waiting to be looked up (lookup_device). */
struct device_miss {
    const char *hash;
    long long device_id; /* 0: no device holds it */
    enum reading_type type;
    enum status status;
    bool done;
    struct device_miss *next;
};

/* Device look-ups in one query at most this many at a time. */
#define DEVICE_MISS_BATCH DB_TOKENS_PER_QUERY

struct authn {
    struct db_pool *pool;
    const char *jwt_secret;
    size_t jwt_secret_len;
    struct authn_cache *cache; /* users and devices */
    atomic_ulong user_lookups, device_lookups;
    pthread_mutex_t mutex; /* tokens */
    struct token_slot tokens[TOKEN_SLOTS];
    /* Device-token misses not yet taken, and whether a look-up is running. */
    pthread_mutex_t miss_mutex;
    pthread_cond_t miss_done;
    struct device_miss *misses;
    bool miss_running;
};

struct authn *authn_create(struct db_pool *pool, const char *jwt_secret, size_t jwt_secret_len)
{
    struct authn *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->pool = pool;
    a->jwt_secret = jwt_secret;
    a->jwt_secret_len = jwt_secret_len;
    a->cache = authn_cache_create();
    if (!a->cache) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->mutex, NULL);
    pthread_mutex_init(&a->miss_mutex, NULL);
    pthread_cond_init(&a->miss_done, NULL);
    return a;
}

void authn_free(struct authn *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < TOKEN_SLOTS; i++)
        free(a->tokens[i].token);
    authn_cache_free(a->cache);
    pthread_mutex_destroy(&a->mutex);
    pthread_mutex_destroy(&a->miss_mutex);
    pthread_cond_destroy(&a->miss_done);
    free(a);
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
    struct token_slot *s = &a->tokens[hash % TOKEN_SLOTS];
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
    struct token_slot *s = &a->tokens[hash % TOKEN_SLOTS];
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
    if (!authn_cache_user_get(a->cache, id, clock_mono_s(), &role))
        return AUTHN_NEEDS_LOOKUP;
    return user_caller(id, role, exp, out);
}

enum status authn_user(struct authn *a, const char *token, struct caller *out)
{
    long long id, exp;
    enum role role;
    if (!user_token_verify(a, token, &id, &exp))
        return STATUS_UNAUTHORIZED;
    if (!authn_cache_user_get(a->cache, id, clock_mono_s(), &role)) {
        struct db_conn *conn = db_pool_acquire(a->pool, AUTHN_DB_WAIT_MS);
        if (!conn)
            return STATUS_UNAVAILABLE;
        /* Taken just before the query: what it reads is at least this new. */
        struct authn_ticket ticket = authn_cache_user_begin(a->cache, clock_mono_s());
        atomic_fetch_add(&a->user_lookups, 1);
        enum status st = db_credentials_user_role(conn, id, &role);
        db_pool_release(a->pool, conn);
        if (st == STATUS_NOT_FOUND)
            role = ROLE_NONE;
        else if (st != STATUS_OK)
            return st;
        authn_cache_user_put(a->cache, &ticket, id, role);
    }
    return user_caller(id, role, exp, out) == AUTHN_OK ? STATUS_OK : STATUS_UNAUTHORIZED;
}

/* The SHA-256 (hex) under which a device token is stored; false for a
 * token no device can have. */
static bool device_token_hash(const char *token, char hash[CRYPTO_SHA256_HEX_LEN + 1])
{
    size_t len = strlen(token);
    if (len < 16 || len > 256)
        return false;
    crypto_sha256_hex(token, len, hash);
    return hash[0] != '\0';
}

static enum authn_cache_hit device_cached(struct authn *a, const char *hash, struct caller *out)
{
    long long id = 0;
    enum reading_type type = READING_CUMULATIVE;
    enum authn_cache_hit hit = authn_cache_device_get(a->cache, hash, clock_mono_s(), &id, &type);
    if (hit == AUTHN_CACHE_DEVICE)
        *out = (struct caller){.kind = CALLER_DEVICE, .device_id = id, .reading_type = type};
    return hit;
}

enum authn_verdict authn_device_cached(struct authn *a, const char *token, struct caller *out)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!device_token_hash(token, hash))
        return AUTHN_UNAUTHORIZED;
    switch (device_cached(a, hash, out)) {
    case AUTHN_CACHE_DEVICE:
        return AUTHN_OK;
    case AUTHN_CACHE_BAD:
        return AUTHN_UNAUTHORIZED;
    case AUTHN_CACHE_MISS:
        break;
    }
    return AUTHN_NEEDS_LOOKUP;
}

/* Looks up the misses of batch (at most DEVICE_MISS_BATCH) in one query and
 * caches what it found. */
static void lookup_batch(struct authn *a, struct device_miss *batch)
{
    const char *hashes[DEVICE_MISS_BATCH];
    long long ids[DEVICE_MISS_BATCH];
    enum reading_type types[DEVICE_MISS_BATCH];
    int n = 0;
    for (struct device_miss *m = batch; m; m = m->next)
        hashes[n++] = m->hash;
    enum status st = STATUS_UNAVAILABLE;
    struct db_conn *conn = db_pool_acquire(a->pool, AUTHN_DB_WAIT_MS);
    struct authn_ticket ticket = authn_cache_device_begin(a->cache, clock_mono_s());
    if (conn) {
        atomic_fetch_add(&a->device_lookups, (unsigned long)n);
        st = db_credentials_devices_by_tokens(conn, hashes, n, ids, types);
        db_pool_release(a->pool, conn);
    }
    int i = 0;
    for (struct device_miss *m = batch; m; m = m->next, i++) {
        m->status = st;
        if (st != STATUS_OK)
            continue;
        m->device_id = ids[i];
        m->type = types[i];
        if (ids[i])
            authn_cache_device_put(a->cache, &ticket, m->hash, ids[i], types[i]);
        else
            authn_cache_device_put_bad(a->cache, &ticket, m->hash, clock_mono_s());
    }
}

/* Device-token misses that arrive while a look-up runs wait and are then
 * looked up together, in one query, by whichever of them finds none running:
 * under load one query serves a batch of requests instead of one each (every
 * query worker may be waiting on a miss at once), and alone a miss costs what
 * it did. */
static void lookup_device(struct authn *a, struct device_miss *me)
{
    pthread_mutex_lock(&a->miss_mutex);
    me->next = a->misses;
    a->misses = me;
    while (!me->done) {
        if (a->miss_running) {
            pthread_cond_wait(&a->miss_done, &a->miss_mutex);
            continue;
        }
        /* Take the oldest misses first (the list is newest first), a batch. */
        struct device_miss **cut = &a->misses;
        int waiting = 0;
        for (struct device_miss *m = a->misses; m; m = m->next)
            waiting++;
        for (int skip = waiting - DEVICE_MISS_BATCH; skip > 0; skip--)
            cut = &(*cut)->next;
        struct device_miss *batch = *cut;
        *cut = NULL;
        a->miss_running = true;
        pthread_mutex_unlock(&a->miss_mutex);
        lookup_batch(a, batch);
        pthread_mutex_lock(&a->miss_mutex);
        for (struct device_miss *m = batch, *next; m; m = next) {
            next = m->next;
            m->done = true; /* m may be gone once the mutex is released */
        }
        a->miss_running = false;
        pthread_cond_broadcast(&a->miss_done);
    }
    pthread_mutex_unlock(&a->miss_mutex);
}

enum status authn_device(struct authn *a, const char *token, struct caller *out)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!device_token_hash(token, hash))
        return STATUS_UNAUTHORIZED;
    switch (device_cached(a, hash, out)) {
    case AUTHN_CACHE_DEVICE:
        return STATUS_OK;
    case AUTHN_CACHE_BAD:
        return STATUS_UNAUTHORIZED;
    case AUTHN_CACHE_MISS:
        break;
    }
    struct device_miss me = {.hash = hash, .type = READING_CUMULATIVE};
    lookup_device(a, &me);
    if (me.status != STATUS_OK)
        return me.status;
    if (me.device_id == 0)
        return STATUS_UNAUTHORIZED;
    *out =
        (struct caller){.kind = CALLER_DEVICE, .device_id = me.device_id, .reading_type = me.type};
    return STATUS_OK;
}

void authn_forget_user(struct authn *a, long long user_id)
{
    authn_cache_user_forget(a->cache, user_id);
}

void authn_forget_device(struct authn *a, long long device_id)
{
    authn_cache_device_forget(a->cache, device_id);
}

void authn_device_token_issued(struct authn *a, const char *token_hash)
{
    authn_cache_token_issued(a->cache, token_hash);
}

void authn_stats(struct authn *a, struct authn_stats *out)
{
    *out = (struct authn_stats){.user_lookups = atomic_load(&a->user_lookups),
                                .device_lookups = atomic_load(&a->device_lookups)};
}
