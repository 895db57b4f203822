/* Unit tests for base/rate.c: token-bucket arithmetic with an injected
 * clock, and the bounded table of buckets keyed by device id (what a
 * collision does, and what it never does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>

#include "../../base/rate.h"

static const double T0 = 5000.0; /* monotonic seconds */
/* DEVICE_RATE_PER_MIN=60: a token a second, a minute's worth at once. */
static const struct rate_policy PER_MIN_60 = {.per_s = 1.0, .burst = 60};

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* ---- the bucket ----------------------------------------------------------- */

static void test_full_bucket_allows_a_burst_then_refuses(void **state)
{
    (void)state;
    struct rate_bucket b = rate_bucket_full(&PER_MIN_60, T0);
    for (int i = 0; i < 60; i++)
        assert_true(rate_take(&PER_MIN_60, &b, T0) == 0);
    /* Empty: the next token comes in exactly one second. */
    assert_true(near(rate_take(&PER_MIN_60, &b, T0), 1.0));
    /* Refused takes take nothing: still one second from T0. */
    assert_true(near(rate_take(&PER_MIN_60, &b, T0 + 0.25), 0.75));
    assert_true(rate_take(&PER_MIN_60, &b, T0 + 1.0) == 0);
    assert_true(rate_take(&PER_MIN_60, &b, T0 + 1.0) > 0);
}

static void test_sustained_rate_is_per_s(void **state)
{
    (void)state;
    const struct rate_policy p = {.per_s = 10, .burst = 600}; /* the default: 600 a minute */
    struct rate_bucket b = rate_bucket_full(&p, T0);
    int accepted = 0;
    /* Two minutes of one attempt every millisecond. */
    for (int ms = 0; ms < 120000; ms++)
        if (rate_take(&p, &b, T0 + ms / 1000.0) == 0)
            accepted++;
    /* The burst plus 10 a second. */
    assert_true(accepted >= 600 + 1199 && accepted <= 600 + 1200);
}

static void test_bucket_never_holds_more_than_its_burst(void **state)
{
    (void)state;
    struct rate_bucket b = rate_bucket_full(&PER_MIN_60, T0);
    assert_true(rate_take(&PER_MIN_60, &b, T0) == 0);
    /* A day of silence fills it to 60, not 86,400. */
    assert_true(near(rate_tokens(&PER_MIN_60, &b, T0 + 86400), 60));
    int accepted = 0;
    while (rate_take(&PER_MIN_60, &b, T0 + 86400) == 0)
        accepted++;
    assert_int_equal(accepted, 60);
}

static void test_clock_going_back_adds_nothing(void **state)
{
    (void)state;
    struct rate_bucket b = rate_bucket_full(&PER_MIN_60, T0);
    for (int i = 0; i < 60; i++)
        rate_take(&PER_MIN_60, &b, T0);
    assert_true(rate_take(&PER_MIN_60, &b, T0 - 30) > 0);
    /* And the time of the bucket does not go back either. */
    assert_true(near(rate_take(&PER_MIN_60, &b, T0 + 0.5), 0.5));
}

static void test_slow_rates_wait_long(void **state)
{
    (void)state;
    const struct rate_policy p = {.per_s = 1.0 / 60, .burst = 1}; /* one a minute */
    struct rate_bucket b = rate_bucket_full(&p, T0);
    assert_true(rate_take(&p, &b, T0) == 0);
    assert_true(near(rate_take(&p, &b, T0 + 15), 45));
}

/* ---- the table ------------------------------------------------------------ */

static void test_table_rejects_bad_policies(void **state)
{
    (void)state;
    assert_null(rate_table_create(&PER_MIN_60, 0));
    assert_null(rate_table_create(&(struct rate_policy){.per_s = 0, .burst = 1}, 8));
    assert_null(rate_table_create(&(struct rate_policy){.per_s = 1, .burst = 0.5}, 8));
    rate_table_free(NULL);
}

