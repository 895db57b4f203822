/* notify/retry: the contract's schedule (about 10 s, 1 min, 5 min, 30 min,
 * 2 h, 6 h), its jitter bounds, the test divisor, and giving up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../notify/retry.h"

static void follows_the_schedule_within_jitter(void **state)
{
    (void)state;
    static const long long base_s[] = {10, 60, 300, 1800, 7200, 21600};
    for (int a = 1; a < RETRY_MAX_ATTEMPTS; a++) {
        long long lo = retry_delay_ms(a, 1, 0.0), mid = retry_delay_ms(a, 1, 0.5),
                  hi = retry_delay_ms(a, 1, 0.999999);
        assert_int_equal(mid, base_s[a - 1] * 1000);
        assert_int_equal(lo, base_s[a - 1] * 800);
        assert_true(hi < base_s[a - 1] * 1200 && hi > base_s[a - 1] * 1199);
    }
}

static void gives_up_after_six_retries(void **state)
{
    (void)state;
    assert_int_equal(retry_delay_ms(RETRY_MAX_ATTEMPTS, 1, 0.5), -1);
    assert_int_equal(retry_delay_ms(100, 1, 0.5), -1);
    assert_int_equal(retry_delay_ms(0, 1, 0.5), -1);
}

static void divisor_shortens_and_bad_jitter_is_the_middle(void **state)
{
    (void)state;
    assert_int_equal(retry_delay_ms(1, 1000, 0.5), 10);
    assert_int_equal(retry_delay_ms(1, 100000, 0.0), 1); /* never 0: a retry is not a loop */
    assert_int_equal(retry_delay_ms(2, 0, 0.5), 60000);
    assert_int_equal(retry_delay_ms(1, 1, -3.0), 10000);
    assert_int_equal(retry_delay_ms(1, 1, 1.0), 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(follows_the_schedule_within_jitter),
        cmocka_unit_test(gives_up_after_six_retries),
        cmocka_unit_test(divisor_shortens_and_bad_jitter_is_the_middle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
