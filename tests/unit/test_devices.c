/* Unit tests for the pure parts of the Devices, Consumption and readings
 * routes: opaque cursors, request body checks, time zone names, bucket names,
 * spreading stored hours over a zone's hours, and the Accept header test for
 * CSV.
 *
 * Cursors are checked against OpenSSL's base64 (not the module's encoder), so
 * a bug in the module cannot hide itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "../../db/consumption.h"
#include "../../handlers/consumption.h"
#include "../../handlers/devices.h"
#include "../../handlers/readings_export.h"

/* ---- helpers ----------------------------------------------------------------- */

/* base64url without padding of text, by OpenSSL. */
static void reference_cursor(const char *text, char *out, size_t size)
{
    unsigned char b64[128];
    int n = EVP_EncodeBlock(b64, (const unsigned char *)text, (int)strlen(text));
    while (n > 0 && b64[n - 1] == '=')
        n--;
    assert_true((size_t)n < size);
    for (int i = 0; i < n; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[n] = '\0';
}

static const char *problem_member(const struct response *res, const char *name)
{
    const json_t *v = json_object_get(res->json, name);
    return v ? json_string_value(v) : NULL;
}

/* Runs the body check and returns the HTTP status (200 when accepted). */
static int check_body(const char *text, bool create, struct device_fields *f, struct response *res)
{
    json_error_t err;
    json_t *body = json_loads(text, 0, &err);
    assert_non_null(body);
    memset(res, 0, sizeof *res);
    bool ok = devices_read_fields_or_reply(body, create, f, res);
    /* the strings in f are borrowed from body: copy what the tests look at */
    static char name[256];
    snprintf(name, sizeof name, "%s", ok && f->name ? f->name : "");
    if (ok && f->name)
        f->name = name;
    f->description = NULL;
    f->address = NULL;
    json_decref(body);
    return ok ? 200 : res->status;
}

static void assert_body_problem(const char *text, bool create, int status, const char *code,
                                const char *field)
{
    struct device_fields f;
    struct response res;
    assert_int_equal(check_body(text, create, &f, &res), status);
    assert_string_equal(problem_member(&res, "code"), code);
    assert_string_equal(problem_member(&res, "field"), field);
    response_clear(&res);
}

/* ---- cursors ------------------------------------------------------------------ */

static void test_cursor_matches_reference_base64url(void **state)
{
    (void)state;
    static const long long values[] = {0,         1,  7,        42, 999, 1774735200000000LL,
                                       LLONG_MAX, -1, LLONG_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (const char *tag = "dr"; *tag; tag++) {
            char plain[32], expected[64], got[DEVICES_CURSOR_MAX];
            snprintf(plain, sizeof plain, "%c%lld", *tag, values[i]);
            reference_cursor(plain, expected, sizeof expected);
            devices_cursor_encode(*tag, values[i], got);
            assert_string_equal(got, expected);
            long long back = 12345;
            assert_true(devices_cursor_decode(got, *tag, &back));
            assert_true(back == values[i]);
        }
    }
}

static void test_cursor_rejects_anything_else(void **state)
{
    (void)state;
    char overflow[64], plus[64], space[64], zeros[64], trailing[64], exact_max[64];
    reference_cursor("d99999999999999999999", overflow, sizeof overflow);
    reference_cursor("d+1", plus, sizeof plus);
    reference_cursor("d 1", space, sizeof space);
    reference_cursor("d01", zeros, sizeof zeros);
    reference_cursor("d1x", trailing, sizeof trailing);
    reference_cursor("d9223372036854775807", exact_max, sizeof exact_max);
    const char *bad[] = {
        "",
        "Z",
        "ZA" /* "d" alone */,
        "ZDE=" /* padding */,
        "ZDF" /* "d1" with stray low bits */,
        "cjE" /* "r1": another list's cursor */,
        "ZD E",
        "ZD+x",
        "ZD/x",
        "ZDE\n",
        overflow,
        plus,
        space,
        zeros,
        trailing,
        "ZDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MA" /* too long */,
    };
    long long v = 777;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(devices_cursor_decode(bad[i], 'd', &v));
        assert_true(v == 777);
    }
    assert_false(devices_cursor_decode(NULL, 'd', &v));
    assert_true(devices_cursor_decode("ZDE", 'd', &v) && v == 1);
    assert_true(devices_cursor_decode(exact_max, 'd', &v) && v == LLONG_MAX);
    assert_false(devices_cursor_decode("ZDE", 'r', &v));
}

