/* Unit tests for db/listener.c's NOTIFY payload parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../db/listener.h"

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

/* The chat's arrays are whole tuples of integers >= 0 (an origin of 0 is REST). */
static void test_listener_chat_tuples(void **state)
{
    (void)state;
    struct listener_events ev;
    assert_true(
        listener_parse_payload("{\"chat_messages\":[5,1,0,0,6,2,77,3],\"chat_typing\":[1,2,3,1],"
                               "\"chat_reads\":[1,2,3,2,5,1700000000000000]}",
                               &ev));
    assert_int_equal(ev.nchat_messages, 2);
    assert_int_equal(ev.chat_messages[4], 6);
    assert_int_equal(ev.chat_messages[6], 77);
    assert_int_equal(ev.nchat_typing, 1);
    assert_int_equal(ev.nchat_reads, 1);
    assert_int_equal(ev.chat_reads[5], 1700000000000000LL);
    listener_events_free(&ev);
    const char *bad[] = {"{\"chat_messages\":[5,1,0]}", "{\"chat_typing\":[1,2,3]}",
                         "{\"chat_reads\":[1,2,3,2,5,-1]}", "{\"chat_messages\":5}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(listener_parse_payload(bad[i], &ev));
        assert_null(ev.chat_messages);
    }
}

/* A retired month's horizon: epoch seconds, positive, alone or with ids. */
static void test_listener_horizon(void **state)
{
    (void)state;
    struct listener_events ev;
    assert_true(listener_parse_payload("{\"readings_horizon\":1785542400}", &ev));
    assert_int_equal(ev.readings_horizon, 1785542400LL);
    listener_events_free(&ev);
    assert_true(listener_parse_payload("{\"alerts\":[1]}", &ev));
    assert_int_equal(ev.readings_horizon, 0);
    listener_events_free(&ev);
    const char *bad[] = {"{\"readings_horizon\":0}", "{\"readings_horizon\":-5}",
                         "{\"readings_horizon\":\"2026-08-01\"}", "{\"readings_horizon\":1.5}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(listener_parse_payload(bad[i], &ev));
        assert_int_equal(ev.readings_horizon, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_payloads),
        cmocka_unit_test(test_listener_chat_tuples),
        cmocka_unit_test(test_listener_horizon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
