/* hub_fixture: the hub without threads or sockets, for the unit tests of
 * live/ (tests/unit/test_hub*.c; each includes this once).
 *
 * A fake transport records what each connection was sent and how it was
 * closed, a fake store answers from small tables, and the test drives the
 * worker (hub_work_once) and the transport thread (hub_drain, hub_tick) by
 * hand, with its own clock. The functions are static inline because each
 * test file uses only some of them.
 */
#ifndef WATTLINE_TEST_HUB_FIXTURE_H
#define WATTLINE_TEST_HUB_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../db/listener.h"
#include "../../live/hub_internal.h"

#define NOW 1700000000.0

/* ---- fake transport ------------------------------------------------------ */

#define MAX_SENT 64

struct fake_conn {
    json_t *sent[MAX_SENT];
    int nsent;
    int close_code;
    const char *close_reason; /* the hub's text: a string literal */
    size_t queued;            /* what transport.queued reports */
};

static inline bool fake_send(void *conn, const char *text, size_t len)
{
    struct fake_conn *c = conn;
    assert_int_equal(c->close_code, 0); /* nothing after a close */
    assert_true(c->nsent < MAX_SENT);
    json_t *msg = json_loadb(text, len, 0, NULL);
    assert_non_null(msg);
    c->sent[c->nsent++] = msg;
    return true;
}

static inline size_t fake_queued(void *conn)
{
    return ((struct fake_conn *)conn)->queued;
}

static inline void fake_close(void *conn, int code, const char *reason)
{
    struct fake_conn *c = conn;
    assert_int_equal(c->close_code, 0);
    c->close_code = code;
    c->close_reason = reason;
}

static inline void fake_wake(void *ctx)
{
    (void)ctx;
}

static inline void conn_reset(struct fake_conn *c)
{
    for (int i = 0; i < c->nsent; i++)
        json_decref(c->sent[i]);
    memset(c, 0, sizeof *c);
}

static inline const char *sent_type(const struct fake_conn *c, int i)
{
    return json_string_value(json_object_get(c->sent[i], "type"));
}

static inline int count_type(const struct fake_conn *c, const char *type)
{
    int n = 0;
    for (int i = 0; i < c->nsent; i++)
        n += !strcmp(sent_type(c, i), type);
    return n;
}

/* The alert ids sent to c, in order. */
static inline int alert_ids(const struct fake_conn *c, long long *out)
{
    int n = 0;
    for (int i = 0; i < c->nsent; i++)
        if (!strcmp(sent_type(c, i), "alert"))
            out[n++] =
                json_integer_value(json_object_get(json_object_get(c->sent[i], "alert"), "id"));
    return n;
}

/* ---- fake store -------------------------------------------------------- */

#define MAX_ALERTS 32

static struct alert alerts_table[MAX_ALERTS];
static int nalerts_table;
static int usage_reads; /* how many device usages were read */
static int auth_reads;  /* how many tokens were checked */
static int owner_reads; /* how many device owners were read */
static bool user_deleted[16];
static long long owner_override; /* when set, every device belongs to this user */

static inline long long owner_of(long long device_id)
{
    return owner_override ? owner_override : device_id / 10;
}

/* Tokens are "USER_ID:ROLE:EXP"; anything else is unauthorized. */
static inline enum status fake_authenticate(void *ctx, const char *token, struct caller *out)
{
    (void)ctx;
    auth_reads++;
    long long id, exp;
    char role[16];
    if (sscanf(token, "%lld:%15[a-z]:%lld", &id, role, &exp) != 3)
        return STATUS_UNAUTHORIZED;
    *out = (struct caller){
        .kind = CALLER_USER, .user_id = id, .role = role_parse(role), .token_exp = exp};
    return STATUS_OK;
}

static inline void add_alert(long long id, long long device_id, long long owner_id)
{
    alerts_table[nalerts_table++] = (struct alert){.id = id,
                                                   .device_id = device_id,
                                                   .owner_id = owner_id,
                                                   .hour_kwh = 2,
                                                   .max_hourly_kwh = 1,
                                                   .hour_start = 3600000000LL * id};
}

