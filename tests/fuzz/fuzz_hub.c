/* fuzz_hub: the WebSocket hub's inbound messages (live/protocol.c and what
 * each type's handler calls), driven through hub.h as the transport drives
 * it, with a fake transport and a fake store (as tests/unit/hub_fixture.h,
 * without cmocka), one fresh hub per input and a clock of its own.
 *
 * Input: lines. Each line is one text message, delivered to two sessions:
 * slot 0, opened unauthenticated (it may authenticate itself), and slot 1,
 * authenticated as user 1 beforehand. A line starting with '!' is instead a
 * NOTIFY payload handed to the hub as the listener would (alerts, usage,
 * changed devices and users). In a message that is a JSON object, an integer
 * "type" in range is replaced by that row's name in the inbound table, so
 * every inbound type, present and future, is reachable from the corpus.
 * Tokens the fake store accepts are "USER_ID:ROLE:EXP" (hub_fixture.h's),
 * with a user id of 1 or more, as the database's are; device tokens
 * (device_token) are "device:ID", and such a session is a device's.
 *
 * Properties (abort on violation):
 *  - everything sent is a JSON object with a string type the session's kind
 *    may receive, and nothing is sent after the hub closed a session;
 *  - before auth, anything but an auth with a token (or device token) the
 *    store accepts closes the session with 4401 (and nothing is sent);
 *  - an authenticated session answers what is not a JSON object with a
 *    string type with a "malformed" error, a type it may not send with an
 *    "unknown_type" error, and stays open;
 *  - no crash, leak or undefined behaviour, whatever the sequence.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../db/listener.h"
#include "../../live/hub_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW        1700000000.0
#define STEP_S     0.5 /* between messages: well under the flood limit */
#define MAX_LINES  64
#define MAX_ALERTS 16

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_hub: %s\n", what);
        abort();
    }
}

/* ---- fake transport -------------------------------------------------------- */

struct conn {
    struct hub_session *s;
    int close_code;
    int nsent;
    char last_type[32];
    char last_code[32];
};

static bool fake_send(void *c, const char *text, size_t len)
{
    struct conn *conn = c;
    check(conn->close_code == 0, "sent after the hub closed the session");
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    check(json_is_object(msg) && type, "sent something that is not an object with a type");
    bool known = false;
    for (int t = 0; t < OUT_TYPES; t++)
        if (!strcmp(type, protocol_out_name(t))) {
            known = true;
            check(protocol_may_receive(conn->s->kind, t), "sent a type the kind may not get");
        }
    check(known, "sent a type the outbound table does not have");
    snprintf(conn->last_type, sizeof conn->last_type, "%s", type);
    const char *code = json_string_value(json_object_get(msg, "code"));
    snprintf(conn->last_code, sizeof conn->last_code, "%s", code ? code : "");
    conn->nsent++;
    json_decref(msg);
    return true;
}

static size_t fake_queued(void *c)
{
    (void)c;
    return 0;
}

static void fake_close(void *c, int code, const char *reason)
{
    struct conn *conn = c;
    check(conn->close_code == 0, "closed twice");
    check(code > 0 && reason != NULL, "a close without code or reason");
    conn->close_code = code;
}

static void fake_wake(void *ctx)
{
    (void)ctx;
}

/* ---- fake store ------------------------------------------------------------ */

static long long owner_of(long long device_id)
{
    return device_id / 10;
}

static enum status fake_authenticate(void *ctx, const char *token, struct caller *out)
{
    (void)ctx;
    long long id, exp;
    char role[16];
    /* Ids are the database's, from 1 up (the hub's maps take no 0 key). */
    if (sscanf(token, "%lld:%15[a-z]:%lld", &id, role, &exp) != 3 || id < 1)
        return STATUS_UNAUTHORIZED;
    *out = (struct caller){
        .kind = CALLER_USER, .user_id = id, .role = role_parse(role), .token_exp = exp};
    return STATUS_OK;
}

/* Device tokens are "device:ID"; a device has no commands queued. */
static enum status fake_authenticate_device(void *ctx, const char *token, struct caller *out)
{
    (void)ctx;
    long long id;
    if (sscanf(token, "device:%lld", &id) != 1 || id < 1)
        return STATUS_UNAUTHORIZED;
    *out = (struct caller){.kind = CALLER_DEVICE, .device_id = id};
    return STATUS_OK;
}

