/* login: the per-account throttling of password checks, shared by
 * POST /api/v1/auth/login and PATCH /api/v1/me (a current password is
 * guessed like a login password, so it is counted like one).
 *
 * The count lives in the database (db/login_failures.h) so that every server
 * instance agrees; the rules are auth/throttle.h's THROTTLE_ACCOUNT. */
#ifndef WATTLINE_LOGIN_H
#define WATTLINE_LOGIN_H

#include "../db/db.h"

/* Starts a password check for the account with this email: when it is
 * locked, *wait is the seconds left and nothing is counted; otherwise the
 * attempt is counted as a failure right away (so concurrent guesses cannot
 * slip past the limit) and *wait is 0; login_forgive_account() undoes it
 * after a correct password. now is unix seconds. Commits before returning. */
enum status login_count_attempt(struct db_conn *conn, const char *email, double now, double *wait);

/* Forgets the account's counted attempts (after a correct password). */
enum status login_forgive_account(struct db_conn *conn, const char *email);

#endif
