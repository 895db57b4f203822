#include "alerts.h"

#include <stdio.h>
#include <stdlib.h>

#include "../api/access.h"
#include "../api/app.h"
#include "../api/pooled.h"
#include "../api/resources.h"
#include "../base/log.h"
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
static int alerts_list_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    struct alert_query q = {.owner_id = access_owner_scope(&req->caller)};
    if (!query_id_or_reply(req, "since_id", &q.since_id, res) ||
        !query_id_or_reply(req, "device_id", &q.device_id, res) ||
        !query_id_or_reply(req, "cursor", &q.before_id, res) ||
        !validate_limit_or_reply(req, &q.limit, res))
        return res->status;
    struct alert_list list;
    enum status st = db_alerts_list(conn, &q, &list);
    if (st != STATUS_OK)
        return response_status(res, st);
    /* Every alert or none: one that cannot be rendered (a figure that is not
     * finite, out of memory) is a 500 and a log line, never a page without it. */
    json_t *page = json_object(), *items = json_array();
    long long at = 0; /* the alert that could not be rendered */
    bool whole = page && items && json_object_set(page, "items", items) == 0;
    for (int i = 0; whole && i < list.count; i++)
        if (json_array_append_new(items, alert_to_json(&list.items[i])) != 0) {
            whole = false;
            at = list.items[i].id;
        }
    json_decref(items); /* the page holds its own reference */
    json_t *next = json_null();
    if (list.count == q.limit) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%lld", list.items[list.count - 1].id);
        next = json_string(cursor);
    }
    alert_list_free(&list);
    if (whole)
        whole = json_object_set_new(page, "next_cursor", next) == 0; /* takes next */
    else
        json_decref(next);
    if (!whole) {
        json_decref(page);
        log_error("alerts: the list cannot be rendered (alert %lld; 0: out of memory)", at);
        return response_status(res, STATUS_INTERNAL);
    }
    return response_json(res, 200, page);
}

int alerts_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, alerts_list_on);
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
