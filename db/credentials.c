#include "credentials.h"

#include <string.h>

#include "internal.h"

static const struct db_stmt USER_ROLE = {"credentials_user_role",
                                         "SELECT role FROM users WHERE id = $1"};

static const struct db_stmt DEVICES_BY_TOKENS = {
    "credentials_devices_by_tokens",
    "SELECT token_hash, id, reading_type FROM devices WHERE token_hash = ANY($1::text[])"};

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

enum status db_credentials_devices_by_tokens(struct db_conn *c, const char *const *hashes, int n,
                                             long long *device_ids, enum reading_type *types)
{
    if (n < 1 || n > DB_TOKENS_PER_QUERY)
        return STATUS_INTERNAL;
    /* Always DB_TOKENS_PER_QUERY elements (the first repeated): 10 is the
     * length PostgreSQL assumes for an array parameter in a generic plan, so
     * no custom plan looks cheaper and the statement is planned once, not
     * at every call (43 µs, twice its execution). */
    struct db_array a;
    db_array_init(&a);
    for (int i = 0; i < DB_TOKENS_PER_QUERY; i++)
        db_array_add_text(&a, hashes[i < n ? i : 0]);
    for (int i = 0; i < n; i++)
        device_ids[i] = 0;
    const char *params[] = {db_array_finish(&a)};
    enum status st = STATUS_INTERNAL;
    if (params[0]) {
        PGresult *res = db_exec(c, &DEVICES_BY_TOKENS, 1, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        for (int row = 0; st == STATUS_OK && row < PQntuples(res); row++) {
            const char *hash = PQgetvalue(res, row, 0);
            for (int i = 0; i < n; i++) {
                if (strcmp(hashes[i], hash) != 0)
                    continue;
                device_ids[i] = db_get_ll(res, row, 1);
                if (!reading_type_parse(PQgetvalue(res, row, 2), &types[i]))
                    st = STATUS_INTERNAL;
            }
        }
        PQclear(res);
    }
    db_array_free(&a);
    return st;
}
