/* readings_query: reading a device's stored readings back, as pages or as one
 * stream of any length (exports). */
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

/* Readings of device_id with ts in [from, to), oldest first, at most limit. */
enum status db_readings_list(struct db_conn *conn, long long device_id, long long from,
                             long long to, int limit, struct reading_list *out);

/* A server-side cursor over the readings of device_id with ts in [from, to),
 * oldest first. It holds the connection inside a transaction and at most one
 * batch of rows in memory, whatever the size of the range. */
struct readings_cursor;

/* Rows fetched per round trip. */
#define DB_READINGS_BATCH 5000

/* Opens the cursor on conn (which must not be inside a transaction); conn
 * stays borrowed by the cursor until db_readings_cursor_close(). The cursor
 * owns the read-only transaction it lives in: it begins here and ends in
 * db_readings_cursor_close(), never in the caller's hands. */
enum status db_readings_cursor_open(struct db_conn *conn, long long device_id, long long from,
                                    long long to, struct readings_cursor **out);

/* The next row into *row, or *done = true at the end. */
enum status db_readings_cursor_next(struct readings_cursor *cur, struct reading *row, bool *done);

/* Ends the transaction (which closes the server-side cursor) and frees cur;
 * the connection is then idle and may go back to its pool. NULL is a no-op. */
void db_readings_cursor_close(struct readings_cursor *cur);

#endif
