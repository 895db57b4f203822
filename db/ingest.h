/* ingest (db side): the statements of one ingestion transaction.
 *
 * Transactions: every db_ingest_*_in_tx call runs inside a transaction its
 * caller opened (db_begin) and will finish (db_commit or db_rollback); none
 * of them begins, commits or rolls back. The caller (ingest/store_pg.c, for
 * ingest/group.c) runs them in this order: lock devices (reading the stored
 * hours that new readings would add to), insert or append readings, read
 * the readings around late ones, write hours, and only when some hour is
 * over its limit, lock alerts and raise them (the lock is shared by every
 * device: it is taken last, to cover little more than the commit).
 * db_ingest_ensure_partitions is the one call made outside a transaction.
 */
#ifndef WATTLINE_DB_INGEST_H
#define WATTLINE_DB_INGEST_H

#include <stdbool.h>

#include "db.h"
#include "models.h"

/* A device as one ingestion transaction sees it. id, seen_at and newest_ts
 * are the caller's; the rest is what locking the device told. */
struct ingest_device {
    long long id;
    long long seen_at;   /* the newest receive time of its readings: becomes last_seen_at */
    long long newest_ts; /* its newest reading in the transaction */
    bool exists;
    enum reading_type type;
    double limit;        /* max_hourly_kwh */
    bool has_latest;     /* it has readings stored */
    long long latest_ts; /* the newest stored reading, before this transaction */
    double latest_value;
    /* Reported offline (devices.offline_since): its next accepted reading says online. */
    bool offline;
    long long forecast_hour; /* the hour of its newest forecast (microseconds); 0: none */
};

/* One reading of one device (ts in microseconds since the epoch). */
struct ingest_row {
    long long device_id;
    long long ts;
    double value;
};

/* A time range of one device, in microseconds; each call says whether `to`
 * is inclusive. */
struct ingest_span {
    long long device_id;
    long long from, to;
};

/* The stored energy of hours of devices, sorted by device; hours without a
 * row are absent. */
struct ingest_hour {
    long long device_id;
    long long hour;
    double kwh;
};
struct ingest_hour_list {
    struct ingest_hour *hours; /* malloc'd: the caller frees it, whatever the status */
    int count;
};

/* Locks the rows of devices[0..n) (ids strictly ascending, so concurrent
 * transactions on other instances cannot deadlock) and fills in the rest of
 * each entry, with its newest reading as committed by whoever held the lock
 * before. A device that does not exist keeps exists = false. In the same
 * round trip, once locked: *hours, each device's stored hours from the hour
 * of its newest stored reading to the hour of its newest_ts, which readings
 * appended after the stored ones add to. */
enum status db_ingest_lock_devices_in_tx(struct db_conn *conn, struct ingest_device *devices, int n,
                                         struct ingest_hour_list *hours);

/* Serialises the transactions that raise alerts, across instances, until
 * the caller's commit: alert ids then commit in id order, which lets a
 * WebSocket session deliver strictly in id order without skipping one. */
enum status db_ingest_lock_alerts_in_tx(struct db_conn *conn);

/* The writes below (and the lock above) are queued, not waited for: each is
 * sent at once and answered with the next statement that reads a result, or
 * the COMMIT, which then reports its failure (db_queue, libpq's pipeline
 * mode). A group whose readings all follow the stored ones is two round
 * trips: the lock with the hours, then the append, the writes and the
 * COMMIT. */

/* Inserts rows[0..n) (sorted by device then ts, unique); inserted[i] tells
 * which were new (the others were stored already). A round trip. */
enum status db_ingest_insert_in_tx(struct db_conn *conn, const struct ingest_row *rows, int n,
                                   bool *inserted);

/* The readings needed to recompute every hour touched by readings in
 * [spans[i].from, spans[i].to] of device spans[i].device_id: for each device,
 * the hour range and the readings from the last at or before its start to
 * the first at or after its end. Rows come sorted by device, then ts. */
struct ingest_context_row {
    long long device_id;
    long long first_hour, end_hour; /* [first_hour, end_hour) */
    long long ts;
    double value;
};
struct ingest_context {
    struct ingest_context_row *rows; /* malloc'd: the caller frees it (db_ingest_context_free) */
    int count;
};
enum status db_ingest_context_in_tx(struct db_conn *conn, const struct ingest_span *spans, int n,
                                    struct ingest_context *out);
void db_ingest_context_free(struct ingest_context *ctx);

/* Inserts rows[0..n) (sorted by device then ts, unique), each after the
 * newest stored reading of its device, so new: queued, no answer awaited. A
 * row stored after all fails the transaction with STATUS_CONFLICT. */
enum status db_ingest_append_in_tx(struct db_conn *conn, const struct ingest_row *rows, int n);

/* What a transaction writes besides its readings: the hours' energy, when
 * each device was seen (every device of the group, by seen_at), and the
 * newest reading of the devices that now have a newer one. All borrowed. */
struct ingest_write {
    const struct ingest_hour *hours;
    int nhours;
    const struct ingest_device *seen;
    int nseen;
    const struct ingest_row *latest;
    int nlatest;
    const long long *online; /* devices reported offline that have accepted readings */
    int nonline;
};

/* Writes w; the devices of w->online turn online, once, and their owners
 * are told (device_status, db/notifications.h). */
enum status db_ingest_write_in_tx(struct db_conn *conn, const struct ingest_write *w);

/* A forecast: the hour's energy up to the device's newest reading, scaled to
 * the full hour, over the limit (ingest/forecast.h decides). */
struct ingest_forecast {
    long long device_id;
    long long hour; /* the hour's start, microseconds */
    double so_far, projected, limit;
    long long at; /* the reading judged */
};

/* Records forecasts[0..n) once per device and hour and sends each new one to
 * the device's owner (db_outbox_add's channels). */
enum status db_ingest_forecast_in_tx(struct db_conn *conn, const struct ingest_forecast *f, int n);

/* Raises the alerts of hours[0..n) (sorted by device then hour) that exceed
 * their device's limit, once per device and hour. Call it holding
 * db_ingest_lock_alerts_in_tx. Fills *alert_ids (malloc'd, caller frees,
 * whatever the status) with the ids of new alerts, ascending. */
enum status db_ingest_raise_alerts_in_tx(struct db_conn *conn, const struct ingest_hour *hours,
                                         int n, long long **alert_ids, int *nalerts);

/* Creates the monthly reading partitions around now (idempotent). One
 * statement of its own: call it outside a transaction. */
enum status db_ingest_ensure_partitions(struct db_conn *conn);

#endif
