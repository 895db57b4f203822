#include "audit.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../api/cursor.h"
#include "../api/pooled.h"
#include "../api/validate.h"
#include "../base/log.h"
#include "../base/timefmt.h"
#include "../db/audit.h"

#define LIST_CURSOR_KIND "au"

/* What the table's CHECKs allow: a filter outside them is a typo, answered
 * 400 rather than an always-empty page. */
static const char *const ACTIONS[] = {"user.create",         "user.update",    "user.delete",
                                      "device.create",       "device.update",  "device.delete",
                                      "device.rotate_token", "command.create", "command.cancel",
                                      "login.success",       "login.failure",  NULL};
static const char *const TARGET_TYPES[] = {"user", "device", "command", NULL};

static bool one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* ?name= a positive id when present; 0 when absent. */
static bool id_filter_or_reply(const struct request *req, const char *name, long long *out,
                               struct response *res)
{
    const char *s = request_query(req, name);
    *out = 0;
    if (!s)
        return true;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 1 || v == LLONG_MAX) {
        response_problem(res, 400, "invalid_query", name, "%s must be a positive integer", name);
        return false;
    }
    *out = v;
    return true;
}

static bool word_filter_or_reply(const struct request *req, const char *name,
                                 const char *const *allowed, const char **out, struct response *res)
{
    *out = request_query(req, name);
    if (!*out || one_of(*out, allowed))
        return true;
    response_problem(res, 400, "invalid_query", name, "%s is not one of the audit log's", name);
    return false;
}

static bool time_filter_or_reply(const struct request *req, const char *name, long long *usec,
                                 struct response *res)
{
    const char *s = request_query(req, name);
    *usec = 0;
    if (!s || timefmt_parse(s, usec))
        return true;
    response_problem(res, 400, "invalid_query", name, "%s must be an RFC 3339 date-time", name);
    return false;
}

/* Every filter of the query, or false with the 400 naming the bad one. */
static bool query_or_reply(const struct request *req, struct audit_query *q, struct response *res)
{
    const char *cursor = request_query(req, "cursor");
    if (!id_filter_or_reply(req, "actor_id", &q->actor_id, res) ||
        !word_filter_or_reply(req, "action", ACTIONS, &q->action, res) ||
        !word_filter_or_reply(req, "target_type", TARGET_TYPES, &q->target_type, res) ||
        !id_filter_or_reply(req, "target_id", &q->target_id, res) ||
        !time_filter_or_reply(req, "from", &q->from, res) ||
        !time_filter_or_reply(req, "to", &q->to, res) ||
        !validate_limit_or_reply(req, &q->limit, res))
        return false;
    if (cursor && (!cursor_decode(cursor, LIST_CURSOR_KIND, &q->before_id) || q->before_id < 1)) {
        response_problem(res, 400, "invalid_cursor", "cursor", "cursor is not one this list gave");
        return false;
    }
    return true;
}

static json_t *id_or_null(long long id)
{
    return id ? json_integer(id) : json_null();
}

static json_t *text_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

/* {"id", "at", "actor_id", "action", "target_type", "target_id", "changes",
 * "client_addr", "request_id"}; NULL when out of memory or changes unreadable. */
static json_t *entry_to_json(const struct audit_row *a)
{
    char at[TIMEFMT_MAX];
    timefmt_format(a->at, at);
    json_t *changes = a->changes ? json_loads(a->changes, 0, NULL) : NULL;
    if (!changes)
        return NULL;
    return json_pack("{s:I, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id, "at",
                     at, "actor_id", id_or_null(a->actor_id), "action", a->action, "target_type",
                     a->target_type, "target_id", id_or_null(a->target_id), "changes", changes,
                     "client_addr", text_or_null(a->client_addr), "request_id",
                     text_or_null(a->request_id));
}

static int list_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    struct audit_query q = {0};
    if (!query_or_reply(req, &q, res))
        return res->status;
    int limit = q.limit;
    q.limit = limit + 1; /* one more than shown tells whether a next page exists */
    struct audit_list list = {0};
    enum status st = db_audit_list(conn, &q, &list);
    if (st != STATUS_OK) {
        audit_list_free(&list);
        return response_status(res, st);
    }
    json_t *items = json_array();
    int shown = list.count > limit ? limit : list.count;
    bool whole = items != NULL;
    for (int i = 0; whole && i < shown; i++)
        if (json_array_append_new(items, entry_to_json(&list.items[i])) != 0) {
            log_error("audit: entry %lld cannot be rendered", list.items[i].id);
            whole = false;
        }
    json_t *page = NULL;
    if (whole)
        page = cursor_page(items, LIST_CURSOR_KIND,
                           list.count > limit ? &list.items[shown - 1].id : NULL);
    else
        json_decref(items);
    audit_list_free(&list);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

/* GET /api/v1/audit?actor_id=&action=&target_type=&target_id=&from=&to=&limit=&cursor=
 * — admin. 200 {"items": [entry...], "next_cursor"}, newest first; from is
 * inclusive, to exclusive. 400 invalid_query naming a bad filter,
 * invalid_cursor. */
int audit_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, list_on);
}
