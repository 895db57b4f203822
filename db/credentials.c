#include "credentials.h"

#include "internal.h"

static const struct db_stmt USER_ROLE = {"credentials_user_role",
                                         "SELECT role FROM users WHERE id = $1"};

static const struct db_stmt DEVICE_BY_TOKEN = {
    "credentials_device_by_token", "SELECT id, reading_type FROM devices WHERE token_hash = $1"};

enum status db_credentials_user_role(struct db_conn *c, long long user_id, enum role *role)
{
    struct db_ll_text id;
    const char *params[] = {db_ll(&id, user_id)};
    PGresult *res;
    enum status st = db_exec_row(c, &USER_ROLE, 1, params, &res);
    if (st == STATUS_OK)
        *role = role_parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    return st;
}

enum status db_credentials_device_by_token(struct db_conn *c, const char *token_hash,
                                           long long *device_id, enum reading_type *type)
{
    const char *params[] = {token_hash};
    PGresult *res;
    enum status st = db_exec_row(c, &DEVICE_BY_TOKEN, 1, params, &res);
    if (st == STATUS_OK) {
        *device_id = db_get_ll(res, 0, 0);
        if (!reading_type_parse(PQgetvalue(res, 0, 1), type))
            st = STATUS_INTERNAL;
    }
    PQclear(res);
    return st;
}
