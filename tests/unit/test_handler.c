/* api/handler: the request helpers (path parameters, query arguments) and
 * the responses' problem documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../api/handler.h"

static void request_param_id_accepts_only_positive_integers(void **state)
{
    (void)state;
    struct request req = {.nparams = 1};
    long long id = 0;
    const char *good[] = {"1", "42", "999999999999999999"};
    const char *bad[] = {"0", "-1", "01", "1a", "", "9999999999999999999", "1e3"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        req.params[0] = good[i];
        assert_true(request_param_id(&req, 0, &id));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        req.params[0] = bad[i];
        assert_false(request_param_id(&req, 0, &id));
    }
}

static void query_lookup_finds_the_first_value(void **state)
{
    (void)state;
    struct query_arg args[] = {{"limit", "5"}, {"q", "x"}, {"limit", "7"}};
    struct request req = {.query = args, .nquery = 3};
    assert_string_equal(request_query(&req, "limit"), "5");
    assert_string_equal(request_query(&req, "q"), "x");
    assert_null(request_query(&req, "cursor"));
}

/* Problem documents (RFC 9457). */

static void problems_follow_rfc9457_and_add_headers(void **state)
{
    (void)state;
    struct response res = {0};
    response_problem(&res, 422, "invalid_field", "max_hourly_kwh", "must be > %d", 0);
    assert_int_equal(res.status, 422);
    assert_true(res.problem);
    assert_string_equal(json_string_value(json_object_get(res.json, "type")), "about:blank");
    assert_string_equal(json_string_value(json_object_get(res.json, "title")),
                        "Unprocessable Content");
    assert_int_equal(json_integer_value(json_object_get(res.json, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(res.json, "detail")), "must be > 0");
    assert_string_equal(json_string_value(json_object_get(res.json, "code")), "invalid_field");
    assert_string_equal(json_string_value(json_object_get(res.json, "field")), "max_hourly_kwh");
    response_clear(&res);

    response_status(&res, STATUS_UNAVAILABLE);
    assert_int_equal(res.status, 503);
    assert_int_equal(res.nheaders, 1);
    assert_string_equal(res.headers[0].name, "Retry-After");
    response_clear(&res);

    response_problem(&res, 401, "unauthorized", NULL, "no");
    assert_string_equal(res.headers[0].name, "WWW-Authenticate");
    assert_null(json_object_get(res.json, "field"));
    response_clear(&res);
}

/* Found by fuzz_ingest: a malformed body's error text quotes its bytes, and
 * a field name cut to fit may end inside a character; jansson refused the
 * invalid UTF-8 and the 400 or 422 went out without a problem document. */
static void problems_survive_invalid_utf8(void **state)
{
    (void)state;
    struct response res = {0};
    response_problem(&res, 400, "malformed_json", "a\xc3", "near '%s'", "\"\\\xd3\xa3\xab\xff");
    assert_non_null(res.json);
    assert_string_equal(json_string_value(json_object_get(res.json, "detail")),
                        "near '\"\\\xd3\xa3\?\?'");
    assert_string_equal(json_string_value(json_object_get(res.json, "field")), "a?");
    response_clear(&res);

    /* Overlong, surrogate and past-U+10FFFF forms are refused as jansson does. */
    response_problem(&res, 422, "invalid_field", NULL,
                     "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(res.json, "detail")),
                        "?? ??? ???? \xc3\xa9");
    response_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_param_id_accepts_only_positive_integers),
        cmocka_unit_test(query_lookup_finds_the_first_value),
        cmocka_unit_test(problems_follow_rfc9457_and_add_headers),
        cmocka_unit_test(problems_survive_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
