#include "rate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct rate_bucket rate_bucket_full(const struct rate_policy *p, double now)
{
    return (struct rate_bucket){.tokens = p->burst, .at = now};
}

double rate_tokens(const struct rate_policy *p, const struct rate_bucket *b, double now)
{
    double gained = now > b->at ? (now - b->at) * p->per_s : 0;
    double tokens = b->tokens + gained;
    return tokens < p->burst ? tokens : p->burst;
}

double rate_take(const struct rate_policy *p, struct rate_bucket *b, double now)
{
    b->tokens = rate_tokens(p, b, now);
    if (now > b->at)
        b->at = now;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    return (1 - b->tokens) / p->per_s;
}

/* ---- the table ------------------------------------------------------------ */

/* Sets share a mutex by their index modulo this: requests for different
 * devices rarely wait for each other, and the table stays small. */
#define RATE_LOCKS 64

struct rate_entry {
    long long id; /* 0: free (ids are positive) */
    struct rate_bucket bucket;
};

struct rate_table {
    struct rate_policy policy;
    size_t nsets;
    struct rate_entry (*sets)[RATE_WAYS];
    pthread_mutex_t locks[RATE_LOCKS];
    atomic_ulong refused;
};

struct rate_table *rate_table_create(const struct rate_policy *p, size_t sets)
{
    if (sets == 0 || !(p->per_s > 0) || !(p->burst >= 1))
        return NULL;
    struct rate_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->sets = calloc(sets, sizeof *t->sets);
    if (!t->sets) {
        free(t);
        return NULL;
    }
    t->policy = *p;
    t->nsets = sets;
    for (int i = 0; i < RATE_LOCKS; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void rate_table_free(struct rate_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < RATE_LOCKS; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->sets);
    free(t);
}

/* Under the set's lock: id's entry, else a free one, else the one holding
 * the most tokens (see rate.h), made id's with a full bucket. */
static struct rate_entry *entry_for(struct rate_table *t, struct rate_entry *set, long long id,
                                    double now)
{
    struct rate_entry *victim = NULL;
    double most = -1;
    for (int i = 0; i < RATE_WAYS; i++) {
        if (set[i].id == id)
            return &set[i];
        double tokens = set[i].id == 0 ? t->policy.burst + 1 /* free: best */
                                       : rate_tokens(&t->policy, &set[i].bucket, now);
        if (tokens > most) {
            most = tokens;
            victim = &set[i];
        }
    }
    *victim = (struct rate_entry){.id = id, .bucket = rate_bucket_full(&t->policy, now)};
    return victim;
}

double rate_table_take(struct rate_table *t, long long id, double now)
{
    size_t index = (size_t)((unsigned long long)id % t->nsets);
    pthread_mutex_t *lock = &t->locks[index % RATE_LOCKS];
    pthread_mutex_lock(lock);
    double wait = rate_take(&t->policy, &entry_for(t, t->sets[index], id, now)->bucket, now);
    pthread_mutex_unlock(lock);
    if (wait > 0)
        atomic_fetch_add(&t->refused, 1);
    return wait;
}

unsigned long rate_table_refused(struct rate_table *t)
{
    return atomic_load(&t->refused);
}
