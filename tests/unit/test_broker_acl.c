/* api/broker_acl: what a device logged in to RabbitMQ's MQTT plugin may do:
 * the vhost of AMQP_URL, exchange amq.topic and its own subscription queues,
 * and on amq.topic only its own measurements, command results (write) and
 * commands (read). Everything else is denied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../../api/broker_acl.h"

#define URL "amqp://wattline:s%40cret@127.0.0.1:5672/%2f"

static void vhost_is_read_from_the_url(void **state)
{
    (void)state;
    char out[64];
    static const struct {
        const char *url, *vhost;
    } CASES[] = {
        {"amqp://u:p@h:5672/%2f", "/"},
        {"amqp://u:p@h:5672/%2F", "/"},
        {"amqp://h", "/"},
        {"amqp://h:5672", "/"},
        {"amqps://u:p@h/meters", "meters"},
        {"amqp://h/a%20b?heartbeat=10", "a b"},
        {"amqp://h/a+b", "a+b"},
        {"amqp://h/", ""},
        {"amqp://[::1]:5672/v", "v"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        assert_true(broker_acl_vhost_of_url(CASES[i].url, out, sizeof out));
        assert_string_equal(out, CASES[i].vhost);
    }
    assert_false(broker_acl_vhost_of_url(NULL, out, sizeof out));
    assert_false(broker_acl_vhost_of_url("http://h/x", out, sizeof out));
    assert_false(broker_acl_vhost_of_url("amqp://h/%zz", out, sizeof out));
    assert_false(broker_acl_vhost_of_url("amqp://h/%00", out, sizeof out));
    assert_false(broker_acl_vhost_of_url("amqp://h/toolong", out, 4));
}

static void vhost_allows_only_the_urls_for_devices(void **state)
{
    (void)state;
    assert_true(broker_acl_vhost(URL, "7", "/"));
    assert_true(broker_acl_vhost(URL, "EM-7", "/"));
    assert_true(broker_acl_vhost("amqp://h/meters", "7", "meters"));
    assert_false(broker_acl_vhost(URL, "7", "meters"));
    assert_false(broker_acl_vhost(URL, "7", ""));
    assert_false(broker_acl_vhost("amqp://h/meters", "7", "/"));
    /* Not a device's name: nobody we let in. */
    assert_false(broker_acl_vhost(URL, "guest.user", "/"));
    assert_false(broker_acl_vhost(URL, "07", "/"));
    assert_false(broker_acl_vhost(URL, "a.b", "/"));
    assert_false(broker_acl_vhost(URL, "", "/"));
    assert_false(broker_acl_vhost(URL, NULL, "/"));
    assert_false(broker_acl_vhost(URL, "7", NULL));
    assert_false(broker_acl_vhost(NULL, "7", "/"));
}

static void resources_are_amq_topic_and_subscription_queues(void **state)
{
    (void)state;
    const char *u = "EM-7";
    assert_true(broker_acl_resource(URL, u, "/", "exchange", "amq.topic", "read"));
    assert_true(broker_acl_resource(URL, u, "/", "exchange", "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", "amq.topic", "configure"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", "wattline", "write"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", "amq.direct", "read"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", "", "read"));
    const char *queues[] = {"mqtt-subscription-xqos1", "mqtt-subscription-xqos0",
                            "mqtt-subscription-qos1", "mqtt-subscription-EM-7 clientqos0"};
    const char *perms[] = {"configure", "write", "read"};
    for (size_t q = 0; q < sizeof queues / sizeof queues[0]; q++)
        for (size_t p = 0; p < 3; p++)
            assert_true(broker_acl_resource(URL, u, "/", "queue", queues[q], perms[p]));
    const char *other[] = {"wattline.measurements",
                           "mqtt-subscription-xqos2",
                           "mqtt-subscription-x",
                           "mqtt-subscriptionxqos1",
                           "xmqtt-subscription-qos1",
                           "mqtt-subscription-qos",
                           "amq.topic"};
    for (size_t q = 0; q < sizeof other / sizeof other[0]; q++)
        assert_false(broker_acl_resource(URL, u, "/", "queue", other[q], "read"));
    assert_false(broker_acl_resource(URL, u, "/", "queue", "mqtt-subscription-xqos1", "delete"));
    assert_false(broker_acl_resource(URL, u, "/", "topic", "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, u, "/", "Exchange", "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, u, "other", "exchange", "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, "0", "/", "exchange", "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, u, "/", NULL, "amq.topic", "write"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", NULL, "write"));
    assert_false(broker_acl_resource(URL, u, "/", "exchange", "amq.topic", NULL));
}

static void topics_are_the_devices_own(void **state)
{
    (void)state;
#define TOPIC(user, perm, key) broker_acl_topic(URL, user, "/", "topic", "amq.topic", perm, key)
    assert_true(TOPIC("7", "write", "devices.7.measurements"));
    assert_true(TOPIC("7", "write", "devices.7.command_results"));
    assert_true(TOPIC("7", "read", "devices.7.commands"));
    assert_true(TOPIC("EM-7", "write", "devices.EM-7.measurements"));
    assert_true(TOPIC("EM-7", "read", "devices.EM-7.commands"));
    /* Reading measurements, writing commands: no. */
    assert_false(TOPIC("7", "read", "devices.7.measurements"));
    assert_false(TOPIC("7", "write", "devices.7.commands"));
    assert_false(TOPIC("7", "read", "devices.7.command_results"));
    assert_false(TOPIC("7", "configure", "devices.7.measurements"));
    /* Another device, by id or by serial; the other name of itself. */
    const char *keys[] = {"devices.8.measurements",
                          "devices.77.measurements",
                          "devices.EM-7.measurements",
                          "devices.7.measurements.x",
                          "devices.7.measurementsx",
                          "devices.7",
                          "devices..measurements",
                          "devices.*.measurements",
                          "devices.#",
                          "#",
                          "devices.7.#",
                          "Devices.7.measurements",
                          "devices.7.measurements ",
                          ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_false(TOPIC("7", "write", keys[i]));
    assert_false(TOPIC("EM-7", "write", "devices.7.measurements"));
    assert_false(TOPIC("EM", "write", "devices.EM-7.measurements"));
    assert_false(TOPIC("7", "read", "devices.7.*"));
    assert_false(TOPIC("7", "read", "devices.*.commands"));
#undef TOPIC
    assert_false(
        broker_acl_topic(URL, "7", "/", "topic", "wattline", "write", "devices.7.measurements"));
    assert_false(broker_acl_topic(URL, "7", "/", "exchange", "amq.topic", "write",
                                  "devices.7.measurements"));
    assert_false(
        broker_acl_topic(URL, "7", "v", "topic", "amq.topic", "write", "devices.7.measurements"));
    assert_false(
        broker_acl_topic(URL, "07", "/", "topic", "amq.topic", "write", "devices.07.measurements"));
    assert_false(broker_acl_topic(URL, "7", "/", "topic", "amq.topic", "write", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vhost_is_read_from_the_url),
        cmocka_unit_test(vhost_allows_only_the_urls_for_devices),
        cmocka_unit_test(resources_are_amq_topic_and_subscription_queues),
        cmocka_unit_test(topics_are_the_devices_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
