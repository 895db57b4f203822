/* store_pg: the ingest store over PostgreSQL (db/ingest.h, db/events.h). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>

#include "../base/clock.h"
#include "../db/events.h"

/* How often a connection makes sure next months' partitions exist. */
#define PARTITION_CHECK_S 3600.0

/* One committer's connection. */
struct pg_conn {
    struct db_conn *db;
    double last_partition_check; /* monotonic seconds; 0 before the first */
};

static void *pg_connect(void *ctx, char *err, size_t errlen)
{
    struct db_pool_options opts = *(const struct db_pool_options *)ctx;
    opts.application_name = "wattline-ingest";
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->db = db_connect(&opts, err, errlen);
    if (!c->db) {
        free(c);
        return NULL;
    }
    return c;
}

static bool pg_alive(void *conn)
{
    return db_conn_alive(((struct pg_conn *)conn)->db);
}

static void pg_disconnect(void *conn)
{
    struct pg_conn *c = conn;
    if (!c)
        return;
    db_disconnect(c->db);
    free(c);
}

/* Partitions are created outside the group's transaction, so that a failure
 * there never rolls back readings (the next begin tries again). */
static void pg_maintain_partitions(struct pg_conn *c)
{
    double now = clock_mono_s();
    if (c->last_partition_check > 0 && now - c->last_partition_check < PARTITION_CHECK_S)
        return;
    if (db_ingest_ensure_partitions(c->db) == STATUS_OK)
        c->last_partition_check = now;
}

static enum status pg_begin(void *conn)
{
    struct pg_conn *c = conn;
    pg_maintain_partitions(c);
    return db_begin_pipelined(c->db); /* travels with the devices' lock */
}

static enum status pg_lock_devices(void *conn, struct ingest_device *devices, int n,
                                   struct ingest_hour_list *hours)
{
    return db_ingest_lock_devices_in_tx(((struct pg_conn *)conn)->db, devices, n, hours);
}

static enum status pg_insert(void *conn, const struct ingest_row *rows, int n, bool *inserted)
{
    return db_ingest_insert_in_tx(((struct pg_conn *)conn)->db, rows, n, inserted);
}

static enum status pg_append(void *conn, const struct ingest_row *rows, int n)
{
    return db_ingest_append_in_tx(((struct pg_conn *)conn)->db, rows, n);
}

static enum status pg_context(void *conn, const struct ingest_span *spans, int n,
                              struct ingest_context *out)
{
    return db_ingest_context_in_tx(((struct pg_conn *)conn)->db, spans, n, out);
}

static enum status pg_lock_alerts(void *conn)
{
    return db_ingest_lock_alerts_in_tx(((struct pg_conn *)conn)->db);
}

static enum status pg_write(void *conn, const struct ingest_write *w)
{
    return db_ingest_write_in_tx(((struct pg_conn *)conn)->db, w);
}

static enum status pg_raise_alerts(void *conn, const struct ingest_hour *hours, int n,
                                   long long **alert_ids, int *nalerts)
{
    return db_ingest_raise_alerts_in_tx(((struct pg_conn *)conn)->db, hours, n, alert_ids, nalerts);
}

static enum status pg_raise_forecasts(void *conn, const struct ingest_forecast *f, int n)
{
    return db_ingest_forecast_in_tx(((struct pg_conn *)conn)->db, f, n);
}

static enum status pg_notify(void *conn, const long long *alerts, int nalerts,
                             const long long *usage, int nusage)
{
    struct events ev = {.alerts = alerts, .nalerts = nalerts, .usage = usage, .nusage = nusage};
    return db_events_notify(((struct pg_conn *)conn)->db, &ev);
}

static enum status pg_commit(void *conn)
{
    return db_commit(((struct pg_conn *)conn)->db);
}

static void pg_rollback(void *conn)
{
    db_rollback(((struct pg_conn *)conn)->db);
}

struct ingest_store ingest_store_pg(const struct db_pool_options *db)
{
    return (struct ingest_store){
        .connect = pg_connect,
        .alive = pg_alive,
        .disconnect = pg_disconnect,
        .begin = pg_begin,
        .lock_devices = pg_lock_devices,
        .insert = pg_insert,
        .append = pg_append,
        .context = pg_context,
        .write = pg_write,
        .lock_alerts = pg_lock_alerts,
        .raise_alerts = pg_raise_alerts,
        .raise_forecasts = pg_raise_forecasts,
        .notify = pg_notify,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .ctx = (void *)db,
    };
}
