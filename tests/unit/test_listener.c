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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
