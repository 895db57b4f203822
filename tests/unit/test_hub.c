/* Unit tests for live/hub.c and live/registry.c: session caps, the fate of
 * a job whose session is gone, metrics. The modules have files of their own
 * (test_hub_auth, test_hub_protocol, test_hub_replay, test_hub_usage,
 * test_hub_recheck); hub_fixture.h runs the hub without threads or sockets.
 */
#include "hub_fixture.h"

static void test_session_caps(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    open_session(f, 2);
    say(f, 2, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\"}", NOW);
    settle(f, NOW);
    assert_int_equal(f->conns[2].close_code, HUB_CLOSE_CODE_TOO_MANY);
    /* max_sessions is 3, closing ones included until the transport reports them gone. */
    assert_null(hub_session_open(f->hub, &f->conns[3], NOW));
    gone(f, 2);
    f->sessions[3] = hub_session_open(f->hub, &f->conns[3], NOW);
    assert_non_null(f->sessions[3]);
}

static void test_metrics_render(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    hub_render_metrics(f->hub, &buf, &len, &cap);
    assert_non_null(strstr(buf, "wattline_ws_sessions_open 1\n"));
    assert_non_null(strstr(buf, "wattline_ws_sessions_closed_total{reason=\"slow_consumer\"} 0"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
