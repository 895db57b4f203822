#include "read_pool.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../base/metrics.h"

/* A state confirmed longer ago than this means the replica's check hangs:
 * it is not answering in time, whatever it last said (as /readyz judges
 * the primary). */
#define READ_POOL_STALE_S (3 * DB_HEALTH_INTERVAL_S)

struct read_pool {
    struct db_pool *replica; /* borrowed */
    int max_lag_s;
    atomic_ulong reads[READ_SOURCES];
};

struct read_pool *read_pool_create(struct db_pool *replica, int max_lag_s)
{
    struct read_pool *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->replica = replica;
    rp->max_lag_s = max_lag_s;
    return rp;
}

void read_pool_free(struct read_pool *rp)
{
    free(rp);
}

bool read_pool_usable(enum db_health h, double age_s, double lag_s, int max_lag_s)
{
    return h == DB_HEALTH_READY && age_s <= READ_POOL_STALE_S && lag_s >= 0 && lag_s <= max_lag_s;
}

bool read_pool_retry_status(int http_status)
{
    return http_status >= 500 || http_status == 404;
}

struct db_pool *read_pool_replica(struct read_pool *rp)
{
    if (!rp)
        return NULL;
    double age;
    enum db_health h = db_pool_health(rp->replica, &age);
    return read_pool_usable(h, age, db_pool_replica_lag(rp->replica), rp->max_lag_s) ? rp->replica
                                                                                     : NULL;
}

void read_pool_note(struct read_pool *rp, enum read_source src)
{
    if (rp)
        atomic_fetch_add(&rp->reads[src], 1);
}

void read_pool_render_metrics(struct read_pool *rp, char **buf, size_t *len, size_t *cap)
{
    double age, lag = db_pool_replica_lag(rp->replica);
    enum db_health h = db_pool_health(rp->replica, &age);
    bool up = h == DB_HEALTH_READY && age <= READ_POOL_STALE_S;
    struct db_pool_stats ps;
    db_pool_stats(rp->replica, &ps);
    char lag_text[32] = "NaN";
    if (lag >= 0)
        snprintf(lag_text, sizeof lag_text, "%.3f", lag);
    metrics_printf(buf, len, cap,
                   "# HELP wattline_db_replica_up 1 while DATABASE_READ_URL answers as a standby.\n"
                   "# TYPE wattline_db_replica_up gauge\n"
                   "wattline_db_replica_up %d\n"
                   "# HELP wattline_db_replica_lag_seconds The replica's replay lag at its last "
                   "check (NaN when unknown).\n"
                   "# TYPE wattline_db_replica_lag_seconds gauge\n"
                   "wattline_db_replica_lag_seconds %s\n"
                   "# HELP wattline_db_replica_in_use 1 while reads go to the replica (up and "
                   "within DATABASE_READ_MAX_LAG_S).\n"
                   "# TYPE wattline_db_replica_in_use gauge\n"
                   "wattline_db_replica_in_use %d\n"
                   "# HELP wattline_db_reads_total Reads of the replica's routes (a request, or "
                   "an export's chunk), by where they were answered.\n"
                   "# TYPE wattline_db_reads_total counter\n"
                   "wattline_db_reads_total{pool=\"replica\"} %lu\n"
                   "wattline_db_reads_total{pool=\"fallback\"} %lu\n"
                   "wattline_db_reads_total{pool=\"retried\"} %lu\n"
                   "# HELP wattline_db_read_pool_connections Replica pool connections by state.\n"
                   "# TYPE wattline_db_read_pool_connections gauge\n"
                   "wattline_db_read_pool_connections{state=\"size\"} %d\n"
                   "wattline_db_read_pool_connections{state=\"in_use\"} %d\n"
                   "wattline_db_read_pool_connections{state=\"connected\"} %d\n",
                   up, lag_text, read_pool_usable(h, age, lag, rp->max_lag_s),
                   atomic_load(&rp->reads[READ_REPLICA]), atomic_load(&rp->reads[READ_FALLBACK]),
                   atomic_load(&rp->reads[READ_RETRIED]), ps.size, ps.in_use, ps.connected);
}
