/* Unit tests for live/protocol.c: the inbound message table and its
 * dispatcher (routing by type and session kind, refusals, malformed
 * messages, the flood limit) and the outbound render table. */
#include "hub_fixture.h"

#include "../../api/resources.h"

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

static void test_flood_closes_1008(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    for (int i = 0; i < (int)HUB_FLOOD_BURST + 5 && !f->conns[0].close_code; i++)
        say(f, 0, "{\"type\":\"unsubscribe\",\"device_id\":1}", NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_POLICY);
}

/* ---- the inbound table --------------------------------------------------- */

/* A session of kind in slot i, made the way a client makes one. A new kind
 * makes this switch fail to compile until it has a case. */
static void session_of_kind(struct fixture *f, int i, enum session_kind kind)
{
    switch (kind) {
    case SESSION_KIND_UNAUTH:
        open_session(f, i);
        break;
    case SESSION_KIND_USER:
        ready(f, i, 1, NULL);
        break;
    case SESSION_KIND_DEVICE:
        ready_device(f, i, 11);
        break;
    case SESSION_KINDS:
        fail();
    }
    assert_int_equal(f->sessions[i]->kind, kind);
}

static void test_route_follows_each_rows_kinds(void **state)
{
    (void)state;
    size_t n;
    const struct inbound_route *table = protocol_inbound_table(&n);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(table[i].handle);
        assert_int_not_equal(table[i].kinds, 0);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(table[k].type, table[i].type);
        for (int kind = 0; kind < SESSION_KINDS; kind++) {
            const struct inbound_route *want = table[i].kinds & (1u << kind) ? &table[i] : NULL;
            assert_ptr_equal(protocol_route(table[i].type, kind), want);
        }
    }
    assert_null(protocol_route("teleport", SESSION_KIND_USER));
    assert_null(protocol_route("Auth", SESSION_KIND_UNAUTH));
    assert_null(protocol_route(NULL, SESSION_KIND_USER));
    /* Today's table: auth is the only thing an unauthenticated session may send. */
    assert_non_null(protocol_route("auth", SESSION_KIND_UNAUTH));
    assert_non_null(protocol_route("auth", SESSION_KIND_USER));
    assert_null(protocol_route("subscribe", SESSION_KIND_UNAUTH));
    assert_non_null(protocol_route("subscribe", SESSION_KIND_USER));
    assert_null(protocol_route("unsubscribe", SESSION_KIND_UNAUTH));
    assert_non_null(protocol_route("unsubscribe", SESSION_KIND_USER));
    /* A device session answers commands, and does nothing else. */
    assert_non_null(protocol_route("command_result", SESSION_KIND_DEVICE));
    assert_null(protocol_route("command_result", SESSION_KIND_USER));
    assert_null(protocol_route("command_result", SESSION_KIND_UNAUTH));
    assert_null(protocol_route("auth", SESSION_KIND_DEVICE));
    assert_null(protocol_route("subscribe", SESSION_KIND_DEVICE));
}

/* What each inbound type does, seen from outside, when a user sends it. */
struct inbound_case {
    const char *type;
    bool device;        /* sent by a device session (else a user's) */
    const char *before; /* sent first, or NULL */
    const char *text;
    void (*check)(struct fixture *f);
};

static void check_auth(struct fixture *f)
{
    assert_int_equal(auth_reads, 2); /* the first auth and this one */
    assert_int_equal(f->sessions[0]->token_exp, 1700007200);
}

static void check_subscribe(struct fixture *f)
{
    assert_int_equal(owner_reads, 1);
    assert_int_equal(f->sessions[0]->nsubs, 1);
    assert_int_equal(f->sessions[0]->subs[0], 11);
}

static void check_unsubscribe(struct fixture *f)
{
    assert_int_equal(f->sessions[0]->nsubs, 0);
}

static void check_command_result(struct fixture *f)
{
    assert_int_equal(answers_stored, 1);
    const struct fake_conn *c = &f->conns[0];
    assert_string_equal(sent_type(c, c->nsent - 1), "command_ack");
    json_t *want = json_pack("{s:s, s:i, s:s}", "type", "command_ack", "id", 111, "command_status",
                             "succeeded");
    assert_true(json_equal(c->sent[c->nsent - 1], want));
    json_decref(want);
}

