/* Unit tests for live/recheck.c: stored roles re-read (deleted users,
 * demoted admins). */
#include "hub_fixture.h"

static void test_deleted_user_sessions_close(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 5, NULL);
    ready(f, 1, 5, NULL);
    ready(f, 2, 6, NULL);
    user_deleted[5] = true;
    hub_tick(f->hub, NOW + 2);
    settle(f, NOW + 2);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[1].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_int_equal(f->conns[2].close_code, 0);
}

/* users_changed re-reads at once, without waiting for the sweep. */
static void test_users_changed_rechecks_at_once(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 5, NULL);
    user_deleted[5] = true;
    notify(f, "{\"users_changed\":[5,9]}"); /* 9 has no session here */
    settle(f, NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_string_equal(f->conns[0].close_reason, "user deleted");
}

/* An admin demoted to client keeps its own devices' usage, silently loses
 * the others'. */
static void test_demoted_admin_loses_other_users_devices(void **state)
{
    struct fixture *f = *state;
    ready_as(f, 0, 3, "admin", NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":21}", NOW); /* user 2's */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":31}", NOW); /* its own */
    settle(f, NOW);
    assert_int_equal(f->sessions[0]->nsubs, 2);
    hub_tick(f->hub, NOW + 2); /* the sweep reads the stored role: client */
    settle(f, NOW + 2);
    assert_int_equal(f->sessions[0]->role, ROLE_CLIENT);
    assert_int_equal(f->sessions[0]->nsubs, 1);
    assert_int_equal(f->sessions[0]->subs[0], 31);
    notify(f, "{\"usage\":[21,31]}");
    settle(f, NOW + 2);
    assert_int_equal(usage_reads, 1);
    assert_int_equal(count_type(&f->conns[0], "usage"), 1);
    assert_int_equal(count_type(&f->conns[0], "error"), 0);
    assert_int_equal(f->conns[0].close_code, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deleted_user_sessions_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_changed_rechecks_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demoted_admin_loses_other_users_devices, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
