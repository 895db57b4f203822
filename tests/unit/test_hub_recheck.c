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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deleted_user_sessions_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
