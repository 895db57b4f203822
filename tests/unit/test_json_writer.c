/* base/json_writer, checked against jansson, which prints every other
 * document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../api/handler.h" /* JSON_DUMP_FLAGS: how every other document is printed */
#include "../../base/json_writer.h"

/* What jansson prints for the document text parses to. */
static char *jansson_reprint(const char *text)
{
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!doc)
        fail_msg("the writer's output does not parse: %s (%s)", err.text, text);
    char *out = json_dumps(doc, JSON_DUMP_FLAGS);
    json_decref(doc);
    return out;
}

static void json_writer_prints_what_jansson_prints(void **state)
{
    (void)state;
    struct json_writer w;
    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, "id");
    json_writer_int(&w, -9007199254740993LL);
    json_writer_key(&w, "reals");
    json_writer_begin_array(&w);
    const double reals[] = {0.0, 2.0, 0.1, 1.0 / 3.0, 1e21, 1e-5, -2.5e-300, 1e300, 123456789012.5};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        json_writer_real(&w, reals[i]);
    json_writer_end_array(&w);
    json_writer_key(&w, "text \"quoted\"");
    json_writer_string(&w, "a\\b\"c\n\t\r\b\f\x01\x1f/ é €");
    json_writer_key(&w, "empty");
    json_writer_begin_object(&w);
    json_writer_end_object(&w);
    json_writer_key(&w, "list");
    json_writer_begin_array(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, "ok");
    json_writer_bool(&w, true);
    json_writer_end_object(&w);
    json_writer_begin_array(&w);
    json_writer_end_array(&w);
    json_writer_bool(&w, false);
    json_writer_string(&w, "");
    json_writer_end_array(&w);
    json_writer_end_object(&w);
    size_t len;
    char *doc = json_writer_finish(&w, &len);
    assert_non_null(doc);
    assert_int_equal(len, strlen(doc));
    char *expected = jansson_reprint(doc);
    assert_string_equal(doc, expected);
    assert_non_null(strstr(doc, "\"reals\":[0.0,2.0,0.10000000000000001,"));
    assert_non_null(strstr(doc, "\"a\\\\b\\\"c\\n\\t\\r\\b\\f\\u0001\\u001F/ é €\""));
    free(expected);
    free(doc);
}

static void json_writer_grows_past_its_first_buffer(void **state)
{
    (void)state;
    struct json_writer w;
    json_writer_init(&w);
    json_writer_begin_array(&w);
    for (int i = 0; i < 5000; i++)
        json_writer_int(&w, i);
    json_writer_end_array(&w);
    size_t len;
    char *doc = json_writer_finish(&w, &len);
    assert_non_null(doc);
    assert_true(len > 20000);
    char *expected = jansson_reprint(doc);
    assert_string_equal(doc, expected);
    assert_int_equal(strncmp(doc, "[0,1,2,", 7), 0);
    assert_string_equal(doc + len - 6, ",4999]");
    free(expected);
    free(doc);

    json_writer_init(&w);
    doc = json_writer_finish(&w, &len);
    assert_non_null(doc);
    assert_string_equal(doc, "");
    free(doc);
}

/* JSON has no NaN or infinity: the document fails whole, never "inf" in it
 * or the number left out, and the caller learns why. */
static void json_writer_refuses_a_number_that_is_not_finite(void **state)
{
    (void)state;
    const double bad[] = {INFINITY, -INFINITY, NAN, DBL_MAX * 2};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct json_writer w;
        json_writer_init(&w);
        json_writer_begin_object(&w);
        json_writer_key(&w, "total_kwh");
        json_writer_real(&w, bad[i]);
        json_writer_key(&w, "after");
        json_writer_real(&w, 1.0);
        json_writer_end_object(&w);
        assert_string_equal(json_writer_error(&w), "a number is not finite");
        size_t len = 99;
        assert_null(json_writer_finish(&w, &len));
        assert_int_equal(len, 0);
    }
    /* The largest double is a number like any other. */
    struct json_writer w;
    json_writer_init(&w);
    json_writer_real(&w, DBL_MAX);
    assert_null(json_writer_error(&w));
    size_t len;
    char *doc = json_writer_finish(&w, &len);
    assert_string_equal(doc, "1.7976931348623157e308");
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_writer_prints_what_jansson_prints),
        cmocka_unit_test(json_writer_grows_past_its_first_buffer),
        cmocka_unit_test(json_writer_refuses_a_number_that_is_not_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
