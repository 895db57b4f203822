/* group: one group commit, as logic over a store (store.h) and nothing
 * else: no threads, no queue. Sorting and de-duplicating the readings of
 * several submissions, choosing per device between appending to the stored
 * hours and recomputing them from the stored readings, deciding whether
 * alerts may be raised, and running it all as one transaction.
 */
#ifndef WATTLINE_INGEST_GROUP_H
#define WATTLINE_INGEST_GROUP_H

#include "ingest.h"
#include "store.h"

/* What a committed group did: for the statistics, and the devices with new
 * readings whose live usage is still to be announced (none when the group
 * raised alerts: they went out with them, inside the transaction). usage is
 * malloc'd or NULL; the caller frees it. */
struct ingest_group_outcome {
    unsigned long long stored, duplicates;
    int alerts;
    long long *usage; /* ascending */
    int nusage;
};

/* Stores the readings of jobs[0..njobs) (each already checked, with
 * max_age_us as MAX_READING_AGE_DAYS) in one transaction on conn, which this
 * call opens and finishes. It writes only hours within that window of each
 * device's newest receive time, and of its new readings (group.c says what
 * that means for an interval that starts before it). Sets each job's
 * result and status: STATUS_OK, or STATUS_NOT_FOUND (with an empty result)
 * for a job whose device is gone. When the group fails it is rolled back
 * and every job gets the group's status and an empty result. Does not call
 * the jobs' done(). Returns the group's status; *out is set when it is OK. */
enum status ingest_group_commit(const struct ingest_store *store, void *conn,
                                struct ingest_request **jobs, int njobs, long long max_age_us,
                                struct ingest_group_outcome *out);

#endif