static void check_chat_send(struct fixture *f)
{
    assert_int_equal(chat_posts, 1);
    assert_string_equal(sent_type(&f->conns[0], 1), "chat.sent");
    assert_string_equal(json_string_value(json_object_get(f->conns[0].sent[1], "client_msg_id")),
                        "c1");
}

static void check_chat_typing(struct fixture *f)
{
    (void)f;
    assert_int_equal(chat_typings, 1);
}

static void check_chat_read(struct fixture *f)
{
    (void)f;
    assert_int_equal(chat_reads, 1);
}

static const struct inbound_case INBOUND_CASES[] = {
    {"auth", false, NULL, "{\"type\":\"auth\",\"token\":\"1:client:1700007200\"}", check_auth},
    {"subscribe", false, NULL, "{\"type\":\"subscribe\",\"device_id\":11}", check_subscribe},
    {"unsubscribe", false, "{\"type\":\"subscribe\",\"device_id\":11}",
     "{\"type\":\"unsubscribe\",\"device_id\":11}", check_unsubscribe},
    {"command_result", true, NULL,
     "{\"type\":\"command_result\",\"id\":111,\"status\":\"succeeded\",\"result\":{}}",
     check_command_result},
    {"chat.send", false, NULL,
     "{\"type\":\"chat.send\",\"conversation_id\":100,\"text\":\"hi\",\"client_msg_id\":"
     "\"c1\"}",
     check_chat_send},
    {"chat.typing", false, NULL, "{\"type\":\"chat.typing\",\"conversation_id\":100}",
     check_chat_typing},
    {"chat.read", false, NULL, "{\"type\":\"chat.read\",\"conversation_id\":100,\"up_to_id\":5}",
     check_chat_read},
};

static const struct inbound_case *inbound_case(const char *type)
{
    for (size_t i = 0; i < sizeof INBOUND_CASES / sizeof *INBOUND_CASES; i++)
        if (!strcmp(INBOUND_CASES[i].type, type))
            return &INBOUND_CASES[i];
    return NULL;
}

/* Every row of the table, through hub_session_message, reaches its handler.
 * A row without a case above fails here: add one. */
static void test_every_inbound_type_reaches_its_handler(void **state)
{
    (void)state;
    size_t n;
    const struct inbound_route *table = protocol_inbound_table(&n);
    for (size_t i = 0; i < n; i++) {
        const struct inbound_case *c = inbound_case(table[i].type);
        assert_non_null(c);
        void *fs;
        setup(&fs);
        struct fixture *f = fs;
        if (c->device)
            ready_device(f, 0, 11);
        else
            ready(f, 0, 1, NULL);
        if (c->before) {
            say(f, 0, c->before, NOW);
            settle(f, NOW);
        }
        say(f, 0, c->text, NOW);
        settle(f, NOW);
        c->check(f);
        assert_int_equal(count_type(&f->conns[0], "error"), 0);
        assert_int_equal(f->conns[0].close_code, 0);
        teardown(&fs);
    }
}

/* For every kind, every type its kind may not send gets exactly what an
 * unknown type gets: a close before auth, an error after. */
