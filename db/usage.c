#include "usage.h"

#include <stdlib.h>

#include "internal.h"

/* One row per input id, in input order (row i answers ids[i]). */
static const struct db_stmt OWNERS = {"usage_owners",
                                      "SELECT d.id IS NOT NULL, d.owner_id"
                                      " FROM unnest($1::bigint[]) WITH ORDINALITY AS q(id, ord)"
                                      " LEFT JOIN devices d ON d.id = q.id ORDER BY q.ord"};

static const struct db_stmt ROLES = {
    "usage_user_roles", "SELECT u.role FROM unnest($1::bigint[]) WITH ORDINALITY AS q(id, ord)"
                        " LEFT JOIN users u ON u.id = q.id ORDER BY q.ord"};

/* max(ts) per device is one backward step on the readings primary key; the
 * hour is truncated in UTC explicitly, whatever the session's TimeZone. */
static const struct db_stmt READ = {
    "usage_read",
    "SELECT d.id, d.owner_id, (extract(epoch FROM l.ts) * 1000000)::bigint,"
    " (extract(epoch FROM date_trunc('hour', l.ts, 'UTC')) * 1000000)::bigint,"
    " coalesce(h.kwh, 0)"
    " FROM devices d"
    " CROSS JOIN LATERAL (SELECT max(ts) AS ts FROM readings WHERE device_id = d.id) l"
    " LEFT JOIN device_hours h ON h.device_id = d.id AND h.hour = date_trunc('hour', l.ts, 'UTC')"
    " WHERE d.id = ANY($1::bigint[]) AND l.ts IS NOT NULL ORDER BY d.id"};

enum status db_usage_owners(struct db_conn *c, const long long *ids, int n,
                            struct device_owner *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (struct device_owner){.device_id = ids[i]};
    PGresult *res;
    enum status st = db_exec_ids(c, &OWNERS, ids, n, &res);
    if (st == STATUS_OK)
        st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) != n)
        st = STATUS_INTERNAL;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        out[i].exists = db_get_bool(res, i, 0);
        out[i].owner_id = db_get_ll(res, i, 1);
    }
    PQclear(res);
    return st;
}

enum status db_usage_read(struct db_conn *c, const long long *ids, int n, struct device_usage **out,
                          int *count)
{
    *out = NULL;
    *count = 0;
    PGresult *res;
    enum status st = db_exec_ids(c, &READ, ids, n, &res);
    if (st == STATUS_OK)
        st = db_check(c, res, PGRES_TUPLES_OK);
    int rows = st == STATUS_OK ? PQntuples(res) : 0;
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out)))
        st = STATUS_INTERNAL;
    for (int row = 0; st == STATUS_OK && row < rows; row++) {
        (*out)[row] = (struct device_usage){
            .device_id = db_get_ll(res, row, 0),
            .owner_id = db_get_ll(res, row, 1),
            .last_ts = db_get_ll(res, row, 2),
            .hour_start = db_get_ll(res, row, 3),
            .hour_kwh = db_get_double(res, row, 4),
        };
    }
    if (st == STATUS_OK)
        *count = rows;
    PQclear(res);
    return st;
}

enum status db_usage_user_roles(struct db_conn *c, const long long *ids, int n, enum role *out)
{
    for (int i = 0; i < n; i++)
        out[i] = ROLE_NONE;
    PGresult *res;
    enum status st = db_exec_ids(c, &ROLES, ids, n, &res);
    if (st == STATUS_OK)
        st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) != n)
        st = STATUS_INTERNAL;
    for (int i = 0; st == STATUS_OK && i < n; i++)
        out[i] = db_is_null(res, i, 0) ? ROLE_NONE : role_parse(PQgetvalue(res, i, 0));
    PQclear(res);
    return st;
}