static enum status fake_commands_live_muted(void *ctx, const long long *ids, int n,
                                            long long **users, int *count)
{
    (void)ctx;
    (void)ids;
    (void)n;
    *users = NULL;
    *count = 0;
    return STATUS_OK;
}

static enum status fake_commands_by_ids(void *ctx, const long long *ids, int n,
                                        struct command_list *out)
{
    (void)ctx;
    (void)ids;
    (void)n;
    *out = (struct command_list){0};
    return STATUS_OK;
}

static enum status fake_commands_claim(void *ctx, long long device_id, struct command_list *out)
{
    (void)ctx;
    (void)device_id;
    *out = (struct command_list){0};
    return STATUS_OK;
}

/* Every answer is to a command that is not the device's. */
static enum status fake_commands_answer(void *ctx, long long device_id, long long id,
                                        const struct command_answer *answer, struct command *out,
                                        bool *changed)
{
    (void)ctx;
    (void)device_id;
    (void)id;
    (void)answer;
    *out = (struct command){0};
    *changed = false;
    return STATUS_NOT_FOUND;
}

static struct alert alert_for(long long id)
{
    struct alert a = {.id = id,
                      .device_id = id % 50 + 1,
                      .owner_id = owner_of(id % 50 + 1),
                      .hour_start = 3600000000LL * (id % 100000),
                      .hour_kwh = 2,
                      .max_hourly_kwh = 1,
                      .created_at = 1700000000000000LL};
    snprintf(a.device_name, sizeof a.device_name, "meter \"%lld\"", id);
    return a;
}

static enum status fake_alerts_since(void *ctx, long long owner_id, long long since_id, int limit,
                                     struct alert_list *out)
{
    (void)ctx;
    out->items = calloc(MAX_ALERTS, sizeof *out->items);
    out->count = 0;
    if (!out->items)
        return STATUS_INTERNAL;
    for (long long id = since_id + 1; id <= 40 && out->count < limit && out->count < MAX_ALERTS;
         id++)
        if (alert_for(id).owner_id == owner_id)
            out->items[out->count++] = alert_for(id);
    return STATUS_OK;
}

static enum status fake_alerts_by_ids(void *ctx, const long long *ids, int n,
                                      struct alert_list *out)
{
    (void)ctx;
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    out->count = 0;
    if (!out->items)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++)
        if (ids[i] % 7 != 0) /* some ids are gone by the time they are read */
            out->items[out->count++] = alert_for(ids[i]);
    return STATUS_OK;
}

static enum status fake_owners(void *ctx, const long long *ids, int n, struct device_owner *out)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        out[i] = (struct device_owner){
            .device_id = ids[i], .exists = ids[i] != 99, .owner_id = owner_of(ids[i])};
    return STATUS_OK;
}

static enum status fake_usage(void *ctx, const long long *ids, int n, struct device_usage **out,
                              int *count)
{
    (void)ctx;
    *out = calloc((size_t)n + 1, sizeof **out);
    *count = 0;
    if (!*out)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++)
        (*out)[(*count)++] = (struct device_usage){.device_id = ids[i],
                                                   .owner_id = owner_of(ids[i]),
                                                   .last_ts = 1700000000000000LL,
                                                   .hour_start = 1699999200000000LL,
                                                   .hour_kwh = 0.5};
    return STATUS_OK;
}

/* Users whose id is a multiple of 13 have been deleted. */
static enum status fake_user_roles(void *ctx, const long long *ids, int n, enum role *out)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        out[i] = ids[i] % 13 == 0 ? ROLE_NONE : ROLE_CLIENT;
    return STATUS_OK;
}

/* Chat: conversation c belongs to client c / 100; every 7th is missing. */
static bool chat_visible(long long conversation_id, long long owner_scope)
{
    return conversation_id % 7 != 0 && (!owner_scope || owner_scope == conversation_id / 100);
}

