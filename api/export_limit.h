/* export_limit: how many streamed exports (CSV) may be in progress, per user
 * and in all.
 *
 * An export holds no database connection while its client reads, but it does
 * hold a buffer, a share of the query workers and of the pool while it
 * fetches, and a connection slot for as long as the client takes. The caps
 * bound that: past them the answer is 429 (this user) or 503 (the server),
 * at once, never a queue. Thread-safe: a slot is taken on a query worker and
 * given back on an HTTP thread when the stream ends.
 */
#ifndef WATTLINE_EXPORT_LIMIT_H
#define WATTLINE_EXPORT_LIMIT_H

struct export_limit;

enum export_admission {
    EXPORT_ADMITTED,
    EXPORT_USER_FULL,   /* the user already has per_user exports in progress */
    EXPORT_SERVER_FULL, /* total exports are in progress */
};

/* NULL when memory is short. Caller frees with export_limit_free(). */
struct export_limit *export_limit_create(int per_user, int total);
void export_limit_free(struct export_limit *l);

/* Takes a slot for user_id when both caps allow; the per-user cap is judged
 * first (one user's exports are that user's to finish). */
enum export_admission export_limit_take(struct export_limit *l, long long user_id);

/* Gives back a slot export_limit_take() admitted, once. */
void export_limit_give(struct export_limit *l, long long user_id);

/* How long a refused client is told to wait (Retry-After), seconds. */
#define EXPORT_RETRY_AFTER_S 5

#endif
