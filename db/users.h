/* users: the users table. */
#ifndef WATTLINE_DB_USERS_H
#define WATTLINE_DB_USERS_H

#include <stddef.h>

#include "audit.h"
#include "db.h"
#include "models.h"

#define USER_EMAIL_MAX 254
#define USER_NAME_MAX  200

struct user {
    long long id;
    char email[USER_EMAIL_MAX + 1];
    char name[USER_NAME_MAX * 4 + 1]; /* 200 characters of UTF-8 */
    enum role role;
    long long created_at; /* microseconds since the epoch */
};

/* Inserts a user with its user.create audit entry (audit: who, from where,
 * what; NULL for none) in one transaction; STATUS_CONFLICT when the email is
 * taken (any case). */
enum status db_users_create(struct db_conn *conn, const char *email, const char *name,
                            enum role role, const char *password_hash,
                            const struct audit_ctx *audit, struct user *out);

/* How many users exist. */
enum status db_users_count(struct db_conn *conn, long long *count);

/* One user by id; STATUS_NOT_FOUND when there is none. */
enum status db_users_get(struct db_conn *conn, long long id, struct user *out);

/* The user with this email (any case) and its stored password hash, copied
 * into hash (hash_size bytes, truncated). STATUS_NOT_FOUND when none. */
enum status db_users_find_login(struct db_conn *conn, const char *email, struct user *out,
                                char *hash, size_t hash_size);

/* The stored password hash of user id; STATUS_NOT_FOUND when none. */
enum status db_users_password_hash(struct db_conn *conn, long long id, char *hash,
                                   size_t hash_size);

/* Replaces the password hash only while it is still old_hash, so upgrading
 * an old hash at login never undoes a password change made meanwhile.
 * STATUS_OK also when nothing was replaced. */
enum status db_users_rehash(struct db_conn *conn, long long id, const char *old_hash,
                            const char *new_hash);

/* What to change: NULL members and ROLE_NONE stay as they are. */
struct user_change {
    const char *email;
    const char *name;
    enum role role;
    const char *password_hash;
};

/* Applies change to user id and gives the result, in one transaction that
 * also revokes every login of the user when the password changes and
 * announces a new role (users_changed event) so that live sessions re-read
 * it, and writes the user.update audit entry. STATUS_NOT_FOUND,
 * STATUS_CONFLICT when the new email is taken. */
enum status db_users_update(struct db_conn *conn, long long id, const struct user_change *change,
                            const struct audit_ctx *audit, struct user *out);

/* Deletes user id (its devices become unassigned, its sessions go), writes
 * the user.delete audit entry and announces it (users_changed event), in one
 * transaction. STATUS_NOT_FOUND when there is none. */
enum status db_users_delete(struct db_conn *conn, long long id, const struct audit_ctx *audit);

/* Up to limit users with id > after_id, by id; when q is not NULL only those
 * whose email or name contains q, ignoring case (q is literal text: LIKE
 * wildcards in it match themselves). out holds limit entries; *count says
 * how many were filled. */
enum status db_users_list(struct db_conn *conn, const char *q, long long after_id, int limit,
                          struct user *out, int *count);

#endif
