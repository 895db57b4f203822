#include "notifications.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const EVENT_NAMES[NOTIFY_EVENT_COUNT] = {"alert", "forecast", "command",
                                                            "device_status"};

const char *notify_event_name(int i)
{
    return i >= 0 && i < NOTIFY_EVENT_COUNT ? EVENT_NAMES[i] : "";
}

int notify_event_bit(const char *name)
{
    for (int i = 0; i < NOTIFY_EVENT_COUNT; i++)
        if (!strcmp(name, EVENT_NAMES[i]))
            return 1 << i;
    return 0;
}

// clang-format off
#define EPOCH_US(ts) "(extract(epoch FROM " ts ") * 1000000)::bigint"

static const struct db_stmt PREFS_GET = {
    "notify_prefs_get",
    "SELECT array_to_string(websocket, ','), array_to_string(webhook, ',')"
    " FROM notification_prefs WHERE user_id = $1"};

static const struct db_stmt PREFS_PUT = {
    "notify_prefs_put",
    "INSERT INTO notification_prefs (user_id, websocket, webhook) VALUES ($1, $2, $3)"
    " ON CONFLICT (user_id) DO UPDATE SET websocket = EXCLUDED.websocket,"
    "  webhook = EXCLUDED.webhook, updated_at = now()"};

#define WEBHOOK_COLUMNS "id, url, array_to_string(events, ','), active, " EPOCH_US("created_at")

static const struct db_stmt WEBHOOK_CREATE = {
    "webhooks_create",
    "INSERT INTO webhooks (user_id, url, events, secret_enc) VALUES ($1, $2, $3, $4::bytea)"
    " RETURNING " WEBHOOK_COLUMNS};

static const struct db_stmt WEBHOOK_LIST = {
    "webhooks_list",
    "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"};

static const struct db_stmt WEBHOOK_GET = {
    "webhooks_get", "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE user_id = $1 AND id = $2"};

static const struct db_stmt WEBHOOK_DELETE = {
    "webhooks_delete", "DELETE FROM webhooks WHERE user_id = $1 AND id = $2 RETURNING id"};

static const struct db_stmt WEBHOOK_ATTEMPTS = {
    "webhooks_attempts",
    "SELECT a.id, d.event_id, e.event, a.attempt, a.status_code, a.error, " EPOCH_US("a.at")
    " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
    " JOIN notification_events e ON e.id = d.event_id"
    " WHERE a.webhook_id = $1 AND ($2 = 0 OR a.id < $2) ORDER BY a.id DESC LIMIT $3"};

static const struct db_stmt OUTBOX_ADD = {
    "outbox_add", "SELECT notification_enqueue($1, $2, $3, true)"};

/* The lease: the attempt's timeouts are far shorter, so a row whose lease
 * runs out belongs to a sender that died. */
static const struct db_stmt OUTBOX_CLAIM = {
    "outbox_claim",
    "WITH due AS ("
    "  SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
    "  WHERE d.state = 'pending' AND d.next_at <= now() AND w.active"
    "  ORDER BY d.next_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED)"
    " UPDATE webhook_deliveries d SET attempts = d.attempts + 1,"
    "  next_at = now() + $2 * interval '1 second'"
    " FROM due, webhooks w, notification_events e"
    " WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id"
    " RETURNING d.id, d.webhook_id, d.event_id, d.attempts, w.url, w.secret_enc, e.payload"};

static const struct db_stmt OUTBOX_FINISH = {
    "outbox_finish",
    "WITH att AS ("
    "  INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, status_code, error)"
    "  VALUES ($1, $2, $3, $4, $5)),"
    " del AS ("
    "  UPDATE webhook_deliveries SET"
    "   state = CASE WHEN $6::boolean THEN 'delivered' WHEN $7::bigint < 0 THEN 'failed'"
    "    ELSE 'pending' END,"
    "   next_at = CASE WHEN $6::boolean OR $7::bigint < 0 THEN next_at"
    "    ELSE now() + $7::bigint * interval '1 millisecond' END"
    "  WHERE id = $1)"
    " UPDATE webhooks SET"
    "  failing_since = CASE WHEN $6::boolean THEN NULL ELSE coalesce(failing_since, now()) END,"
    "  active = active AND ($6::boolean"
    "   OR coalesce(failing_since, now()) > now() - $8 * interval '1 second')"
    " WHERE id = $2"};

