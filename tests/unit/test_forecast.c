/* ingest/forecast: the contract's projection (so far x 60 / minutes into
 * the hour, over the limit), not before 15 minutes, only for the hour that
 * contains the server's time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../ingest/forecast.h"

#define MIN_US  60000000LL
#define HOUR_US (60 * MIN_US)
static const long long H = 1700000000LL / 3600 * 3600 * 1000000LL; /* an hour's start */

static void projects_to_the_full_hour(void **state)
{
    (void)state;
    double p;
    assert_true(forecast_judge(H + 20 * MIN_US, H + 20 * MIN_US, 0.5, 1.0, &p));
    assert_float_equal(p, 1.5, 1e-12);
    /* 30 minutes in, 0.5 kWh: 1.0 projected, which is not strictly over 1.0. */
    assert_false(forecast_judge(H + 30 * MIN_US, H + 31 * MIN_US, 0.5, 1.0, &p));
    assert_float_equal(p, 1.0, 1e-12);
    assert_true(forecast_judge(H + 15 * MIN_US, H + 40 * MIN_US, 0.3, 1.0, &p));
    assert_float_equal(p, 1.2, 1e-12);
}

static void not_before_fifteen_minutes(void **state)
{
    (void)state;
    double p;
    assert_false(forecast_judge(H + 15 * MIN_US - 1, H + 20 * MIN_US, 100.0, 1.0, &p));
    assert_false(forecast_judge(H, H, 100.0, 1.0, &p));
}

static void only_the_current_hour(void **state)
{
    (void)state;
    double p;
    /* A backfill: the reading's hour is over. */
    assert_false(forecast_judge(H + 30 * MIN_US, H + HOUR_US + 1, 100.0, 1.0, &p));
    assert_false(forecast_judge(H + 30 * MIN_US, H - 1, 100.0, 1.0, &p));
    assert_true(forecast_judge(H + 30 * MIN_US, H + HOUR_US - 1, 100.0, 1.0, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(projects_to_the_full_hour),
        cmocka_unit_test(not_before_fifteen_minutes),
        cmocka_unit_test(only_the_current_hour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
