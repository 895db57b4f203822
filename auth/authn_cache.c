#include "authn_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct user_slot {
    long long user_id;
    enum role role; /* ROLE_NONE: the user does not exist */
    double fetched; /* when its query started; 0: empty */
};

struct device_slot {
    char token_hash[CRYPTO_SHA256_HEX_LEN + 1];
    long long device_id;
    enum reading_type reading_type;
    double fetched; /* when its query started; 0: empty */
};

struct bad_slot {
    char token_hash[CRYPTO_SHA256_HEX_LEN + 1];
    double until; /* 0: empty */
};

/* Two mutexes: user and device traffic do not wait for each other. A
 * generation changes only under its table's mutex, and a put compares it
 * under the same mutex, so a forget either wipes a stored entry or makes
 * the late put a no-op. Readers of the generation (begin) need no lock. */
struct authn_cache {
    pthread_mutex_t users_mutex;
    atomic_ulong users_generation;
    struct user_slot users[AUTHN_USER_SLOTS];

    pthread_mutex_t devices_mutex;
    atomic_ulong devices_generation;
    struct device_slot devices[AUTHN_DEVICE_SETS][AUTHN_DEVICE_WAYS];
    struct bad_slot bad[AUTHN_BAD_SETS][AUTHN_BAD_WAYS];
};

struct authn_cache *authn_cache_create(void)
{
    struct authn_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->users_mutex, NULL);
    pthread_mutex_init(&c->devices_mutex, NULL);
    return c;
}

void authn_cache_free(struct authn_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->users_mutex);
    pthread_mutex_destroy(&c->devices_mutex);
    free(c);
}

static bool fresh(double fetched, double now)
{
    return fetched > 0 && now - fetched < AUTHN_CACHE_TTL_S;
}

/* ---- users ---------------------------------------------------------------- */

static struct user_slot *user_slot(struct authn_cache *c, long long id)
{
    return &c->users[(unsigned long long)id % AUTHN_USER_SLOTS];
}

bool authn_cache_user_get(struct authn_cache *c, long long id, double now, enum role *role)
{
    struct user_slot *s = user_slot(c, id);
    pthread_mutex_lock(&c->users_mutex);
    bool hit = s->user_id == id && fresh(s->fetched, now);
    if (hit)
        *role = s->role;
    pthread_mutex_unlock(&c->users_mutex);
    return hit;
}

struct authn_ticket authn_cache_user_begin(struct authn_cache *c, double now)
{
    return (struct authn_ticket){now, atomic_load(&c->users_generation)};
}

void authn_cache_user_put(struct authn_cache *c, const struct authn_ticket *t, long long id,
                          enum role role)
{
    struct user_slot *s = user_slot(c, id);
    pthread_mutex_lock(&c->users_mutex);
    /* A newer entry for the same user (a look-up that started later) wins. */
    bool newer = s->user_id == id && s->fetched > t->started;
    if (t->generation == atomic_load(&c->users_generation) && !newer)
        *s = (struct user_slot){.user_id = id, .role = role, .fetched = t->started};
    pthread_mutex_unlock(&c->users_mutex);
}

void authn_cache_user_forget(struct authn_cache *c, long long id)
{
    struct user_slot *s = user_slot(c, id);
    pthread_mutex_lock(&c->users_mutex);
    atomic_fetch_add(&c->users_generation, 1);
    if (s->user_id == id)
        s->fetched = 0;
    pthread_mutex_unlock(&c->users_mutex);
}

/* ---- devices -------------------------------------------------------------- */

/* A set index from 8 hex digits of a token hash (uniformly random). */
static unsigned long hash_bits(const char *hash, int from)
{
    char digits[9];
    memcpy(digits, hash + from, 8);
    digits[8] = '\0';
    return strtoul(digits, NULL, 16);
}

static struct device_slot *device_set(struct authn_cache *c, const char *hash)
{
    return c->devices[hash_bits(hash, 0) % AUTHN_DEVICE_SETS];
}

/* Other digits than device_set's, so the two tables do not mirror each other. */
static struct bad_slot *bad_set(struct authn_cache *c, const char *hash)
{
    return c->bad[hash_bits(hash, 8) % AUTHN_BAD_SETS];
}

static bool same_hash(const char *a, const char *b)
{
    return crypto_equal(a, b, CRYPTO_SHA256_HEX_LEN);
}

