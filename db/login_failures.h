/* login_failures: per-account failed-login state (see auth/throttle.h).
 *
 * Kept in the database so that every server instance counts the same
 * failures. Rows are keyed by the lower-cased email as typed at login, so an
 * email that belongs to nobody is throttled exactly like a real account and
 * the answers never tell the two apart. */
#ifndef WATTLINE_DB_LOGIN_FAILURES_H
#define WATTLINE_DB_LOGIN_FAILURES_H

#include <stdbool.h>

#include "db.h"

struct login_failure {
    int failures;
    long long window_start; /* microseconds since the epoch */
    long long locked_until; /* microseconds since the epoch; 0: not locked */
    long long expires_at;   /* stored only: when the row stops mattering (for pruning) */
};

/* What a password check decides from an account's state: true after
 * changing *state into the one to store, false to leave it as it was. */
typedef bool (*db_login_failures_decide_fn)(struct login_failure *state, void *ctx);

/* In one transaction: reads the state for email with its row locked
 * (creating a zero row first), so that concurrent attempts on one account
 * take turns, hands it to decide(ctx) and stores what decide() made of it.
 * The policy lives with the caller (auth/login.c); the transaction here. */
enum status db_login_failures_update(struct db_conn *conn, const char *email,
                                     db_login_failures_decide_fn decide, void *ctx);

/* Forgets the account's failures (after a correct password). */
enum status db_login_failures_clear(struct db_conn *conn, const char *email);

/* Deletes up to `limit` rows last touched before the given time
 * (microseconds since the epoch): they can no longer affect a decision. */
enum status db_login_failures_prune(struct db_conn *conn, long long before, int limit);

#endif
