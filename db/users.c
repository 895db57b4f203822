#include "users.h"

#include <stdlib.h>

#include "internal.h"

#define USER_COLUMNS                                                                               \
    "id, email, name, role, (extract(epoch FROM created_at) * 1000000)::bigint"

static const struct db_stmt CREATE = {
    "users_create", "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)"
                    " RETURNING " USER_COLUMNS};

static const struct db_stmt COUNT = {"users_count", "SELECT count(*) FROM users"};

static void read_user(const PGresult *res, int row, struct user *u)
{
    u->id = db_get_ll(res, row, 0);
    db_get_str(res, row, 1, u->email, sizeof u->email);
    db_get_str(res, row, 2, u->name, sizeof u->name);
    u->role = role_parse(PQgetvalue(res, row, 3));
    u->created_at = db_get_ll(res, row, 4);
}

enum status db_users_create(struct db_conn *c, const char *email, const char *name,
                            enum role role, const char *password_hash, struct user *out)
{
    const char *params[] = {email, name, role_name(role), password_hash};
    PGresult *res = db_exec(c, &CREATE, 4, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        read_user(res, 0, out);
    PQclear(res);
    return st;
}

enum status db_users_count(struct db_conn *c, long long *count)
{
    PGresult *res = db_exec(c, &COUNT, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        *count = db_get_ll(res, 0, 0);
    PQclear(res);
    return st;
}
