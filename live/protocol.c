/* protocol: the hub's wire format, as two tables.
 *
 * Inbound, INBOUND: {type, the kinds of session that may send it, the
 * function that parses the message into its typed form and hands it to the
 * module that acts on it}. protocol_dispatch does what every message needs
 * once: JSON parsing (duplicate members refused), the type lookup, the kind
 * check, and the answer to a refused message, which is the same for a type
 * the session's kind may not send as for an unknown one (KIND_TABLE).
 *
 * Outbound, OUTBOUND: {the "type" member, the kinds of session that may get
 * it, the function that adds the typed body's members}.
 *
 * The only module of live/ that reads or writes JSON.
 *
 * Adding a message type:
 *  - inbound (chat.send, command_result): a function here that parses the
 *    message into its typed form and calls the module that acts on it
 *    (chat_send in a live/chat.c, say), and its row in INBOUND with the
 *    kinds that may send it. Its test: a case in test_hub_protocol.c's
 *    INBOUND_CASES (the test fails on a row without one).
 *  - outbound (command, chat.message): an OUT_ value, a typed body and its
 *    union member in hub_internal.h; a render function and its row in
 *    OUTBOUND with the kinds that may get it; a case in the render test.
 *  - a session kind (device): SESSION_KIND_ and KIND_BIT_ in
 *    hub_internal.h, its row in KIND_TABLE, its bit in the rows of what it
 *    may send and get; its auth sets s->kind.
 */
#include <stdlib.h>
#include <string.h>

#include "../api/command_input.h"
#include "../api/chat_text.h"
#include "../api/resources.h"
#include "../base/timefmt.h"
#include "hub_internal.h"

/* ======================================================================== */
/* Outbound                                                                  */
/* ======================================================================== */

/* Each adds the body's members to o, which holds "type" already. */
typedef bool (*render_fn)(const struct out_message *m, json_t *o);

static bool render_ready(const struct out_message *m, json_t *o)
{
    if (m->u.ready.device_id)
        return !json_object_set_new(o, "device_id", json_integer(m->u.ready.device_id));
    return !json_object_set_new(o, "user_id", json_integer(m->u.ready.user_id));
}

static bool render_alert(const struct out_message *m, json_t *o)
{
    json_t *alert = alert_to_json(m->u.alert.alert);
    return alert && !json_object_set_new(o, "alert", alert);
}

static bool render_usage(const struct out_message *m, json_t *o)
{
    const struct device_usage *u = m->u.usage.usage;
    char hour[TIMEFMT_MAX], last[TIMEFMT_MAX];
    timefmt_format(u->hour_start, hour);
    timefmt_format(u->last_ts, last);
    return !json_object_set_new(o, "device_id", json_integer(u->device_id)) &&
           !json_object_set_new(o, "hour_start", json_string(hour)) &&
           !json_object_set_new(o, "hour_kwh", json_real(u->hour_kwh)) &&
           !json_object_set_new(o, "last_ts", json_string(last));
}

static bool render_error(const struct out_message *m, json_t *o)
{
    const struct out_error *e = &m->u.error;
    bool ok = !json_object_set_new(o, "code", json_string(e->code)) &&
              !json_object_set_new(o, "message", json_string(e->message));
    if (ok && e->field)
        ok = !json_object_set_new(o, "field", json_string(e->field));
    if (ok && e->device_id)
        ok = !json_object_set_new(o, "device_id", json_integer(e->device_id));
    if (ok && e->conversation_id)
        ok = !json_object_set_new(o, "conversation_id", json_integer(e->conversation_id));
    if (ok && e->client_msg_id)
        ok = !json_object_set_new(o, "client_msg_id",
                                  json_loads(e->client_msg_id, JSON_DECODE_ANY, NULL));
    if (ok && e->retry_after)
        ok = !json_object_set_new(o, "retry_after", json_integer(e->retry_after));
    return ok;
}

static bool render_command(const struct out_message *m, json_t *o)
{
    json_t *command = command_to_json(m->u.command.command);
    return command && !json_object_set_new(o, "command", command);
}

static bool render_command_ack(const struct out_message *m, json_t *o)
{
    return !json_object_set_new(o, "id", json_integer(m->u.ack.id)) &&
           !json_object_set_new(o, "command_status",
                                json_string(command_status_name(m->u.ack.status)));
}

static bool render_chat_sent(const struct out_message *m, json_t *o)
{
    const struct out_chat_sent *c = &m->u.chat_sent;
    json_t *id =
        c->client_msg_id ? json_loads(c->client_msg_id, JSON_DECODE_ANY, NULL) : json_null();
    json_t *message = chat_message_to_json(c->message);
    bool ok = id && message;
    ok = ok && !json_object_set(o, "client_msg_id", id) && !json_object_set(o, "message", message);
    json_decref(id);
    json_decref(message);
    return ok;
}

