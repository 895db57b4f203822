/* Unit tests for live/chat.c: who gets chat.sent, chat.message, chat.typing
 * and chat.read, the typing throttle, and the errors of refused messages.
 * Sessions: users 1 and 2 are clients (conversation 100 is user 1's, 200
 * user 2's), user 50 is an admin. */
#include "hub_fixture.h"

/* A payload naming message id as sent by session `session` of this hub. */
static void notify_message(struct fixture *f, long long id, long long session)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"chat_messages\":[%lld,1,%lld,%lld]}", id,
             session ? f->hub->instance_id : 0, session);
    notify(f, payload);
    settle(f, NOW);
}

static void test_a_message_goes_to_the_client_and_admins_but_not_its_sending_session(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    ready_as(f, 2, 50, "admin", NULL);
    say(f, 0,
        "{\"type\":\"chat.send\",\"conversation_id\":100,\"text\":\"hi\",\"client_msg_id\":3}",
        NOW);
    settle(f, NOW);
    assert_string_equal(sent_type(&f->conns[0], 1), "chat.sent");
    json_t *sent = f->conns[0].sent[1];
    assert_int_equal(json_integer_value(json_object_get(sent, "client_msg_id")), 3);
    long long id = json_integer_value(json_object_get(json_object_get(sent, "message"), "id"));
    notify_message(f, id, f->sessions[0]->id);
    assert_int_equal(count_type(&f->conns[0], "chat.message"), 0);
    assert_int_equal(count_type(&f->conns[1], "chat.message"), 1);
    assert_int_equal(count_type(&f->conns[2], "chat.message"), 1);
    /* Posted over REST (no session): every session gets it. */
    notify_message(f, id + 1, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(count_type(&f->conns[i], "chat.message"), i == 0 ? 1 : 2);
}

static void test_another_clients_session_gets_nothing(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 2, NULL);
    notify_message(f, 1, 0);
    /* Nobody here is concerned: the message is not even read. */
    assert_int_equal(chat_message_reads, 0);
    notify(f, "{\"chat_typing\":[100,1,50,2],\"chat_reads\":[100,1,50,2,5,1700000000000000]}");
    settle(f, NOW);
    assert_int_equal(f->conns[0].nsent, 1); /* ready only */
}

