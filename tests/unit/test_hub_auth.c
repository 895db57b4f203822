/* Unit tests for live/session_auth.c: the first auth, re-auth, messages held
 * while a token is checked, the auth and token deadlines. */
#include "hub_fixture.h"

static void test_auth_then_ready(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    assert_int_equal(f->conns[0].nsent, 1);
    assert_int_equal(f->conns[0].close_code, 0);
}

static void test_bad_first_messages_close_4401(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {
        "{\"type\":\"subscribe\",\"device_id\":1}", "not json", "{\"type\":\"auth\"}",
        "{\"type\":\"auth\",\"token\":\"nonsense\"}",
        "{\"type\":\"auth\",\"token\":\"1:client:9999999999\",\"since_alert_id\":-1}"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        open_session(f, 0);
        say(f, 0, bad[k], NOW);
        settle(f, NOW);
        assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
        assert_int_equal(count_type(&f->conns[0], "ready"), 0);
        gone(f, 0);
        conn_reset(&f->conns[0]);
    }
}

static void test_expired_token_is_refused(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1699999990\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[0].nsent, 0);
}

static void test_auth_timeout_and_token_expiry(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    hub_tick(f->hub, NOW + 9.0);
    assert_int_equal(f->conns[0].close_code, 0);
    hub_tick(f->hub, NOW + 10.5);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);

    ready(f, 1, 1, NULL); /* its token expires at NOW + 3600 */
    say(f, 1, "{\"type\":\"auth\",\"token\":\"1:client:1700007200\"}", NOW + 100);
    settle(f, NOW + 100);
    hub_tick(f->hub, NOW + 3700);
    assert_int_equal(f->conns[1].close_code, 0); /* re-auth extended it */
    hub_tick(f->hub, NOW + 7201);
    assert_int_equal(f->conns[1].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
}

static void test_reauth_as_someone_else_closes(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"2:client:1700007200\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
}

static void test_messages_during_auth_are_held(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\"}", NOW);
    say(f, 0, "{\"type\":\"teleport\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[0].nsent, 2);
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_string_equal(sent_type(&f->conns[0], 1), "error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_then_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_first_messages_close_4401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_timeout_and_token_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reauth_as_someone_else_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_during_auth_are_held, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
