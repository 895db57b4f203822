#include "broker.h"

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