static enum status fake_chat_post(void *ctx, const struct chat_post *in, struct chat_message *out,
                                  int *retry_after_s)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    *retry_after_s = in->conversation_id % 5 == 0 ? 3 : 0; /* some clients sent too many */
    if (!chat_visible(in->conversation_id, in->owner_scope))
        return STATUS_NOT_FOUND;
    if (*retry_after_s)
        return STATUS_OK;
    *out = (struct chat_message){.id = in->conversation_id + 1,
                                 .conversation_id = in->conversation_id,
                                 .sender_id = in->sender_id,
                                 .sender_role = in->sender_role,
                                 .text = strdup(in->text),
                                 .created_at = 1700000000000000LL,
                                 .client_id = in->conversation_id / 100};
    return out->text ? STATUS_OK : STATUS_INTERNAL;
}

static enum status fake_chat_read(void *ctx, const struct chat_read *in,
                                  struct chat_read_result *out)
{
    (void)ctx;
    *out = (struct chat_read_result){.client_id = in->conversation_id / 100,
                                     .newly_read = 1,
                                     .up_to_id = in->up_to_id,
                                     .read_at = 1700000000000000LL};
    return chat_visible(in->conversation_id, in->owner_scope) ? STATUS_OK : STATUS_NOT_FOUND;
}

static enum status fake_chat_typing(void *ctx, const struct chat_typing *in, int n,
                                    enum status *out)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        out[i] =
            chat_visible(in[i].conversation_id, in[i].owner_scope) ? STATUS_OK : STATUS_NOT_FOUND;
    return n % 11 == 10 ? STATUS_UNAVAILABLE : STATUS_OK; /* now and then the database is away */
}

static enum status fake_chat_messages(void *ctx, const long long *ids, int n,
                                      struct chat_message_list *out)
{
    (void)ctx;
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    out->count = 0;
    if (!out->items)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++) {
        if (ids[i] % 7 == 0)
            continue; /* deleted with its user since */
        struct chat_message *m = &out->items[out->count++];
        *m = (struct chat_message){.id = ids[i],
                                   .conversation_id = ids[i] % 1000 + 1,
                                   .sender_id = ids[i] % 3 + 1,
                                   .sender_role = ids[i] % 2 ? ROLE_ADMIN : ROLE_CLIENT,
                                   .text = strdup("hello \"there\""),
                                   .created_at = 1700000000000000LL,
                                   .client_id = (ids[i] % 1000 + 1) / 100};
        if (!m->text)
            return STATUS_INTERNAL;
    }
    return STATUS_OK;
}

static enum status fake_user_names(void *ctx, const long long *ids, int n,
                                   char (*out)[USER_NAME_MAX * 4 + 1])
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        snprintf(out[i], sizeof out[i], "User <%lld>", ids[i]);
    return STATUS_OK;
}

/* ---- driving --------------------------------------------------------------- */

struct run {
    struct hub *hub;
    struct conn conns[2];
    double now;
};

static void settle(struct run *r)
{
    do
        hub_drain(r->hub, r->now);
    while (hub_work_once(r->hub));
}

static void deliver(struct run *r, int i, const char *text, size_t len)
{
    hub_session_message(r->hub, r->conns[i].s, text, len, r->now);
    settle(r);
}

/* Slot i gets a fresh session: unauthenticated (0) or ready as user 1 (1). */
static void open_slot(struct run *r, int i)
{
    struct conn *c = &r->conns[i];
    memset(c, 0, sizeof *c);
    struct hub_refusal refusal;
    c->s = hub_session_open(r->hub, c, "192.0.2.1", r->now, &refusal);
    check(c->s != NULL, "the hub refused a session under its caps");
    if (i == 1) {
        static const char auth[] = "{\"type\":\"auth\",\"token\":\"1:client:1800000000\"}";
        deliver(r, 1, auth, sizeof auth - 1);
        check(c->s->kind == SESSION_KIND_USER && c->close_code == 0, "user 1 could not auth");
    }
}

/* The transport reports a session the hub closed as gone; the slot reopens. */
static void reap(struct run *r)
{
    for (int i = 0; i < 2; i++)
        if (r->conns[i].close_code) {
            hub_session_closed(r->hub, r->conns[i].s, HUB_CLOSED_NONE);
            open_slot(r, i);
        }
}

/* Puts the inbound table's name for an integer type in range, else NULL. */
static char *with_table_type(const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *type = json_object_get(msg, "type");
    size_t n;
    const struct inbound_route *table = protocol_inbound_table(&n);
    char *out = NULL;
    if (json_is_integer(type) && json_integer_value(type) >= 0 &&
        (size_t)json_integer_value(type) < n) {
        json_object_set_new(msg, "type", json_string(table[json_integer_value(type)].type));
        out = json_dumps(msg, JSON_COMPACT);
    }
    json_decref(msg);
    return out;
}

