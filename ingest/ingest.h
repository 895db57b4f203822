/* ingest: the one entry point for readings, whatever their source (HTTP
 * today, a message broker tomorrow).
 *
 * Group commit: submissions that arrive while a transaction is in flight go
 * together into the next one, and each submitter is woken only after its
 * own readings committed. One transaction per group inserts the readings in
 * one round trip, recomputes the touched hours from the stored readings,
 * raises alerts, and sends one NOTIFY. Rows of a device are locked for the
 * transaction, so concurrent instances cannot corrupt an hour or raise an
 * alert twice.
 */
#ifndef WATTLINE_INGEST_H
#define WATTLINE_INGEST_H

#include <stddef.h>

#include "../db/db.h"
#include "../db/models.h"
#include "energy.h"

struct ingest;

struct ingest_result {
    int accepted;   /* readings stored now */
    int duplicates; /* readings whose (device, ts) was stored already */
};

/* Starts the committer thread with its own connection to db. */
struct ingest *ingest_start(const struct db_pool_options *db, char *err, size_t errlen);
/* Finishes the groups in flight, then stops. NULL is a no-op. */
void ingest_stop(struct ingest *ingest);

/* One submission: readings of one device (validated; ts in microseconds;
 * several readings with one ts: the first counts). The caller owns it and
 * everything it points to until done() has been called. */
struct ingest_request {
    long long device_id;
    const struct energy_reading *readings;
    int n;
    long long received_at; /* becomes the device's last_seen_at */
    /* Called once, on the committer's thread, after the readings committed or
     * failed; status is STATUS_OK, STATUS_NOT_FOUND (the device is gone) or
     * STATUS_UNAVAILABLE (the database is). */
    void (*done)(struct ingest_request *req);
    void *user;

    struct ingest_result result; /* out */
    enum status status;          /* out */
    struct ingest_request *next; /* the queue's */
};

/* Queues a submission without waiting: what an event-driven caller (the HTTP
 * server, which suspends the request meanwhile) uses. */
void ingest_enqueue(struct ingest *ingest, struct ingest_request *req);

/* Queues a submission and waits for done: for callers with a thread to spare. */
enum status ingest_submit(struct ingest *ingest, long long device_id,
                          const struct energy_reading *readings, int n, long long received_at,
                          struct ingest_result *out);

struct ingest_stats {
    unsigned long long readings; /* stored */
    unsigned long long duplicates;
    unsigned long long transactions; /* committed groups */
    unsigned long long alerts;       /* raised */
    unsigned long long failures;     /* groups rolled back */
};
void ingest_stats(struct ingest *ingest, struct ingest_stats *out);

#endif
