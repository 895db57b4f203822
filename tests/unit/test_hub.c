/* Unit tests for handlers/hub.c (message parsing, routing, replay order,
 * coalescing, deadlines) and the listener's NOTIFY payload parser.
 *
 * The hub runs here without threads or sockets: a fake transport records
 * what each connection was sent, a fake store answers from small tables,
 * and the test drives the worker (hub_work_once) and the transport thread
 * (hub_drain, hub_tick) by hand, with its own clock.
 */
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
    size_t queued; /* what transport.queued reports */
};

static bool fake_send(void *conn, const char *text, size_t len)
{
    struct fake_conn *c = conn;
    assert_int_equal(c->close_code, 0); /* nothing after a close */
    assert_true(c->nsent < MAX_SENT);
    json_t *msg = json_loadb(text, len, 0, NULL);
    assert_non_null(msg);
    c->sent[c->nsent++] = msg;
    return true;
}

static size_t fake_queued(void *conn)
{
    return ((struct fake_conn *)conn)->queued;
}

static void fake_close(void *conn, int code, const char *reason)
{
    (void)reason;
    struct fake_conn *c = conn;
    assert_int_equal(c->close_code, 0);
    c->close_code = code;
}

static void fake_wake(void *ctx)
{
    (void)ctx;
}

static void conn_reset(struct fake_conn *c)
{
    for (int i = 0; i < c->nsent; i++)
        json_decref(c->sent[i]);
    memset(c, 0, sizeof *c);
}

static const char *sent_type(const struct fake_conn *c, int i)
{
    return json_string_value(json_object_get(c->sent[i], "type"));
}

static int count_type(const struct fake_conn *c, const char *type)
{
    int n = 0;
    for (int i = 0; i < c->nsent; i++)
        n += !strcmp(sent_type(c, i), type);
    return n;
}

/* The alert ids sent to c, in order. */
static int alert_ids(const struct fake_conn *c, long long *out)
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
static bool user_deleted[16];
static long long owner_override; /* when set, every device belongs to this user */

static long long owner_of(long long device_id)
{
    return owner_override ? owner_override : device_id / 10;
}

/* Tokens are "USER_ID:ROLE:EXP"; anything else is unauthorized. */
static enum status fake_authenticate(void *ctx, const char *token, struct caller *out)
{
    (void)ctx;
    long long id, exp;
    char role[16];
    if (sscanf(token, "%lld:%15[a-z]:%lld", &id, role, &exp) != 3)
        return STATUS_UNAUTHORIZED;
    *out = (struct caller){
        .kind = CALLER_USER, .user_id = id, .role = role_parse(role), .token_exp = exp};
    return STATUS_OK;
}

static void add_alert(long long id, long long device_id, long long owner_id)
{
    alerts_table[nalerts_table++] = (struct alert){.id = id,
                                                   .device_id = device_id,
                                                   .owner_id = owner_id,
                                                   .hour_kwh = 2,
                                                   .max_hourly_kwh = 1,
                                                   .hour_start = 3600000000LL * id};
}

static enum status list_of(struct alert_list *out, bool (*keep)(const struct alert *, void *),
                           void *arg, int limit)
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

static bool keep_since(const struct alert *a, void *arg)
{
    const struct since_arg *s = arg;
    return a->owner_id == s->owner && a->id > s->since;
}

static enum status fake_alerts_since(void *ctx, long long owner_id, long long since_id, int limit,
                                     struct alert_list *out)
{
    (void)ctx;
    struct since_arg arg = {owner_id, since_id};
    return list_of(out, keep_since, &arg, limit);
}

struct ids_arg {
    const long long *ids;
    int n;
};

static bool keep_ids(const struct alert *a, void *arg)
{
    const struct ids_arg *s = arg;
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == a->id)
            return true;
    return false;
}

static enum status fake_alerts_by_ids(void *ctx, const long long *ids, int n,
                                      struct alert_list *out)
{
    (void)ctx;
    struct ids_arg arg = {ids, n};
    return list_of(out, keep_ids, &arg, MAX_ALERTS);
}

/* Device d is owned by user d / 10 (device 11 -> user 1); 99 does not exist. */
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

static enum status fake_user_roles(void *ctx, const long long *ids, int n, enum role *out)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        out[i] = user_deleted[ids[i]] ? ROLE_NONE : ROLE_CLIENT;
    return STATUS_OK;
}

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
    struct hub *hub;
    struct fake_conn conns[4];
    struct hub_session *sessions[4];
};

