#include "throttle.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const struct throttle_policy THROTTLE_ACCOUNT = {
    .max_failures = 10, .window_s = 900, .lock_s = 900};
/* After 50 failures in 15 minutes an address gets one more try every 30 s
 * until the window ends: slowed, not locked out (people share addresses). */
const struct throttle_policy THROTTLE_ADDRESS = {.max_failures = 50, .window_s = 900, .lock_s = 30};

double throttle_wait(const struct throttle_state *state, double now)
{
    return state->locked_until > now ? state->locked_until - now : 0;
}

void throttle_fail(const struct throttle_policy *policy, struct throttle_state *state, double now)
{
    if (state->failures <= 0 || now >= state->window_start + policy->window_s) {
        state->failures = 0;
        state->window_start = now;
    }
    state->failures++;
    /* With a lock shorter than the window, each further failure in the same
     * window locks again: the count is not forgiven until the window ends. */
    if (state->failures >= policy->max_failures)
        state->locked_until = now + policy->lock_s;
}

bool throttle_expired(const struct throttle_policy *policy, const struct throttle_state *state,
                      double now)
{
    return state->failures <= 0 ||
           (state->locked_until <= now && now >= state->window_start + policy->window_s);
}

long throttle_retry_after(double wait)
{
    double s = ceil(wait);
    if (!(s >= 1)) /* also NaN */
        return 1;
    return s > 86400 ? 86400 : (long)s;
}

/* ---- the table --------------------------------------------------------- */

/* How many consecutive slots a key may occupy (open addressing). */
#define PROBES 8

struct throttle_entry {
    char key[THROTTLE_KEY_MAX + 1]; /* "" for a free slot */
    struct throttle_state state;
};

struct throttle_table {
    pthread_mutex_t mutex;
    const struct throttle_policy *policy;
    size_t nslots;
    struct throttle_entry *slots;
};

struct throttle_table *throttle_table_create(const struct throttle_policy *policy, size_t slots)
{
    if (slots == 0)
        return NULL;
    struct throttle_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->slots = calloc(slots, sizeof *t->slots);
    if (!t->slots || pthread_mutex_init(&t->mutex, NULL) != 0) {
        free(t->slots);
        free(t);
        return NULL;
    }
    t->policy = policy;
    t->nslots = slots;
    return t;
}

void throttle_table_free(struct throttle_table *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mutex);
    free(t->slots);
    free(t);
}

/* FNV-1a over the (cut) key. */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < THROTTLE_KEY_MAX && key[i]; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool key_equal(const struct throttle_entry *e, const char *key)
{
    return e->key[0] && strncmp(e->key, key, THROTTLE_KEY_MAX) == 0;
}

/* When the entry stops mattering: the later of its lock end and window end. */
static double entry_expiry(const struct throttle_policy *policy, const struct throttle_entry *e)
{
    double window_end = e->state.window_start + policy->window_s;
    return e->state.locked_until > window_end ? e->state.locked_until : window_end;
}

/* The entry for key, or NULL when it has none. Called with the mutex held. */
static struct throttle_entry *table_find(struct throttle_table *t, const char *key)
{
    size_t start = (size_t)(key_hash(key) % t->nslots);
    for (size_t i = 0; i < PROBES && i < t->nslots; i++) {
        struct throttle_entry *e = &t->slots[(start + i) % t->nslots];
        if (key_equal(e, key))
            return e;
    }
    return NULL;
}

/* A slot for a new key: a free or expired one among the key's probes, else
 * the one that would expire first. Called with the mutex held. */
static struct throttle_entry *table_claim(struct throttle_table *t, const char *key, double now)
{
    size_t start = (size_t)(key_hash(key) % t->nslots);
    struct throttle_entry *victim = &t->slots[start];
    for (size_t i = 0; i < PROBES && i < t->nslots; i++) {
        struct throttle_entry *e = &t->slots[(start + i) % t->nslots];
        if (!e->key[0] || throttle_expired(t->policy, &e->state, now)) {
            victim = e;
            break;
        }
        if (entry_expiry(t->policy, e) < entry_expiry(t->policy, victim))
            victim = e;
    }
    memset(victim, 0, sizeof *victim);
    strncpy(victim->key, key, THROTTLE_KEY_MAX);
    victim->key[THROTTLE_KEY_MAX] = '\0';
    return victim;
}

double throttle_table_wait(struct throttle_table *t, const char *key, double now)
{
    pthread_mutex_lock(&t->mutex);
    const struct throttle_entry *e = table_find(t, key);
    double wait = e ? throttle_wait(&e->state, now) : 0;
    pthread_mutex_unlock(&t->mutex);
    return wait;
}

void throttle_table_fail(struct throttle_table *t, const char *key, double now)
{
    pthread_mutex_lock(&t->mutex);
    struct throttle_entry *e = table_find(t, key);
    if (!e)
        e = table_claim(t, key, now);
    throttle_fail(t->policy, &e->state, now);
    pthread_mutex_unlock(&t->mutex);
}
