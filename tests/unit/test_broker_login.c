/* auth/broker_login: the MQTT login cache (clock-free: every call is given
 * "now") and the refusals that need no query. An answer is fresh for
 * BROKER_LOGIN_TTL_S from when its query began, and only for the same user
 * name and token hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../../auth/broker_login.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void answers_live_one_ttl_from_their_query(void **state)
{
    (void)state;
    struct broker_login *bl = broker_login_create(NULL);
    assert_non_null(bl);
    bool allow = false;
    assert_false(broker_login_cached(bl, "7", HASH_A, 10.0, &allow));
    broker_login_remember(bl, "7", HASH_A, 10.0, true);
    assert_true(broker_login_cached(bl, "7", HASH_A, 10.0, &allow));
    assert_true(allow);
    assert_true(broker_login_cached(bl, "7", HASH_A, 10.0 + BROKER_LOGIN_TTL_S - 0.001, &allow));
    assert_false(broker_login_cached(bl, "7", HASH_A, 10.0 + BROKER_LOGIN_TTL_S, &allow));
    broker_login_free(bl);
}

static void only_the_same_name_and_token_hit(void **state)
{
    (void)state;
    struct broker_login *bl = broker_login_create(NULL);
    bool allow = true;
    broker_login_remember(bl, "EM-7", HASH_A, 5.0, false);
    assert_true(broker_login_cached(bl, "EM-7", HASH_A, 5.5, &allow));
    assert_false(allow); /* a deny is remembered as well */
    assert_false(broker_login_cached(bl, "7", HASH_A, 5.5, &allow));
    assert_false(broker_login_cached(bl, "EM-7", HASH_B, 5.5, &allow));
    assert_false(broker_login_cached(bl, "em-7", HASH_A, 5.5, &allow));
    /* A later answer replaces the earlier one. */
    broker_login_remember(bl, "EM-7", HASH_A, 6.0, true);
    assert_true(broker_login_cached(bl, "EM-7", HASH_A, 6.5, &allow));
    assert_true(allow);
    /* Keys that fit no slot are never remembered. */
    char longname[DEVICE_SERIAL_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    broker_login_remember(bl, longname, HASH_A, 6.0, true);
    assert_false(broker_login_cached(bl, longname, HASH_A, 6.5, &allow));
    broker_login_remember(bl, "7", "abc", 6.0, true);
    assert_false(broker_login_cached(bl, "7", "abc", 6.5, &allow));
    broker_login_free(bl);
    broker_login_free(NULL);
}

/* No pool here: a query would crash, so these prove none is made. */
static void names_and_passwords_no_device_has_are_denied_without_a_query(void **state)
{
    (void)state;
    struct broker_login *bl = broker_login_create(NULL);
    static const struct {
        const char *user, *password;
    } CASES[] = {
        {NULL, "UPP6Dpz-abcdefghijklmnopqrstuvwxyz0123456"},
        {"", "UPP6Dpz-abcdefghijklmnopqrstuvwxyz0123456"},
        {"guest.user", "UPP6Dpz-abcdefghijklmnopqrstuvwxyz0123456"},
        {"07", "UPP6Dpz-abcdefghijklmnopqrstuvwxyz0123456"},
        {"7", NULL},
        {"7", ""},
        {"7", "short"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        bool allow = true;
        assert_int_equal(broker_login_check(bl, CASES[i].user, CASES[i].password, &allow),
                         STATUS_OK);
        assert_false(allow);
    }
    broker_login_free(bl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_live_one_ttl_from_their_query),
        cmocka_unit_test(only_the_same_name_and_token_hit),
        cmocka_unit_test(names_and_passwords_no_device_has_are_denied_without_a_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