static const struct db_stmt OUTBOX_NEXT = {
    "outbox_next",
    /* NULL when nothing is pending (greatest() would skip the NULL and say 0:
     * due now, a busy loop) */
    "SELECT (extract(epoch FROM min(d.next_at) - now()) * 1000)::bigint"
    " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
    " WHERE d.state = 'pending' AND w.active"};

/* The inner SELECT walks the partial index over the devices that are due and
 * skips those an ingestion holds (their deadline is moving); the outer
 * conditions are re-checked on the locked row, so only one instance wins. */
static const struct db_stmt SWEEP = {
    "devices_sweep_offline",
    "WITH gone AS ("
    "  UPDATE devices d SET offline_since = now()"
    "  WHERE d.id IN (SELECT id FROM devices WHERE offline_since IS NULL AND offline_due_at < now()"
    "    ORDER BY offline_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
    "   AND d.offline_since IS NULL AND d.offline_due_at < now()"
    "  RETURNING d.id, d.name, d.owner_id, d.last_seen_at)"
    " SELECT count(*), count(notification_enqueue(g.owner_id, 'device_status',"
    "  device_status_message(g.id, g.name, 'offline', g.last_seen_at), true))"
    " FROM gone g"};
static const struct db_stmt NOTICES = {
    "notices_by_ids",
    "SELECT id, user_id, event, payload FROM notification_events"
    " WHERE id = ANY($1::bigint[]) AND websocket ORDER BY id"};
// clang-format on

static int mask_from_list(const char *list)
{
    int mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        mask |= notify_event_bit(tok);
    return mask;
}

/* A text[] literal of the events in mask. */
static const char *mask_to_array(struct db_array *a, int mask)
{
    db_array_init(a);
    for (int i = 0; i < NOTIFY_EVENT_COUNT; i++)
        if (mask & (1 << i))
            db_array_add_text(a, EVENT_NAMES[i]);
    return db_array_finish(a);
}