static bool render_chat_message(const struct out_message *m, json_t *o)
{
    json_t *message = chat_message_to_json(m->u.chat_message.message);
    return message && !json_object_set_new(o, "message", message);
}

static bool render_chat_typing(const struct out_message *m, json_t *o)
{
    const struct out_chat_typing *t = &m->u.chat_typing;
    return !json_object_set_new(o, "conversation_id", json_integer(t->conversation_id)) &&
           !json_object_set_new(o, "user_id", json_integer(t->user_id)) &&
           !json_object_set_new(o, "name", json_string(t->name));
}

static bool render_chat_read(const struct out_message *m, json_t *o)
{
    const struct out_chat_read *r = &m->u.chat_read;
    return !json_object_set_new(o, "conversation_id", json_integer(r->conversation_id)) &&
           !json_object_set_new(o, "reader_id", json_integer(r->reader_id)) &&
           !json_object_set_new(o, "up_to_id", json_integer(r->up_to_id)) &&
           !json_object_set_new(o, "read_at", resource_time_or_null(r->read_at));
}

/* The stored message's members, but its "type" (the row's). */
static bool render_notice(const struct out_message *m, json_t *o)
{
    json_t *doc = json_loads(m->u.notice.json, JSON_REJECT_DUPLICATES, NULL);
    const char *key;
    json_t *value;
    bool ok = json_is_object(doc);
    json_object_foreach(doc, key, value)
    {
        if (ok && strcmp(key, "type") != 0)
            ok = json_object_set(o, key, value) == 0;
    }
    json_decref(doc);
    return ok;
}

static const struct outbound_row {
    const char *type;
    unsigned kinds; /* KIND_BIT_*: who may be sent it */
    render_fn render;
} OUTBOUND[OUT_TYPES] = {
    [OUT_READY] = {"ready", KIND_BIT_USER | KIND_BIT_DEVICE, render_ready},
    [OUT_ALERT] = {"alert", KIND_BIT_USER, render_alert},
    [OUT_USAGE] = {"usage", KIND_BIT_USER, render_usage},
    [OUT_ERROR] = {"error", KIND_BIT_USER | KIND_BIT_DEVICE, render_error},
    [OUT_COMMAND] = {"command", KIND_BIT_USER | KIND_BIT_DEVICE, render_command},
    [OUT_COMMAND_ACK] = {"command_ack", KIND_BIT_DEVICE, render_command_ack},
    [OUT_CHAT_SENT] = {"chat.sent", KIND_BIT_USER, render_chat_sent},
    [OUT_CHAT_MESSAGE] = {"chat.message", KIND_BIT_USER, render_chat_message},
    [OUT_CHAT_TYPING] = {"chat.typing", KIND_BIT_USER, render_chat_typing},
    [OUT_CHAT_READ] = {"chat.read", KIND_BIT_USER, render_chat_read},
    [OUT_FORECAST] = {"forecast", KIND_BIT_USER, render_notice},
    [OUT_DEVICE_STATUS] = {"device_status", KIND_BIT_USER, render_notice},
};

const char *protocol_out_name(enum out_type type)
{
    return OUTBOUND[type].type;
}

bool protocol_may_receive(enum session_kind kind, enum out_type type)
{
    return OUTBOUND[type].kinds & (1u << kind);
}

char *protocol_render(const struct out_message *m)
{
    const struct outbound_row *row = &OUTBOUND[m->type];
    json_t *o = json_object();
    bool ok = o && !json_object_set_new(o, "type", json_string(row->type)) && row->render(m, o);
    char *text = ok ? json_dumps(o, JSON_DUMP_FLAGS) : NULL;
    json_decref(o);
    return text;
}

bool protocol_send_text(struct hub *h, struct hub_session *s, enum out_type type, const char *text)
{
    if (!text || s->state == SESSION_CLOSING || !protocol_may_receive(s->kind, type)) {
        atomic_fetch_add(&h->counters.messages_dropped, 1);
        return false;
    }
    /* On false the transport drops the session itself (slow consumer). */
    return h->transport.send(s->conn, text, strlen(text));
}

bool protocol_send(struct hub *h, struct hub_session *s, const struct out_message *m)
{
    char *text = protocol_render(m);
    bool ok = protocol_send_text(h, s, m->type, text);
    free(text);
    return ok;
}

void protocol_send_error(struct hub *h, struct hub_session *s, const char *code,
                         const char *message, const char *field, long long device_id)
{
    struct out_message m = {
        .type = OUT_ERROR,
        .u.error = {.code = code, .message = message, .field = field, .device_id = device_id}};
    protocol_send(h, s, &m);
}

/* ======================================================================== */
/* Inbound: one parse+handle function per type                               */
/* ======================================================================== */

