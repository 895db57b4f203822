/* users: the users table. */
#ifndef WATTLINE_DB_USERS_H
#define WATTLINE_DB_USERS_H

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

/* Inserts a user; STATUS_CONFLICT when the email is taken (any case). */
enum status db_users_create(struct db_conn *conn, const char *email, const char *name,
                            enum role role, const char *password_hash, struct user *out);

/* How many users exist. */
enum status db_users_count(struct db_conn *conn, long long *count);

#endif