enum status db_notify_prefs_get(struct db_conn *c, long long user_id, struct notify_prefs *out)
{
    struct db_ll_text uid;
    const char *params[] = {db_ll(&uid, user_id)};
    PGresult *res;
    *out = NOTIFY_PREFS_DEFAULT;
    enum status st = db_exec_row(c, &PREFS_GET, 1, params, &res);
    if (st == STATUS_OK) {
        out->websocket = mask_from_list(PQgetvalue(res, 0, 0));
        out->webhook = mask_from_list(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return st == STATUS_NOT_FOUND ? STATUS_OK : st;
}

enum status db_notify_prefs_put(struct db_conn *c, long long user_id, const struct notify_prefs *in)
{
    struct db_ll_text uid;
    struct db_array ws, wh;
    const char *params[] = {db_ll(&uid, user_id), mask_to_array(&ws, in->websocket),
                            mask_to_array(&wh, in->webhook)};
    enum status st = STATUS_INTERNAL;
    if (params[1] && params[2]) {
        PGresult *res = db_exec(c, &PREFS_PUT, 3, params);
        st = db_check(c, res, PGRES_COMMAND_OK);
        PQclear(res);
    }
    db_array_free(&ws);
    db_array_free(&wh);
    return st;
}

void webhook_list_free(struct webhook_list *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static void read_webhook(const PGresult *res, int row, struct webhook *w)
{
    w->id = db_get_ll(res, row, 0);
    db_get_str(res, row, 1, w->url, sizeof w->url);
    w->events = mask_from_list(PQgetvalue(res, row, 2));
    w->active = db_get_bool(res, row, 3);
    w->created_at = db_get_ll(res, row, 4);
}

/* The bytea input form of box: \x and two hex digits a byte; malloc'd. */
static char *bytea_hex(const unsigned char *box, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *s = malloc(2 * len + 3);
    if (!s)
        return NULL;
    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        s[2 + 2 * i] = hex[box[i] >> 4];
        s[3 + 2 * i] = hex[box[i] & 0xf];
    }
    s[2 + 2 * len] = '\0';
    return s;
}

enum status db_webhooks_create(struct db_conn *c, long long user_id, const char *url, int events,
                               const unsigned char *box, size_t len, struct webhook *out)
{
    struct db_ll_text uid;
    struct db_array ev;
    char *hex = bytea_hex(box, len);
    const char *params[] = {db_ll(&uid, user_id), url, mask_to_array(&ev, events), hex};
    enum status st = STATUS_INTERNAL;
    if (hex && params[2]) {
        PGresult *res;
        st = db_exec_row(c, &WEBHOOK_CREATE, 4, params, &res);
        if (st == STATUS_OK)
            read_webhook(res, 0, out);
        PQclear(res);
    }
    db_array_free(&ev);
    free(hex);
    return st;
}

enum status db_webhooks_list(struct db_conn *c, long long user_id, long long after_id, int limit,
                             struct webhook_list *out)
{
    struct db_ll_text uid, after, lim;
    const char *params[] = {db_ll(&uid, user_id), db_ll(&after, after_id), db_ll(&lim, limit)};
    PGresult *res = db_exec(c, &WEBHOOK_LIST, 3, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n; i++)
        read_webhook(res, i, &out->items[i]);
    out->count = n;
    PQclear(res);
    return st;
}

enum status db_webhooks_get(struct db_conn *c, long long user_id, long long id, struct webhook *out)
{
    struct db_ll_text uid, wid;
    const char *params[] = {db_ll(&uid, user_id), db_ll(&wid, id)};
    PGresult *res;
    enum status st = db_exec_row(c, &WEBHOOK_GET, 2, params, &res);
    if (st == STATUS_OK)
        read_webhook(res, 0, out);
    PQclear(res);
    return st;
}

enum status db_webhooks_delete(struct db_conn *c, long long user_id, long long id)
{
    struct db_ll_text uid, wid;
    const char *params[] = {db_ll(&uid, user_id), db_ll(&wid, id)};
    PGresult *res;
    enum status st = db_exec_row(c, &WEBHOOK_DELETE, 2, params, &res);
    PQclear(res);
    return st;
}

void webhook_attempt_list_free(struct webhook_attempt_list *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

enum status db_webhooks_attempts(struct db_conn *c, long long user_id, long long id,
                                 long long before_id, int limit, struct webhook_attempt_list *out)
{
    *out = (struct webhook_attempt_list){0};
    struct webhook w;
    enum status st = db_webhooks_get(c, user_id, id, &w);
    if (st != STATUS_OK)
        return st;
    struct db_ll_text wid, before, lim;
    const char *params[] = {db_ll(&wid, id), db_ll(&before, before_id), db_ll(&lim, limit)};
    PGresult *res = db_exec(c, &WEBHOOK_ATTEMPTS, 3, params);
    void *items;
    int n;
    st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n; i++) {
        struct webhook_attempt *a = &out->items[i];
        a->id = db_get_ll(res, i, 0);
        a->event_id = db_get_ll(res, i, 1);
        db_get_str(res, i, 2, a->event, sizeof a->event);
        a->attempt = (int)db_get_ll(res, i, 3);
        a->status_code = (int)db_get_ll(res, i, 4);
        db_get_str(res, i, 5, a->error, sizeof a->error);
        a->at = db_get_ll(res, i, 6);
    }
    out->count = n;
    PQclear(res);
    return st;
}

enum status db_outbox_add_in_tx(struct db_conn *c, long long user_id, const char *event,
                                const char *json, long long *event_id)
{
    struct db_ll_text uid;
    const char *params[] = {db_ll(&uid, user_id), event, json};
    PGresult *res;
    enum status st = db_exec_row(c, &OUTBOX_ADD, 3, params, &res);
    if (event_id)
        *event_id = st == STATUS_OK ? db_get_ll(res, 0, 0) : 0;
    PQclear(res);
    return st;
}

void outbox_claim_list_free(struct outbox_claim_list *list)
{
    for (int i = 0; i < list->count; i++) {
        free(list->items[i].url);
        free(list->items[i].box);
        free(list->items[i].payload);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

enum status db_outbox_claim(struct db_conn *c, int limit, int lease_s,
                            struct outbox_claim_list *out)
{
    struct db_ll_text lim, lease;
    const char *params[] = {db_ll(&lim, limit), db_ll(&lease, lease_s)};
    PGresult *res = db_exec(c, &OUTBOX_CLAIM, 2, params);
    void *items;
    int n;
    *out = (struct outbox_claim_list){0};
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        struct outbox_claim *cl = &out->items[i];
        out->count = i + 1; /* so that a failure below frees what was copied */
        cl->delivery_id = db_get_ll(res, i, 0);
        cl->webhook_id = db_get_ll(res, i, 1);
        cl->event_id = db_get_ll(res, i, 2);
        cl->attempt = (int)db_get_ll(res, i, 3);
        cl->url = strdup(PQgetvalue(res, i, 4));
        size_t blen = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 5), &blen);
        if (raw) {
            cl->box = malloc(blen ? blen : 1);
            if (cl->box)
                memcpy(cl->box, raw, blen);
            cl->box_len = blen;
            PQfreemem(raw);
        }
        cl->payload = strdup(PQgetvalue(res, i, 6));
        if (!cl->url || !cl->box || !cl->payload)
            st = STATUS_INTERNAL;
    }
    PQclear(res);
    if (st != STATUS_OK)
        outbox_claim_list_free(out);
    return st;
}

enum status db_outbox_finish(struct db_conn *c, const struct outbox_result *r)
{
    struct db_ll_text did, wid, att, code, retry, window;
    const char *params[] = {db_ll(&did, r->delivery_id),
                            db_ll(&wid, r->webhook_id),
                            db_ll(&att, r->attempt),
                            r->status_code ? db_ll(&code, r->status_code) : NULL,
                            r->error,
                            r->delivered ? "t" : "f",
                            db_ll(&retry, r->retry_in_ms),
                            db_ll(&window, r->fail_window_s)};
    PGresult *res = db_exec(c, &OUTBOX_FINISH, 8, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

enum status db_outbox_next_due(struct db_conn *c, long long *ms)
{
    PGresult *res;
    enum status st = db_exec_row(c, &OUTBOX_NEXT, 0, NULL, &res);
    *ms = -1;
    if (st == STATUS_OK && !db_is_null(res, 0, 0)) {
        long long left = db_get_ll(res, 0, 0);
        *ms = left < 0 ? 0 : left;
    }
    PQclear(res);
    return st == STATUS_NOT_FOUND ? STATUS_OK : st;
}

enum status db_devices_sweep_offline(struct db_conn *c, int *count)
{
    PGresult *res;
    enum status st = db_exec_row(c, &SWEEP, 0, NULL, &res);
    *count = st == STATUS_OK ? (int)db_get_ll(res, 0, 0) : 0;
    PQclear(res);
    return st;
}

enum status db_outbox_listen(struct db_conn *c)
{
    return db_command(c, "LISTEN " OUTBOX_CHANNEL);
}

enum status db_outbox_wait(struct db_conn *c, int wake_fd, int timeout_ms)
{
    int sock = PQsocket(c->pg);
    if (sock < 0)
        return STATUS_UNAVAILABLE;
    struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
    int n = poll(fds, 2, timeout_ms < 0 ? 0 : timeout_ms);
    if (n < 0 && errno != EINTR)
        return STATUS_UNAVAILABLE;
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
            return STATUS_UNAVAILABLE;
        PGnotify *note;
        while ((note = PQnotifies(c->pg)) != NULL)
            PQfreemem(note);
    }
    return STATUS_OK;
}

void notice_list_free(struct notice_list *list)
{
    for (int i = 0; i < list->count; i++)
        free(list->items[i].payload);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

enum status db_notices_by_ids(struct db_conn *c, const long long *ids, int n,
                              struct notice_list *out)
{
    PGresult *res = NULL;
    *out = (struct notice_list){0};
    enum status st = db_exec_ids(c, &NOTICES, ids, n, &res);
    if (st != STATUS_OK)
        return st;
    void *items;
    int rows;
    st = db_check_rows(c, res, sizeof *out->items, &items, &rows);
    out->items = items;
    for (int i = 0; st == STATUS_OK && i < rows; i++) {
        struct notice *no = &out->items[i];
        out->count = i + 1;
        no->id = db_get_ll(res, i, 0);
        no->user_id = db_get_ll(res, i, 1);
        db_get_str(res, i, 2, no->event, sizeof no->event);
        if (!(no->payload = strdup(PQgetvalue(res, i, 3))))
            st = STATUS_INTERNAL;
    }
    PQclear(res);
    if (st != STATUS_OK)
        notice_list_free(out);
    return st;
}