/* A positive integer member, or false. */
static bool get_id(json_t *msg, const char *name, long long *out)
{
    json_t *v = json_object_get(msg, name);
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* {"type":"auth","device_token":"..."}: a device's first message; its
 * session then gets commands and nothing else. */
static void in_auth_device(struct hub *h, struct hub_session *s, json_t *msg)
{
    const char *token = json_string_value(json_object_get(msg, "device_token"));
    /* A user's token and a device's in one auth: which is it? Neither. */
    if (s->kind != SESSION_KIND_UNAUTH || !token || !token[0] || strlen(token) > HUB_TOKEN_MAX ||
        json_object_get(msg, "token")) {
        session_auth_reject(h, s);
        return;
    }
    session_auth_begin_device(h, s, token);
}

/* {"type":"auth","token":"...","since_alert_id":N?}: the first message, or a
 * fresh token later that keeps the session past the old token's expiry. */
static void in_auth(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    if (json_object_get(msg, "device_token")) {
        in_auth_device(h, s, msg);
        return;
    }
    const char *token = json_string_value(json_object_get(msg, "token"));
    json_t *since = json_object_get(msg, "since_alert_id");
    bool valid = token && token[0] && strlen(token) <= HUB_TOKEN_MAX &&
                 (!since || json_is_null(since) ||
                  (json_is_integer(since) && json_integer_value(since) >= 0));
    if (!valid) {
        session_auth_reject(h, s);
        return;
    }
    struct in_auth auth = {.token = token, .has_since = json_is_integer(since)};
    if (auth.has_since)
        auth.since_alert_id = json_integer_value(since);
    session_auth_begin(h, s, &auth);
}

/* {"type":"subscribe","device_id":N}: usage of a device the caller may see. */
static void in_subscribe(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long device_id;
    if (!get_id(msg, "device_id", &device_id)) {
        protocol_send_error(h, s, "invalid_field", "device_id must be a positive integer",
                            "device_id", 0);
        return;
    }
    usage_subscribe(h, s, device_id);
}

/* {"type":"unsubscribe","device_id":N} */
static void in_unsubscribe(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long device_id;
    if (!get_id(msg, "device_id", &device_id)) {
        protocol_send_error(h, s, "invalid_field", "device_id must be a positive integer",
                            "device_id", 0);
        return;
    }
    usage_unsubscribe(h, s, device_id);
}

/* {"type":"command_result","id":N,"status","result"?,"error"?}: a device's
 * answer, checked as the REST answer is (api/command_input.h). */
static void in_command_result(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long id;
    if (!get_id(msg, "id", &id)) {
        protocol_send_error(h, s, "invalid_field", "id must be a command id", "id", 0);
        return;
    }
    static const char *const ENVELOPE[] = {"type", "id", NULL};
    struct command_answer answer;
    char *result;
    struct command_fault f;
    if (!command_answer_read(msg, ENVELOPE, &answer, &result, &f)) {
        protocol_send_error(h, s, "invalid_field", f.detail, f.field, 0);
        return;
    }
    commands_answer_begin(h, s, id, &answer, result);
}

/* A chat message's conversation_id, or false after answering invalid_field. */
static bool chat_conversation_id(struct hub *h, struct hub_session *s, json_t *msg, long long *out)
{
    if (get_id(msg, "conversation_id", out))
        return true;
    protocol_send_error(h, s, "invalid_field", "conversation_id must be a positive integer",
                        "conversation_id", 0);
    return false;
}

/* client_msg_id: absent or null (NULL), a string of at most
 * HUB_CLIENT_MSG_ID_MAX bytes or an integer, kept as JSON text (caller
 * frees) to be echoed as sent. False when it is none of these. */
static bool chat_client_msg_id(json_t *msg, char **out)
{
    json_t *v = json_object_get(msg, "client_msg_id");
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) &&
        !(json_is_string(v) && json_string_length(v) <= HUB_CLIENT_MSG_ID_MAX))
        return false;
    *out = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return *out != NULL;
}

/* {"type":"chat.send","conversation_id":N,"text":"...","client_msg_id":X?}:
 * stored, then answered chat.sent with the message. */
static void in_chat_send(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    struct in_chat_send m;
    char *client_msg_id;
    if (!chat_client_msg_id(msg, &client_msg_id)) {
        protocol_send_error(h, s, "invalid_field",
                            "client_msg_id must be a string of at most 128 bytes or an integer",
                            "client_msg_id", 0);
        return;
    }
    json_t *text = json_object_get(msg, "text");
    const char *why = json_is_string(text)
                          ? chat_text_problem(json_string_value(text), json_string_length(text))
                          : "text must be a string";
    struct out_message error = {.type = OUT_ERROR,
                                .u.error = {.code = "invalid_field",
                                            .message = why,
                                            .field = "text",
                                            .client_msg_id = client_msg_id}};
    if (!get_id(msg, "conversation_id", &m.conversation_id)) {
        error.u.error.message = "conversation_id must be a positive integer";
        error.u.error.field = "conversation_id";
        protocol_send(h, s, &error);
    } else if (why) {
        error.u.error.conversation_id = m.conversation_id;
        protocol_send(h, s, &error);
    } else {
        m.text = json_string_value(text);
        m.client_msg_id = client_msg_id;
        chat_send(h, s, &m);
    }
    free(client_msg_id);
}