enum authn_cache_hit authn_cache_device_get(struct authn_cache *c, const char *hash, double now,
                                            long long *device_id, enum reading_type *type)
{
    struct device_slot *set = device_set(c, hash);
    struct bad_slot *bad = bad_set(c, hash);
    enum authn_cache_hit hit = AUTHN_CACHE_MISS;
    pthread_mutex_lock(&c->devices_mutex);
    for (int i = 0; i < AUTHN_DEVICE_WAYS && hit == AUTHN_CACHE_MISS; i++)
        if (fresh(set[i].fetched, now) && same_hash(set[i].token_hash, hash)) {
            *device_id = set[i].device_id;
            *type = set[i].reading_type;
            hit = AUTHN_CACHE_DEVICE;
        }
    for (int i = 0; i < AUTHN_BAD_WAYS && hit == AUTHN_CACHE_MISS; i++)
        if (bad[i].until > now && same_hash(bad[i].token_hash, hash))
            hit = AUTHN_CACHE_BAD;
    pthread_mutex_unlock(&c->devices_mutex);
    return hit;
}

struct authn_ticket authn_cache_device_begin(struct authn_cache *c, double now)
{
    return (struct authn_ticket){now, atomic_load(&c->devices_generation)};
}

/* Under the mutex: the slot to store hash in: its own, else the one fetched
 * longest ago (an empty one first). */
static struct device_slot *device_victim(struct device_slot *set, const char *hash)
{
    struct device_slot *victim = &set[0];
    for (int i = 0; i < AUTHN_DEVICE_WAYS; i++) {
        if (same_hash(set[i].token_hash, hash))
            return &set[i];
        if (set[i].fetched < victim->fetched)
            victim = &set[i];
    }
    return victim;
}

void authn_cache_device_put(struct authn_cache *c, const struct authn_ticket *t, const char *hash,
                            long long device_id, enum reading_type type)
{
    struct device_slot *set = device_set(c, hash);
    pthread_mutex_lock(&c->devices_mutex);
    if (t->generation == atomic_load(&c->devices_generation)) {
        struct device_slot *s = device_victim(set, hash);
        if (!same_hash(s->token_hash, hash) || s->fetched <= t->started) {
            memcpy(s->token_hash, hash, CRYPTO_SHA256_HEX_LEN);
            s->token_hash[CRYPTO_SHA256_HEX_LEN] = '\0';
            s->device_id = device_id;
            s->reading_type = type;
            s->fetched = t->started;
        }
    }
    pthread_mutex_unlock(&c->devices_mutex);
}

/* Under the mutex: hash's own slot, else an expired one, else the one that
 * expires first. */
static struct bad_slot *bad_victim(struct bad_slot *set, const char *hash)
{
    struct bad_slot *victim = &set[0];
    for (int i = 0; i < AUTHN_BAD_WAYS; i++) {
        if (same_hash(set[i].token_hash, hash))
            return &set[i];
        if (set[i].until < victim->until)
            victim = &set[i];
    }
    return victim;
}

void authn_cache_device_put_bad(struct authn_cache *c, const struct authn_ticket *t,
                                const char *hash, double now)
{
    struct bad_slot *set = bad_set(c, hash);
    pthread_mutex_lock(&c->devices_mutex);
    if (t->generation == atomic_load(&c->devices_generation)) {
        struct bad_slot *s = bad_victim(set, hash);
        memcpy(s->token_hash, hash, CRYPTO_SHA256_HEX_LEN);
        s->token_hash[CRYPTO_SHA256_HEX_LEN] = '\0';
        s->until = now + AUTHN_BAD_TOKEN_TTL_S;
    }
    pthread_mutex_unlock(&c->devices_mutex);
}

void authn_cache_device_forget(struct authn_cache *c, long long device_id)
{
    pthread_mutex_lock(&c->devices_mutex);
    atomic_fetch_add(&c->devices_generation, 1);
    for (size_t i = 0; i < AUTHN_DEVICE_SETS; i++)
        for (size_t j = 0; j < AUTHN_DEVICE_WAYS; j++)
            if (c->devices[i][j].device_id == device_id)
                c->devices[i][j].fetched = 0;
    pthread_mutex_unlock(&c->devices_mutex);
}

void authn_cache_token_issued(struct authn_cache *c, const char *hash)
{
    struct bad_slot *set = bad_set(c, hash);
    pthread_mutex_lock(&c->devices_mutex);
    atomic_fetch_add(&c->devices_generation, 1);
    for (int i = 0; i < AUTHN_BAD_WAYS; i++)
        if (same_hash(set[i].token_hash, hash))
            set[i] = (struct bad_slot){0};
    pthread_mutex_unlock(&c->devices_mutex);
}