static inline enum status list_of(struct alert_list *out,
                                  bool (*keep)(const struct alert *, void *), void *arg, int limit)
{
    out->items = calloc(MAX_ALERTS, sizeof *out->items);
    out->count = 0;
    for (int i = 0; i < nalerts_table && out->count < limit; i++)
        if (keep(&alerts_table[i], arg))
            out->items[out->count++] = alerts_table[i];
    return STATUS_OK;
}

struct since_arg {
    long long owner, since;
};

static inline bool keep_since(const struct alert *a, void *arg)
{
    const struct since_arg *s = arg;
    return a->owner_id == s->owner && a->id > s->since;
}

static inline enum status fake_alerts_since(void *ctx, long long owner_id, long long since_id,
                                            int limit, struct alert_list *out)
{
    (void)ctx;
    struct since_arg arg = {owner_id, since_id};
    return list_of(out, keep_since, &arg, limit);
}

struct ids_arg {
    const long long *ids;
    int n;
};

static inline bool keep_ids(const struct alert *a, void *arg)
{
    const struct ids_arg *s = arg;
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == a->id)
            return true;
    return false;
}

static inline enum status fake_alerts_by_ids(void *ctx, const long long *ids, int n,
                                             struct alert_list *out)
{
    (void)ctx;
    struct ids_arg arg = {ids, n};
    return list_of(out, keep_ids, &arg, MAX_ALERTS);
}

/* Device d is owned by user d / 10 (device 11 -> user 1); 99 does not exist. */
static inline enum status fake_owners(void *ctx, const long long *ids, int n,
                                      struct device_owner *out)
{
    (void)ctx;
    owner_reads += n;
    for (int i = 0; i < n; i++)
        out[i] = (struct device_owner){
            .device_id = ids[i], .exists = ids[i] != 99, .owner_id = owner_of(ids[i])};
    return STATUS_OK;
}

static inline enum status fake_usage(void *ctx, const long long *ids, int n,
                                     struct device_usage **out, int *count)
{
    (void)ctx;
    *out = calloc((size_t)n, sizeof **out);
    for (int i = 0; i < n; i++)
        (*out)[i] = (struct device_usage){.device_id = ids[i],
                                          .owner_id = owner_of(ids[i]),
                                          .last_ts = 1700000000000000LL,
                                          .hour_start = 1699999200000000LL,
                                          .hour_kwh = 0.5};
    *count = n;
    usage_reads += n;
    return STATUS_OK;
}

static inline enum status fake_user_roles(void *ctx, const long long *ids, int n, enum role *out)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        out[i] = user_deleted[ids[i]] ? ROLE_NONE : ROLE_CLIENT;
    return STATUS_OK;
}

/* Device tokens are "device:ID"; commands live in a small table. */
static int claim_reads;     /* how many claims the worker ran */
static int answers_stored;  /* how many answers were recorded */
static long long queued_id; /* a deliverable command of device 11 (0: none) */

static inline enum status fake_authenticate_device(void *ctx, const char *token, struct caller *out)
{
    (void)ctx;
    auth_reads++;
    long long id;
    if (sscanf(token, "device:%lld", &id) != 1)
        return STATUS_UNAUTHORIZED;
    *out = (struct caller){.kind = CALLER_DEVICE, .device_id = id};
    return STATUS_OK;
}

/* Command id's record: of device id % 100, owned as devices are. */
static inline void fake_command(long long id, enum command_status st, struct command *c)
{
    *c = (struct command){.id = id,
                          .device_id = id % 100,
                          .owner_id = owner_of(id % 100),
                          .name = strdup("relay"),
                          .params = strdup("{}"),
                          .status = st,
                          .created_at = 1700000000000000LL,
                          .expires_at = 1700003600000000LL};
}

static inline enum status fake_commands_live_muted(void *ctx, const long long *ids, int n,
                                                   long long **users, int *count)
{
    (void)ctx;
    (void)ids;
    (void)n;
    *users = NULL;
    *count = 0;
    return STATUS_OK;
}

static inline enum status fake_commands_by_ids(void *ctx, const long long *ids, int n,
                                               struct command_list *out)
{
    (void)ctx;
    out->items = calloc((size_t)n, sizeof *out->items);
    out->count = n;
    /* Read late: every command has been answered since. */
    for (int i = 0; i < n; i++) {
        fake_command(ids[i], COMMAND_SUCCEEDED, &out->items[i]);
        out->items[i].attempts = 1;
        out->items[i].sent_at = 1700000001000000LL;
        out->items[i].completed_at = 1700000002000000LL;
        out->items[i].result = strdup("{\"ok\":true}");
    }
    return STATUS_OK;
}

