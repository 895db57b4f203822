#include "readings_query.h"

#include <stdlib.h>

#include "internal.h"

#define READING_COLUMNS "(extract(epoch FROM ts) * 1000000)::bigint, value"
#define READING_RANGE                                                                              \
    "device_id = $1 AND ts >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"         \
    " AND ts < timestamptz 'epoch' + $3::bigint * interval '1 microsecond'"

/* (device_id, ts) is the primary key of every partition: each scan is an
 * index range scan, merged across the monthly partitions in ts order. */
static const struct db_stmt LIST = {"readings_list",
                                    "SELECT " READING_COLUMNS " FROM readings WHERE " READING_RANGE
                                    " ORDER BY ts LIMIT $4"};

void reading_list_free(struct reading_list *list)
{
    free(list->items);
    *list = (struct reading_list){0};
}

static void read_reading(const PGresult *res, int row, struct reading *out)
{
    *out = (struct reading){db_get_ll(res, row, 0), db_get_double(res, row, 1)};
}

enum status db_readings_list(struct db_conn *c, long long device_id, long long from, long long to,
                             int limit, struct reading_list *out)
{
    *out = (struct reading_list){0};
    struct db_ll_text idt, fromt, tot, limitt;
    const char *params[] = {db_ll(&idt, device_id), db_ll(&fromt, from), db_ll(&tot, to),
                            db_ll(&limitt, limit)};
    PGresult *res = db_exec(c, &LIST, 4, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n; i++)
        read_reading(res, i, &out->items[i]);
    out->count = n;
    PQclear(res);
    return st;
}