static int setup(void **state)
{
    nalerts_table = 0;
    usage_reads = 0;
    owner_override = 0;
    memset(user_deleted, 0, sizeof user_deleted);
    struct fixture *f = calloc(1, sizeof *f);
    struct hub_store store = {.authenticate = fake_authenticate,
                              .alerts_since = fake_alerts_since,
                              .alerts_by_ids = fake_alerts_by_ids,
                              .owners = fake_owners,
                              .usage = fake_usage,
                              .user_roles = fake_user_roles};
    f->hub =
        hub_create(&(struct hub_limits){.max_sessions = 3, .max_sessions_per_user = 2}, &store);
    hub_set_transport(f->hub, &(struct hub_transport){.send = fake_send,
                                                      .queued = fake_queued,
                                                      .close = fake_close,
                                                      .wake = fake_wake});
    *state = f;
    return 0;
}

static int teardown(void **state)
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
static void settle(struct fixture *f, double now)
{
    do
        hub_drain(f->hub, now);
    while (hub_work_once(f->hub));
}

static void say(struct fixture *f, int i, const char *text, double now)
{
    hub_session_message(f->hub, f->sessions[i], text, strlen(text), now);
}

static void open_session(struct fixture *f, int i)
{
    f->sessions[i] = hub_session_open(f->hub, &f->conns[i], NOW);
    assert_non_null(f->sessions[i]);
}

/* Opens session i and authenticates it as user (a client) with an optional replay. */
static void ready(struct fixture *f, int i, long long user, const char *extra)
{
    open_session(f, i);
    char msg[256];
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%lld:client:%.0f\"%s}", user,
             NOW + 3600, extra ? extra : "");
    say(f, i, msg, NOW);
    settle(f, NOW);
    assert_string_equal(sent_type(&f->conns[i], 0), "ready");
    assert_int_equal(json_integer_value(json_object_get(f->conns[i].sent[0], "user_id")), user);
}

/* The session was closed by the hub: the transport reports it gone. */
static void gone(struct fixture *f, int i)
{
    hub_session_closed(f->hub, f->sessions[i], HUB_CLOSED_NONE);
    f->sessions[i] = NULL;
}

static void notify(struct fixture *f, const char *payload)
{
    struct listener_events ev;
    assert_true(listener_parse_payload(payload, &ev));
    hub_post_events(f->hub, &ev);
}

/* ---- tests --------------------------------------------------------------- */

static void test_auth_then_ready(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    assert_int_equal(f->conns[0].nsent, 1);
    assert_int_equal(f->conns[0].close_code, 0);
}

static void test_bad_first_messages_close_4401(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {
        "{\"type\":\"subscribe\",\"device_id\":1}", "not json", "{\"type\":\"auth\"}",
        "{\"type\":\"auth\",\"token\":\"nonsense\"}",
        "{\"type\":\"auth\",\"token\":\"1:client:9999999999\",\"since_alert_id\":-1}"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        open_session(f, 0);
        say(f, 0, bad[k], NOW);
        settle(f, NOW);
        assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
        assert_int_equal(count_type(&f->conns[0], "ready"), 0);
        gone(f, 0);
        conn_reset(&f->conns[0]);
    }
}

static void test_expired_token_is_refused(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1699999990\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[0].nsent, 0);
}

static void test_auth_timeout_and_token_expiry(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    hub_tick(f->hub, NOW + 9.0);
    assert_int_equal(f->conns[0].close_code, 0);
    hub_tick(f->hub, NOW + 10.5);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);

    ready(f, 1, 1, NULL); /* its token expires at NOW + 3600 */
    say(f, 1, "{\"type\":\"auth\",\"token\":\"1:client:1700007200\"}", NOW + 100);
    settle(f, NOW + 100);
    hub_tick(f->hub, NOW + 3700);
    assert_int_equal(f->conns[1].close_code, 0); /* re-auth extended it */
    hub_tick(f->hub, NOW + 7201);
    assert_int_equal(f->conns[1].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
}

static void test_reauth_as_someone_else_closes(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"2:client:1700007200\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
}

