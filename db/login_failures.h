/* login_failures: per-account failed-login state (see handlers/throttle.h).
 *
 * Kept in the database so that every server instance counts the same
 * failures. Rows are keyed by the lower-cased email as typed at login, so an
 * email that belongs to nobody is throttled exactly like a real account and
 * the answers never tell the two apart. */
#ifndef WATTLINE_DB_LOGIN_FAILURES_H
#define WATTLINE_DB_LOGIN_FAILURES_H

#include "db.h"

struct login_failure {
    int failures;
    long long window_start; /* microseconds since the epoch */
    long long locked_until; /* microseconds since the epoch; 0: not locked */
    long long expires_at;   /* stored only: when the row stops mattering (for pruning) */
};

/* Begins a transaction and reads the state for email with the row locked
 * (creating a zero row first), so concurrent attempts on one account take
 * turns. On STATUS_OK the caller must end it with db_login_failures_store()
 * or db_rollback(); on any other status no transaction is left open. */
enum status db_login_failures_lock(struct db_conn *conn, const char *email,
                                   struct login_failure *out);

/* Writes the state read by db_login_failures_lock() and commits. */
enum status db_login_failures_store(struct db_conn *conn, const char *email,
                                    const struct login_failure *state);

/* Forgets the account's failures (after a correct password). */
enum status db_login_failures_clear(struct db_conn *conn, const char *email);

/* Deletes up to `limit` rows last touched before the given time
 * (microseconds since the epoch): they can no longer affect a decision. */
enum status db_login_failures_prune(struct db_conn *conn, long long before, int limit);

#endif