static void test_a_type_not_for_the_kind_is_refused_like_an_unknown_one(void **state)
{
    struct fixture *f = *state;
    size_t n;
    const struct inbound_route *table = protocol_inbound_table(&n);
    int compared = 0;
    for (int kind = 0; kind < SESSION_KINDS; kind++) {
        for (size_t i = 0; i < n; i++) {
            if (table[i].kinds & (1u << kind))
                continue;
            session_of_kind(f, 0, kind);
            session_of_kind(f, 1, kind);
            char text[128];
            snprintf(text, sizeof text, "{\"type\":\"%s\",\"device_id\":11}", table[i].type);
            say(f, 0, text, NOW);
            say(f, 1, "{\"type\":\"teleport\",\"device_id\":11}", NOW);
            settle(f, NOW);
            struct fake_conn *got = &f->conns[0], *unknown = &f->conns[1];
            assert_int_equal(got->close_code, unknown->close_code);
            if (got->close_code)
                assert_string_equal(got->close_reason, unknown->close_reason);
            assert_int_equal(got->nsent, unknown->nsent);
            if (got->nsent)
                assert_true(
                    json_equal(got->sent[got->nsent - 1], unknown->sent[unknown->nsent - 1]));
            assert_int_equal(owner_reads, 0); /* the handler never ran */
            for (int k = 0; k < 2; k++) {
                hub_session_closed(f->hub, f->sessions[k], HUB_CLOSED_PEER);
                f->sessions[k] = NULL;
                conn_reset(&f->conns[k]);
            }
            compared++;
        }
    }
    assert_true(compared > 0);
    /* Before auth both close with 4401, counted as a failed auth. */
    int user_only = 0;
    for (size_t i = 0; i < n; i++)
        user_only += !(table[i].kinds & KIND_BIT_UNAUTH);
    char *buf = NULL, want[96];
    size_t len = 0, cap = 0;
    hub_render_metrics(f->hub, &buf, &len, &cap);
    snprintf(want, sizeof want, "wattline_ws_sessions_closed_total{reason=\"auth_failed\"} %d\n",
             2 * user_only);
    assert_non_null(strstr(buf, want));
    free(buf);
}

/* Anything that is not a JSON object with a string type. */
static const char *const MALFORMED[] = {
    "not json",
    "{\"type\":",
    "[1,2]",
    "\"auth\"",
    "{}",
    "{\"type\":7}",
    "{\"type\":null}",
    "{\"type\":\"unsubscribe\",\"type\":\"unsubscribe\",\"device_id\":1}",
    "{\"type\":\"subscribe\",\"device_id\":1,\"device_id\":2}",
    "",
};

static void test_malformed_messages_close_before_auth(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof MALFORMED / sizeof *MALFORMED; i++) {
        open_session(f, 0);
        say(f, 0, MALFORMED[i], NOW);
        settle(f, NOW);
        assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
        assert_string_equal(f->conns[0].close_reason, "auth first");
        assert_int_equal(f->conns[0].nsent, 0);
        gone(f, 0);
        conn_reset(&f->conns[0]);
    }
}

static void test_malformed_messages_get_an_error_after_auth(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    size_t n = sizeof MALFORMED / sizeof *MALFORMED;
    for (size_t i = 0; i < n; i++)
        hub_session_message(f->hub, f->sessions[0], MALFORMED[i], strlen(MALFORMED[i]),
                            NOW + (double)i);
    settle(f, NOW + (double)n);
    assert_int_equal(f->conns[0].nsent, 1 + (int)n);
    json_t *want =
        json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code", "malformed", "message",
                  "a message is a JSON object with a string type", "field", "type");
    for (size_t i = 0; i < n; i++)
        assert_true(json_equal(f->conns[0].sent[1 + i], want));
    json_decref(want);
    assert_int_equal(f->conns[0].close_code, 0);
    assert_int_equal(owner_reads, 0);
}

/* ---- the outbound table -------------------------------------------------- */

/* The exact text of each outbound type, as the contract's clients get it. A
 * type without a case here fails the test: add one. */
