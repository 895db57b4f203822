/* The contract's energy rules, as pure arithmetic (handlers/energy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

/* cmocka 1.1.5 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

#include "../../ingest/energy.h"

#define H   ENERGY_HOUR_US
#define MIN (60LL * 1000000)
#define T0  (1795000000LL / 3600 * 3600 * 1000000) /* an hour boundary in 2026 */

static void spreads_across_an_hour_boundary(void **state)
{
    (void)state;
    /* 10:55 -> 11:05 with 2 kWh: half to each hour. */
    struct energy_reading r[] = {{T0 - 5 * MIN, 100.0}, {T0 + 5 * MIN, 102.0}};
    double out[2];
    energy_hours(READING_CUMULATIVE, r, 2, T0 - H, 2, out);
    assert_near(out[0], 1.0, 1e-12);
    assert_near(out[1], 1.0, 1e-12);
}

static void spreads_over_many_hours_and_days(void **state)
{
    (void)state;
    /* 30 hours with 60 kWh: 2 kWh per hour, the partial ends pro rata. */
    struct energy_reading r[] = {{T0 + 30 * MIN, 0.0}, {T0 + 30 * MIN + 30 * H, 60.0}};
    double out[32];
    energy_hours(READING_CUMULATIVE, r, 2, T0, 32, out);
    assert_near(out[0], 1.0, 1e-9);
    for (int i = 1; i < 30; i++)
        assert_near(out[i], 2.0, 1e-9);
    assert_near(out[30], 1.0, 1e-9);
    assert_near(out[31], 0.0, 0);
}

static void a_lower_register_is_a_reset(void **state)
{
    (void)state;
    struct energy_reading r[] = {{T0 + 10 * MIN, 5000.0}, {T0 + 20 * MIN, 3.5}};
    double out[1];
    energy_hours(READING_CUMULATIVE, r, 2, T0, 1, out);
    assert_near(out[0], 3.5, 0);
}

static void energy_before_the_first_reading_is_zero(void **state)
{
    (void)state;
    struct energy_reading r[] = {{T0 + 10 * MIN, 42.0}};
    double out[1];
    energy_hours(READING_CUMULATIVE, r, 1, T0, 1, out);
    assert_near(out[0], 0.0, 0);
}

static void interval_readings_belong_to_their_hour(void **state)
{
    (void)state;
    struct energy_reading r[] = {{T0 - 1, 1.0}, {T0, 0.25}, {T0 + 59 * MIN, 0.5}, {T0 + H, 2.0}};
    double out[3];
    energy_hours(READING_INTERVAL, r, 4, T0 - H, 3, out);
    assert_near(out[0], 1.0, 0);
    assert_near(out[1], 0.75, 0);
    assert_near(out[2], 2.0, 0);
}

static void a_late_reading_redivides_its_interval(void **state)
{
    (void)state;
    /* 10:30 -> 11:30 with 4 kWh, then a late 11:00 reading at +3.5. */
    struct energy_reading before[] = {{T0 - 30 * MIN, 0.0}, {T0 + 30 * MIN, 4.0}};
    struct energy_reading after[] = {{T0 - 30 * MIN, 0.0}, {T0, 3.5}, {T0 + 30 * MIN, 4.0}};
    double a[2], b[2];
    energy_hours(READING_CUMULATIVE, before, 2, T0 - H, 2, a);
    energy_hours(READING_CUMULATIVE, after, 3, T0 - H, 2, b);
    assert_near(a[0], 2.0, 1e-12);
    assert_near(a[1], 2.0, 1e-12);
    assert_near(b[0], 3.5, 1e-12);
    assert_near(b[1], 0.5, 1e-12);
}

/* An hour recomputed over a narrow range equals the same hour computed over a
 * wide one to the last bit: what makes arrival order irrelevant. */