/* {"type":"chat.typing","conversation_id":N}: passed on to the other side. */
static void in_chat_typing(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    long long conversation_id;
    if (chat_conversation_id(h, s, msg, &conversation_id))
        chat_typing(h, s, conversation_id, now);
}

/* {"type":"chat.read","conversation_id":N,"up_to_id":M}: the other side's
 * messages up to M are read. */
static void in_chat_read(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long conversation_id, up_to_id;
    if (!chat_conversation_id(h, s, msg, &conversation_id))
        return;
    if (!get_id(msg, "up_to_id", &up_to_id)) {
        protocol_send_error(h, s, "invalid_field", "up_to_id must be a positive integer",
                            "up_to_id", 0);
        return;
    }
    chat_read(h, s, conversation_id, up_to_id);
}

static const struct inbound_route INBOUND[] = {
    {"auth", KIND_BIT_UNAUTH | KIND_BIT_USER, in_auth},
    {"subscribe", KIND_BIT_USER, in_subscribe},
    {"unsubscribe", KIND_BIT_USER, in_unsubscribe},
    {"command_result", KIND_BIT_DEVICE, in_command_result},
    {"chat.send", KIND_BIT_USER, in_chat_send},     /* the support chat (live/chat.c) */
    {"chat.typing", KIND_BIT_USER, in_chat_typing}, /* " */
    {"chat.read", KIND_BIT_USER, in_chat_read},     /* " */
};

const struct inbound_route *protocol_inbound_table(size_t *n)
{
    *n = sizeof INBOUND / sizeof *INBOUND;
    return INBOUND;
}

const struct inbound_route *protocol_route(const char *type, enum session_kind kind)
{
    for (size_t i = 0; type && i < sizeof INBOUND / sizeof *INBOUND; i++)
        if (!strcmp(INBOUND[i].type, type))
            return INBOUND[i].kinds & (1u << kind) ? &INBOUND[i] : NULL;
    return NULL;
}

/* ======================================================================== */
/* Inbound: the dispatcher                                                   */
/* ======================================================================== */

enum refusal {
    REFUSED_MALFORMED, /* not a JSON object with a string type */
    REFUSED_UNKNOWN,   /* a type unknown, or not for this kind of session */
};

/* Before auth every refusal closes: nothing but a valid auth gets an answer. */
static void refuse_by_closing(struct hub *h, struct hub_session *s, enum refusal why)
{
    (void)why;
    registry_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "auth first");
}

/* An authenticated session keeps going: an error names what was wrong. */
static void refuse_with_error(struct hub *h, struct hub_session *s, enum refusal why)
{
    if (why == REFUSED_MALFORMED)
        protocol_send_error(h, s, "malformed", "a message is a JSON object with a string type",
                            "type", 0);
    else
        protocol_send_error(h, s, "unknown_type", "unknown message type", "type", 0);
}

/* What each kind of session is told when a message is refused. */
static const struct kind_row {
    void (*refuse)(struct hub *h, struct hub_session *s, enum refusal why);
} KIND_TABLE[SESSION_KINDS] = {
    [SESSION_KIND_UNAUTH] = {refuse_by_closing},
    [SESSION_KIND_USER] = {refuse_with_error},
    [SESSION_KIND_DEVICE] = {refuse_with_error},
};

void protocol_dispatch(struct hub *h, struct hub_session *s, const char *text, size_t len,
                       double now)
{
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const struct inbound_route *route = type ? protocol_route(type, s->kind) : NULL;
    if (!json_is_object(msg) || !type)
        KIND_TABLE[s->kind].refuse(h, s, REFUSED_MALFORMED);
    else if (!route)
        KIND_TABLE[s->kind].refuse(h, s, REFUSED_UNKNOWN);
    else
        route->handle(h, s, msg, now);
    json_decref(msg);
}

bool protocol_flood_allows(struct hub_session *s, double now)
{
    s->flood_tokens += (now - s->flood_at) * HUB_FLOOD_RATE;
    if (s->flood_tokens > HUB_FLOOD_BURST)
        s->flood_tokens = HUB_FLOOD_BURST;
    s->flood_at = now;
    if (s->flood_tokens < 1.0)
        return false;
    s->flood_tokens -= 1.0;
    return true;
}