static void message(struct run *r, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_is_object(msg) ? json_string_value(json_object_get(msg, "type")) : NULL;
    for (int i = 0; i < 2; i++) {
        struct conn *c = &r->conns[i];
        enum session_kind kind = c->s->kind;
        bool ready = c->s->state == SESSION_READY;
        const struct inbound_route *route = type ? protocol_route(type, kind) : NULL;
        int nsent = c->nsent;
        deliver(r, i, text, len);
        if (kind == SESSION_KIND_UNAUTH && c->close_code) {
            check(c->nsent == nsent, "sent something before auth");
            check(c->close_code == HUB_CLOSE_CODE_UNAUTHORIZED || (route && !strcmp(type, "auth")),
                  "a refusal before auth that is not 4401");
        } else if (kind == SESSION_KIND_UNAUTH) {
            check((c->s->kind == SESSION_KIND_USER || c->s->kind == SESSION_KIND_DEVICE) &&
                      c->nsent > nsent,
                  "an unauthenticated session neither closed nor said ready");
        } else if (ready && !route) {
            check(c->close_code == 0, "an authenticated session closed for a bad message");
            check(c->nsent == nsent + 1 && !strcmp(c->last_type, "error"),
                  "a bad message without an error");
            check(!strcmp(c->last_code, type ? "unknown_type" : "malformed"),
                  "the wrong error for a bad message");
        }
    }
    json_decref(msg);
}

static void notify(struct run *r, const char *text, size_t len)
{
    char *payload = malloc(len + 1);
    if (!payload)
        abort();
    memcpy(payload, text, len);
    payload[len] = '\0';
    struct listener_events ev;
    if (listener_parse_payload(payload, &ev))
        hub_post_events(r->hub, &ev);
    free(payload);
    settle(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) /* the transport closes larger messages itself (1009) */
        return 0;
    struct hub_store store = {.authenticate = fake_authenticate,
                              .alerts_since = fake_alerts_since,
                              .alerts_by_ids = fake_alerts_by_ids,
                              .owners = fake_owners,
                              .usage = fake_usage,
                              .user_roles = fake_user_roles,
                              .authenticate_device = fake_authenticate_device,
                              .commands_by_ids = fake_commands_by_ids,
                              .commands_live_muted = fake_commands_live_muted,
                              .commands_claim = fake_commands_claim,
                              .commands_answer = fake_commands_answer,
                              .chat_post = fake_chat_post,
                              .chat_read = fake_chat_read,
                              .chat_typing = fake_chat_typing,
                              .chat_messages = fake_chat_messages,
                              .user_names = fake_user_names};
    struct run r = {.now = NOW};
    r.hub = hub_create(&(struct hub_limits){.max_sessions = 3,
                                            .max_sessions_per_user = 2,
                                            .max_unauth_per_addr = 2},
                       &store);
    check(r.hub != NULL, "hub_create");
    hub_set_transport(r.hub, &(struct hub_transport){
                                 .send = fake_send,
                                 .queued = fake_queued,
                                 .close = fake_close,
                                 .wake = fake_wake,
                             });
    open_slot(&r, 0);
    open_slot(&r, 1);

    const char *p = (const char *)data, *end = p + size;
    for (int lines = 0; p <= end && lines < MAX_LINES; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        /* Exactly len bytes, no terminator: the hub must not read past it. */
        char *text = malloc(len ? len : 1);
        if (!text)
            abort();
        memcpy(text, p, len);
        if (len && text[0] == '!') {
            notify(&r, text + 1, len - 1);
        } else {
            char *typed = with_table_type(text, len);
            if (typed)
                message(&r, typed, strlen(typed));
            else
                message(&r, text, len);
            free(typed);
        }
        free(text);
        r.now += STEP_S;
        hub_tick(r.hub, r.now);
        settle(&r);
        reap(&r);
        if (!nl)
            break;
        p = nl + 1;
    }
    for (int i = 0; i < 2; i++)
        hub_session_closed(r.hub, r.conns[i].s, HUB_CLOSED_PEER);
    hub_free(r.hub);
    return 0;
}
