/* readings_query: reading a device's stored readings back, a bounded page at
 * a time (JSON pages, and the chunks of a CSV export, which continue by
 * keyset on ts: see handlers/readings_export.c). */
#ifndef WATTLINE_DB_READINGS_QUERY_H
#define WATTLINE_DB_READINGS_QUERY_H

#include <stdbool.h>

#include "db.h"

struct reading {
    long long ts; /* microseconds since the epoch */
    double value; /* the register (cumulative) or the energy (interval), kWh */
};

struct reading_list {
    struct reading *items; /* owned; reading_list_free() */
    int count;
};

void reading_list_free(struct reading_list *list);

/* Readings of device_id with ts in [from, to), oldest first, at most limit:
 * one statement, no transaction left open. */
enum status db_readings_list(struct db_conn *conn, long long device_id, long long from,
                             long long to, int limit, struct reading_list *out);

#endif
