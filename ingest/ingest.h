/* ingest: the one entry point for readings, whatever their source (HTTP
 * today, a message broker tomorrow).
 *
 * The module, in the order a reading flows through it:
 *   decode.c    a JSON body becomes readings (no HTTP: field + message)
 *   check.c     the contract's rules for one reading (pure)
 *   ingest.c    this header: the queue and the committer threads
 *   group.c     one group commit: sorting, de-duplication, append or
 *               recompute, alerts, over a store
 *   store_pg.c  the store over PostgreSQL (store.h is the table)
 *
 * Group commit: submissions that arrive while a transaction is in flight go
 * together into the next one, and each submitter is woken only after its
 * own readings committed. One transaction per group inserts the readings,
 * adds to or recomputes the touched hours, raises alerts (announced in the
 * transaction); the live usage of the groups of 50 ms is announced after
 * their commits, in one NOTIFY. Rows of a device are locked for the
 * transaction, so concurrent instances cannot corrupt an hour or raise an
 * alert twice.
 */
#ifndef WATTLINE_INGEST_H
#define WATTLINE_INGEST_H

#include <stddef.h>

#include "../db/models.h"
#include "check.h"
#include "store.h"

struct ingest;

struct ingest_result {
    int accepted;   /* readings stored now */
    int duplicates; /* readings whose (device, ts) was stored already */
};

/* Starts the committer threads, each with its own connection from store
 * (the table is copied; what its ctx points to must outlive the ingest).
 * Readings are taken at most max_age_us before their receive time
 * (MAX_READING_AGE_DAYS), and no group writes hours older than that window
 * (group.h). NULL with the reason in err. */
struct ingest *ingest_start(const struct ingest_store *store, long long max_age_us, char *err,
                            size_t errlen);
/* Finishes the groups in flight, then stops. NULL is a no-op. */
void ingest_stop(struct ingest *ingest);

/* At shutdown, when the committers have not caught up in time: every
 * submission no committer has taken yet is done() with STATUS_UNAVAILABLE
 * (nothing of it was stored), and so is every later one. Groups in flight
 * are left to their committers. Returns how many were failed. */
int ingest_fail_queued(struct ingest *ingest);

/* What a source submits: readings of one device, 1 to INGEST_BATCH_MAX
 * (decode.h), each of which must pass
 * ingest_check(r, type, received_at, max_age_us):
 * a submission with one that does not fails whole with STATUS_INVALID and
 * stores nothing. Several readings with one ts: the first counts. All
 * borrowed from the submitter. */
struct ingest_submission {
    long long device_id;
    enum reading_type type; /* the device's, as the submitter authenticated it */
    const struct ingest_reading *readings;
    int n;
    long long received_at; /* microseconds; becomes the device's last_seen_at */
};

/* One submission in flight. The caller owns it and everything it points to
 * until done() has been called. */
struct ingest_request {
    struct ingest_submission in;
    /* Called once, after the readings committed or failed: on the
     * committer's thread, or on the caller's within ingest_enqueue() when the
     * submission is refused at once. status is STATUS_OK, STATUS_INVALID (a
     * reading broke a rule), STATUS_NOT_FOUND (the device is gone),
     * STATUS_UNAVAILABLE (the database is, or the ingest is stopping) or
     * STATUS_INTERNAL. */
    void (*done)(struct ingest_request *req);
    void *user;

    struct ingest_result result; /* out */
    enum status status;          /* out */
    struct ingest_request *next; /* the queue's */
};

/* The horizon of raw readings (RAW_RETENTION_DAYS, wattline archive): no
 * reading before oldest_kept_us (the first instant of the oldest month
 * kept) is taken any more. Set at start and by the listener when a month is
 * retired, from any thread; it only moves forward. */
void ingest_set_horizon(struct ingest *ingest, long long oldest_kept_us);

/* The max_age_us a source checks readings received at now_us with
 * (ingest_check, ingest_decode): max_age_us (MAX_READING_AGE_DAYS), or less
 * when the horizon is closer, so that a reading into a retired month is
 * too_old. A NULL ingest has no horizon. */
long long ingest_max_age_us(struct ingest *ingest, long long now_us, long long max_age_us);

/* Checks and queues a submission without waiting: what an event-driven
 * caller (the HTTP server, which suspends the request meanwhile) uses. */
void ingest_enqueue(struct ingest *ingest, struct ingest_request *req);

/* Checks and queues a submission, and waits for its outcome: for callers
 * with a thread to spare (a broker consumer). *out is the result. */
enum status ingest_submit(struct ingest *ingest, const struct ingest_submission *sub,
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