/* ---- fake chat store ------------------------------------------------------
 * Conversation c belongs to client c / 100 (conversation 100 -> user 1);
 * 999 does not exist. Messages read by id are in conversation 100. */

static int chat_posts, chat_reads, chat_typings, chat_message_reads;
static bool chat_rate_limited;
static long long chat_next_id;

static inline bool fake_chat_visible(long long conversation_id, long long owner_scope)
{
    return conversation_id != 999 && (!owner_scope || owner_scope == conversation_id / 100);
}

static inline enum status fake_chat_post(void *ctx, const struct chat_post *in,
                                         struct chat_message *out, int *retry_after_s)
{
    (void)ctx;
    chat_posts++;
    memset(out, 0, sizeof *out);
    *retry_after_s = 0;
    if (!fake_chat_visible(in->conversation_id, in->owner_scope))
        return STATUS_NOT_FOUND;
    if (chat_rate_limited) {
        *retry_after_s = 12;
        return STATUS_OK;
    }
    *out = (struct chat_message){.id = ++chat_next_id,
                                 .conversation_id = in->conversation_id,
                                 .sender_id = in->sender_id,
                                 .sender_role = in->sender_role,
                                 .text = strdup(in->text),
                                 .created_at = 1700000000000000LL,
                                 .client_id = in->conversation_id / 100};
    return STATUS_OK;
}

static inline enum status fake_chat_read(void *ctx, const struct chat_read *in,
                                         struct chat_read_result *out)
{
    (void)ctx;
    chat_reads++;
    memset(out, 0, sizeof *out);
    if (!fake_chat_visible(in->conversation_id, in->owner_scope))
        return STATUS_NOT_FOUND;
    *out = (struct chat_read_result){.client_id = in->conversation_id / 100,
                                     .newly_read = 1,
                                     .up_to_id = in->up_to_id,
                                     .read_at = 1700000000000000LL};
    return STATUS_OK;
}

static int chat_typing_batches; /* store calls: typing announced together */

static inline enum status fake_chat_typing(void *ctx, const struct chat_typing *in, int n,
                                           enum status *out)
{
    (void)ctx;
    chat_typing_batches++;
    for (int i = 0; i < n; i++) {
        chat_typings++;
        out[i] = fake_chat_visible(in[i].conversation_id, in[i].owner_scope) ? STATUS_OK
                                                                             : STATUS_NOT_FOUND;
    }
    return STATUS_OK;
}

static inline enum status fake_commands_claim(void *ctx, long long device_id,
                                              struct command_list *out)
{
    (void)ctx;
    claim_reads++;
    *out = (struct command_list){0};
    if (!queued_id || queued_id % 100 != device_id)
        return STATUS_OK;
    out->items = calloc(1, sizeof *out->items);
    out->count = 1;
    fake_command(queued_id, COMMAND_SENT, &out->items[0]);
    out->items[0].attempts = 1;
    queued_id = 0;
    return STATUS_OK;
}

/* Command 111 (device 11's) takes an answer; others are not the device's. */
static inline enum status fake_commands_answer(void *ctx, long long device_id, long long id,
                                               const struct command_answer *answer,
                                               struct command *out, bool *changed)
{
    (void)ctx;
    *changed = false;
    if (id % 100 != device_id || id != 111)
        return STATUS_NOT_FOUND;
    fake_command(id, answer->status, out);
    *changed = true;
    answers_stored++;
    return STATUS_OK;
}

static inline enum status fake_chat_messages(void *ctx, const long long *ids, int n,
                                             struct chat_message_list *out)
{
    (void)ctx;
    chat_message_reads++;
    out->items = calloc((size_t)n, sizeof *out->items);
    out->count = n;
    for (int i = 0; i < n; i++)
        out->items[i] = (struct chat_message){.id = ids[i],
                                              .conversation_id = 100,
                                              .sender_id = 1,
                                              .sender_role = ROLE_CLIENT,
                                              .text = strdup("hello"),
                                              .created_at = 1700000000000000LL,
                                              .client_id = 1};
    return STATUS_OK;
}