static void test_table_keeps_a_bucket_per_id(void **state)
{
    (void)state;
    struct rate_table *t = rate_table_create(&PER_MIN_60, 16);
    assert_non_null(t);
    for (int i = 0; i < 60; i++)
        assert_true(rate_table_take(t, 7, T0) == 0);
    assert_true(near(rate_table_take(t, 7, T0), 1.0));
    /* Another device, even in the same set, is unaffected. */
    assert_true(rate_table_take(t, 7 + 16, T0) == 0);
    assert_true(rate_table_take(t, 8, T0) == 0);
    assert_true(near(rate_table_take(t, 7, T0 + 0.5), 0.5));
    assert_int_equal(rate_table_refused(t), 2);
    rate_table_free(t);
}

/* A full set: the newcomer takes the way with the most tokens, so spent
 * buckets are kept while a fuller one can go. */
static void test_table_collision_replaces_the_fullest_bucket(void **state)
{
    (void)state;
    struct rate_table *t = rate_table_create(&PER_MIN_60, 1); /* one set: all collide */
    assert_non_null(t);
    /* Ids 1..4 spend 60, 50, 40 and 1 tokens. */
    const int spent[RATE_WAYS] = {60, 50, 40, 1};
    for (int id = 1; id <= RATE_WAYS; id++)
        for (int i = 0; i < spent[id - 1]; i++)
            assert_true(rate_table_take(t, id, T0) == 0);
    /* A fifth replaces id 4 (59 tokens left, the most). */
    assert_true(rate_table_take(t, 5, T0) == 0);
    /* Id 1 is still empty: its state was kept. */
    assert_true(rate_table_take(t, 1, T0) > 0);
    /* Id 4 comes back with a full bucket (it gains 1 token: what it spent). */
    int accepted = 0;
    while (rate_table_take(t, 4, T0) == 0)
        accepted++;
    assert_int_equal(accepted, 60);
    rate_table_free(t);
}

/* Whatever the collisions, an id never gets more than its rate plus one
 * burst per time it was evicted; with fewer ids than ways, never more than
 * its rate. */
static void test_table_without_eviction_is_exact(void **state)
{
    (void)state;
    struct rate_table *t = rate_table_create(&PER_MIN_60, 1);
    int accepted[RATE_WAYS + 1] = {0};
    for (int ms = 0; ms < 10000; ms++)
        for (int id = 1; id <= RATE_WAYS; id++)
            if (rate_table_take(t, id, T0 + ms / 1000.0) == 0)
                accepted[id]++;
    for (int id = 1; id <= RATE_WAYS; id++)
        assert_true(accepted[id] >= 60 + 9 && accepted[id] <= 60 + 10);
    rate_table_free(t);
}

struct hammer {
    struct rate_table *t;
    long long id;
    int accepted;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 10000; i++)
        if (rate_table_take(h->t, h->id, T0) == 0)
            h->accepted++;
    return NULL;
}

static void test_table_is_thread_safe(void **state)
{
    (void)state;
    struct rate_table *t = rate_table_create(&PER_MIN_60, 64);
    struct hammer h[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (struct hammer){t, i % 2 + 1, 0}; /* four threads per id */
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    int total[3] = {0};
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total[h[i].id] += h[i].accepted;
    }
    /* At one instant, each id gets exactly its burst, however many threads ask. */
    assert_int_equal(total[1], 60);
    assert_int_equal(total[2], 60);
    assert_int_equal(rate_table_refused(t), 80000 - 120);
    rate_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_bucket_allows_a_burst_then_refuses),
        cmocka_unit_test(test_sustained_rate_is_per_s),
        cmocka_unit_test(test_bucket_never_holds_more_than_its_burst),
        cmocka_unit_test(test_clock_going_back_adds_nothing),
        cmocka_unit_test(test_slow_rates_wait_long),
        cmocka_unit_test(test_table_rejects_bad_policies),
        cmocka_unit_test(test_table_keeps_a_bucket_per_id),
        cmocka_unit_test(test_table_collision_replaces_the_fullest_bucket),
        cmocka_unit_test(test_table_without_eviction_is_exact),
        cmocka_unit_test(test_table_is_thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
