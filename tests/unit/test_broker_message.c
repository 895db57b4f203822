/* broker/message.c: the three message formats, the names they carry, and
 * the readings they become for a device of each type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "../../broker/message.h"
#include "../../db/models.h"

#define NOW 1795000000000000LL     /* microseconds, in 2026 */
#define AGE (1100 * INGEST_DAY_US) /* MAX_READING_AGE_DAYS' default */

static char why[256];

static bool parse(const char *body, const char *topic, struct broker_message *m)
{
    why[0] = '\0';
    return broker_message_parse(body, strlen(body), topic, m, why, sizeof why);
}

/* Parses body and expects it refused with a reason starting with prefix. */
static void refused(const char *body, const char *topic, const char *prefix)
{
    struct broker_message m;
    bool ok = parse(body, topic, &m);
    broker_message_free(&m);
    if (ok)
        fail_msg("accepted: %s", body);
    if (strncmp(why, prefix, strlen(prefix)) != 0)
        fail_msg("%s: reason '%s', expected '%s...'", body, why, prefix);
}

static void own_format_single_and_batch(void **state)
{
    (void)state;
    struct broker_message m;
    assert_true(parse("{\"device_id\": 7, \"ts\": \"2026-11-18T09:46:40Z\", \"meter_kwh\": 12.5}",
                      NULL, &m));
    assert_int_equal(m.format, BROKER_FORMAT_OWN);
    assert_int_equal(m.nnames, 1);
    assert_int_equal(m.names[0].id, 7);
    struct ingest_reading *r;
    int n;
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_OK);
    assert_int_equal(n, 1);
    assert_true(r[0].value == 12.5);
    free(r);
    /* The wrong member for the device's type is invalid, as over HTTP. */
    assert_int_equal(
        broker_message_readings(&m, READING_INTERVAL, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_null(r);
    broker_message_free(&m);

    assert_true(parse("{\"serial\": \"MTR-0001\", \"measurements\": [{\"ts\": "
                      "\"2026-11-18T09:00:00Z\", \"kwh\": 1}, {\"ts\": \"2026-11-18T09:10:00Z\", "
                      "\"kwh\": 2}]}",
                      NULL, &m));
    assert_int_equal(m.nnames, 1);
    assert_int_equal(m.names[0].id, 0);
    assert_string_equal(m.names[0].serial, "MTR-0001");
    assert_int_equal(
        broker_message_readings(&m, READING_INTERVAL, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_OK);
    assert_int_equal(n, 2);
    free(r);
    broker_message_free(&m);
}

static void device_id_may_be_a_string_naming_an_id_or_a_serial(void **state)
{
    (void)state;
    struct broker_message m;
    assert_true(parse("{\"device_id\": \"42\", \"meter_kwh\": 1}", NULL, &m));
    assert_int_equal(m.names[0].id, 42);
    broker_message_free(&m);
    assert_true(parse("{\"device_id\": \"meter_9\", \"meter_kwh\": 1}", NULL, &m));
    assert_string_equal(m.names[0].serial, "meter_9");
    broker_message_free(&m);
    /* Both names: kept, so the caller can insist they are one device. */
    assert_true(parse("{\"device_id\": 3, \"serial\": \"abc\", \"meter_kwh\": 1}", NULL, &m));
    assert_int_equal(m.nnames, 2);
    broker_message_free(&m);
}

static void seed_format_as_the_simulators_send_it(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"timestamp\": 1795000000000, \"device_id\": \"MTR-1\", \"measurement_value\": 0.1}",
        "{\"timestamp\": \"1795000000000\", \"device_id\": 5, \"measurement_value\": \"0.1\"}",
        "{\"timestamp\": 1795000000000.0, \"device_id\": \"5\", \"measurement_value\": 0.1}",
        "{\"timestamp\": \"2026-11-18T13:06:40+02:00\", \"device_id\": 5, "
        "\"measurement_value\": 0.1}",
        "{\"pattern\": \"measurement\", \"data\": {\"timestamp\": 1795000000000, \"device_id\": "
        "5, \"measurement_value\": 0.1}}",
        "{\"pattern\": {\"cmd\": \"m\"}, \"id\": \"x1\", \"data\": {\"timestamp\": "
        "1795000000000, \"device_id\": 5, \"measurement_value\": 0.1}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct broker_message m;
        if (!parse(bodies[i], NULL, &m))
            fail_msg("%s refused: %s", bodies[i], why);
        assert_int_equal(m.format, BROKER_FORMAT_SEED);
        assert_int_equal(m.ts_us, 1795000000000000LL);
        assert_true(m.value == 0.1);
        /* The value is what the device's type says: a register or an interval. */
        for (int t = 0; t < 2; t++) {
            struct ingest_reading *r;
            int n;
            assert_int_equal(broker_message_readings(&m, (enum reading_type)t, NOW, AGE, &r, &n,
                                                     why, sizeof why),
                             STATUS_OK);
            assert_int_equal(r[0].kind, t);
            free(r);
        }
        broker_message_free(&m);
    }
}

static void seed_values_and_times_that_are_not(void **state)
{
    (void)state;
    refused("{\"timestamp\": 1795000000000, \"device_id\": 5, \"measurement_value\": \"nan\"}",
            NULL, "measurement_value");
    refused("{\"timestamp\": 1795000000000, \"device_id\": 5, \"measurement_value\": \"0x10\"}",
            NULL, "measurement_value");
    refused("{\"timestamp\": 1795000000000, \"device_id\": 5, \"measurement_value\": null}", NULL,
            "measurement_value");
    refused("{\"timestamp\": -1, \"device_id\": 5, \"measurement_value\": 1}", NULL, "timestamp");
    refused("{\"timestamp\": 1.5, \"device_id\": 5, \"measurement_value\": 1}", NULL, "timestamp");
    refused("{\"timestamp\": \"99999999999999999999\", \"device_id\": 5, \"measurement_value\": 1}",
            NULL, "timestamp");
    refused("{\"timestamp\": \"yesterday\", \"device_id\": 5, \"measurement_value\": 1}", NULL,
            "timestamp");
    refused("{\"device_id\": 5, \"measurement_value\": 1}", NULL, "timestamp: missing");
    refused("{\"timestamp\": 1795000000000, \"device_id\": 5}", NULL, "measurement_value: missing");
    refused("{\"timestamp\": 1795000000000, \"device_id\": 5, \"measurement_value\": 1, "
            "\"extra\": 1}",
            NULL, "extra: unknown member");

    /* Parsed, but a rule of ingestion fails for the device. */
    struct broker_message m;
    assert_true(parse("{\"timestamp\": 1795000000000, \"device_id\": 5, \"measurement_value\": "
                      "-3}",
                      NULL, &m));
    struct ingest_reading *r;
    int n;
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_non_null(strstr(why, "measurement_value"));
    broker_message_free(&m);
    assert_true(
        parse("{\"timestamp\": 1000, \"device_id\": 5, \"measurement_value\": 3}", NULL, &m));
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_non_null(strstr(why, "timestamp"));
    broker_message_free(&m);
}

/* A reading older than the max age a consumer was given (MAX_READING_AGE_DAYS,
 * or a retired month: ingest_max_age_us) is dead-lettered with too_old first,
 * in both formats; another fault is not. */
static void too_old_leads_the_reason(void **state)
{
    (void)state;
    struct broker_message m;
    struct ingest_reading *r;
    int n;
    long long hour = 3600LL * 1000000;
    assert_true(parse("{\"timestamp\": 1794990000000, \"device_id\": 5, \"measurement_value\": "
                      "3}",
                      NULL, &m));
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_OK);
    free(r);
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, hour, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_int_equal(strncmp(why, "too_old: timestamp: ", 20), 0);
    broker_message_free(&m);
    assert_true(
        parse("{\"device_id\": 7, \"ts\": \"2026-11-18T00:00:00Z\", \"kwh\": 1}", NULL, &m));
    assert_int_equal(
        broker_message_readings(&m, READING_INTERVAL, NOW, hour, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_int_equal(strncmp(why, "too_old: ts: ", 13), 0);
    assert_int_equal(
        broker_message_readings(&m, READING_CUMULATIVE, NOW, AGE, &r, &n, why, sizeof why),
        STATUS_INVALID);
    assert_null(strstr(why, "too_old"));
    broker_message_free(&m);
}

static void names_that_cannot_be_a_device(void **state)
{
    (void)state;
    refused("{\"meter_kwh\": 1}", NULL, "device_id: missing");
    refused("{\"device_id\": 0, \"meter_kwh\": 1}", NULL, "device_id");
    refused("{\"device_id\": -4, \"meter_kwh\": 1}", NULL, "device_id");
    refused("{\"device_id\": 1.5, \"meter_kwh\": 1}", NULL, "device_id");
    refused("{\"device_id\": \"a/b\", \"meter_kwh\": 1}", NULL, "device_id");
    refused("{\"device_id\": \"\", \"meter_kwh\": 1}", NULL, "device_id");
    refused("{\"serial\": \"123\", \"meter_kwh\": 1}", NULL, "serial");
    refused("{\"serial\": 5, \"meter_kwh\": 1}", NULL, "serial");
    refused("{\"device_id\": \"99999999999999999999\", \"meter_kwh\": 1}", NULL, "device_id");
}

static void bodies_that_are_not_messages(void **state)
{
    (void)state;
    refused("", NULL, "body: not JSON");
    refused("{\"device_id\": 1, \"device_id\": 2, \"meter_kwh\": 1}", NULL, "body: not JSON");
    refused("[1, 2]", NULL, "body: must be a JSON object");
    refused("\"text\"", NULL, "body");
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    refused(deep, NULL, "body: JSON nested deeper");
    /* A body over 1 MiB is refused before it is parsed. */
    static char big[BROKER_MESSAGE_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    struct broker_message m;
    assert_false(broker_message_parse(big, sizeof big - 1, NULL, &m, why, sizeof why));
    assert_non_null(strstr(why, "more than"));
    broker_message_free(&m);
}

static void mqtt_topics_name_the_device(void **state)
{
    (void)state;
    struct broker_name name;
    assert_true(broker_topic_name("devices.7.measurements", 22, &name));
    assert_int_equal(name.id, 7);
    assert_true(broker_topic_name("devices.MTR-1.measurements", 26, &name));
    assert_string_equal(name.serial, "MTR-1");
    assert_false(broker_topic_name("devices..measurements", 21, &name));
    assert_false(broker_topic_name("devices.7.commands", 18, &name));
    assert_false(broker_topic_name("devices.a.b.measurements", 24, &name));
    assert_false(broker_topic_name("measurements.7", 14, &name));

    /* The topic's name comes first; a body naming the device too is kept for
     * the check that both name one device. */
    struct broker_message m;
    assert_true(parse("{\"meter_kwh\": 3}", "devices.9.measurements", &m));
    assert_int_equal(m.nnames, 1);
    assert_int_equal(m.names[0].id, 9);
    broker_message_free(&m);
    assert_true(parse("{\"serial\": \"x1\", \"meter_kwh\": 3}", "devices.9.measurements", &m));
    assert_int_equal(m.nnames, 2);
    assert_string_equal(m.names[1].serial, "x1");
    broker_message_free(&m);
    refused("{\"meter_kwh\": 3}", "devices.9.commands", "routing key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_format_single_and_batch),
        cmocka_unit_test(device_id_may_be_a_string_naming_an_id_or_a_serial),
        cmocka_unit_test(seed_format_as_the_simulators_send_it),
        cmocka_unit_test(seed_values_and_times_that_are_not),
        cmocka_unit_test(too_old_leads_the_reason),
        cmocka_unit_test(names_that_cannot_be_a_device),
        cmocka_unit_test(bodies_that_are_not_messages),
        cmocka_unit_test(mqtt_topics_name_the_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
