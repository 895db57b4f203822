/* Unit tests for api/export_limit.c: exports in progress, capped per user
 * and in all, judged per user first, and slots given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "../../api/export_limit.h"

static void per_user_cap_is_429_before_the_total(void **state)
{
    (void)state;
    struct export_limit *l = export_limit_create(2, 3);
    assert_non_null(l);
    assert_int_equal(export_limit_take(l, 7), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 7), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 7), EXPORT_USER_FULL);
    assert_int_equal(export_limit_take(l, 8), EXPORT_ADMITTED);
    /* Full in all: user 7 is still told about its own cap first. */
    assert_int_equal(export_limit_take(l, 7), EXPORT_USER_FULL);
    assert_int_equal(export_limit_take(l, 8), EXPORT_SERVER_FULL);
    assert_int_equal(export_limit_take(l, 9), EXPORT_SERVER_FULL);
    export_limit_give(l, 7);
    assert_int_equal(export_limit_take(l, 9), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 8), EXPORT_SERVER_FULL);
    export_limit_free(l);
}

static void slots_come_back_and_users_are_forgotten(void **state)
{
    (void)state;
    /* One slot per user, three in all: three users at a time, many over time. */
    struct export_limit *l = export_limit_create(1, 3);
    for (long long user = 1; user <= 100; user++) {
        assert_int_equal(export_limit_take(l, user), EXPORT_ADMITTED);
        if (user > 2)
            export_limit_give(l, user - 2);
    }
    assert_int_equal(export_limit_take(l, 1000), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 1001), EXPORT_SERVER_FULL);
    /* Giving back what was never taken changes nothing. */
    export_limit_give(l, 5000);
    assert_int_equal(export_limit_take(l, 1001), EXPORT_SERVER_FULL);
    export_limit_free(l);
    export_limit_free(NULL);
}

struct churn {
    struct export_limit *l;
    long long user;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 20000; i++)
        if (export_limit_take(c->l, c->user) == EXPORT_ADMITTED)
            export_limit_give(c->l, c->user);
    return NULL;
}

static void concurrent_takes_and_gives_balance(void **state)
{
    (void)state;
    struct export_limit *l = export_limit_create(1, 2);
    pthread_t threads[4];
    struct churn c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct churn){l, i + 1};
        pthread_create(&threads[i], NULL, churn_main, &c[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(export_limit_take(l, 10), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 11), EXPORT_ADMITTED);
    assert_int_equal(export_limit_take(l, 12), EXPORT_SERVER_FULL);
    export_limit_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_user_cap_is_429_before_the_total),
        cmocka_unit_test(slots_come_back_and_users_are_forgotten),
        cmocka_unit_test(concurrent_takes_and_gives_balance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