static void test_alerts_go_to_the_owner_only_once_in_order(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    ready(f, 2, 2, NULL);
    add_alert(5, 11, 1);
    add_alert(6, 21, 2);
    add_alert(7, 12, 1);
    notify(f, "{\"alerts\":[5,6]}");
    notify(f, "{\"alerts\":[5,7]}"); /* 5 again: a catch-up overlapping a notification */
    settle(f, NOW);
    long long ids[8];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(alert_ids(&f->conns[i], ids), 2);
        assert_int_equal(ids[0], 5);
        assert_int_equal(ids[1], 7);
    }
    assert_int_equal(alert_ids(&f->conns[2], ids), 1);
    assert_int_equal(ids[0], 6);
    /* An id below one already sent is never sent (order over completeness). */
    add_alert(4, 11, 1);
    notify(f, "{\"alerts\":[4]}");
    settle(f, NOW);
    assert_int_equal(alert_ids(&f->conns[0], ids), 2);
}

static void test_replay_comes_before_live_alerts(void **state)
{
    struct fixture *f = *state;
    add_alert(3, 11, 1);
    add_alert(6, 11, 1);
    add_alert(8, 21, 2); /* someone else's */
    add_alert(9, 12, 1);
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\",\"since_alert_id\":3}", NOW);
    /* A live alert is notified before the replay ran. */
    add_alert(10, 11, 1);
    notify(f, "{\"alerts\":[10]}");
    settle(f, NOW);
    long long ids[8];
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_int_equal(alert_ids(&f->conns[0], ids), 3);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 9);
    assert_int_equal(ids[2], 10);
    add_alert(11, 11, 1);
    notify(f, "{\"alerts\":[11]}");
    settle(f, NOW);
    assert_int_equal(alert_ids(&f->conns[0], ids), 4);
    assert_int_equal(ids[3], 11);
}

static void test_long_queue_switches_to_paced_replay(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    f->conns[0].queued = HUB_LIVE_BACKLOG;
    add_alert(20, 11, 1);
    add_alert(21, 11, 1);
    notify(f, "{\"alerts\":[20,21]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "alert"), 0);
    f->conns[0].queued = 0;
    hub_session_drained(f->hub, f->sessions[0]);
    settle(f, NOW);
    long long ids[8];
    assert_int_equal(alert_ids(&f->conns[0], ids), 2);
    assert_int_equal(ids[0], 20);
    assert_int_equal(ids[1], 21);
}

static void test_unknown_and_malformed_messages_get_errors(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"teleport\"}", NOW);
    say(f, 0, "[1,2]", NOW);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":\"x\"}", NOW);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":1,\"device_id\":2}", NOW);
    settle(f, NOW);
    const char *codes[] = {"unknown_type", "malformed", "invalid_field", "malformed"};
    assert_int_equal(f->conns[0].nsent, 5);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(sent_type(&f->conns[0], i + 1), "error");
        assert_string_equal(json_string_value(json_object_get(f->conns[0].sent[i + 1], "code")),
                            codes[i]);
    }
    assert_int_equal(f->conns[0].close_code, 0);
}

static void test_subscribe_checks_visibility(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":21}", NOW); /* user 2's */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":99}", NOW); /* no such device */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":11}", NOW); /* own */
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "error"), 2);
    notify(f, "{\"usage\":[11,21,99]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "usage"), 1);
    assert_int_equal(usage_reads, 1); /* only the device someone here subscribed to */
    json_t *u = f->conns[0].sent[f->conns[0].nsent - 1];
    assert_int_equal(json_integer_value(json_object_get(u, "device_id")), 11);
    assert_string_equal(json_string_value(json_object_get(u, "hour_start")),
                        "2023-11-14T22:00:00Z");
    assert_string_equal(json_string_value(json_object_get(u, "last_ts")), "2023-11-14T22:13:20Z");
}

static void test_usage_is_coalesced_per_second(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":11}", NOW);
    say(f, 1, "{\"type\":\"subscribe\",\"device_id\":11}", NOW);
    settle(f, NOW);
    for (int k = 0; k < 5; k++) {
        notify(f, "{\"usage\":[11]}");
        settle(f, NOW + 0.1 * k);
        hub_tick(f->hub, NOW + 0.1 * k);
        settle(f, NOW + 0.1 * k);
    }
    assert_int_equal(usage_reads, 1); /* one read serves both sessions */
    assert_int_equal(count_type(&f->conns[0], "usage"), 1);
    assert_int_equal(count_type(&f->conns[1], "usage"), 1);
    hub_tick(f->hub, NOW + 1.05);
    settle(f, NOW + 1.05);
    assert_int_equal(count_type(&f->conns[0], "usage"), 2); /* the burst's trailing message */
    hub_tick(f->hub, NOW + 3);
    settle(f, NOW + 3);
    assert_int_equal(count_type(&f->conns[0], "usage"), 2); /* nothing new: nothing sent */
    say(f, 1, "{\"type\":\"unsubscribe\",\"device_id\":11}", NOW + 3);
    notify(f, "{\"usage\":[11]}");
    settle(f, NOW + 3);
    assert_int_equal(count_type(&f->conns[0], "usage"), 3);
    assert_int_equal(count_type(&f->conns[1], "usage"), 2); /* unsubscribed before the third */
}

