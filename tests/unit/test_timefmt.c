/* base/timefmt: RFC 3339 timestamps, parsed strictly, formatted in UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../base/timefmt.h"

static void rfc3339_parses_strictly_and_keeps_microseconds(void **state)
{
    (void)state;
    long long us;
    assert_true(timefmt_parse("2026-11-21T10:10:00Z", &us));
    assert_int_equal(us, 1795255800LL * 1000000);
    char out[TIMEFMT_MAX];
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00Z");
    assert_true(timefmt_parse("2026-11-21T12:10:00.250+02:00", &us));
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00.25Z");
    assert_true(timefmt_parse("2026-11-21t10:10:00.000001z", &us));
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00.000001Z");
    assert_true(timefmt_parse("2024-02-29T00:00:00Z", &us));

    const char *bad[] = {"2026-11-21 10:10:00Z",     "2026-11-21T10:10:00",
                         "2026-13-01T00:00:00Z",     "2026-02-29T00:00:00Z",
                         "2026-11-21T24:00:00Z",     "2026-11-21T10:60:00Z",
                         "2026-11-21T10:10:60Z",     "2026-11-21T10:10:00.Z",
                         "2026-11-21T10:10Z",        "2026-11-21T10:10:00+0200",
                         "2026-11-21T10:10:00Zjunk", "",
                         "1969-12-31T23:59:59Z",     "2026-11-21T10:10:00.1234567891Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(timefmt_parse(bad[i], &us));
}

static void rfc3339_round_trips_known_instants(void **state)
{
    (void)state;
    long long us;
    assert_true(timefmt_parse("1970-01-01T00:00:00Z", &us));
    assert_int_equal(us, 0);
    assert_true(timefmt_parse("2000-03-01T00:00:00Z", &us));
    assert_int_equal(us, 951868800LL * 1000000);
    char out[TIMEFMT_MAX];
    timefmt_format(951868800LL * 1000000 + 500000, out);
    assert_string_equal(out, "2000-03-01T00:00:00.5Z");
}

/* Found by fuzz_timefmt: an offset that moves the instant past 9999 was
 * accepted, and its UTC form could not be written or parsed back. */
static void rfc3339_keeps_the_instant_in_range(void **state)
{
    (void)state;
    long long us;
    char out[TIMEFMT_MAX];
    assert_true(timefmt_parse("9999-12-31T23:59:59.999999Z", &us));
    timefmt_format(us, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999999Z");
    assert_true(timefmt_parse("9999-12-31T23:59:59+00:30", &us));
    assert_false(timefmt_parse("9999-12-31T23:59:59.0-05:30", &us));
    assert_false(timefmt_parse("9999-12-31T23:59:59-00:01", &us));
    assert_false(timefmt_parse("1970-01-01T00:00:00+00:01", &us));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339_parses_strictly_and_keeps_microseconds),
        cmocka_unit_test(rfc3339_round_trips_known_instants),
        cmocka_unit_test(rfc3339_keeps_the_instant_in_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
