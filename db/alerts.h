/* alerts: rows raised by ingestion, one per device and UTC hour over the limit. */
#ifndef WATTLINE_DB_ALERTS_H
#define WATTLINE_DB_ALERTS_H

#include <stdbool.h>

#include "db.h"

#define DEVICE_NAME_MAX 200

struct alert {
    long long id;
    long long device_id;
    char device_name[DEVICE_NAME_MAX * 4 + 1];
    long long owner_id; /* the device's current owner; 0 when unassigned */
    long long hour_start;
    double hour_kwh;
    double max_hourly_kwh;
    long long created_at;
    long long acknowledged_at; /* 0 when not acknowledged */
};

struct alert_list {
    struct alert *items;
    int count;
};

void alert_list_free(struct alert_list *list);

struct alert_query {
    long long owner_id;  /* 0: every owner (admin) */
    long long device_id; /* 0: every device */
    long long since_id;  /* only ids above this; 0: no bound */
    long long before_id; /* only ids below this (the cursor); 0: no bound */
    int limit;
    bool oldest_first; /* replay order; otherwise newest first */
};

/* Alerts matching q. oldest_first is the WebSocket replay's order: it also
 * leaves out the alerts of owners who turned alerts off for sessions. */
enum status db_alerts_list(struct db_conn *conn, const struct alert_query *q,
                           struct alert_list *out);

/* The alerts with these ids (any order in, ascending id out), for the
 * WebSocket hub: those of owners who turned alerts off for sessions are
 * left out. */
enum status db_alerts_by_ids(struct db_conn *conn, const long long *ids, int n,
                             struct alert_list *out);

/* Sets acknowledged_at (once; a second ack keeps the first time) when the
 * alert exists and, unless owner_id is 0, belongs to a device owned by owner_id. */
enum status db_alerts_ack(struct db_conn *conn, long long id, long long owner_id,
                          struct alert *out);

#endif