static void test_owner_change_drops_the_subscription(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 3, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":31}", NOW);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":32}", NOW);
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "error"), 0);
    owner_override = 4; /* both devices go to user 4 */
    /* Through the usage read itself, notification or not... */
    notify(f, "{\"usage\":[31]}");
    settle(f, NOW);
    /* ...and through devices_changed. */
    notify(f, "{\"devices_changed\":[32]}");
    settle(f, NOW);
    owner_override = 0;
    notify(f, "{\"usage\":[31,32]}");
    settle(f, NOW + 5);
    assert_int_equal(usage_reads, 1); /* the first read; then nobody subscribed any more */
    assert_int_equal(count_type(&f->conns[0], "usage"), 0);
    assert_int_equal(count_type(&f->conns[0], "error"), 0); /* dropped silently */
}

static void test_deleted_user_sessions_close(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 5, NULL);
    ready(f, 1, 5, NULL);
    ready(f, 2, 6, NULL);
    user_deleted[5] = true;
    hub_tick(f->hub, NOW + 2);
    settle(f, NOW + 2);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[1].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[2].close_code, 0);
}

static void test_session_caps(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    open_session(f, 2);
    say(f, 2, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[2].close_code, HUB_CLOSE_CODE_TOO_MANY);
    /* max_sessions is 3, closing ones included until the transport reports them gone. */
    assert_null(hub_session_open(f->hub, &f->conns[3], NOW));
    gone(f, 2);
    f->sessions[3] = hub_session_open(f->hub, &f->conns[3], NOW);
    assert_non_null(f->sessions[3]);
}

static void test_flood_closes_1008(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    for (int i = 0; i < (int)HUB_FLOOD_BURST + 5 && !f->conns[0].close_code; i++)
        say(f, 0, "{\"type\":\"unsubscribe\",\"device_id\":1}", NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_POLICY);
}

static void test_messages_during_auth_are_held(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\"}", NOW);
    say(f, 0, "{\"type\":\"teleport\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].nsent, 2);
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_string_equal(sent_type(&f->conns[0], 1), "error");
}

static void test_metrics_render(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    hub_render_metrics(f->hub, &buf, &len, &cap);
    assert_non_null(strstr(buf, "wattline_ws_sessions_open 1\n"));
    assert_non_null(strstr(buf, "wattline_ws_sessions_closed_total{reason=\"slow_consumer\"} 0"));
    free(buf);
}

static void test_listener_payloads(void **state)
{
    (void)state;
    struct listener_events ev;
    assert_true(listener_parse_payload(
        "{\"alerts\":[41,42],\"usage\":[7],\"devices_changed\":[3],\"users_changed\":[9],"
        "\"future\":{\"x\":1}}",
        &ev));
    assert_int_equal(ev.nalerts, 2);
    assert_int_equal(ev.alerts[1], 42);
    assert_int_equal(ev.nusage, 1);
    assert_int_equal(ev.ndevices_changed, 1);
    assert_int_equal(ev.users_changed[0], 9);
    listener_events_free(&ev);
    assert_true(listener_parse_payload("{}", &ev));
    assert_int_equal(ev.nalerts + ev.nusage, 0);
    const char *bad[] = {"",
                         "[1]",
                         "{\"alerts\":7}",
                         "{\"alerts\":[0]}",
                         "{\"alerts\":[1.5]}",
                         "{\"alerts\":[\"1\"]}",
                         "{\"alerts\":[1],\"alerts\":[2]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(listener_parse_payload(bad[i], &ev));
        assert_null(ev.alerts);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_then_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_first_messages_close_4401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_timeout_and_token_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reauth_as_someone_else_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts_go_to_the_owner_only_once_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_comes_before_live_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_queue_switches_to_paced_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_malformed_messages_get_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_checks_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_is_coalesced_per_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_change_drops_the_subscription, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_user_sessions_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_closes_1008, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_during_auth_are_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render, setup, teardown),
        cmocka_unit_test(test_listener_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