static void an_hour_is_the_same_whatever_the_range(void **state)
{
    (void)state;
    struct energy_reading r[200];
    double reg = 1000.0;
    for (int i = 0; i < 200; i++) {
        reg += 0.1 + (i % 7) * 0.37;
        r[i] = (struct energy_reading){T0 + i * 7 * MIN + (i % 3) * 1000, reg};
    }
    double wide[30], narrow[1];
    energy_hours(READING_CUMULATIVE, r, 200, T0, 30, wide);
    for (int h = 1; h < 20; h++) {
        energy_hours(READING_CUMULATIVE, r, 200, T0 + h * H, 1, narrow);
        assert_memory_equal(&wide[h], &narrow[0], sizeof(double));
    }
}

/* Appending readings one at a time to the stored hours gives, bit for bit,
 * what a recomputation from all the readings gives. */
static void appending_equals_recomputing(void **state)
{
    (void)state;
    enum reading_type types[] = {READING_CUMULATIVE, READING_INTERVAL};
    for (int t = 0; t < 2; t++) {
        struct energy_reading r[300];
        double reg = 12345.678;
        for (int i = 0; i < 300; i++) {
            reg = i == 150 ? 0.37 : reg + 0.013 * (i % 11) + 0.1;
            r[i] = (struct energy_reading){T0 + i * 3 * MIN + (i % 7) * 999, reg};
        }
        double full[20], stored[20] = {0};
        energy_hours(types[t], r, 300, T0, 20, full);
        for (int i = 0; i < 300; i++) {
            /* A cumulative append starts from the newest stored reading. */
            bool with_prev = types[t] == READING_CUMULATIVE && i > 0;
            energy_add(types[t], &r[with_prev ? i - 1 : i], with_prev ? 2 : 1, T0, 20, stored);
        }
        assert_memory_equal(full, stored, sizeof full);
    }
}

static void hour_floor_is_a_floor(void **state)
{
    (void)state;
    assert_int_equal(energy_hour_floor(T0), T0);
    assert_int_equal(energy_hour_floor(T0 + H - 1), T0);
    assert_int_equal(energy_hour_floor(T0 - 1), T0 - H);
}

/* Readings stored before values were bounded (1e12) can sum past the
 * largest double: the hour is then the largest double, never Infinity, and
 * appending still gives what recomputing gives. */
static void an_overflowing_hour_is_the_largest_double(void **state)
{
    (void)state;
    const struct energy_reading r[] = {
        {T0 + 10 * MIN, 1.5e308}, {T0 + 20 * MIN, 1.5e308}, {T0 + 30 * MIN, 1.0}};
    double all[1], appended[1];
    energy_hours(READING_INTERVAL, r, 3, T0, 1, all);
    assert_true(all[0] == DBL_MAX);
    energy_hours(READING_INTERVAL, r, 2, T0, 1, appended);
    energy_add(READING_INTERVAL, r + 2, 1, T0, 1, appended);
    assert_true(appended[0] == all[0]);
    /* A cumulative gap spreads a finite difference: every share is finite. */
    const struct energy_reading c[] = {{0, 0.0}, {T0, 1e308}};
    double hours[2];
    energy_hours(READING_CUMULATIVE, c, 2, T0 - 2 * H, 2, hours);
    assert_true(isfinite(hours[0]) && hours[0] > 0 && hours[0] == hours[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spreads_across_an_hour_boundary),
        cmocka_unit_test(spreads_over_many_hours_and_days),
        cmocka_unit_test(a_lower_register_is_a_reset),
        cmocka_unit_test(energy_before_the_first_reading_is_zero),
        cmocka_unit_test(interval_readings_belong_to_their_hour),
        cmocka_unit_test(a_late_reading_redivides_its_interval),
        cmocka_unit_test(an_hour_is_the_same_whatever_the_range),
        cmocka_unit_test(appending_equals_recomputing),
        cmocka_unit_test(hour_floor_is_a_floor),
        cmocka_unit_test(an_overflowing_hour_is_the_largest_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
