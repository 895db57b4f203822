/* auth: login, token refresh and logout, and the password and throttling
 * steps that PATCH /me shares with login. */
#ifndef WATTLINE_AUTH_H
#define WATTLINE_AUTH_H

#include <stddef.h>

#include "../auth/password.h"
#include "../api/handler.h"

struct db_conn;

/* Refresh tokens live 30 days; each refresh issues a new one. */
#define AUTH_REFRESH_TTL_S (30LL * 24 * 3600)
/* How long a request waits for a free password-hashing slot before 503. */
#define AUTH_HASH_WAIT_MS 3000

int auth_login(const struct request *req, struct response *res, struct app *app);
int auth_refresh(const struct request *req, struct response *res, struct app *app);
int auth_logout(const struct request *req, struct response *res, struct app *app);

/* ---- shared with handlers/users.c --------------------------------------- */

/* 503 "busy": every password-hashing slot stayed taken (Retry-After: 1). */
int auth_reply_busy(struct response *res);
/* 429 "too_many_attempts" with Retry-After for a wait in seconds. */
int auth_reply_throttled(struct response *res, double wait);

/* Starts a password check for the account with this email: when it is
 * locked, *wait is the seconds left and nothing is counted; otherwise the
 * attempt is counted as a failure right away (so concurrent guesses cannot
 * slip past the limit) and *wait is 0; auth_account_forgive() undoes it
 * after a correct password. */
enum status auth_account_attempt(struct db_conn *conn, const char *email, double now, double *wait);
enum status auth_account_forgive(struct db_conn *conn, const char *email);

/* Hashes a new password with the default parameters, taking a slot of the
 * password limiter. STATUS_UNAVAILABLE when no slot freed up in time. */
enum status auth_hash_password(struct app *app, const char *password, size_t len,
                               char out[PASSWORD_HASH_MAX]);

#endif
