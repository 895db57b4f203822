/* throttle: counting failed logins and deciding when to refuse more.
 *
 * The policy arithmetic is pure (time is passed in, nothing is global), so
 * the same rules serve both counters: per account, whose state lives in the
 * database so that every server instance agrees (handlers/auth.c), and per
 * client address, whose state lives in the bounded in-memory table below.
 *
 * Rule: failures are counted in a fixed window that starts at the first
 * failure; the failure that brings the count to max_failures locks further
 * attempts for lock_s seconds. A failure after the window has passed starts a
 * new window. A success resets the state (the caller deletes it).
 */
#ifndef WATTLINE_THROTTLE_H
#define WATTLINE_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>

struct throttle_policy {
    int max_failures; /* this many failures within window_s lock */
    double window_s;
    double lock_s;
};

/* The contract: after at most 10 failures for one account within 15
 * minutes, 429. Locking costs the real user too, so it ends after 15 min. */
extern const struct throttle_policy THROTTLE_ACCOUNT;
/* Password spraying (one guess against many accounts) from one address: a
 * higher threshold, since several people may share an address, and a short
 * lock that only slows the address down (one try per lock_s) rather than
 * shutting its other users out for the whole window. */
extern const struct throttle_policy THROTTLE_ADDRESS;

/* Times are unix seconds. The zero state means "no failures". */
struct throttle_state {
    int failures;
    double window_start;
    double locked_until; /* 0: not locked */
};

/* Seconds until the next attempt is allowed; 0 when it is allowed now. */
double throttle_wait(const struct throttle_state *state, double now);

/* Counts one failure at now (see the rule above). */
void throttle_fail(const struct throttle_policy *policy, struct throttle_state *state, double now);

/* True when the state no longer affects any decision (lock over, window
 * passed): it may be forgotten. */
bool throttle_expired(const struct throttle_policy *policy, const struct throttle_state *state,
                      double now);

/* A wait as a Retry-After value: whole seconds, rounded up, at least 1. */
long throttle_retry_after(double wait);

/* ---- per-key state in memory (client addresses) -------------------------- */

/* A fixed-size, thread-safe table: memory stays bounded however many
 * addresses an attacker uses. When the few slots a key may occupy are all
 * taken, the entry that would expire first is replaced. */
struct throttle_table;

#define THROTTLE_KEY_MAX 63 /* longer keys are cut (an IPv6 address has at most 45) */

/* NULL when slots is 0 or on allocation failure. policy is borrowed and
 * must outlive the table. free(NULL) is a no-op. */
struct throttle_table *throttle_table_create(const struct throttle_policy *policy, size_t slots);
void throttle_table_free(struct throttle_table *table);

/* Seconds until key may try again; 0 when it may try now. */
double throttle_table_wait(struct throttle_table *table, const char *key, double now);
/* Counts a failure for key. */
void throttle_table_fail(struct throttle_table *table, const char *key, double now);

#endif
