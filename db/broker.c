#include "broker.h"

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static const struct db_stmt DEVICES = {"broker_devices",
                                       "SELECT id, reading_type, serial FROM devices "
                                       "WHERE id = ANY($1::bigint[]) OR serial = ANY($2::text[])"};

enum status db_broker_devices(struct db_conn *conn, const long long *ids, int nids,
                              const char *const *serials, int nserials,
                              struct db_broker_device **out, int *n)
{
    *out = NULL;
    *n = 0;
    struct db_array id_array, serial_array;
    db_array_init(&serial_array);
    for (int i = 0; i < nserials; i++)
        db_array_add_text(&serial_array, serials[i]);
    const char *params[] = {db_array_of_ll(&id_array, ids, nids), db_array_finish(&serial_array)};
    PGresult *res = params[0] && params[1] ? db_exec(conn, &DEVICES, 2, params) : NULL;
    db_array_free(&id_array);
    db_array_free(&serial_array);
    if (!res)
        return STATUS_INTERNAL;

    enum status st = db_check_rows(conn, res, sizeof **out, (void **)out, n);
    for (int i = 0; st == STATUS_OK && i < *n; i++) {
        struct db_broker_device *d = &(*out)[i];
        char type[16];
        d->id = db_get_ll(res, i, 0);
        db_get_str(res, i, 1, type, sizeof type);
        if (!reading_type_parse(type, &d->type))
            st = STATUS_INTERNAL;
        db_get_str(res, i, 2, d->serial, sizeof d->serial);
    }
    PQclear(res);
    if (st != STATUS_OK)
        *n = 0;
    return st;
}

/* As LIVE_WHERE and CLAIM in commands.c: unfinished, not expired, not locked. */
#define DELIVERABLE                                                                                \
    "status IN ('queued', 'sent') AND expires_at > now()"                                          \
    " AND (locked_until IS NULL OR locked_until <= now())"

static const struct db_stmt COMMAND_DEVICES = {
    "broker_command_devices", "SELECT DISTINCT device_id FROM commands WHERE " DELIVERABLE
                              " AND created_at <= now() - make_interval(secs => $1::int) LIMIT $2"};

static const struct db_stmt DELIVERABLE_IDS = {
    "broker_deliverable",
    "SELECT id FROM commands WHERE device_id = $1 AND " DELIVERABLE " ORDER BY id LIMIT $2"};

/* The first column of every row, up to limit, into ids. */
static enum status read_ids(struct db_conn *conn, PGresult *res, int limit, long long *ids, int *n)
{
    *n = 0;
    enum status st = db_check(conn, res, PGRES_TUPLES_OK);
    for (int i = 0; st == STATUS_OK && i < PQntuples(res) && i < limit; i++)
        ids[(*n)++] = db_get_ll(res, i, 0);
    PQclear(res);
    return st;
}

enum status db_broker_command_devices(struct db_conn *conn, int min_age_s, int limit,
                                      long long *ids, int *n)
{
    char age[16], lim[16];
    snprintf(age, sizeof age, "%d", min_age_s);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {age, lim};
    return read_ids(conn, db_exec(conn, &COMMAND_DEVICES, 2, params), limit, ids, n);
}

enum status db_broker_deliverable(struct db_conn *conn, long long device_id, int limit,
                                  long long *ids, int *n)
{
    struct db_ll_text dev;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {db_ll(&dev, device_id), lim};
    return read_ids(conn, db_exec(conn, &DELIVERABLE_IDS, 2, params), limit, ids, n);
}
