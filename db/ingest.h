/* ingest (db side): the statements of one ingestion transaction. The caller
 * (handlers/ingest.c) runs them in order inside BEGIN..COMMIT:
 * lock devices, insert readings, fetch the context of the touched hours,
 * write the hours and raise alerts, notify. */
#ifndef WATTLINE_DB_INGEST_H
#define WATTLINE_DB_INGEST_H

#include <stdbool.h>

#include "db.h"
#include "models.h"

/* A device as the ingestion transaction sees it after locking it. */
struct ingest_device {
    long long id;
    bool exists;
    enum reading_type type;
    double limit;        /* max_hourly_kwh */
    bool has_latest;     /* it has readings stored */
    long long latest_ts; /* the newest stored reading, before this transaction */
    double latest_value;
};

/* Locks the devices' rows (ascending id, so concurrent transactions on other
 * instances cannot deadlock), then describes each in out[i] (for ids[i]),
 * with its newest reading as committed by whoever held the lock before. */
enum status db_ingest_lock_devices(struct db_conn *conn, const long long *ids, int n,
                                   struct ingest_device *out);

/* Serialises the transactions that raise alerts, across instances, until
 * commit: alert ids then commit in id order, which lets a WebSocket session
 * deliver strictly in id order without skipping one. */
enum status db_ingest_lock_alerts(struct db_conn *conn);

/* Inserts rows, sorted by device then ts and unique; inserted[i] tells which
 * were new (the others were stored already). */
enum status db_ingest_insert(struct db_conn *conn, const long long *device_ids, const long long *ts,
                             const double *values, int n, bool *inserted);

/* The readings needed to recompute every hour touched by readings in
 * [lo[i], hi[i]] of device ids[i]: for each device, the hour range and the
 * readings from the last at or before its start to the first at or after its
 * end. Rows come sorted by device, then ts. */
struct ingest_context_row {
    long long device_id;
    long long first_hour, end_hour; /* [first_hour, end_hour) */
    long long ts;
    double value;
};
struct ingest_context {
    struct ingest_context_row *rows;
    int count;
};
enum status db_ingest_context(struct db_conn *conn, const long long *ids, const long long *lo,
                              const long long *hi, int n, struct ingest_context *out);
void db_ingest_context_free(struct ingest_context *ctx);

/* The stored energy of the hours [first[i], end[i]) of device ids[i], sorted
 * by device; hours without a row are absent. Caller frees out->hours. */
struct ingest_hour {
    long long device_id;
    long long hour;
    double kwh;
};
struct ingest_hour_list {
    struct ingest_hour *hours;
    int count;
};
enum status db_ingest_hours(struct db_conn *conn, const long long *ids, const long long *first,
                            const long long *end, int n, struct ingest_hour_list *out);

/* What a transaction writes besides its readings: the hours' energy, when
 * each device was seen (every device of the group), and the newest reading
 * of the devices that now have a newer one. */
struct ingest_write {
    const long long *hour_devices, *hours;
    const double *kwh;
    int nhours;
    const long long *seen_devices, *seen_at;
    int nseen;
    const long long *latest_devices, *latest_ts;
    const double *latest_values;
    int nlatest;
};

/* Writes w, and raises the alerts for hours over their device's limit (once
 * per device and hour). Fills *alert_ids (caller frees) with the ids of new
 * alerts. */
enum status db_ingest_write(struct db_conn *conn, const struct ingest_write *w,
                            long long **alert_ids, int *nalerts);

/* Creates the monthly reading partitions around now (idempotent). */
enum status db_ingest_ensure_partitions(struct db_conn *conn);

#endif
