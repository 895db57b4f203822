/* rate: token buckets, and a bounded table of them keyed by an integer id
 * (DEVICE_RATE_PER_MIN: one bucket per device on each instance).
 *
 * A bucket holds at most `burst` tokens and gains `per_s` a second; a
 * request takes one. The arithmetic is pure (time is passed in, monotonic
 * seconds), so it is unit-tested with an injected clock.
 *
 * The table is set-associative: RATE_WAYS buckets per set, the set chosen
 * by id modulo the number of sets, one mutex per group of sets, no
 * allocation after create. Device ids are sequential, so ids only share a
 * set once more than sets x RATE_WAYS devices post in the same period.
 * When a new id finds its set full, the bucket with the most tokens is
 * replaced: a full bucket says nothing a new one would not, so nothing is
 * lost while any way is full. Only when all RATE_WAYS of a set are busy
 * and partly spent does the replaced id lose its state: when it comes back
 * it starts with a full bucket, so each such eviction can let it through
 * at most `burst` requests more than its rate (never more: the bucket
 * caps what it may gain). A collision never slows anyone down: a new id
 * always gets a full bucket of its own. */
#ifndef WATTLINE_RATE_H
#define WATTLINE_RATE_H

#include <stddef.h>

struct rate_bucket {
    double tokens;
    double at; /* when tokens was last brought up to date */
};

struct rate_policy {
    double per_s; /* tokens gained a second, > 0 */
    double burst; /* most tokens a bucket holds, >= 1 */
};

/* A bucket as a new id gets it: full at now. */
struct rate_bucket rate_bucket_full(const struct rate_policy *p, double now);

/* Takes one token at now and returns 0, or, when there is none, returns
 * the seconds until there is one (> 0) and takes nothing. A clock that
 * goes back adds nothing. */
double rate_take(const struct rate_policy *p, struct rate_bucket *b, double now);

/* The tokens the bucket holds at now (without taking any). */
double rate_tokens(const struct rate_policy *p, const struct rate_bucket *b, double now);

/* ---- the table ------------------------------------------------------------ */

#define RATE_WAYS 4

struct rate_table;

/* A table of sets x RATE_WAYS buckets with policy p (copied). NULL when
 * sets is 0, the policy is not valid, or on allocation failure.
 * free(NULL) is a no-op. */
struct rate_table *rate_table_create(const struct rate_policy *p, size_t sets);
void rate_table_free(struct rate_table *t);

/* rate_take() on id's bucket. Thread-safe. */
double rate_table_take(struct rate_table *t, long long id, double now);

/* How many takes were refused since create, for /metrics. */
unsigned long rate_table_refused(struct rate_table *t);

#endif