static void test_cursor_query_parameter(void **state)
{
    (void)state;
    struct query_arg args[] = {{"cursor", "nope"}};
    struct request req = {.query = args, .nquery = 1};
    struct response res = {0};
    long long v = 5;
    assert_false(devices_cursor_or_reply(&req, 'd', &v, &res));
    assert_int_equal(res.status, 400);
    assert_string_equal(problem_member(&res, "code"), "invalid_cursor");
    assert_string_equal(problem_member(&res, "field"), "cursor");
    response_clear(&res);

    req.nquery = 0; /* absent: fine, value untouched */
    assert_true(devices_cursor_or_reply(&req, 'd', &v, &res));
    assert_true(v == 5);
    args[0].value = "ZDQy";
    req.nquery = 1;
    assert_true(devices_cursor_or_reply(&req, 'd', &v, &res));
    assert_true(v == 42);
}

/* ---- request bodies ----------------------------------------------------------- */

static void test_create_body_minimal_and_full(void **state)
{
    (void)state;
    struct device_fields f;
    struct response res;
    assert_int_equal(check_body("{\"name\":\"M\",\"max_hourly_kwh\":2}", true, &f, &res), 200);
    assert_string_equal(f.name, "M");
    assert_true(f.has_max_hourly_kwh && f.max_hourly_kwh == 2);
    assert_false(f.has_reading_type);
    assert_int_equal(f.reading_type, READING_CUMULATIVE);
    assert_false(f.has_owner);

    assert_int_equal(
        check_body("{\"name\":\"M\",\"max_hourly_kwh\":0.5,\"reading_type\":"
                   "\"interval\",\"owner_id\":9,\"description\":\"\",\"address\":\"x\"}",
                   true, &f, &res),
        200);
    assert_int_equal(f.reading_type, READING_INTERVAL);
    assert_true(f.has_owner && f.owner_id == 9);

    assert_int_equal(check_body("{\"owner_id\":null}", false, &f, &res), 200);
    assert_true(f.has_owner && f.owner_id == 0);
    assert_null(f.name);
    assert_int_equal(check_body("{}", false, &f, &res), 200);
    assert_false(f.has_owner || f.has_max_hourly_kwh || f.name);
}

static void test_body_problems_name_the_field(void **state)
{
    (void)state;
    assert_body_problem("{\"max_hourly_kwh\":1}", true, 422, "missing_field", "name");
    assert_body_problem("{\"name\":\"x\"}", true, 422, "missing_field", "max_hourly_kwh");
    assert_body_problem("{\"name\":\"\",\"max_hourly_kwh\":1}", true, 422, "invalid_field", "name");
    assert_body_problem("{\"name\":\"a\\u0001b\",\"max_hourly_kwh\":1}", true, 422, "invalid_field",
                        "name");
    assert_body_problem("{\"name\":\"a\",\"max_hourly_kwh\":0}", true, 422, "invalid_field",
                        "max_hourly_kwh");
    assert_body_problem("{\"name\":\"a\",\"max_hourly_kwh\":-0.0}", true, 422, "invalid_field",
                        "max_hourly_kwh");
    assert_body_problem("{\"name\":\"a\",\"max_hourly_kwh\":1,\"reading_type\":\"x\"}", true, 422,
                        "invalid_field", "reading_type");
    assert_body_problem("{\"name\":\"a\",\"max_hourly_kwh\":1,\"reading_type\":1}", true, 422,
                        "invalid_field", "reading_type");
    assert_body_problem("{\"name\":\"a\",\"max_hourly_kwh\":1,\"owner_id\":null,\"x\":1}", true,
                        422, "unknown_field", "x");
    assert_body_problem("{\"owner_id\":-4}", false, 422, "invalid_field", "owner_id");
    assert_body_problem("{\"reading_type\":\"cumulative\"}", false, 422, "immutable_field",
                        "reading_type");

    char name[300];
    memset(name, 'n', 201);
    name[201] = '\0';
    char body[400];
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    assert_body_problem(body, false, 422, "invalid_field", "name");
    name[200] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    struct device_fields f;
    struct response res;
    assert_int_equal(check_body(body, false, &f, &res), 200);
}

