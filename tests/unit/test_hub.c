/* Unit tests for live/hub.c, live/registry.c and live/unauth.c: session
 * caps and the per-address quota of unauthenticated sessions, the fate of
 * a job whose session is gone, metrics. The modules have files of their own
 * (test_hub_auth, test_hub_protocol, test_hub_replay, test_hub_usage,
 * test_hub_recheck); hub_fixture.h runs the hub without threads or sockets.
 */
#include "hub_fixture.h"

/* Authenticates the open session i as user (a client). */
static void authenticate(struct fixture *f, int i, long long user)
{
    char msg[128];
    snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%lld:client:%.0f\"}", user,
             NOW + 3600);
    say(f, i, msg, NOW);
    settle(f, NOW);
}

static unsigned long closed_count(struct fixture *f, enum hub_close_reason reason)
{
    return atomic_load(&f->hub->counters.closed[reason]);
}

/* The per-user cap (4429), then the authenticated total (1013), which
 * sessions waiting for their auth are not part of. */
static void test_session_caps(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    open_session(f, 2);
    authenticate(f, 2, 1);
    assert_int_equal(f->conns[2].close_code, HUB_CLOSE_CODE_TOO_MANY);
    gone(f, 2);
    conn_reset(&f->conns[2]);
    ready(f, 2, 2, NULL); /* max_sessions (3) authenticated */
    open_session(f, 3);   /* not refused: it is not authenticated */
    authenticate(f, 3, 3);
    assert_int_equal(f->conns[3].close_code, HUB_CLOSE_CODE_TRY_LATER);
    assert_string_equal(f->conns[3].close_reason, "server full");
    gone(f, 3);
    assert_int_equal(closed_count(f, HUB_CLOSED_SESSION_CAP), 1);
    gone(f, 0); /* a place in the total is free again */
    conn_reset(&f->conns[3]);
    ready(f, 3, 3, NULL);
}

/* Sessions waiting for their auth: at most max_unauth_per_addr per address,
 * refused at once with 1013; other addresses are not affected; a place comes
 * back when one goes. */
static void test_unauth_quota_per_address(void **state)
{
    struct fixture *f = *state;
    f->hub->limits.max_unauth_per_addr = 2;
    struct hub_refusal r = {0};
    assert_true(open_from(f, 0, "198.51.100.7", &r));
    assert_true(open_from(f, 1, "198.51.100.7", &r));
    assert_false(open_from(f, 2, "198.51.100.7", &r));
    assert_int_equal(r.code, HUB_CLOSE_CODE_TRY_LATER);
    assert_string_equal(r.reason, "too many unauthenticated sessions");
    assert_int_equal(closed_count(f, HUB_CLOSED_UNAUTH_QUOTA), 1);
    assert_true(open_from(f, 2, "2001:db8::7", &r));
    gone(f, 0);
    assert_true(open_from(f, 0, "198.51.100.7", &r));
    assert_false(open_from(f, 3, "198.51.100.7", &r));
    assert_int_equal(closed_count(f, HUB_CLOSED_UNAUTH_QUOTA), 2);
    /* A close the hub asked for keeps the place until the session is gone. */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":1}", NOW);
    assert_int_equal(f->conns[0].close_code, HUB_CLOSE_CODE_UNAUTHORIZED);
    assert_false(open_from(f, 3, "198.51.100.7", &r));
    gone(f, 0);
    assert_true(open_from(f, 3, "198.51.100.7", &r));
}

/* An address whose quota is used up can still authenticate the sessions it
 * has; each one that does leaves the quota (and enters the total). */
static void test_unauth_quota_released_on_auth(void **state)
{
    struct fixture *f = *state;
    f->hub->limits.max_unauth_per_addr = 2;
    struct hub_refusal r = {0};
    assert_true(open_from(f, 0, "198.51.100.7", &r));
    assert_true(open_from(f, 1, "198.51.100.7", &r));
    assert_false(open_from(f, 2, "198.51.100.7", &r));
    authenticate(f, 0, 1);
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_int_equal(f->hub->nauthed, 1);
    assert_true(open_from(f, 2, "198.51.100.7", &r));
    assert_false(open_from(f, 3, "198.51.100.7", &r));
    /* A re-auth does not count it twice. */
    authenticate(f, 0, 1);
    assert_int_equal(f->hub->nauthed, 1);
    assert_int_equal(f->hub->unauth.count, 2);
    gone(f, 0);
    assert_int_equal(f->hub->nauthed, 0);
    assert_false(open_from(f, 3, "198.51.100.7", &r)); /* 1 and 2 still wait */
}

/* Unauthenticated sessions have a pool of their own, max_sessions in all,
 * which bounds what they hold; a full pool keeps no user from authenticating. */
static void test_unauth_pool_is_bounded(void **state)
{
    struct fixture *f = *state;
    struct hub_refusal r = {0};
    assert_true(open_from(f, 0, "198.51.100.1", &r));
    assert_true(open_from(f, 1, "198.51.100.2", &r));
    assert_true(open_from(f, 2, "198.51.100.3", &r));
    assert_false(open_from(f, 3, "198.51.100.4", &r));
    assert_int_equal(r.code, HUB_CLOSE_CODE_TRY_LATER);
    assert_string_equal(r.reason, "server full");
    assert_int_equal(closed_count(f, HUB_CLOSED_SESSION_CAP), 1);
    authenticate(f, 0, 1);
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_true(open_from(f, 3, "198.51.100.4", &r));
}

/* Clients whose address is not known share one quota. */
static void test_unknown_addresses_share_a_quota(void **state)
{
    struct fixture *f = *state;
    f->hub->limits.max_unauth_per_addr = 2;
    char long_addr[HUB_ADDR_MAX + 8];
    memset(long_addr, '1', sizeof long_addr - 1);
    long_addr[sizeof long_addr - 1] = '\0';
    struct hub_refusal r = {0};
    assert_true(open_from(f, 0, NULL, &r));
    assert_true(open_from(f, 1, "", &r));
    assert_false(open_from(f, 2, long_addr, &r));
    assert_string_equal(r.reason, "too many unauthenticated sessions");
    assert_true(open_from(f, 2, "192.0.2.1", &r));
}

/* Many addresses come and go: every entry goes with its last session. */
static void test_unauth_entries_go_with_their_sessions(void **state)
{
    struct fixture *f = *state;
    enum { N = 500 };
    f->hub->limits.max_sessions = N;
    f->hub->limits.max_unauth_per_addr = 3;
    static struct hub_session *open[N];
    struct hub_refusal r = {0};
    for (int i = 0; i < N; i++) {
        char addr[HUB_ADDR_MAX];
        snprintf(addr, sizeof addr, "2001:db8::%x", i % 200);
        open[i] = hub_session_open(f->hub, &f->conns[0], addr, NOW, &r);
        assert_int_equal(open[i] != NULL, i < 3 * 200);
    }
    assert_int_equal(f->hub->unauth.count, N);
    assert_int_equal(f->hub->unauth.addrs.count, 200);
    for (int i = 0; i < N; i += 2)
        hub_session_closed(f->hub, open[i], HUB_CLOSED_PEER);
    for (int i = 1; i < N; i += 2)
        hub_session_closed(f->hub, open[i], HUB_CLOSED_PEER);
    assert_int_equal(f->hub->unauth.count, 0);
    assert_int_equal(f->hub->unauth.addrs.count, 0);
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
        cmocka_unit_test_setup_teardown(test_unauth_quota_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauth_quota_released_on_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauth_pool_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_addresses_share_a_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauth_entries_go_with_their_sessions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_result_for_a_gone_session_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_takes_what_is_left, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
