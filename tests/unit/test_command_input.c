/* Unit tests for api/command_input.c: the contract's checks of a new
 * command, an over_limit_command and a device's answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/command_input.h"

static void test_names(void **state)
{
    (void)state;
    const char *good[] = {"a", "relay", "set.interval", "x-1_2", "0"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(command_name_valid(good[i]));
    char longest[65];
    memset(longest, 'a', 64);
    longest[64] = '\0';
    assert_true(command_name_valid(longest));
    char too_long[66];
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    assert_false(command_name_valid(too_long));
    const char *bad[] = {"", "Relay", "a b", "a/b", "é", "a:b", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(command_name_valid(bad[i]));
}

/* Reads text as a spec; returns the field at fault, or NULL when valid. */
static const char *spec_fault(const char *text, bool allow_ttl, int *ttl, char **params)
{
    json_t *obj = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    const char *name;
    bool unknown;
    struct command_fault f = {0};
    static char field[32];
    bool ok = command_spec_read(obj, allow_ttl, &name, params, ttl, &unknown, &f);
    snprintf(field, sizeof field, "%s", f.field ? f.field : "(none)");
    json_decref(obj);
    return ok ? NULL : field;
}

static void test_specs(void **state)
{
    (void)state;
    int ttl;
    char *params = NULL;
    assert_null(spec_fault("{\"name\":\"relay\"}", true, &ttl, &params));
    assert_int_equal(ttl, 3600);
    assert_string_equal(params, "{}");
    free(params);
    assert_null(spec_fault("{\"name\":\"relay\",\"params\":{\"b\":1,\"a\":[2]},\"ttl_s\":10}", true,
                           &ttl, &params));
    assert_int_equal(ttl, 10);
    assert_string_equal(params, "{\"b\":1,\"a\":[2]}");
    free(params);
    struct {
        const char *text;
        bool ttl;
        const char *field;
    } bad[] = {
        {"{}", true, "name"},
        {"{\"name\":\"A\"}", true, "name"},
        {"{\"name\":\"a\\u0000b\"}", true, "name"},
        {"{\"name\":\"a\",\"params\":[]}", true, "params"},
        {"{\"name\":\"a\",\"params\":null}", true, "params"},
        {"{\"name\":\"a\",\"ttl_s\":9}", true, "ttl_s"},
        {"{\"name\":\"a\",\"ttl_s\":172801}", true, "ttl_s"},
        {"{\"name\":\"a\",\"ttl_s\":60.5}", true, "ttl_s"},
        {"{\"name\":\"a\",\"ttl_s\":60}", false, "ttl_s"},
        {"{\"name\":\"a\",\"extra\":1}", true, "extra"},
        {"\"relay\"", true, "(none)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        params = NULL;
        const char *field = spec_fault(bad[i].text, bad[i].ttl, &ttl, &params);
        assert_non_null(field);
        assert_string_equal(field, bad[i].field);
        assert_null(params);
    }
    /* 8 KiB of params as compact JSON, and not a byte more. */
    size_t room = COMMANDS_PARAMS_MAX - strlen("{\"s\":\"\"}");
    char *big = malloc(room + 64);
    for (int extra = 0; extra <= 1; extra++) {
        snprintf(big, room + 64, "{\"name\":\"a\",\"params\":{\"s\":\"%*s\"}}", (int)room + extra,
                 "");
        params = NULL;
        const char *field = spec_fault(big, true, &ttl, &params);
        if (extra) {
            assert_string_equal(field, "params");
        } else {
            assert_null(field);
            assert_int_equal(strlen(params), COMMANDS_PARAMS_MAX);
        }
        free(params);
    }
    free(big);
}

static void test_answers(void **state)
{
    (void)state;
    static const char *const ENVELOPE[] = {"type", "id", NULL};
    struct {
        const char *text;
        const char *field; /* NULL: valid */
    } cases[] = {
        {"{\"status\":\"succeeded\"}", NULL},
        {"{\"status\":\"failed\",\"error\":\"unknown command\"}", NULL},
        {"{\"status\":\"succeeded\",\"result\":{\"a\":1},\"error\":null}", NULL},
        {"{\"type\":\"command_result\",\"id\":3,\"status\":\"succeeded\"}", NULL},
        {"{}", "status"},
        {"{\"status\":\"sent\"}", "status"},
        {"{\"status\":\"succeeded\",\"result\":[1]}", "result"},
        {"{\"status\":\"failed\",\"error\":3}", "error"},
        {"{\"status\":\"failed\",\"why\":3}", "why"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *obj = json_loads(cases[i].text, 0, NULL);
        struct command_answer a;
        char *result = NULL;
        struct command_fault f = {0};
        bool ok = command_answer_read(obj, ENVELOPE, &a, &result, &f);
        if (cases[i].field) {
            assert_false(ok);
            assert_string_equal(f.field, cases[i].field);
        } else {
            assert_true(ok);
            assert_true(a.status == COMMAND_SUCCEEDED || a.status == COMMAND_FAILED);
        }
        free(result);
        json_decref(obj);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
