#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/access.h"
#include "../api/app.h"
#include "../api/pooled.h"
#include "../api/chat_text.h"
#include "../api/cursor.h"
#include "../api/resources.h"
#include "../api/validate.h"
#include "../db/chat.h"

/* Cursor kinds: a conversation page ends at an activity value, a message
 * page at a message id. */
#define CURSOR_CONVERSATIONS "cv"
#define CURSOR_MESSAGES      "cm"

static int not_found(struct response *res)
{
    return response_problem(res, 404, "not_found", NULL, "no such conversation");
}

/* A positive integer query parameter, or 0 when absent; 400 otherwise. */
static bool query_positive_or_reply(const struct request *req, const char *name, long long *out,
                                    struct response *res)
{
    const char *s = request_query(req, name);
    *out = 0;
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s < '1' || *s > '9' || *end || errno) {
        response_problem(res, 400, "invalid_query", name, "%s must be a positive integer", name);
        return false;
    }
    *out = v;
    return true;
}

static bool cursor_or_reply(const struct request *req, const char *kind, long long *out,
                            struct response *res)
{
    const char *cursor = request_query(req, "cursor");
    if (!cursor)
        return true;
    if (cursor_decode(cursor, kind, out) && *out > 0)
        return true;
    response_problem(res, 400, "invalid_cursor", "cursor", "cursor is not one this list gave");
    return false;
}

/* Loads conversation path parameter 0 as the caller sees it (a client: its
 * own only), or answers 404 / 503. The caller clears *out. */
static bool conversation_or_reply(const struct request *req, struct db_conn *conn,
                                  struct chat_conversation *out, struct response *res)
{
    long long id;
    memset(out, 0, sizeof *out);
    if (!request_param_id(req, 0, &id)) {
        not_found(res);
        return false;
    }
    enum status st =
        db_chat_conversation_get(conn, id, access_owner_scope(&req->caller), req->caller.role, out);
    if (st == STATUS_NOT_FOUND)
        not_found(res);
    else if (st != STATUS_OK)
        response_status(res, st);
    return st == STATUS_OK;
}

static int reply_conversation(struct response *res, const struct chat_conversation *c)
{
    json_t *body = chat_conversation_to_json(c);
    return body ? response_json(res, 200, body) : response_status(res, STATUS_INTERNAL);
}

/* GET /api/v1/conversations?unread=&limit=&cursor= — admin
 * Every conversation, most recently active first; unread=true keeps those
 * with client messages no admin has read. 200 {"items", "next_cursor"};
 * 400 invalid_query / invalid_cursor. */
static int chat_conversations_list_on(const struct request *req, struct response *res,
                                      struct db_conn *conn)
{
    int limit;
    long long before = 0;
    const char *unread = request_query(req, "unread");
    if (unread && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0)
        return response_problem(res, 400, "invalid_query", "unread",
                                "unread must be true or false");
    if (!validate_limit_or_reply(req, &limit, res) ||
        !cursor_or_reply(req, CURSOR_CONVERSATIONS, &before, res))
        return res->status;
    struct chat_conversation_list list;
    enum status st = db_chat_conversations_list(conn, before, unread && !strcmp(unread, "true"),
                                                limit + 1, &list);
    if (st != STATUS_OK)
        return response_status(res, st);
    int shown = list.count > limit ? limit : list.count;
    json_t *items = json_array();
    bool whole = items != NULL;
    for (int i = 0; whole && i < shown; i++)
        whole = json_array_append_new(items, chat_conversation_to_json(&list.items[i])) == 0;
    json_t *page = whole ? cursor_page(items, CURSOR_CONVERSATIONS,
                                       list.count > limit ? &list.items[shown - 1].activity : NULL)
                         : NULL;
    if (!whole)
        json_decref(items);
    chat_conversation_list_free(&list);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

int chat_conversations_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, chat_conversations_list_on);
}

/* GET /api/v1/me/conversation — user (a client)
 * 200 the caller's conversation, created on first ask; 404 for an admin,
 * who talks in clients' conversations and has none of its own. */
int chat_me_conversation(const struct request *req, struct response *res, struct app *app)
{
    if (req->caller.role != ROLE_CLIENT)
        return response_problem(res, 404, "not_found", NULL,
                                "admins have no conversation of their own");
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct chat_conversation c;
    enum status st = db_chat_conversation_mine(conn, req->caller.user_id, &c);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return response_problem(res, 401, "invalid_token", NULL, "the user no longer exists");
    if (st != STATUS_OK)
        return response_status(res, st);
    reply_conversation(res, &c);
    chat_conversation_clear(&c);
    return res->status;
}

/* GET /api/v1/conversations/{id}/messages?before_id=&limit=&cursor= — its
 * client, admin. Newest first; before_id (or the cursor of the previous
 * page) keeps older messages. 200 {"items", "next_cursor"}; 400; 404. */
