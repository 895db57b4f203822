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

/* A job's result for a session that is gone meanwhile is dropped. */
static void test_a_result_for_a_gone_session_is_dropped(void **state)
{
    struct fixture *f = *state;
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\"}", NOW);
    gone(f, 0); /* before the worker ran */
    settle(f, NOW);
    assert_int_equal(auth_reads, 1);
    assert_int_equal(f->conns[0].nsent, 0);
    open_session(f, 1); /* and its place is free */
}

/* hub_free frees sessions the transport left behind, and queued jobs
 * (the sanitizer's leak check is the assertion). */
static void test_free_takes_what_is_left(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":11}", NOW);
    open_session(f, 1);
    say(f, 1, "{\"type\":\"auth\",\"token\":\"2:client:1700003600\"}", NOW);
    say(f, 1, "{\"type\":\"subscribe\",\"device_id\":21}", NOW); /* held */
    notify(f, "{\"alerts\":[1]}");
    hub_free(f->hub);
    f->hub = NULL;
    f->sessions[0] = f->sessions[1] = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_result_for_a_gone_session_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_takes_what_is_left, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
