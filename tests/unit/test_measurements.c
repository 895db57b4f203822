/* The body of POST /api/v1/measurements becomes readings, all or nothing
 * (ingest/decode.c, which the handler calls). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../base/timefmt.h"
#include "../../ingest/decode.h"

#define AGE (1100 * INGEST_DAY_US) /* MAX_READING_AGE_DAYS' default */

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
    struct ingest_reading *r = NULL;
    int n = 0;
    struct ingest_decode_error err;

    json_t *one = parse("{\"ts\":\"2026-11-21T09:00:00Z\",\"meter_kwh\":1.5}");
    assert_int_equal(ingest_decode(one, READING_CUMULATIVE, now, AGE, &r, &n, &err), STATUS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].kind, READING_CUMULATIVE);
    assert_true(r[0].value == 1.5);
    free(r);
    json_decref(one);

    /* The oldest ts taken: exactly MAX_READING_AGE_DAYS ago; and the largest value. */
    json_t *oldest = parse("{\"ts\":\"2023-11-17T10:00:00Z\",\"kwh\":1e12}");
    assert_int_equal(ingest_decode(oldest, READING_INTERVAL, now, AGE, &r, &n, &err), STATUS_OK);
    assert_true(r[0].ts == now - AGE && r[0].value == 1e12);
    free(r);
    json_decref(oldest);

    json_t *no_ts = parse("{\"kwh\":0.2}");
    assert_int_equal(ingest_decode(no_ts, READING_INTERVAL, now, AGE, &r, &n, &err), STATUS_OK);
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
        assert_int_equal(ingest_decode(b, bad[i].type, now, AGE, &r, &n, &err), STATUS_INVALID);
        assert_int_equal(err.fault, INGEST_DECODE_INVALID_FIELD);
        assert_string_equal(err.field, bad[i].field);
        assert_null(r);
        assert_int_equal(n, 0);
        json_decref(b);
    }
}

/* The messages are the ones the API has always given. */
static void faults_read_as_before(void **state)
{
    (void)state;
    long long now;
    assert_true(timefmt_parse("2026-11-21T10:00:00Z", &now));
    struct ingest_reading *r = NULL;
    int n = 0;
    struct ingest_decode_error err;
    const struct {
        const char *body;
        enum reading_type type;
        enum ingest_decode_fault fault;
        const char *field, *detail;
    } cases[] = {
        {"{\"measurements\":[{\"kwh\":1}],\"x\":1}", READING_INTERVAL, INGEST_DECODE_UNKNOWN_FIELD,
         "", "a batch body has only the member measurements"},
        {"{\"measurements\":{}}", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD, "measurements",
         "measurements must be an array of 1 to 10000 readings"},
        {"[1]", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD, "body",
         "body: a reading must be an object"},
        {"{\"measurements\":[{\"kwh\":1},7]}", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD,
         "measurements[1]", "measurements[1]: a reading must be an object"},
        {"{\"meter_kwh\":1}", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD, "meter_kwh",
         "meter_kwh: this device reports interval energy: use kwh"},
        {"{\"kwh\":1}", READING_CUMULATIVE, INGEST_DECODE_INVALID_FIELD, "kwh",
         "kwh: this device reports a meter register: use meter_kwh"},
        {"{\"ts\":\"2026-11-21T10:06:00Z\"}", READING_CUMULATIVE, INGEST_DECODE_INVALID_FIELD, "ts",
         "ts: ts is more than 5 minutes in the future"},
        {"{\"ts\":\"2026-11-21T09:00:00Z\"}", READING_CUMULATIVE, INGEST_DECODE_INVALID_FIELD,
         "meter_kwh", "meter_kwh: missing"},
        {"{\"kwh\":-0.5}", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD, "kwh",
         "kwh: must be a number from 0 to 1e12"},
        {"{\"kwh\":1.1e12}", READING_INTERVAL, INGEST_DECODE_INVALID_FIELD, "kwh",
         "kwh: must be a number from 0 to 1e12"},
        {"{\"measurements\":[{\"meter_kwh\":1},{\"meter_kwh\":1e308}]}", READING_CUMULATIVE,
         INGEST_DECODE_INVALID_FIELD, "measurements[1].meter_kwh",
         "measurements[1].meter_kwh: must be a number from 0 to 1e12"},
        /* MAX_READING_AGE_DAYS before 2026-11-21T10:00:00Z is 2023-11-17T10:00:00Z */
        {"{\"ts\":\"1970-01-01T00:00:00Z\",\"meter_kwh\":0}", READING_CUMULATIVE,
         INGEST_DECODE_TOO_OLD, "ts",
         "ts: ts is older than MAX_READING_AGE_DAYS before the server's time, or in a month "
         "whose raw readings were retired"},
        {"{\"measurements\":[{\"kwh\":1},{\"ts\":\"2023-11-17T09:59:59.999999Z\",\"kwh\":1}]}",
         READING_INTERVAL, INGEST_DECODE_TOO_OLD, "measurements[1].ts",
         "measurements[1].ts: ts is older than MAX_READING_AGE_DAYS before the server's time, or "
         "in a month "
         "whose raw readings were retired"},
        /* the first offending member, in the body's order */
        {"{\"kwh\":1,\"extra\":2}", READING_CUMULATIVE, INGEST_DECODE_INVALID_FIELD, "kwh",
         "kwh: this device reports a meter register: use meter_kwh"},
        {"{\"extra\":2,\"kwh\":1}", READING_CUMULATIVE, INGEST_DECODE_INVALID_FIELD, "extra",
         "extra: unknown member"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *b = parse(cases[i].body);
        assert_int_equal(ingest_decode(b, cases[i].type, now, AGE, &r, &n, &err), STATUS_INVALID);
        assert_int_equal(err.fault, cases[i].fault);
        assert_string_equal(err.field, cases[i].field);
        assert_string_equal(err.detail, cases[i].detail);
        json_decref(b);
    }
}

static void a_batch_has_at_most_the_maximum(void **state)
{
    (void)state;
    json_t *list = json_array();
    for (int i = 0; i < INGEST_BATCH_MAX; i++)
        json_array_append_new(list, json_pack("{s:f}", "kwh", 0.5));
    json_t *body = json_pack("{s:o}", "measurements", list);
    struct ingest_reading *r = NULL;
    int n = 0;
    struct ingest_decode_error err;
    assert_int_equal(ingest_decode(body, READING_INTERVAL, 1000, AGE, &r, &n, &err), STATUS_OK);
    assert_int_equal(n, INGEST_BATCH_MAX);
    free(r);
    json_array_append_new(list, json_pack("{s:f}", "kwh", 0.5));
    assert_int_equal(ingest_decode(body, READING_INTERVAL, 1000, AGE, &r, &n, &err),
                     STATUS_INVALID);
    assert_string_equal(err.field, "measurements");
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readings_are_validated_all_or_nothing),
        cmocka_unit_test(faults_read_as_before),
        cmocka_unit_test(a_batch_has_at_most_the_maximum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
