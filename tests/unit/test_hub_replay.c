/* Unit tests for live/replay.c: alerts to their owner's sessions, once
 * each and in order; the replay before live alerts; paced replay. */
#include "hub_fixture.h"

static void test_alerts_go_to_the_owner_only_once_in_order(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    ready(f, 2, 2, NULL);
    add_alert(5, 11, 1);
    add_alert(6, 21, 2);
    add_alert(7, 12, 1);
    notify(f, "{\"alerts\":[5,6]}");
    notify(f, "{\"alerts\":[5,7]}"); /* 5 again: a catch-up overlapping a notification */
    settle(f, NOW);
    long long ids[8];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(alert_ids(&f->conns[i], ids), 2);
        assert_int_equal(ids[0], 5);
        assert_int_equal(ids[1], 7);
    }
    assert_int_equal(alert_ids(&f->conns[2], ids), 1);
    assert_int_equal(ids[0], 6);
    /* An id below one already sent is never sent (order over completeness). */
    add_alert(4, 11, 1);
    notify(f, "{\"alerts\":[4]}");
    settle(f, NOW);
    assert_int_equal(alert_ids(&f->conns[0], ids), 2);
}

static void test_replay_comes_before_live_alerts(void **state)
{
    struct fixture *f = *state;
    add_alert(3, 11, 1);
    add_alert(6, 11, 1);
    add_alert(8, 21, 2); /* someone else's */
    add_alert(9, 12, 1);
    open_session(f, 0);
    say(f, 0, "{\"type\":\"auth\",\"token\":\"1:client:1700003600\",\"since_alert_id\":3}", NOW);
    /* A live alert is notified before the replay ran. */
    add_alert(10, 11, 1);
    notify(f, "{\"alerts\":[10]}");
    settle(f, NOW);
    long long ids[8];
    assert_string_equal(sent_type(&f->conns[0], 0), "ready");
    assert_int_equal(alert_ids(&f->conns[0], ids), 3);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 9);
    assert_int_equal(ids[2], 10);
    add_alert(11, 11, 1);
    notify(f, "{\"alerts\":[11]}");
    settle(f, NOW);
    assert_int_equal(alert_ids(&f->conns[0], ids), 4);
    assert_int_equal(ids[3], 11);
}

static void test_long_queue_switches_to_paced_replay(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    f->conns[0].queued = HUB_LIVE_BACKLOG;
    add_alert(20, 11, 1);
    add_alert(21, 11, 1);
    notify(f, "{\"alerts\":[20,21]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "alert"), 0);
    f->conns[0].queued = 0;
    hub_session_drained(f->hub, f->sessions[0]);
    settle(f, NOW);
    long long ids[8];
    assert_int_equal(alert_ids(&f->conns[0], ids), 2);
    assert_int_equal(ids[0], 20);
    assert_int_equal(ids[1], 21);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alerts_go_to_the_owner_only_once_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_comes_before_live_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_queue_switches_to_paced_replay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
