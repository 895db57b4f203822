/* base/form: application/x-www-form-urlencoded bodies as RabbitMQ's HTTP
 * auth backend sends them, decoded strictly: percent escapes, '+' for space,
 * and everything ambiguous or not text refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "../../base/form.h"

/* Decodes text; NULL (and a reason) when it is refused. */
static json_t *decode(const char *text)
{
    const char *why = "unset";
    json_t *obj = form_decode(text, strlen(text), &why);
    if (obj)
        assert_null(why);
    else
        assert_non_null(why);
    return obj;
}

static const char *member(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    assert_non_null(v);
    return json_string_value(v);
}

static void form_decodes_what_rabbitmq_sends(void **state)
{
    (void)state;
    json_t *obj = decode("username=EM-7&vhost=%2F&resource=topic&name=amq.topic&permission=write"
                         "&routing_key=devices.EM-7.measurements&variable_map.client_id=c%201");
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 7);
    assert_string_equal(member(obj, "username"), "EM-7");
    assert_string_equal(member(obj, "vhost"), "/");
    assert_string_equal(member(obj, "routing_key"), "devices.EM-7.measurements");
    assert_string_equal(member(obj, "variable_map.client_id"), "c 1");
    json_decref(obj);
}

static void form_unescapes_percent_and_plus(void **state)
{
    (void)state;
    json_t *obj = decode("password=a+b%2Bc%26d%3De%25&na+me=%C4%83&empty=&bare&x%41=%7e");
    assert_non_null(obj);
    assert_string_equal(member(obj, "password"), "a b+c&d=e%");
    assert_string_equal(member(obj, "na me"), "\xc4\x83");
    assert_string_equal(member(obj, "empty"), "");
    assert_string_equal(member(obj, "bare"), "");
    assert_string_equal(member(obj, "xA"), "~");
    json_decref(obj);
}

static void form_skips_empty_pairs(void **state)
{
    (void)state;
    json_t *obj = decode("&a=1&&b=2&");
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 2);
    json_decref(obj);
    obj = decode("");
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 0);
    json_decref(obj);
    const char *why = NULL;
    obj = form_decode(NULL, 0, &why);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 0);
    json_decref(obj);
}

static void form_refuses_what_is_ambiguous_or_not_text(void **state)
{
    (void)state;
    const char *bad[] = {
        "a=%",     "a=%4",  "a=%zz",   "a=%4g", "%=1",   "a%=1",  "a=1&a=2",
        "a=1&a=1", "a=%00", "a%00b=1", "a=%ff", "a=%c4", "%ff=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(decode(bad[i]));
    /* A raw NUL inside the body is refused as well. */
    const char *why = NULL;
    assert_null(form_decode("a=1\0b", 5, &why));
    assert_non_null(why);
}

static void form_caps_the_fields(void **state)
{
    (void)state;
    static char body[FORM_MAX_FIELDS * 8 + 16];
    size_t len = 0;
    for (int i = 0; i < FORM_MAX_FIELDS; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "%s%d=", i ? "&" : "", i);
    json_t *obj = decode(body);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), FORM_MAX_FIELDS);
    json_decref(obj);
    snprintf(body + len, sizeof body - len, "&x=");
    assert_null(decode(body));
}

static void unescape_keeps_plus_outside_forms(void **state)
{
    (void)state;
    char out[16];
    size_t n;
    assert_true(form_unescape("a+b%2f", 6, false, out, &n));
    assert_string_equal(out, "a+b/");
    assert_int_equal(n, 4);
    assert_true(form_unescape("a+b", 3, true, out, &n));
    assert_string_equal(out, "a b");
    assert_false(form_unescape("%2", 2, false, out, &n));
    assert_false(form_unescape("%00", 3, false, out, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(form_decodes_what_rabbitmq_sends),
        cmocka_unit_test(form_unescapes_percent_and_plus),
        cmocka_unit_test(form_skips_empty_pairs),
        cmocka_unit_test(form_refuses_what_is_ambiguous_or_not_text),
        cmocka_unit_test(form_caps_the_fields),
        cmocka_unit_test(unescape_keeps_plus_outside_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