static int chat_messages_list_on(const struct request *req, struct response *res,
                                 struct db_conn *conn)
{
    int limit;
    long long before = 0;
    if (!validate_limit_or_reply(req, &limit, res) ||
        !query_positive_or_reply(req, "before_id", &before, res) ||
        !cursor_or_reply(req, CURSOR_MESSAGES, &before, res))
        return res->status;
    struct chat_conversation c;
    struct chat_message_list list = {0};
    enum status st = STATUS_OK;
    if (conversation_or_reply(req, conn, &c, res))
        st = db_chat_messages_list(conn, c.id, before, limit + 1, &list);
    chat_conversation_clear(&c);
    if (res->status)
        return res->status;
    if (st != STATUS_OK)
        return response_status(res, st);
    int shown = list.count > limit ? limit : list.count;
    json_t *items = json_array();
    bool whole = items != NULL;
    for (int i = 0; whole && i < shown; i++)
        whole = json_array_append_new(items, chat_message_to_json(&list.items[i])) == 0;
    json_t *page = whole ? cursor_page(items, CURSOR_MESSAGES,
                                       list.count > limit ? &list.items[shown - 1].id : NULL)
                         : NULL;
    if (!whole)
        json_decref(items);
    chat_message_list_free(&list);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

int chat_messages_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, chat_messages_list_on);
}

/* GET /api/v1/conversations/{id}/messages/{message_id} — its client, admin.
 * 200 the message (where a new message's Location points); 404. */
int chat_message_get(const struct request *req, struct response *res, struct app *app)
{
    long long message_id;
    if (!request_param_id(req, 1, &message_id))
        return response_problem(res, 404, "not_found", NULL, "no such message");
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct chat_conversation c;
    struct chat_message_list list = {0};
    enum status st = STATUS_OK;
    if (conversation_or_reply(req, conn, &c, res))
        st = db_chat_messages_by_ids(conn, &message_id, 1, &list);
    db_pool_release(app->pool, conn);
    if (!res->status && st != STATUS_OK)
        response_status(res, st);
    else if (!res->status && (list.count != 1 || list.items[0].conversation_id != c.id))
        response_problem(res, 404, "not_found", NULL, "no such message");
    else if (!res->status) {
        json_t *body = chat_message_to_json(&list.items[0]);
        if (body)
            response_json(res, 200, body);
        else
            response_status(res, STATUS_INTERNAL);
    }
    chat_conversation_clear(&c);
    chat_message_list_free(&list);
    return res->status;
}

/* POST /api/v1/conversations/{id}/messages — its client, admin — {"text"}
 * → 201 the message, Location. Stored (and committed) before it is relayed
 * to live sessions. 422 text not 1–4000 characters; 404; 429 rate_limited
 * with Retry-After when the client sent CHAT_RATE_MAX in the last
 * CHAT_RATE_WINDOW_S (REST and WebSocket together, on every instance). */
int chat_messages_post(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"text", NULL};
    const char *text;
    long long id;
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !validate_string_or_reply(req->body, "text", true, 4 * CHAT_TEXT_MAX_CHARS, &text, res))
        return res->status;
    const char *why =
        chat_text_problem(text, json_string_length(json_object_get(req->body, "text")));
    if (why)
        return response_problem(res, 422, "invalid_field", "text", "%s", why);
    if (!request_param_id(req, 0, &id))
        return not_found(res);

    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    const struct chat_post in = {
        .conversation_id = id,
        .owner_scope = access_owner_scope(&req->caller),
        .sender_id = req->caller.user_id,
        .sender_role = req->caller.role,
        .text = text,
    };
    struct chat_message m;
    int retry_after = 0;
    enum status st = db_chat_post(conn, &in, &m, &retry_after);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return not_found(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    if (retry_after > 0) {
        char seconds[24];
        snprintf(seconds, sizeof seconds, "%d", retry_after);
        response_problem(res, 429, "rate_limited", NULL,
                         "at most %d messages a minute; retry in %d seconds", CHAT_RATE_MAX,
                         retry_after);
        response_header(res, "Retry-After", seconds);
        return 429;
    }
    char location[96];
    snprintf(location, sizeof location, "/api/v1/conversations/%lld/messages/%lld", id, m.id);
    json_t *body = chat_message_to_json(&m);
    chat_message_clear(&m);
    if (!body)
        return response_status(res, STATUS_INTERNAL);
    response_header(res, "Location", location);
    return response_json(res, 201, body);
}

/* POST /api/v1/conversations/{id}/read — its client, admin — {"up_to_id"}
 * → 204: the other side's messages up to that id are read (read_at set by
 * the first reader of the caller's side; the other side is told only when
 * something was newly read). 422; 404. */
int chat_read_post(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"up_to_id", NULL};
    long long up_to = 0, id;
    bool present, is_null;
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !validate_id_or_reply(req->body, "up_to_id", false, &up_to, &present, &is_null, res))
        return res->status;
    if (!present)
        return response_problem(res, 422, "missing_field", "up_to_id", "up_to_id is required");
    if (!request_param_id(req, 0, &id))
        return not_found(res);
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    const struct chat_read in = {
        .conversation_id = id,
        .owner_scope = access_owner_scope(&req->caller),
        .reader_id = req->caller.user_id,
        .reader_side = req->caller.role,
        .up_to_id = up_to,
    };
    struct chat_read_result out;
    enum status st = db_chat_mark_read(conn, &in, &out);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return not_found(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    return response_json(res, 204, NULL);
}