static void test_each_outbound_type_renders(void **state)
{
    (void)state;
    struct alert alert = {.id = 42,
                          .device_id = 11,
                          .device_name = "meter <1>",
                          .owner_id = 1,
                          .hour_start = 1699999200000000LL,
                          .hour_kwh = 2.5,
                          .max_hourly_kwh = 1,
                          .created_at = 1700000000000000LL};
    struct device_usage usage = {.device_id = 11,
                                 .owner_id = 1,
                                 .last_ts = 1700000000000000LL,
                                 .hour_start = 1699999200000000LL,
                                 .hour_kwh = 0.5};
    struct chat_message message = {.id = 5,
                                   .conversation_id = 100,
                                   .sender_id = 1,
                                   .sender_role = ROLE_CLIENT,
                                   .text = "<b>hi</b>",
                                   .created_at = 1700000000000000LL};
    /* The alert's body is the REST resource's; the envelope is the hub's. */
    json_t *alert_msg = json_pack("{s:s, s:o}", "type", "alert", "alert", alert_to_json(&alert));
    char *alert_text = json_dumps(alert_msg, JSON_COMPACT);
    json_decref(alert_msg);
    /* So is a command's. */
    struct command command = {.id = 5,
                              .device_id = 11,
                              .owner_id = 1,
                              .name = "relay",
                              .params = "{\"state\":\"off\"}",
                              .status = COMMAND_SENT,
                              .attempts = 1,
                              .created_by = 1,
                              .created_at = 1700000000000000LL,
                              .expires_at = 1700003600000000LL,
                              .sent_at = 1700000000000000LL};
    json_t *command_msg =
        json_pack("{s:s, s:o}", "type", "command", "command", command_to_json(&command));
    char *command_text = json_dumps(command_msg, JSON_COMPACT);
    json_decref(command_msg);

    const struct {
        struct out_message m;
        const char *text;
    } cases[OUT_TYPES] = {
        [OUT_READY] = {{.type = OUT_READY, .u.ready.user_id = 7},
                       "{\"type\":\"ready\",\"user_id\":7}"},
        [OUT_ALERT] = {{.type = OUT_ALERT, .u.alert.alert = &alert}, alert_text},
        [OUT_USAGE] = {{.type = OUT_USAGE, .u.usage.usage = &usage},
                       "{\"type\":\"usage\",\"device_id\":11,\"hour_start\":\"2023-11-14T22:00:"
                       "00Z\",\"hour_kwh\":0.5,\"last_ts\":\"2023-11-14T22:13:20Z\"}"},
        [OUT_ERROR] = {{.type = OUT_ERROR,
                        .u.error = {.code = "not_found",
                                    .message = "no such device",
                                    .field = "device_id",
                                    .device_id = 21}},
                       "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"no such "
                       "device\",\"field\":\"device_id\",\"device_id\":21}"},
        [OUT_COMMAND] = {{.type = OUT_COMMAND, .u.command.command = &command}, command_text},
        [OUT_COMMAND_ACK] = {{.type = OUT_COMMAND_ACK,
                              .u.ack = {.id = 5, .status = COMMAND_FAILED}},
                             "{\"type\":\"command_ack\",\"id\":5,\"command_status\":\"failed\"}"},
        [OUT_CHAT_SENT] = {{.type = OUT_CHAT_SENT,
                            .u.chat_sent = {.client_msg_id = "\"c1\"", .message = &message}},
                           "{\"type\":\"chat.sent\",\"client_msg_id\":\"c1\",\"message\":{\"id\":5,"
                           "\"conversation_id\":100,\"sender_id\":1,\"sender_role\":\"client\","
                           "\"text\":\"<b>hi</b>\",\"created_at\":\"2023-11-14T22:13:20Z\","
                           "\"read_at\":null}}"},
        [OUT_CHAT_MESSAGE] = {{.type = OUT_CHAT_MESSAGE, .u.chat_message.message = &message},
                              "{\"type\":\"chat.message\",\"message\":{\"id\":5,"
                              "\"conversation_id\":100,\"sender_id\":1,\"sender_role\":"
                              "\"client\",\"text\":\"<b>hi</b>\",\"created_at\":\"2023-11-14T22:"
                              "13:20Z\",\"read_at\":null}}"},
        [OUT_CHAT_TYPING] =
            {{.type = OUT_CHAT_TYPING,
              .u.chat_typing = {.conversation_id = 100, .user_id = 50, .name = "Ann"}},
             "{\"type\":\"chat.typing\",\"conversation_id\":100,\"user_id\":50,"
             "\"name\":\"Ann\"}"},
        [OUT_CHAT_READ] = {{.type = OUT_CHAT_READ,
                            .u.chat_read = {.conversation_id = 100,
                                            .reader_id = 50,
                                            .up_to_id = 5,
                                            .read_at = 1700000000000000LL}},
                           "{\"type\":\"chat.read\",\"conversation_id\":100,\"reader_id\":50,"
                           "\"up_to_id\":5,\"read_at\":\"2023-11-14T22:13:20Z\"}"},
        /* Stored as notification_enqueue() wrote them (json_build_object's spacing);
         * sent compact, with the row's type. */
        [OUT_FORECAST] = {{.type = OUT_FORECAST,
                           .u.notice.json = "{\"type\" : \"forecast\", \"forecast\" : "
                                            "{\"device_id\" : 3, \"projected_kwh\" : 1.5}}"},
                          "{\"type\":\"forecast\",\"forecast\":{\"device_id\":3,"
                          "\"projected_kwh\":1.5}}"},
        [OUT_DEVICE_STATUS] = {{.type = OUT_DEVICE_STATUS,
                                .u.notice.json = "{\"type\" : \"device_status\", "
                                                 "\"device_id\" : 3, \"status\" : \"offline\"}"},
                               "{\"type\":\"device_status\",\"device_id\":3,"
                               "\"status\":\"offline\"}"},
    };
    for (int t = 0; t < OUT_TYPES; t++) {
        assert_non_null(cases[t].text);
        assert_int_equal(cases[t].m.type, t);
        char *text = protocol_render(&cases[t].m);
        assert_non_null(text);
        assert_string_equal(text, cases[t].text);
        json_t *o = json_loads(text, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(o, "type")), protocol_out_name(t));
        json_decref(o);
        free(text);
    }
    /* An error without field and device id leaves them out. */
    struct out_message bare = {.type = OUT_ERROR, .u.error = {.code = "malformed", .message = "m"}};
    char *text = protocol_render(&bare);
    assert_string_equal(text, "{\"type\":\"error\",\"code\":\"malformed\",\"message\":\"m\"}");
    free(text);
    /* A device's ready names the device. */
    struct out_message device_ready = {.type = OUT_READY, .u.ready.device_id = 11};
    text = protocol_render(&device_ready);
    assert_string_equal(text, "{\"type\":\"ready\",\"device_id\":11}");
    free(text);
    free(alert_text);
    free(command_text);
}

