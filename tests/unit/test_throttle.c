/* Unit tests for handlers/throttle.c: the failed-login policy (pure, time
 * passed in) and the bounded per-address table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../auth/throttle.h"

static const double T0 = 1700000000.0;
static const struct throttle_policy SMALL = {.max_failures = 3, .window_s = 60, .lock_s = 30};

/* ---- the policy ---------------------------------------------------------- */

static void test_zero_state_allows_and_is_expired(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    assert_true(throttle_wait(&s, T0) == 0);
    assert_true(throttle_expired(&SMALL, &s, T0));
}

static void test_account_policy_is_the_contract(void **state)
{
    (void)state;
    /* At most 10 failures within 15 minutes, then 429. */
    assert_int_equal(THROTTLE_ACCOUNT.max_failures, 10);
    assert_true(THROTTLE_ACCOUNT.window_s >= 900);
    assert_true(THROTTLE_ADDRESS.max_failures > THROTTLE_ACCOUNT.max_failures);
}

static void test_address_policy_slows_without_locking_out(void **state)
{
    (void)state;
    /* Past the limit an address waits lock_s (short) per further failure,
     * for as long as the window lasts, instead of a 15-minute lock. */
    assert_true(THROTTLE_ADDRESS.lock_s > 0 && THROTTLE_ADDRESS.lock_s <= 60);
    struct throttle_state s = {0};
    for (int i = 0; i < THROTTLE_ADDRESS.max_failures; i++)
        throttle_fail(&THROTTLE_ADDRESS, &s, T0);
    assert_true(throttle_wait(&s, T0) == THROTTLE_ADDRESS.lock_s);
    double later = T0 + THROTTLE_ADDRESS.lock_s;
    assert_true(throttle_wait(&s, later) == 0);
    throttle_fail(&THROTTLE_ADDRESS, &s, later); /* still in the window: slowed again */
    assert_true(throttle_wait(&s, later) == THROTTLE_ADDRESS.lock_s);
    double after = T0 + THROTTLE_ADDRESS.window_s + THROTTLE_ADDRESS.lock_s;
    assert_true(throttle_expired(&THROTTLE_ADDRESS, &s, after));
}

static void test_locks_at_the_limit_within_the_window(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    for (int i = 0; i < THROTTLE_ACCOUNT.max_failures - 1; i++) {
        throttle_fail(&THROTTLE_ACCOUNT, &s, T0 + i);
        assert_true(throttle_wait(&s, T0 + i) == 0);
    }
    assert_int_equal(s.failures, 9);
    assert_true(s.window_start == T0);
    throttle_fail(&THROTTLE_ACCOUNT, &s, T0 + 100);
    assert_int_equal(s.failures, 10);
    assert_true(throttle_wait(&s, T0 + 100) == THROTTLE_ACCOUNT.lock_s);
    assert_true(throttle_wait(&s, T0 + 400) == THROTTLE_ACCOUNT.lock_s - 300);
    assert_false(throttle_expired(&THROTTLE_ACCOUNT, &s, T0 + 400));
}

static void test_lock_ends_and_state_expires(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    for (int i = 0; i < SMALL.max_failures; i++)
        throttle_fail(&SMALL, &s, T0);
    assert_true(throttle_wait(&s, T0 + 29.5) == 0.5);
    assert_true(throttle_wait(&s, T0 + 30) == 0);
    /* Lock over, window (60 s) not: the state still matters. */
    assert_false(throttle_expired(&SMALL, &s, T0 + 45));
    assert_true(throttle_expired(&SMALL, &s, T0 + 60));
}

static void test_failures_outside_the_window_start_over(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    throttle_fail(&SMALL, &s, T0);
    throttle_fail(&SMALL, &s, T0 + 59);
    assert_int_equal(s.failures, 2);
    throttle_fail(&SMALL, &s, T0 + 60); /* the window [T0, T0+60) has passed */
    assert_int_equal(s.failures, 1);
    assert_true(s.window_start == T0 + 60);
    assert_true(throttle_wait(&s, T0 + 60) == 0);
}

static void test_failure_after_a_short_lock_locks_again(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    for (int i = 0; i < SMALL.max_failures; i++)
        throttle_fail(&SMALL, &s, T0);
    /* The 30 s lock is over but the 60 s window is not: one more failure is
     * enough to lock again. */
    throttle_fail(&SMALL, &s, T0 + 40);
    assert_int_equal(s.failures, SMALL.max_failures + 1);
    assert_true(throttle_wait(&s, T0 + 40) == SMALL.lock_s);
}

static void test_clock_going_back_keeps_counting(void **state)
{
    (void)state;
    struct throttle_state s = {0};
    throttle_fail(&SMALL, &s, T0);
    throttle_fail(&SMALL, &s, T0 - 5);
    assert_int_equal(s.failures, 2);
}

static void test_retry_after_rounds_up_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(throttle_retry_after(0), 1);
    assert_int_equal(throttle_retry_after(0.01), 1);
    assert_int_equal(throttle_retry_after(1), 1);
    assert_int_equal(throttle_retry_after(1.2), 2);
    assert_int_equal(throttle_retry_after(899.001), 900);
    assert_int_equal(throttle_retry_after(-3), 1);
    assert_int_equal(throttle_retry_after(NAN), 1);
    assert_int_equal(throttle_retry_after(1e12), 86400);
}

/* ---- the table ------------------------------------------------------------- */

