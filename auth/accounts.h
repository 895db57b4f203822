/* accounts: creating a user, the one code path shared by POST /api/v1/users
 * and `wattline user add` (which make run uses for the first admin), and
 * hashing a new password under the limiter (PATCH /users, /me). */
#ifndef WATTLINE_ACCOUNTS_H
#define WATTLINE_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "../db/users.h"
#include "password.h"

#define PASSWORD_MIN 10
#define PASSWORD_MAX 1024

/* How long a request waits for a free password-hashing slot before 503. */
#define ACCOUNTS_HASH_WAIT_MS 3000

/* Field checks; each returns NULL when valid, else a message for a 422. */
const char *accounts_check_email(const char *email);
const char *accounts_check_name(const char *name);
const char *accounts_check_password(const char *password, size_t len);

struct password_limiter;

/* Validates, hashes the password (under the limiter when given) and inserts
 * with the user.create audit entry (db_users_create). On STATUS_INVALID, *field names the bad
 * member and *why says what is wrong. STATUS_CONFLICT: the email is taken. */
enum status accounts_create(struct db_conn *conn, struct password_limiter *limiter,
                            const char *email, const char *name, enum role role,
                            const char *password, size_t password_len,
                            const struct audit_ctx *audit, struct user *out, const char **field,
                            const char **why);

/* Hashes a new password with the default parameters into out, under a slot
 * of limiter when one is given. STATUS_UNAVAILABLE when no slot freed up
 * within ACCOUNTS_HASH_WAIT_MS, STATUS_INTERNAL when hashing failed. */
enum status accounts_hash_password(struct password_limiter *limiter, const char *password,
                                   size_t len, char out[PASSWORD_HASH_MAX]);

#endif
