#include "notifications.h"

#include <stdio.h>
#include <string.h>

#include "../api/app.h"
#include "../api/pooled.h"
#include "../api/cursor.h"
#include "../api/resources.h"
#include "../api/validate.h"
#include "../base/crypto.h"
#include "../base/log.h"
#include "../base/secretbox.h"
#include "../db/notifications.h"
#include "../notify/webhook_url.h"

/* The prefix of a webhook secret: tells it apart from every other token. */
#define SECRET_PREFIX "whsec_"
#define SECRET_LEN    (sizeof SECRET_PREFIX - 1 + CRYPTO_TOKEN_LEN)

/* ---- preferences --------------------------------------------------------- */

static json_t *prefs_to_json(const struct notify_prefs *p)
{
    json_t *doc = json_object();
    for (int i = 0; doc && i < NOTIFY_EVENT_COUNT; i++) {
        json_t *ch = json_pack("{s:b, s:b}", "websocket", (p->websocket >> i) & 1, "webhook",
                               (p->webhook >> i) & 1);
        if (json_object_set_new(doc, notify_event_name(i), ch) != 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

static int reply_prefs(struct response *res, const struct notify_prefs *p)
{
    json_t *doc = prefs_to_json(p);
    return doc ? response_json(res, 200, doc) : response_status(res, STATUS_INTERNAL);
}

/* GET /api/v1/me/notifications — user
 * 200 {"alert": {"websocket", "webhook"}, "forecast": ..., "command": ...,
 * "device_status": ...}: what is stored, the defaults when nothing is. */
int notifications_get(const struct request *req, struct response *res, struct app *app)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct notify_prefs p;
    enum status st = db_notify_prefs_get(conn, req->caller.user_id, &p);
    db_pool_release(app->pool, conn);
    return st == STATUS_OK ? reply_prefs(res, &p) : response_status(res, st);
}

/* Reads one event's {"websocket": bool, "webhook": bool} (both required). */
static bool channel_pair_or_reply(const json_t *body, int i, struct notify_prefs *p,
                                  struct response *res)
{
    static const char *const allowed[] = {"websocket", "webhook", NULL};
    const char *event = notify_event_name(i);
    const json_t *pair = json_object_get(body, event);
    if (!pair) {
        response_problem(res, 422, "missing_field", event, "%s is required (the whole shape)",
                         event);
        return false;
    }
    if (!json_is_object(pair)) {
        response_problem(res, 422, "invalid_field", event,
                         "%s must be an object {\"websocket\", \"webhook\"}", event);
        return false;
    }
    if (!validate_object_or_reply(pair, allowed, res))
        return false;
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(pair, allowed[k]);
        if (!json_is_boolean(v)) {
            char field[48];
            snprintf(field, sizeof field, "%s.%s", event, allowed[k]);
            if (v)
                response_problem(res, 422, "invalid_field", field, "%s must be true or false",
                                 field);
            else
                response_problem(res, 422, "missing_field", field, "%s must be true or false",
                                 field);
            return false;
        }
        int *mask = k == 0 ? &p->websocket : &p->webhook;
        if (json_is_true(v))
            *mask |= 1 << i;
    }
    return true;
}

/* PUT /api/v1/me/notifications — user
 * Body: the whole shape of GET. 200 what is stored; 422 a missing, unknown or
 * non-boolean member. */
int notifications_put(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"alert", "forecast", "command", "device_status", NULL};
    if (!validate_object_or_reply(req->body, allowed, res))
        return res->status;
    struct notify_prefs p = {0};
    for (int i = 0; i < NOTIFY_EVENT_COUNT; i++)
        if (!channel_pair_or_reply(req->body, i, &p, res))
            return res->status;
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    enum status st = db_notify_prefs_put(conn, req->caller.user_id, &p);
    db_pool_release(app->pool, conn);
    return st == STATUS_OK ? reply_prefs(res, &p) : response_status(res, st);
}

/* ---- webhooks ------------------------------------------------------------ */

static json_t *webhook_to_json(const struct webhook *w)
{
    json_t *events = json_array();
    for (int i = 0; events && i < NOTIFY_EVENT_COUNT; i++)
        if ((w->events >> i) & 1)
            json_array_append_new(events, json_string(notify_event_name(i)));
    return json_pack("{s:I, s:s, s:o, s:b, s:o}", "id", (json_int_t)w->id, "url", w->url, "events",
                     events ? events : json_null(), "active", w->active, "created_at",
                     resource_time_or_null(w->created_at));
}

/* The "events" member: a non-empty array of the contract's event names. */
static bool events_or_reply(const json_t *body, int *mask, struct response *res)
{
    const json_t *arr = json_object_get(body, "events");
    size_t i;
    const json_t *v;
    *mask = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        goto bad;
    json_array_foreach(arr, i, v)
    {
        int bit = json_is_string(v) ? notify_event_bit(json_string_value(v)) : 0;
        if (!bit)
            goto bad;
        *mask |= bit;
    }
    return true;
bad:
    response_problem(res, 422, "invalid_field", "events",
                     "events must be a non-empty array of \"alert\", \"forecast\", \"command\", "
                     "\"device_status\"");
    return false;
}

/* POST /api/v1/me/webhooks — user
 * Body {"url", "events"}. 201 {"id", "url", "events", "active", "created_at",
 * "secret"} with Location (the secret shown this once); 422 invalid_field
 * "url" for a URL that is not http(s) or resolves to a loopback, private or
 * link-local address (unless WEBHOOK_ALLOW_PRIVATE), or bad events. */
