/* handlers/measurements: a device's body becomes readings, all or nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../api/handler.h"
#include "../../base/timefmt.h"
#include "../../handlers/measurements.h"

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void readings_are_validated_all_or_nothing(void **state)
{
    (void)state;
    long long now;
    assert_true(timefmt_parse("2026-11-21T10:00:00Z", &now));
    struct energy_reading *r = NULL;
    int n = 0;
    struct response res = {0};

    json_t *one = parse("{\"ts\":\"2026-11-21T09:00:00Z\",\"meter_kwh\":1.5}");
    assert_true(measurements_parse_or_reply(one, READING_CUMULATIVE, now, &r, &n, &res));
    assert_int_equal(n, 1);
    free(r);
    json_decref(one);

    json_t *no_ts = parse("{\"kwh\":0.2}");
    assert_true(measurements_parse_or_reply(no_ts, READING_INTERVAL, now, &r, &n, &res));
    assert_int_equal(r[0].ts, now);
    free(r);
    json_decref(no_ts);

    const struct {
        const char *body;
        enum reading_type type;
        const char *field;
    } bad[] = {
        {"{\"ts\":\"2026-11-21T09:00:00Z\",\"kwh\":1}", READING_CUMULATIVE, "kwh"},
        {"{\"meter_kwh\":-1}", READING_CUMULATIVE, "meter_kwh"},
        {"{\"meter_kwh\":\"1\"}", READING_CUMULATIVE, "meter_kwh"},
        {"{\"ts\":\"2026-11-21T10:06:00Z\",\"meter_kwh\":1}", READING_CUMULATIVE, "ts"},
        {"{\"ts\":\"yesterday\",\"meter_kwh\":1}", READING_CUMULATIVE, "ts"},
        {"{\"measurements\":[]}", READING_CUMULATIVE, "measurements"},
        {"{\"measurements\":[{\"kwh\":1},{\"kwh\":1},{\"kwh\":null}]}", READING_INTERVAL,
         "measurements[2].kwh"},
        {"{\"measurements\":[{\"kwh\":1,\"extra\":2}]}", READING_INTERVAL, "measurements[0].extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = parse(bad[i].body);
        assert_false(measurements_parse_or_reply(b, bad[i].type, now, &r, &n, &res));
        assert_int_equal(res.status, 422);
        assert_string_equal(json_string_value(json_object_get(res.json, "field")), bad[i].field);
        assert_null(r);
        response_clear(&res);
        json_decref(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readings_are_validated_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
