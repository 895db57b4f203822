/* Unit tests for the simulator's broker parts (tools/sim/broker.c): the --amqp
 * and --mqtt URLs, serials, routing keys and topics, and the message bodies.
 * Expected values are written out by hand, not computed by the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "timeutil.h"

/* 2026-11-21T10:10:00Z: 20778 days after 1970-01-01, plus 10 h 10 min. */
#define T_2026_11_21_1010 ((INT64_C(20778) * 86400 + 10 * 3600 + 10 * 60) * US_PER_SEC)

static void parse_ok(enum broker_kind kind, const char *text, struct broker_url *u)
{
    char err[600] = "";
    if (broker_url_parse(kind, text, u, err, sizeof err) != 0)
        fail_msg("refused \"%s\": %s", text, err);
}

static void parse_bad(enum broker_kind kind, const char *text, const char *says)
{
    struct broker_url u;
    char err[600] = "";
    if (broker_url_parse(kind, text, &u, err, sizeof err) == 0)
        fail_msg("accepted \"%s\"", text);
    assert_non_null(strstr(err, says));
    assert_null(u.buf);
}

static void test_amqp_url(void **state)
{
    (void)state;
    struct broker_url u;
    parse_ok(BROKER_AMQP, "amqp://wattline:s3cret@127.0.0.1:5673/%2f", &u);
    assert_int_equal(u.kind, BROKER_AMQP);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 5673);
    assert_string_equal(u.user, "wattline");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.vhost, "/");
    broker_url_free(&u);
    assert_null(u.buf);

    /* The AMQP URI defaults: guest/guest, port 5672, vhost "/". */
    parse_ok(BROKER_AMQP, "amqp://broker.example", &u);
    assert_string_equal(u.host, "broker.example");
    assert_int_equal(u.port, 5672);
    assert_string_equal(u.user, "guest");
    assert_string_equal(u.password, "guest");
    assert_string_equal(u.vhost, "/");
    broker_url_free(&u);

    /* Percent-encoded credentials and a named vhost. */
    parse_ok(BROKER_AMQP, "amqp://gw%40site:p%3Ass@10.0.0.5/meters", &u);
    assert_string_equal(u.user, "gw@site");
    assert_string_equal(u.password, "p:ss");
    assert_string_equal(u.vhost, "meters");
    broker_url_free(&u);

    parse_bad(BROKER_AMQP, "amqps://u:p@host/%2f", "amqps:// (TLS) is not supported");
    parse_bad(BROKER_AMQP, "http://u:p@host/", "is not amqp://");
    parse_bad(BROKER_AMQP, "amqp://host:99999/", "is not amqp://");
    parse_bad(BROKER_AMQP, "amqp://u:p@[::1/", "is not amqp://");
    parse_bad(BROKER_AMQP, "amqp://host:notaport/", "is not amqp://");
}

static void test_mqtt_url(void **state)
{
    (void)state;
    struct broker_url u;
    parse_ok(BROKER_MQTT, "mqtt://127.0.0.1:11883", &u);
    assert_int_equal(u.kind, BROKER_MQTT);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 11883);
    assert_null(u.user);
    broker_url_free(&u);

    parse_ok(BROKER_MQTT, "mqtt://broker.example/", &u);
    assert_string_equal(u.host, "broker.example");
    assert_int_equal(u.port, 1883);
    broker_url_free(&u);

    parse_ok(BROKER_MQTT, "mqtt://[::1]:1884/", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 1884);
    broker_url_free(&u);

    parse_bad(BROKER_MQTT, "mqtt://7:token@host", "no credentials");
    parse_bad(BROKER_MQTT, "mqtt://host?x=1", "no credentials");
    parse_bad(BROKER_MQTT, "tcp://host:1883", "is not mqtt://HOST[:PORT]");
    parse_bad(BROKER_MQTT, "mqtt://", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://:1883", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://host:0", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://host:65536", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://host:1883/devices", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://[]:1883", "is not mqtt://");
    parse_bad(BROKER_MQTT, "mqtt://[::1", "is not mqtt://");
}

