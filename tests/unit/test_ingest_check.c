/* ingest/check.c: the contract's rules for one reading, one at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "../../ingest/check.h"

#define NOW 1795000000000000LL     /* microseconds, in 2026 */
#define AGE (1100 * INGEST_DAY_US) /* MAX_READING_AGE_DAYS' default */

static enum ingest_check_reason check(long long ts, double value, enum reading_type kind,
                                      enum reading_type type)
{
    struct ingest_reading r = {ts, value, kind};
    return ingest_check(&r, type, NOW, AGE);
}

static void a_plain_reading_passes(void **state)
{
    (void)state;
    assert_int_equal(check(NOW, 1.5, READING_CUMULATIVE, READING_CUMULATIVE), INGEST_CHECK_OK);
    assert_int_equal(check(NOW - 86400000000LL, 0.0, READING_INTERVAL, READING_INTERVAL),
                     INGEST_CHECK_OK);
}

static void the_device_type_decides_the_member(void **state)
{
    (void)state;
    struct ingest_reading kwh = {NOW, 1.0, READING_INTERVAL};
    struct ingest_reading meter = {NOW, 1.0, READING_CUMULATIVE};
    assert_int_equal(ingest_check(&kwh, READING_CUMULATIVE, NOW, AGE), INGEST_CHECK_WRONG_MEMBER);
    assert_int_equal(ingest_check(&meter, READING_INTERVAL, NOW, AGE), INGEST_CHECK_WRONG_MEMBER);
    assert_string_equal(ingest_check_field(INGEST_CHECK_WRONG_MEMBER, &kwh), "kwh");
    assert_string_equal(ingest_check_field(INGEST_CHECK_WRONG_MEMBER, &meter), "meter_kwh");
    assert_string_equal(ingest_check_message(INGEST_CHECK_WRONG_MEMBER, READING_CUMULATIVE),
                        "this device reports a meter register: use meter_kwh");
    assert_string_equal(ingest_check_message(INGEST_CHECK_WRONG_MEMBER, READING_INTERVAL),
                        "this device reports interval energy: use kwh");
    assert_string_equal(ingest_member_name(READING_INTERVAL), "kwh");
    assert_string_equal(ingest_member_name(READING_CUMULATIVE), "meter_kwh");
}

static void ts_at_most_five_minutes_ahead(void **state)
{
    (void)state;
    long long limit = NOW + INGEST_FUTURE_US;
    assert_int_equal(INGEST_FUTURE_US, 5LL * 60 * 1000000);
    assert_int_equal(check(limit, 1.0, READING_INTERVAL, READING_INTERVAL), INGEST_CHECK_OK);
    assert_int_equal(check(limit + 1, 1.0, READING_INTERVAL, READING_INTERVAL),
                     INGEST_CHECK_TS_FUTURE);
    struct ingest_reading r = {limit + 1, 1.0, READING_INTERVAL};
    assert_string_equal(ingest_check_field(INGEST_CHECK_TS_FUTURE, &r), "ts");
    assert_string_equal(ingest_check_message(INGEST_CHECK_TS_FUTURE, READING_INTERVAL),
                        "ts is more than 5 minutes in the future");
    /* Late readings are fine: a device uploads its backlog. */
    assert_int_equal(check(NOW - 3 * 86400000000LL, 1.0, READING_INTERVAL, READING_INTERVAL),
                     INGEST_CHECK_OK);
}

/* At most MAX_READING_AGE_DAYS old: the bound of the hours one request can
 * make the server write. */
static void ts_at_most_max_age_behind(void **state)
{
    (void)state;
    assert_int_equal(INGEST_DAY_US, 86400LL * 1000000);
    assert_int_equal(check(NOW - AGE, 1.0, READING_INTERVAL, READING_INTERVAL), INGEST_CHECK_OK);
    assert_int_equal(check(NOW - AGE - 1, 1.0, READING_INTERVAL, READING_INTERVAL),
                     INGEST_CHECK_TS_TOO_OLD);
    assert_int_equal(check(0, 0.0, READING_CUMULATIVE, READING_CUMULATIVE),
                     INGEST_CHECK_TS_TOO_OLD); /* 1970-01-01T00:00:00Z */
    assert_int_equal(ingest_check_ts(NOW - 2 * INGEST_DAY_US, NOW, INGEST_DAY_US),
                     INGEST_CHECK_TS_TOO_OLD);
    assert_int_equal(ingest_check_ts(NOW - INGEST_DAY_US, NOW, INGEST_DAY_US), INGEST_CHECK_OK);
    struct ingest_reading r = {0, 0.0, READING_CUMULATIVE};
    assert_string_equal(ingest_check_field(INGEST_CHECK_TS_TOO_OLD, &r), "ts");
    assert_string_equal(
        ingest_check_message(INGEST_CHECK_TS_TOO_OLD, READING_CUMULATIVE),
        "ts is older than MAX_READING_AGE_DAYS before the server's time, or in a month "
        "whose raw readings were retired");
}

static void value_finite_not_negative_and_at_most_1e12(void **state)
{
    (void)state;
    const double bad[] = {-0.001, -INFINITY, INFINITY, NAN, 1e308, 1.1e12, 1e12 * (1 + 1e-15)};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(check(NOW, bad[i], READING_CUMULATIVE, READING_CUMULATIVE),
                         INGEST_CHECK_VALUE);
        assert_int_equal(ingest_check_value(bad[i]), INGEST_CHECK_VALUE);
    }
    assert_int_equal(ingest_check_value(0.0), INGEST_CHECK_OK);
    assert_int_equal(ingest_check_value(1e12), INGEST_CHECK_OK);
    assert_int_equal(INGEST_VALUE_MAX, 1e12);
    struct ingest_reading r = {NOW, -1, READING_CUMULATIVE};
    assert_string_equal(ingest_check_field(INGEST_CHECK_VALUE, &r), "meter_kwh");
    assert_string_equal(ingest_check_message(INGEST_CHECK_VALUE, READING_CUMULATIVE),
                        "must be a number from 0 to 1e12");
}

/* The member first, then ts, then the value: the first broken rule is the
 * reason. */
static void the_first_broken_rule_is_the_reason(void **state)
{
    (void)state;
    long long future = NOW + INGEST_FUTURE_US + 1;
    assert_int_equal(check(future, -1, READING_INTERVAL, READING_CUMULATIVE),
                     INGEST_CHECK_WRONG_MEMBER);
    assert_int_equal(check(future, -1, READING_CUMULATIVE, READING_CUMULATIVE),
                     INGEST_CHECK_TS_FUTURE);
    assert_int_equal(check(NOW - AGE - 1, -1, READING_CUMULATIVE, READING_CUMULATIVE),
                     INGEST_CHECK_TS_TOO_OLD);
    assert_int_equal(check(NOW, -1, READING_CUMULATIVE, READING_CUMULATIVE), INGEST_CHECK_VALUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plain_reading_passes),
        cmocka_unit_test(the_device_type_decides_the_member),
        cmocka_unit_test(ts_at_most_five_minutes_ahead),
        cmocka_unit_test(ts_at_most_max_age_behind),
        cmocka_unit_test(value_finite_not_negative_and_at_most_1e12),
        cmocka_unit_test(the_first_broken_rule_is_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
