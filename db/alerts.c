#include "alerts.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ALERT_COLUMNS                                                                              \
    "a.id, a.device_id, d.name, d.owner_id, (extract(epoch FROM a.hour_start) * 1000000)::bigint," \
    " a.hour_kwh, a.max_hourly_kwh, (extract(epoch FROM a.created_at) * 1000000)::bigint,"         \
    " (extract(epoch FROM a.acknowledged_at) * 1000000)::bigint"

/* One statement per order; every filter is a parameter that may be 0 (off). */
static const struct db_stmt LIST_NEWEST = {
    "alerts_list_newest",
    "SELECT " ALERT_COLUMNS " FROM alerts a JOIN devices d ON d.id = a.device_id"
    " WHERE ($1 = 0 OR d.owner_id = $1) AND ($2 = 0 OR a.device_id = $2)"
    " AND a.id > $3 AND ($4 = 0 OR a.id < $4)"
    " ORDER BY a.id DESC LIMIT $5"};

/* The two reads of the WebSocket hub (replay, live alerts) leave out the
 * alerts whose owner turned alerts off for sessions (migrations/0009); the
 * REST list shows every alert whatever the preferences. */
static const struct db_stmt LIST_OLDEST = {
    "alerts_list_oldest",
    "SELECT " ALERT_COLUMNS " FROM alerts a JOIN devices d ON d.id = a.device_id"
    " WHERE ($1 = 0 OR d.owner_id = $1) AND ($2 = 0 OR a.device_id = $2)"
    " AND a.id > $3 AND ($4 = 0 OR a.id < $4)"
    " AND notification_wanted(d.owner_id, 'alert', 'websocket')"
    " ORDER BY a.id ASC LIMIT $5"};

static const struct db_stmt BY_IDS = {
    "alerts_by_ids", "SELECT " ALERT_COLUMNS " FROM alerts a JOIN devices d ON d.id = a.device_id"
                     " WHERE a.id = ANY($1::bigint[])"
                     " AND notification_wanted(d.owner_id, 'alert', 'websocket') ORDER BY a.id"};

static const struct db_stmt ACK = {
    "alerts_ack", "WITH target AS ("
                  "  SELECT a.id FROM alerts a JOIN devices d ON d.id = a.device_id"
                  "  WHERE a.id = $1 AND ($2 = 0 OR d.owner_id = $2) FOR UPDATE OF a)"
                  " UPDATE alerts a SET acknowledged_at = coalesce(a.acknowledged_at, now())"
                  " FROM target, devices d WHERE a.id = target.id AND d.id = a.device_id"
                  " RETURNING " ALERT_COLUMNS};

void alert_list_free(struct alert_list *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static void read_alert(const PGresult *res, int row, struct alert *a)
{
    a->id = db_get_ll(res, row, 0);
    a->device_id = db_get_ll(res, row, 1);
    db_get_str(res, row, 2, a->device_name, sizeof a->device_name);
    a->owner_id = db_get_ll(res, row, 3);
    a->hour_start = db_get_ll(res, row, 4);
    a->hour_kwh = db_get_double(res, row, 5);
    a->max_hourly_kwh = db_get_double(res, row, 6);
    a->created_at = db_get_ll(res, row, 7);
    a->acknowledged_at = db_get_ll(res, row, 8);
}

static enum status read_list(struct db_conn *c, PGresult *res, struct alert_list *out)
{
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n; i++)
        read_alert(res, i, &out->items[i]);
    out->count = n;
    PQclear(res);
    return st;
}

enum status db_alerts_list(struct db_conn *c, const struct alert_query *q, struct alert_list *out)
{
    struct db_ll_text owner, device, since, before, limit;
    const char *params[] = {db_ll(&owner, q->owner_id), db_ll(&device, q->device_id),
                            db_ll(&since, q->since_id), db_ll(&before, q->before_id),
                            db_ll(&limit, q->limit)};
    return read_list(c, db_exec(c, q->oldest_first ? &LIST_OLDEST : &LIST_NEWEST, 5, params), out);
}

enum status db_alerts_by_ids(struct db_conn *c, const long long *ids, int n, struct alert_list *out)
{
    PGresult *res;
    enum status st = db_exec_ids(c, &BY_IDS, ids, n, &res);
    return st == STATUS_OK ? read_list(c, res, out) : st;
}

enum status db_alerts_ack(struct db_conn *c, long long id, long long owner_id, struct alert *out)
{
    struct db_ll_text sid, sowner;
    const char *params[] = {db_ll(&sid, id), db_ll(&sowner, owner_id)};
    PGresult *res;
    enum status st = db_exec_row(c, &ACK, 2, params, &res);
    if (st == STATUS_OK)
        read_alert(res, 0, out);
    PQclear(res);
    return st;
}