static void test_table_create_rejects_zero_slots(void **state)
{
    (void)state;
    assert_null(throttle_table_create(&SMALL, 0));
    throttle_table_free(NULL);
}

static void test_table_counts_per_key(void **state)
{
    (void)state;
    struct throttle_table *t = throttle_table_create(&SMALL, 64);
    assert_non_null(t);
    assert_true(throttle_table_wait(t, "10.0.0.1", T0) == 0);
    for (int i = 0; i < SMALL.max_failures - 1; i++)
        throttle_table_fail(t, "10.0.0.1", T0);
    assert_true(throttle_table_wait(t, "10.0.0.1", T0) == 0);
    throttle_table_fail(t, "10.0.0.1", T0 + 1);
    assert_true(throttle_table_wait(t, "10.0.0.1", T0 + 1) == SMALL.lock_s);
    assert_true(throttle_table_wait(t, "10.0.0.2", T0 + 1) == 0);
    assert_true(throttle_table_wait(t, "10.0.0.1", T0 + 1 + SMALL.lock_s) == 0);
    throttle_table_free(t);
}

static void test_table_cuts_long_keys_consistently(void **state)
{
    (void)state;
    char a[200], b[200];
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'b'; /* differs only after THROTTLE_KEY_MAX */
    struct throttle_table *t = throttle_table_create(&SMALL, 16);
    assert_non_null(t);
    for (int i = 0; i < SMALL.max_failures; i++)
        throttle_table_fail(t, a, T0);
    assert_true(throttle_table_wait(t, b, T0) > 0);
    throttle_table_free(t);
}

/* With one slot per key neighbourhood, a new key replaces the entry that
 * would expire first, and memory never grows. */
static void test_table_replaces_the_entry_expiring_first(void **state)
{
    (void)state;
    struct throttle_table *t = throttle_table_create(&SMALL, 1);
    assert_non_null(t);
    for (int i = 0; i < SMALL.max_failures; i++)
        throttle_table_fail(t, "locked", T0);
    assert_true(throttle_table_wait(t, "locked", T0) > 0);
    throttle_table_fail(t, "newcomer", T0 + 1);
    assert_true(throttle_table_wait(t, "locked", T0 + 1) == 0);
    throttle_table_free(t);

    /* With room for both, the older, sooner-expiring entry goes first. */
    t = throttle_table_create(&SMALL, 2);
    assert_non_null(t);
    throttle_table_fail(t, "old", T0);
    for (int i = 0; i < SMALL.max_failures; i++)
        throttle_table_fail(t, "locked", T0 + 10);
    throttle_table_fail(t, "third", T0 + 20);
    assert_true(throttle_table_wait(t, "locked", T0 + 20) > 0);
    throttle_table_free(t);
}

static void test_table_reuses_expired_slots(void **state)
{
    (void)state;
    struct throttle_table *t = throttle_table_create(&SMALL, 1);
    assert_non_null(t);
    throttle_table_fail(t, "first", T0);
    /* "first" has expired by now; "second" takes its slot from zero. */
    throttle_table_fail(t, "second", T0 + 100);
    for (int i = 0; i < SMALL.max_failures - 1; i++)
        throttle_table_fail(t, "second", T0 + 100);
    assert_true(throttle_table_wait(t, "second", T0 + 100) > 0);
    throttle_table_free(t);
}

struct hammer {
    struct throttle_table *table;
    int failures;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < h->failures; i++)
        throttle_table_fail(h->table, "192.0.2.7", T0);
    return NULL;
}

/* Concurrent failures are all counted: the lock comes at exactly the limit. */
static void test_table_is_thread_safe(void **state)
{
    (void)state;
    static const struct throttle_policy big = {.max_failures = 4000, .window_s = 60, .lock_s = 30};
    struct throttle_table *t = throttle_table_create(&big, 128);
    assert_non_null(t);
    pthread_t threads[4];
    struct hammer h = {.table = t, .failures = 999};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer_run, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_true(throttle_table_wait(t, "192.0.2.7", T0) == 0); /* 3996 of 4000 */
    for (int i = 0; i < 3; i++)
        throttle_table_fail(t, "192.0.2.7", T0);
    assert_true(throttle_table_wait(t, "192.0.2.7", T0) == 0);
    throttle_table_fail(t, "192.0.2.7", T0);
    assert_true(throttle_table_wait(t, "192.0.2.7", T0) > 0);
    throttle_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_state_allows_and_is_expired),
        cmocka_unit_test(test_account_policy_is_the_contract),
        cmocka_unit_test(test_address_policy_slows_without_locking_out),
        cmocka_unit_test(test_locks_at_the_limit_within_the_window),
        cmocka_unit_test(test_lock_ends_and_state_expires),
        cmocka_unit_test(test_failures_outside_the_window_start_over),
        cmocka_unit_test(test_failure_after_a_short_lock_locks_again),
        cmocka_unit_test(test_clock_going_back_keeps_counting),
        cmocka_unit_test(test_retry_after_rounds_up_within_bounds),
        cmocka_unit_test(test_table_create_rejects_zero_slots),
        cmocka_unit_test(test_table_counts_per_key),
        cmocka_unit_test(test_table_cuts_long_keys_consistently),
        cmocka_unit_test(test_table_replaces_the_entry_expiring_first),
        cmocka_unit_test(test_table_reuses_expired_slots),
        cmocka_unit_test(test_table_is_thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
