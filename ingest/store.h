/* store: what group commit needs from storage, as a table of functions.
 * The real one is PostgreSQL (store_pg.c, over db/ingest.h); unit tests
 * bring fakes. Types of rows, devices and hours are db/ingest.h's.
 *
 * A committer thread opens its own connection (conn below) and uses it
 * alone. The transaction belongs to the caller: it calls begin, then the
 * statements, then commit or rollback; no other call begins or ends one.
 * Arrays passed in are borrowed; lists handed back are malloc'd and the
 * caller frees them with free(), whatever the status.
 */
#ifndef WATTLINE_INGEST_STORE_H
#define WATTLINE_INGEST_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "../db/db.h"
#include "../db/ingest.h"

struct ingest_store {
    /* A connection for one committer; NULL (the reason in err) when storage
     * cannot be reached. */
    void *(*connect)(void *ctx, char *err, size_t errlen);
    /* True while conn is usable (cheap: no round trip). */
    bool (*alive)(void *conn);
    /* NULL is a no-op. */
    void (*disconnect)(void *conn);

    /* Opens the transaction (and may do upkeep first, outside it). */
    enum status (*begin)(void *conn);
    /* As db_ingest_lock_devices_in_tx: devices ascending by id, filled in,
     * and the stored hours that readings after the stored ones add to. */
    enum status (*lock_devices)(void *conn, struct ingest_device *devices, int n,
                                struct ingest_hour_list *hours);
    /* As db_ingest_insert_in_tx. */
    enum status (*insert)(void *conn, const struct ingest_row *rows, int n, bool *inserted);
    /* As db_ingest_append_in_tx: rows that follow every stored one; a row
     * stored after all fails the transaction with STATUS_CONFLICT (at this
     * call or a later one). */
    enum status (*append)(void *conn, const struct ingest_row *rows, int n);
    /* As db_ingest_context_in_tx: readings around [from, to] of each span. */
    enum status (*context)(void *conn, const struct ingest_span *spans, int n,
                           struct ingest_context *out);
    /* As db_ingest_write_in_tx. */
    enum status (*write)(void *conn, const struct ingest_write *w);
    /* As db_ingest_lock_alerts_in_tx: the one lock shared between devices,
     * taken only just before raise_alerts, the NOTIFY and the commit. */
    enum status (*lock_alerts)(void *conn);
    /* As db_ingest_raise_alerts_in_tx. */
    enum status (*raise_alerts)(void *conn, const struct ingest_hour *hours, int n,
                                long long **alert_ids, int *nalerts);
    /* As db_ingest_forecast_in_tx; NULL: the store keeps no forecasts (the
     * group then judges none). */
    enum status (*raise_forecasts)(void *conn, const struct ingest_forecast *f, int n);
    /* Announces alerts raised and devices with new readings (db/events.h):
     * inside the transaction if one is open, at once otherwise. Nothing is
     * sent for two empty lists. */
    enum status (*notify)(void *conn, const long long *alerts, int nalerts, const long long *usage,
                          int nusage);
    enum status (*commit)(void *conn);
    void (*rollback)(void *conn);

    void *ctx;
};

/* The PostgreSQL store: each connection is opened with db's options (as
 * application "wattline-ingest") and keeps the reading partitions ahead of
 * time. db is borrowed: it must outlive every ingest using the store. */
struct ingest_store ingest_store_pg(const struct db_pool_options *db);

#endif