static void test_serial(void **state)
{
    (void)state;
    assert_true(broker_serial_valid("MTR-0042"));
    assert_true(broker_serial_valid("a"));
    assert_true(broker_serial_valid("0042_x"));
    char longest[BROKER_SERIAL_MAX + 2];
    memset(longest, 'x', BROKER_SERIAL_MAX);
    longest[BROKER_SERIAL_MAX] = '\0';
    assert_true(broker_serial_valid(longest));
    longest[BROKER_SERIAL_MAX] = 'x';
    longest[BROKER_SERIAL_MAX + 1] = '\0';
    assert_false(broker_serial_valid(longest)); /* 65 characters */
    assert_false(broker_serial_valid(""));
    assert_false(broker_serial_valid("0042"));         /* would read as an id */
    assert_false(broker_serial_valid("meter.1"));      /* '.' separates routing key words */
    assert_false(broker_serial_valid("meter/1"));      /* '/' separates topic levels */
    assert_false(broker_serial_valid("meter:1"));      /* ':' has a meaning in user names */
    assert_false(broker_serial_valid("m\xc3\xa9ter")); /* ASCII only */
    assert_false(broker_serial_valid("a b"));
}

static void test_routing(void **state)
{
    (void)state;
    char buf[BROKER_ROUTING_SIZE];
    struct broker_device by_id = {.id = 7};
    struct broker_device by_serial = {.serial = "MTR-0042"};
    assert_int_equal(broker_routing(BROKER_AMQP, &by_id, buf, sizeof buf), 14);
    assert_string_equal(buf, "measurements.7");
    assert_int_equal(broker_routing(BROKER_MQTT, &by_id, buf, sizeof buf), 22);
    assert_string_equal(buf, "devices/7/measurements");
    broker_routing(BROKER_AMQP, &by_serial, buf, sizeof buf);
    assert_string_equal(buf, "measurements.MTR-0042");
    broker_routing(BROKER_MQTT, &by_serial, buf, sizeof buf);
    assert_string_equal(buf, "devices/MTR-0042/measurements");
    /* Too small a buffer, or no device at all, is 0, never a truncated name. */
    assert_int_equal(broker_routing(BROKER_AMQP, &by_id, buf, 14), 0);
    struct broker_device nobody = {0};
    assert_int_equal(broker_routing(BROKER_MQTT, &nobody, buf, sizeof buf), 0);
    assert_int_equal(broker_device_name(&by_id, buf, sizeof buf), 1);
    assert_string_equal(buf, "7");
}

static void test_bodies(void **state)
{
    (void)state;
    struct spool_entry e[2] = {
        {.seq = 0, .ts_us = T_2026_11_21_1010, .value = 48213.7},
        {.seq = 1, .ts_us = T_2026_11_21_1010 + 600 * US_PER_SEC, .value = 48214.25},
    };
    struct broker_device by_id = {.id = 7};
    struct broker_device by_serial = {.serial = "MTR-0042"};

    char *body = broker_body(BROKER_AMQP, &by_id, e, 1, "meter_kwh");
    assert_string_equal(body,
                        "{\"device_id\":7,\"ts\":\"2026-11-21T10:10:00Z\",\"meter_kwh\":48213.7}");
    free(body);
    body = broker_body(BROKER_AMQP, &by_serial, e, 2, "kwh");
    assert_string_equal(body, "{\"serial\":\"MTR-0042\",\"measurements\":["
                              "{\"ts\":\"2026-11-21T10:10:00Z\",\"kwh\":48213.7},"
                              "{\"ts\":\"2026-11-21T10:20:00Z\",\"kwh\":48214.25}]}");
    free(body);
    /* MQTT: the HTTP body as is; the topic names the device. */
    body = broker_body(BROKER_MQTT, &by_id, e, 2, "meter_kwh");
    assert_string_equal(body, "{\"measurements\":["
                              "{\"ts\":\"2026-11-21T10:10:00Z\",\"meter_kwh\":48213.7},"
                              "{\"ts\":\"2026-11-21T10:20:00Z\",\"meter_kwh\":48214.25}]}");
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amqp_url), cmocka_unit_test(test_mqtt_url),
        cmocka_unit_test(test_serial),   cmocka_unit_test(test_routing),
        cmocka_unit_test(test_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
