/* Unit tests for live/commands.c: device sessions get their device's
 * deliverable commands (at once, on a change, after a lock) and nothing
 * else; users' sessions get command changes of the devices they own, and
 * admins' of all. */
#include "hub_fixture.h"

#include "../../db/events.h"

static int count_command(const struct fake_conn *c, long long id)
{
    int n = 0;
    for (int i = 0; i < c->nsent; i++)
        if (!strcmp(sent_type(c, i), "command") &&
            json_integer_value(json_object_get(json_object_get(c->sent[i], "command"), "id")) == id)
            n++;
    return n;
}

static void test_a_device_gets_its_queued_command_on_connect(void **state)
{
    struct fixture *f = *state;
    queued_id = 211; /* device 11's */
    ready_device(f, 0, 11);
    assert_int_equal(claim_reads, 1);
    assert_int_equal(count_command(&f->conns[0], 211), 1);
    json_t *c = json_object_get(f->conns[0].sent[1], "command");
    assert_string_equal(json_string_value(json_object_get(c, "status")), "sent");
}

static void test_a_change_claims_for_local_devices_only(void **state)
{
    struct fixture *f = *state;
    ready_device(f, 0, 11);
    ready_device(f, 1, 12);
    int before = claim_reads;
    queued_id = 311;
    notify(f, "{\"commands\":[311],\"command_devices\":[11]}");
    settle(f, NOW);
    assert_int_equal(claim_reads, before + 1); /* device 11 only */
    assert_int_equal(count_command(&f->conns[0], 311), 1);
    assert_int_equal(count_command(&f->conns[1], 311), 0);
    /* Devices not connected here cost nothing. */
    notify(f, "{\"commands\":[377],\"command_devices\":[77]}");
    settle(f, NOW);
    assert_int_equal(claim_reads, before + 1);
}

static void test_after_a_lock_the_device_is_claimed_again(void **state)
{
    struct fixture *f = *state;
    queued_id = 411;
    ready_device(f, 0, 11);
    int before = claim_reads;
    hub_tick(f->hub, NOW + 10);
    settle(f, NOW + 10);
    assert_int_equal(claim_reads, before); /* the lock (30 s) holds */
    queued_id = 411;
    hub_tick(f->hub, NOW + 31);
    settle(f, NOW + 31);
    assert_int_equal(claim_reads, before + 1);
    assert_int_equal(count_command(&f->conns[0], 411), 2);
}

static void test_users_see_their_devices_commands_and_admins_all(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);             /* owns device 11 */
    ready(f, 1, 2, NULL);             /* owns device 21 */
    ready_as(f, 2, 3, "admin", NULL); /* sees all */
    /* 4088 = EVENTS_COMMAND(511, COMMAND_QUEUED) */
    notify(f, "{\"commands\":[4088],\"command_devices\":[11]}");
    settle(f, NOW);
    assert_int_equal(count_command(&f->conns[0], 511), 1);
    assert_int_equal(count_command(&f->conns[1], 511), 0);
    assert_int_equal(count_command(&f->conns[2], 511), 1);
    /* The device's own session is not a user's: no status message for it
     * (it gets what its claim hands over, and nothing was queued). */
    hub_session_closed(f->hub, f->sessions[1], HUB_CLOSED_PEER);
    f->sessions[1] = NULL;
    conn_reset(&f->conns[1]);
    ready_device(f, 1, 11);
    notify(f, "{\"commands\":[4888],\"command_devices\":[11]}");
    settle(f, NOW);
    assert_int_equal(count_command(&f->conns[1], 611), 0);
    assert_int_equal(count_command(&f->conns[0], 611), 1);
}

/* Transitions read late (the command has moved on) still show each status. */
static void test_each_transition_shows_its_own_status(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    char payload[128];
    snprintf(payload, sizeof payload, "{\"commands\":[%lld,%lld,%lld]}",
             EVENTS_COMMAND(711LL, COMMAND_QUEUED), EVENTS_COMMAND(711LL, COMMAND_SENT),
             EVENTS_COMMAND(711LL, COMMAND_SUCCEEDED));
    notify(f, payload);
    settle(f, NOW);
    const char *want[] = {"queued", "sent", "succeeded"};
    int seen = 0;
    for (int i = 0; i < f->conns[0].nsent; i++) {
        json_t *c = json_object_get(f->conns[0].sent[i], "command");
        if (!c)
            continue;
        assert_true(seen < 3);
        assert_string_equal(json_string_value(json_object_get(c, "status")), want[seen]);
        assert_true(json_is_null(json_object_get(c, "completed_at")) == (seen < 2));
        seen++;
    }
    assert_int_equal(seen, 3);
}

static void test_a_device_session_gets_no_alerts(void **state)
{
    struct fixture *f = *state;
    owner_override = 0;
    ready_device(f, 0, 11);
    add_alert(1, 11, 1);
    notify(f, "{\"alerts\":[1],\"usage\":[11]}");
    settle(f, NOW);
    hub_tick(f->hub, NOW + 2);
    settle(f, NOW + 2);
    for (int i = 0; i < f->conns[0].nsent; i++)
        assert_string_not_equal(sent_type(&f->conns[0], i), "alert");
    assert_int_equal(count_type(&f->conns[0], "usage"), 0);
}

static void test_a_bad_device_token_closes_4401(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"device_token\":\"nope\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    open_session(f, 1);
    say(f, 1, "{\"type\":\"auth\",\"device_token\":\"device:11\",\"token\":\"1:client:9\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[1].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
}

static void test_answers_to_others_and_bad_answers_get_errors(void **state)
{
    struct fixture *f = *state;
    ready_device(f, 0, 11);
    say(f, 0, "{\"type\":\"command_result\",\"id\":112,\"status\":\"succeeded\"}", NOW);
    say(f, 0, "{\"type\":\"command_result\",\"id\":111,\"status\":\"maybe\"}", NOW);
    say(f, 0, "{\"type\":\"command_result\",\"status\":\"failed\"}", NOW);
    say(f, 0, "{\"type\":\"command_result\",\"id\":111,\"status\":\"failed\",\"x\":1}", NOW);
    settle(f, NOW);
    const char *codes[] = {"not_found", "invalid_field", "invalid_field", "invalid_field"};
    int seen = 0;
    for (int i = 0; i < f->conns[0].nsent; i++) {
        if (strcmp(sent_type(&f->conns[0], i), "error") != 0)
            continue;
        assert_true(seen < 4);
        const char *code = json_string_value(json_object_get(f->conns[0].sent[i], "code"));
        /* the store's answer comes after the checks made at once */
        assert_true(!strcmp(code, codes[0]) || !strcmp(code, codes[1]));
        seen++;
    }
    assert_int_equal(seen, 4);
    assert_int_equal(answers_stored, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_device_gets_its_queued_command_on_connect, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_change_claims_for_local_devices_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_after_a_lock_the_device_is_claimed_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_users_see_their_devices_commands_and_admins_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_transition_shows_its_own_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_device_session_gets_no_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_bad_device_token_closes_4401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_to_others_and_bad_answers_get_errors, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