/* A serial: a string of the rules, or null (none / clear); only its
 * presence is looked at here (the string is borrowed from a freed body). */
static void test_serial_member(void **state)
{
    (void)state;
    struct device_fields f;
    struct response res;
    assert_int_equal(check_body("{\"serial\":\"EM-7\"}", false, &f, &res), 200);
    assert_true(f.has_serial && f.serial != NULL);
    assert_int_equal(check_body("{\"serial\":null}", false, &f, &res), 200);
    assert_true(f.has_serial && f.serial == NULL);
    assert_int_equal(check_body("{}", false, &f, &res), 200);
    assert_false(f.has_serial);
    assert_int_equal(
        check_body("{\"name\":\"M\",\"max_hourly_kwh\":1,\"serial\":\"a_1\"}", true, &f, &res),
        200);
    assert_true(f.has_serial && f.serial != NULL);
    const char *bad[] = {"\"\"", "\"123\"", "\"a.b\"", "7", "true", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"serial\":%s}", bad[i]);
        assert_body_problem(body, false, 422, "invalid_field", "serial");
    }
}

/* ---- consumption and export helpers -------------------------------------------- */

static void test_tz_names(void **state)
{
    (void)state;
    const char *good[] = {"UTC",
                          "Europe/Bucharest",
                          "America/Argentina/Buenos_Aires",
                          "Etc/GMT+3",
                          "Etc/GMT-14",
                          "EST5EDT",
                          "GMT0",
                          "America/Port-au-Prince"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(consumption_tz_plausible(good[i]));
    char long_name[70];
    memset(long_name, 'A', 65);
    long_name[65] = '\0';
    const char *bad[] = {"",           "/UTC",      "Europe/",       "Europe//Paris",
                         "../etc",     "Europe/..", "Europe/Bu ch",  "1Europe",
                         "Europe/'x'", "+03:00",    "Europe\\Paris", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(consumption_tz_plausible(bad[i]));
    assert_false(consumption_tz_plausible(NULL));
}

static void test_bucket_names(void **state)
{
    (void)state;
    enum consumption_bucket b = CONSUMPTION_MONTH;
    assert_true(consumption_bucket_parse("hour", &b) && b == CONSUMPTION_HOUR);
    assert_true(consumption_bucket_parse("day", &b) && b == CONSUMPTION_DAY);
    assert_true(consumption_bucket_parse("month", &b) && b == CONSUMPTION_MONTH);
    assert_false(consumption_bucket_parse("week", &b));
    assert_false(consumption_bucket_parse("Hour", &b));
    assert_false(consumption_bucket_parse(NULL, &b));
    assert_string_equal(consumption_bucket_name(CONSUMPTION_DAY), "day");
}

#define H CONSUMPTION_HOUR_US

/* Whole-hour zones: every bucket is exactly one stored hour (kwh * 1.0), and
 * hours with nothing stored are 0. */
static void test_spread_whole_hours_is_exact(void **state)
{
    (void)state;
    const long long day = 1777593600LL * 1000000; /* 2026-05-01T00:00:00Z */
    const struct consumption_hour hours[] = {
        {day - H, 9.0}, /* the hour before: outside */
        {day, 0.1},           {day + 2 * H, 1.0 / 3.0},
        {day + 23 * H, 7.25}, {day + 24 * H, 9.0}, /* the next day: outside */
    };
    double out[24];
    consumption_spread_hours(hours, 5, day, day, day + 24 * H, 24, out);
    for (int k = 0; k < 24; k++) {
        double want = k == 0 ? 0.1 : k == 2 ? 1.0 / 3.0 : k == 23 ? 7.25 : 0.0;
        assert_memory_equal(&out[k], &want, sizeof want);
    }
}

/* Asia/Kolkata (UTC+05:30): each local hour takes half of two UTC hours. */
static void test_spread_half_hour_zone_takes_halves(void **state)
{
    (void)state;
    const long long lo = 1777573800LL * 1000000; /* 2026-04-30T18:30:00Z */
    const struct consumption_hour hours[] = {
        {lo - H / 2, 2.0}, {lo + H / 2, 4.0}, {lo + 3 * H / 2, 8.0}};
    double out[3];
    consumption_spread_hours(hours, 3, lo, lo, lo + 3 * H, 3, out);
    assert_true(out[0] == 1.0 + 2.0);
    assert_true(out[1] == 2.0 + 4.0);
    assert_true(out[2] == 4.0);
}

/* A range that starts and ends inside hours: the first bucket starts on the
 * hour, only the energy inside [lo, hi) counts. Asia/Kathmandu is UTC+05:45. */
static void test_spread_clips_to_the_range(void **state)
{
    (void)state;
    const long long hour = 1777593600LL * 1000000;
    const struct consumption_hour hours[] = {{hour, 4.0}, {hour + H, 8.0}};
    double out[2];
    /* [hour + 15 min, hour + 1 h 30 min) */
    consumption_spread_hours(hours, 2, hour, hour + H / 4, hour + 3 * H / 2, 2, out);
    assert_true(out[0] == 3.0);
    assert_true(out[1] == 4.0);
    /* A quarter-hour zone, whole local hours: 3/4 of one, 1/4 of the next. */
    consumption_spread_hours(hours, 2, hour + H / 4, hour + H / 4, hour + 5 * H / 4, 1, out);
    assert_true(out[0] == 3.0 + 2.0);
    /* No stored hours at all. */
    consumption_spread_hours(NULL, 0, hour, hour, hour + 2 * H, 2, out);
    assert_true(out[0] == 0.0 && out[1] == 0.0);
}

static void test_accept_csv(void **state)
{
    (void)state;
    const char *yes[] = {"text/csv",
                         "TEXT/CSV",
                         "text/csv; charset=utf-8",
                         "application/json;q=0.9, text/csv",
                         "text/html,text/csv;q=0.1",
                         " text/csv ;q=1",
                         "text/csv;level=1;q=0.5"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(readings_export_wants_csv(yes[i]));
    const char *no[] = {"application/json",
                        "text/csv;q=0",
                        "text/csv; q=0.000",
                        "text/csvx",
                        "xtext/csv",
                        "*/*",
                        "text/*",
                        "",
                        "text/csv;q=0,application/json"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(readings_export_wants_csv(no[i]));
    assert_false(readings_export_wants_csv(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_matches_reference_base64url),
        cmocka_unit_test(test_cursor_rejects_anything_else),
        cmocka_unit_test(test_cursor_query_parameter),
        cmocka_unit_test(test_create_body_minimal_and_full),
        cmocka_unit_test(test_body_problems_name_the_field),
        cmocka_unit_test(test_serial_member),
        cmocka_unit_test(test_tz_names),
        cmocka_unit_test(test_bucket_names),
        cmocka_unit_test(test_spread_whole_hours_is_exact),
        cmocka_unit_test(test_spread_half_hour_zone_takes_halves),
        cmocka_unit_test(test_spread_clips_to_the_range),
        cmocka_unit_test(test_accept_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
