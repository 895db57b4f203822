/* Unit tests for live/protocol.c: the inbound message table and its
 * dispatcher (routing by type and session kind, refusals, malformed
 * messages, the flood limit) and the outbound render table. */
#include "hub_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_and_malformed_messages_get_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flood_closes_1008, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