/* A session is sent only the types its kind may get: before auth, nothing. */
static void test_outbound_types_follow_the_kind(void **state)
{
    struct fixture *f = *state;
    /* A device gets its commands, their acks, ready and errors: nothing else. */
    static const bool DEVICE_GETS[OUT_TYPES] = {
        [OUT_READY] = true, [OUT_ERROR] = true, [OUT_COMMAND] = true, [OUT_COMMAND_ACK] = true};
    for (int t = 0; t < OUT_TYPES; t++) {
        assert_false(protocol_may_receive(SESSION_KIND_UNAUTH, t));
        assert_int_equal(protocol_may_receive(SESSION_KIND_USER, t), t != OUT_COMMAND_ACK);
        assert_int_equal(protocol_may_receive(SESSION_KIND_DEVICE, t), DEVICE_GETS[t]);
    }
    open_session(f, 0);
    struct out_message m = {.type = OUT_READY, .u.ready.user_id = 1};
    assert_false(protocol_send(f->hub, f->sessions[0], &m));
    assert_int_equal(f->conns[0].nsent, 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    hub_render_metrics(f->hub, &buf, &len, &cap);
    assert_non_null(strstr(buf, "wattline_ws_messages_dropped_total 1\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_and_malformed_messages_get_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flood_closes_1008, setup, teardown),
        cmocka_unit_test(test_route_follows_each_rows_kinds),
        cmocka_unit_test(test_every_inbound_type_reaches_its_handler),
        cmocka_unit_test_setup_teardown(test_a_type_not_for_the_kind_is_refused_like_an_unknown_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages_close_before_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages_get_an_error_after_auth, setup,
                                        teardown),
        cmocka_unit_test(test_each_outbound_type_renders),
        cmocka_unit_test_setup_teardown(test_outbound_types_follow_the_kind, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