static void test_typing_and_reads_go_to_the_other_side_only(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready_as(f, 1, 50, "admin", NULL);
    /* The client (role 1) types: admins only. */
    notify(f, "{\"chat_typing\":[100,1,1,1]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "chat.typing"), 0);
    assert_int_equal(count_type(&f->conns[1], "chat.typing"), 1);
    json_t *t = f->conns[1].sent[1];
    assert_string_equal(json_string_value(json_object_get(t, "name")), "User 1");
    assert_int_equal(json_integer_value(json_object_get(t, "user_id")), 1);
    /* An admin (role 2) types and reads: the client only. */
    notify(f, "{\"chat_typing\":[100,1,50,2],\"chat_reads\":[100,1,50,2,5,1700000000000000]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "chat.typing"), 1);
    assert_int_equal(count_type(&f->conns[0], "chat.read"), 1);
    assert_int_equal(count_type(&f->conns[1], "chat.typing"), 1);
    assert_int_equal(count_type(&f->conns[1], "chat.read"), 0);
    /* The client reads: admins only. */
    notify(f, "{\"chat_reads\":[100,1,1,1,6,1700000000000000]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "chat.read"), 1);
    assert_int_equal(count_type(&f->conns[1], "chat.read"), 1);
}

static void test_typing_is_passed_on_once_per_two_seconds_per_user(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    const char *typing = "{\"type\":\"chat.typing\",\"conversation_id\":100}";
    say(f, 0, typing, NOW);
    say(f, 1, typing, NOW + 0.5); /* the same user on another session */
    say(f, 0, typing, NOW + 1.9);
    settle(f, NOW + 1.9);
    assert_int_equal(chat_typings, 1);
    say(f, 0, typing, NOW + 2.1);
    settle(f, NOW + 2.1);
    assert_int_equal(chat_typings, 2);
    /* Not a message to answer: nothing is sent back. */
    assert_int_equal(f->conns[0].nsent, 1);
}

/* Typing that comes while a batch is with the worker goes out as the next
 * batch, in one store call (one NOTIFY); a refused one is answered to its
 * own session only. */
static void test_typing_is_announced_in_batches(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 2, NULL);
    ready_as(f, 2, 50, "admin", NULL);
    say(f, 0, "{\"type\":\"chat.typing\",\"conversation_id\":100}", NOW); /* in flight */
    say(f, 1, "{\"type\":\"chat.typing\",\"conversation_id\":200}", NOW); /* waits */
    say(f, 2, "{\"type\":\"chat.typing\",\"conversation_id\":999}", NOW); /* waits */
    settle(f, NOW);
    assert_int_equal(chat_typings, 3);
    assert_int_equal(chat_typing_batches, 2);
    assert_int_equal(count_type(&f->conns[0], "error"), 0);
    assert_int_equal(count_type(&f->conns[1], "error"), 0);
    assert_int_equal(count_type(&f->conns[2], "error"), 1);
    assert_string_equal(json_string_value(json_object_get(f->conns[2].sent[1], "code")),
                        "not_found");
}

/* The same user typing on two instances: both announce it, each instance
 * passes on the first only, until the interval is over. */
static void test_typing_announced_twice_is_passed_on_once(void **state)
{
    struct fixture *f = *state;
    ready_as(f, 0, 50, "admin", NULL);
    notify(f, "{\"chat_typing\":[100,1,1,1]}");
    notify(f, "{\"chat_typing\":[100,1,1,1]}");
    settle(f, NOW);
    notify(f, "{\"chat_typing\":[100,1,1,1]}");
    settle(f, NOW + 1.5);
    assert_int_equal(count_type(&f->conns[0], "chat.typing"), 1);
    notify(f, "{\"chat_typing\":[100,1,1,1]}");
    settle(f, NOW + 2.1);
    assert_int_equal(count_type(&f->conns[0], "chat.typing"), 2);
    /* Another conversation is news at once. */
    notify(f, "{\"chat_typing\":[200,2,1,1]}");
    settle(f, NOW + 2.2);
    assert_int_equal(count_type(&f->conns[0], "chat.typing"), 3);
}

static void test_refused_messages_get_errors_naming_them(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0,
        "{\"type\":\"chat.send\",\"conversation_id\":200,\"text\":\"x\",\"client_msg_id\":\"a\"}",
        NOW);
    say(f, 0, "{\"type\":\"chat.read\",\"conversation_id\":999,\"up_to_id\":1}", NOW);
    say(f, 0, "{\"type\":\"chat.typing\",\"conversation_id\":200}", NOW);
    settle(f, NOW);
    chat_rate_limited = true;
    say(f, 0,
        "{\"type\":\"chat.send\",\"conversation_id\":100,\"text\":\"x\",\"client_msg_id\":\"b\"}",
        NOW);
    settle(f, NOW);
    struct fake_conn *c = &f->conns[0];
    assert_int_equal(c->nsent, 5);
    const char *codes[] = {"not_found", "not_found", "not_found", "rate_limited"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(sent_type(c, i + 1), "error");
        assert_string_equal(json_string_value(json_object_get(c->sent[i + 1], "code")), codes[i]);
    }
    assert_string_equal(json_string_value(json_object_get(c->sent[1], "client_msg_id")), "a");
    assert_int_equal(json_integer_value(json_object_get(c->sent[4], "retry_after")), 12);
    assert_int_equal(c->close_code, 0);
}

static void test_an_admin_may_write_in_any_conversation(void **state)
{
    struct fixture *f = *state;
    ready_as(f, 0, 50, "admin", NULL);
    say(f, 0, "{\"type\":\"chat.send\",\"conversation_id\":200,\"text\":\"x\"}", NOW);
    settle(f, NOW);
    assert_string_equal(sent_type(&f->conns[0], 1), "chat.sent");
    assert_true(json_is_null(json_object_get(f->conns[0].sent[1], "client_msg_id")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_message_goes_to_the_client_and_admins_but_not_its_sending_session, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_another_clients_session_gets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typing_and_reads_go_to_the_other_side_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_typing_is_passed_on_once_per_two_seconds_per_user,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_typing_is_announced_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typing_announced_twice_is_passed_on_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_messages_get_errors_naming_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_admin_may_write_in_any_conversation, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