int webhooks_create(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"url", "events", NULL};
    const char *url;
    int events;
    char why[160];
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !validate_string_or_reply(req->body, "url", true, WEBHOOK_URL_MAX, &url, res) ||
        !events_or_reply(req->body, &events, res))
        return res->status;
    if (!webhook_url_check(url, app->config->webhook_allow_private, why, sizeof why))
        return response_problem(res, 422, "invalid_field", "url", "%s", why);

    char secret[SECRET_LEN + 1];
    unsigned char box[SECRET_LEN + SECRETBOX_OVERHEAD];
    memcpy(secret, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
    if (!crypto_token_new(secret + sizeof SECRET_PREFIX - 1) ||
        !secretbox_seal(app->webhook_key, secret, SECRET_LEN, box)) {
        log_error("webhooks: cannot make or seal a secret");
        return response_status(res, STATUS_INTERNAL);
    }
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct webhook w;
    enum status st =
        db_webhooks_create(conn, req->caller.user_id, url, events, box, sizeof box, &w);
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        return response_status(res, st);
    json_t *doc = webhook_to_json(&w);
    if (!doc || json_object_set_new(doc, "secret", json_string(secret)) != 0) {
        json_decref(doc);
        return response_status(res, STATUS_INTERNAL);
    }
    explicit_bzero(secret, sizeof secret);
    char location[64];
    snprintf(location, sizeof location, "/api/v1/me/webhooks/%lld", w.id);
    response_header(res, "Location", location);
    return response_json(res, 201, doc);
}

/* GET /api/v1/me/webhooks?limit=&cursor= — user
 * 200 {"items": [webhook...], "next_cursor"}: the caller's, oldest first. */
static int webhooks_list_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    int limit;
    long long after = 0;
    const char *cursor = request_query(req, "cursor");
    if (!validate_limit_or_reply(req, &limit, res))
        return res->status;
    if (cursor && !cursor_decode(cursor, "w", &after))
        return response_problem(res, 400, "invalid_cursor", "cursor",
                                "cursor is not one this list gave");
    struct webhook_list list;
    enum status st = db_webhooks_list(conn, req->caller.user_id, after, limit, &list);
    if (st != STATUS_OK) {
        webhook_list_free(&list);
        return response_status(res, st);
    }
    json_t *items = json_array();
    for (int i = 0; items && i < list.count; i++)
        json_array_append_new(items, webhook_to_json(&list.items[i]));
    long long last = list.count == limit ? list.items[list.count - 1].id : 0;
    webhook_list_free(&list);
    json_t *page = cursor_page(items, "w", last ? &last : NULL);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

int webhooks_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, webhooks_list_on);
}

/* GET /api/v1/me/webhooks/{id} — user
 * 200 the webhook (never its secret); 404 when not there or not yours. */
int webhooks_get(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_problem(res, 404, "not_found", NULL, "no such webhook");
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct webhook w;
    enum status st = db_webhooks_get(conn, req->caller.user_id, id, &w);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return response_problem(res, 404, "not_found", NULL, "no such webhook");
    if (st != STATUS_OK)
        return response_status(res, st);
    json_t *doc = webhook_to_json(&w);
    return doc ? response_json(res, 200, doc) : response_status(res, STATUS_INTERNAL);
}

/* DELETE /api/v1/me/webhooks/{id} — user
 * 204; its pending deliveries go with it; 404 when not there or not yours. */
int webhooks_delete(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_problem(res, 404, "not_found", NULL, "no such webhook");
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    enum status st = db_webhooks_delete(conn, req->caller.user_id, id);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return response_problem(res, 404, "not_found", NULL, "no such webhook");
    return st == STATUS_OK ? response_json(res, 204, NULL) : response_status(res, st);
}

static json_t *attempt_to_json(const struct webhook_attempt *a)
{
    return json_pack("{s:I, s:I, s:s, s:i, s:o, s:o, s:o}", "id", (json_int_t)a->id, "event_id",
                     (json_int_t)a->event_id, "event", a->event, "attempt", a->attempt,
                     "status_code", a->status_code ? json_integer(a->status_code) : json_null(),
                     "error", a->error[0] ? json_string(a->error) : json_null(), "at",
                     resource_time_or_null(a->at));
}

/* GET /api/v1/me/webhooks/{id}/deliveries?limit=&cursor= — user
 * 200 {"items": [{"id", "event_id", "event", "attempt", "status_code" | null,
 * "error" | null, "at"}], "next_cursor"}, newest first; 404 as above. */
static int webhooks_deliveries_on(const struct request *req, struct response *res,
                                  struct db_conn *conn)
{
    long long id, before = 0;
    int limit;
    const char *cursor = request_query(req, "cursor");
    if (!request_param_id(req, 0, &id))
        return response_problem(res, 404, "not_found", NULL, "no such webhook");
    if (!validate_limit_or_reply(req, &limit, res))
        return res->status;
    if (cursor && !cursor_decode(cursor, "wd", &before))
        return response_problem(res, 400, "invalid_cursor", "cursor",
                                "cursor is not one this list gave");
    struct webhook_attempt_list list;
    enum status st = db_webhooks_attempts(conn, req->caller.user_id, id, before, limit, &list);
    if (st != STATUS_OK) {
        webhook_attempt_list_free(&list);
        if (st == STATUS_NOT_FOUND)
            return response_problem(res, 404, "not_found", NULL, "no such webhook");
        return response_status(res, st);
    }
    json_t *items = json_array();
    for (int i = 0; items && i < list.count; i++)
        json_array_append_new(items, attempt_to_json(&list.items[i]));
    long long last = list.count == limit ? list.items[list.count - 1].id : 0;
    webhook_attempt_list_free(&list);
    json_t *page = cursor_page(items, "wd", last ? &last : NULL);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

int webhooks_deliveries(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, webhooks_deliveries_on);
}
