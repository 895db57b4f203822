#include "alerts.h"

#include <stdio.h>
#include <stdlib.h>

#include "../api/access.h"
#include "../api/app.h"
#include "../api/resources.h"
#include "../base/timefmt.h"
#include "../api/validate.h"

/* A query parameter that must be a non-negative integer when present. */
static bool query_id_or_reply(const struct request *req, const char *name, long long *out,
                              struct response *res)
{
    const char *s = request_query(req, name);
    *out = 0;
    if (!s)
        return true;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0) {
        response_problem(res, 400, "invalid_query", name, "%s must be a non-negative integer",
                         name);
        return false;
    }
    *out = v;
    return true;
}

/* GET /api/v1/alerts?since_id=&device_id=&limit=&cursor= — user
 * Newest first; a client sees its devices' alerts, an admin all.
 * 200 {"items": [alert...], "next_cursor"}; 400 on a bad query. */
int alerts_list(const struct request *req, struct response *res, struct app *app)
{
    struct alert_query q = {.owner_id = access_owner_scope(&req->caller)};
    if (!query_id_or_reply(req, "since_id", &q.since_id, res) ||
        !query_id_or_reply(req, "device_id", &q.device_id, res) ||
        !query_id_or_reply(req, "cursor", &q.before_id, res) ||
        !validate_limit_or_reply(req, &q.limit, res))
        return res->status;
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct alert_list list;
    enum status st = db_alerts_list(conn, &q, &list);
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        return response_status(res, st);
    json_t *items = json_array();
    for (int i = 0; i < list.count; i++)
        json_array_append_new(items, alert_to_json(&list.items[i]));
    json_t *next = json_null();
    if (list.count == q.limit) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%lld", list.items[list.count - 1].id);
        next = json_string(cursor);
    }
    alert_list_free(&list);
    return response_json(res, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

/* POST /api/v1/alerts/{id}/ack — user (the device's owner, or an admin)
 * 200 the alert (acknowledged_at set once); 404 when not found or not yours. */
int alerts_ack(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_problem(res, 404, "not_found", NULL, "no such alert");
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct alert a;
    enum status st = db_alerts_ack(conn, id, access_owner_scope(&req->caller), &a);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return response_problem(res, 404, "not_found", NULL, "no such alert");
    if (st != STATUS_OK)
        return response_status(res, st);
    return response_json(res, 200, alert_to_json(&a));
}
