/* retention (db side): the horizon of raw readings, the months that still
 * hold them, and retiring a month (migration 0012's SQL functions, which
 * run as their owner: the server's role may not DROP).
 *
 * Months are base/month.h integers. Transactions: every call is one
 * statement of its own (autocommit); none leaves a transaction open.
 */
#ifndef WATTLINE_DB_RETENTION_H
#define WATTLINE_DB_RETENTION_H

#include <stdbool.h>

#include "db.h"
#include "models.h"

/* The oldest month whose raw readings are kept: *month, or *none when
 * nothing was retired yet. */
enum status db_retention_horizon(struct db_conn *conn, bool *none, int *month);

/* One instance at a time retires months: a session advisory lock on a fixed
 * key. *taken false when another session holds it (the caller skips). */
enum status db_retention_try_lock(struct db_conn *conn, bool *taken);
enum status db_retention_unlock(struct db_conn *conn);

/* The months before `before` that still hold raw readings, oldest first.
 * *months is malloc'd (caller frees, whatever the status). */
enum status db_retention_months(struct db_conn *conn, int before, int **months, int *n);

/* Shuts month (and all before it) to ingestion and announces the new
 * horizon (NOTIFY wattline_events); returns once the writers already in the
 * month have finished. Fails (logged) for the current month or later. */
enum status db_retention_close(struct db_conn *conn, int month);

/* Drops the raw readings of a closed month (its partition, or its rows in
 * the default partition). Fails (logged) when the month is not closed, or
 * when the readings' table could not be locked within 2 s (retry later). */
enum status db_retention_retire(struct db_conn *conn, int month);

/* A device with readings in a month. */
struct retention_device {
    long long id;
    enum reading_type type;
};

/* The devices with readings in month, by id. *devices is malloc'd (caller
 * frees, whatever the status). */
enum status db_retention_devices(struct db_conn *conn, int month, struct retention_device **devices,
                                 int *n);

#endif
