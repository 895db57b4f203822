/* read_pool: where the contract's read-only routes query (DATABASE_READ_URL).
 *
 * Charts, readings, exports and lists may read from a streaming replica
 * (the routes say so: struct route's read_replica, copied into the request).
 * A replica is read from only while its watcher (db_pool_watch_replica)
 * found it answering as a standby, recently, and no further behind than
 * DATABASE_READ_MAX_LAG_S; otherwise the read goes to the primary. A read
 * that fails on the replica is tried once more on the primary before it is
 * answered (api/pooled.h), so a replica that dies or lags never becomes an
 * error. Everything else (writes, single objects, credentials, the hub,
 * ingestion) never comes here: it uses app->pool.
 */
#ifndef WATTLINE_READ_POOL_H
#define WATTLINE_READ_POOL_H

#include <stdbool.h>

#include "../db/db.h"

/* Where a read was answered, as /metrics counts them. */
enum read_source {
    READ_REPLICA = 0, /* by the replica */
    READ_FALLBACK,    /* by the primary: the replica was down, lagging or busy */
    READ_RETRIED,     /* by the primary, after the replica's answer failed or found nothing */
    READ_SOURCES
};

/* How long a read waits for a replica connection before going to the
 * primary instead: a busy replica costs a read little. */
#define READ_POOL_WAIT_MS 250

struct read_pool;

/* replica is borrowed (the caller frees it after this); max_lag_s is
 * DATABASE_READ_MAX_LAG_S. NULL on allocation failure. */
struct read_pool *read_pool_create(struct db_pool *replica, int max_lag_s);
void read_pool_free(struct read_pool *rp);

/* Pure: a replica whose watcher last found it in state h, age_s seconds
 * ago, lag_s behind (negative: unknown) may be read from. */
bool read_pool_usable(enum db_health h, double age_s, double lag_s, int max_lag_s);

/* Pure: an answer the replica gave that the primary should give instead: a
 * 5xx (the replica failed mid-way, or cancelled the statement for a conflict
 * with recovery) or a 404 (what was just created has not reached it yet). */
bool read_pool_retry_status(int http_status);

/* The replica to try now, or NULL (none configured, down, lagging, not
 * checked lately): then the read goes to the primary. rp may be NULL. */
struct db_pool *read_pool_replica(struct read_pool *rp);

/* Counts one read answered from src. NULL rp is a no-op. */
void read_pool_note(struct read_pool *rp, enum read_source src);

/* Appends the replica's metrics to the Prometheus text in *buf. */
void read_pool_render_metrics(struct read_pool *rp, char **buf, size_t *len, size_t *cap);

#endif
