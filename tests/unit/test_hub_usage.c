/* Unit tests for live/usage.c: subscriptions and their visibility check,
 * usage coalesced per device and second, owner changes. */
#include "hub_fixture.h"

static void test_subscribe_checks_visibility(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":21}", NOW); /* user 2's */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":99}", NOW); /* no such device */
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":11}", NOW); /* own */
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "error"), 2);
    notify(f, "{\"usage\":[11,21,99]}");
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "usage"), 1);
    assert_int_equal(usage_reads, 1); /* only the device someone here subscribed to */
    json_t *u = f->conns[0].sent[f->conns[0].nsent - 1];
    assert_int_equal(json_integer_value(json_object_get(u, "device_id")), 11);
    assert_string_equal(json_string_value(json_object_get(u, "hour_start")),
                        "2023-11-14T22:00:00Z");
    assert_string_equal(json_string_value(json_object_get(u, "last_ts")), "2023-11-14T22:13:20Z");
}

static void test_usage_is_coalesced_per_second(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 1, NULL);
    ready(f, 1, 1, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":11}", NOW);
    say(f, 1, "{\"type\":\"subscribe\",\"device_id\":11}", NOW);
    settle(f, NOW);
    for (int k = 0; k < 5; k++) {
        notify(f, "{\"usage\":[11]}");
        settle(f, NOW + 0.1 * k);
        hub_tick(f->hub, NOW + 0.1 * k);
        settle(f, NOW + 0.1 * k);
    }
    assert_int_equal(usage_reads, 1); /* one read serves both sessions */
    assert_int_equal(count_type(&f->conns[0], "usage"), 1);
    assert_int_equal(count_type(&f->conns[1], "usage"), 1);
    hub_tick(f->hub, NOW + 1.05);
    settle(f, NOW + 1.05);
    assert_int_equal(count_type(&f->conns[0], "usage"), 2); /* the burst's trailing message */
    hub_tick(f->hub, NOW + 3);
    settle(f, NOW + 3);
    assert_int_equal(count_type(&f->conns[0], "usage"), 2); /* nothing new: nothing sent */
    say(f, 1, "{\"type\":\"unsubscribe\",\"device_id\":11}", NOW + 3);
    notify(f, "{\"usage\":[11]}");
    settle(f, NOW + 3);
    assert_int_equal(count_type(&f->conns[0], "usage"), 3);
    assert_int_equal(count_type(&f->conns[1], "usage"), 2); /* unsubscribed before the third */
}

static void test_owner_change_drops_the_subscription(void **state)
{
    struct fixture *f = *state;
    ready(f, 0, 3, NULL);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":31}", NOW);
    say(f, 0, "{\"type\":\"subscribe\",\"device_id\":32}", NOW);
    settle(f, NOW);
    assert_int_equal(count_type(&f->conns[0], "error"), 0);
    owner_override = 4; /* both devices go to user 4 */
    /* Through the usage read itself, notification or not... */
    notify(f, "{\"usage\":[31]}");
    settle(f, NOW);
    /* ...and through devices_changed. */
    notify(f, "{\"devices_changed\":[32]}");
    settle(f, NOW);
    owner_override = 0;
    notify(f, "{\"usage\":[31,32]}");
    settle(f, NOW + 5);
    assert_int_equal(usage_reads, 1); /* the first read; then nobody subscribed any more */
    assert_int_equal(count_type(&f->conns[0], "usage"), 0);
    assert_int_equal(count_type(&f->conns[0], "error"), 0); /* dropped silently */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscribe_checks_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_is_coalesced_per_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_change_drops_the_subscription, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