static inline enum status fake_user_names(void *ctx, const long long *ids, int n,
                                          char (*out)[USER_NAME_MAX * 4 + 1])
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        snprintf(out[i], sizeof out[i], "User %lld", ids[i]);
    return STATUS_OK;
}

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
    struct hub *hub;
    struct fake_conn conns[4];
    struct hub_session *sessions[4];
};

static inline int setup(void **state)
{
    nalerts_table = 0;
    usage_reads = 0;
    auth_reads = 0;
    owner_reads = 0;
    owner_override = 0;
    claim_reads = 0;
    answers_stored = 0;
    queued_id = 0;
    memset(user_deleted, 0, sizeof user_deleted);
    chat_posts = chat_reads = chat_typings = chat_typing_batches = chat_message_reads = 0;
    chat_rate_limited = false;
    chat_next_id = 0;
    struct fixture *f = calloc(1, sizeof *f);
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
    f->hub = hub_create(&(struct hub_limits){.max_sessions = 3,
                                             .max_sessions_per_user = 2,
                                             .max_unauth_per_addr = 4,
                                             .command_lock_s = 30},
                        &store);
    hub_set_transport(f->hub, &(struct hub_transport){.send = fake_send,
                                                      .queued = fake_queued,
                                                      .close = fake_close,
                                                      .wake = fake_wake});
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 4; i++) {
        if (f->sessions[i])
            hub_session_closed(f->hub, f->sessions[i], HUB_CLOSED_PEER);
        conn_reset(&f->conns[i]);
    }
    hub_free(f->hub);
    free(f);
    return 0;
}

/* Runs every queued job and applies the results, as the two threads would. */
static inline void settle(struct fixture *f, double now)
{
    do
        hub_drain(f->hub, now);
    while (hub_work_once(f->hub));
}

static inline void say(struct fixture *f, int i, const char *text, double now)
{
    hub_session_message(f->hub, f->sessions[i], text, strlen(text), now);
}

/* Opens session i from the client at addr; false when the hub refused it
 * (then *refusal says how). */
static inline bool open_from(struct fixture *f, int i, const char *addr,
                             struct hub_refusal *refusal)
{
    f->sessions[i] = hub_session_open(f->hub, &f->conns[i], addr, NOW, refusal);
    return f->sessions[i] != NULL;
}

/* Opens session i from the fixture's one client address. */
static inline void open_session(struct fixture *f, int i)
{
    struct hub_refusal refusal;
    assert_true(open_from(f, i, "192.0.2.1", &refusal));
}

/* Opens session i and authenticates it as user with role ("client",
 * "admin") and an optional replay. */
static inline void ready_as(struct fixture *f, int i, long long user, const char *role,
                            const char *extra)
{
    open_session(f, i);
    char msg[256];
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%lld:%s:%.0f\"%s}", user, role,
             NOW + 3600, extra ? extra : "");
    say(f, i, msg, NOW);
    settle(f, NOW);
    assert_string_equal(sent_type(&f->conns[i], 0), "ready");
    assert_int_equal(json_integer_value(json_object_get(f->conns[i].sent[0], "user_id")), user);
}

/* Opens session i and authenticates it as user (a client) with an optional replay. */
static inline void ready(struct fixture *f, int i, long long user, const char *extra)
{
    ready_as(f, i, user, "client", extra);
}

/* Opens session i and authenticates it as device with its device_token. */
static inline void ready_device(struct fixture *f, int i, long long device)
{
    open_session(f, i);
    char msg[128];
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"device_token\":\"device:%lld\"}", device);
    say(f, i, msg, NOW);
    settle(f, NOW);
    assert_string_equal(sent_type(&f->conns[i], 0), "ready");
    assert_int_equal(json_integer_value(json_object_get(f->conns[i].sent[0], "device_id")), device);
}

/* The session was closed by the hub: the transport reports it gone. */
static inline void gone(struct fixture *f, int i)
{
    hub_session_closed(f->hub, f->sessions[i], HUB_CLOSED_NONE);
    f->sessions[i] = NULL;
}

static inline void notify(struct fixture *f, const char *payload)
{
    struct listener_events ev;
    assert_true(listener_parse_payload(payload, &ev));
    hub_post_events(f->hub, &ev);
}

#endif
