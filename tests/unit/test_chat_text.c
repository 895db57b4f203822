/* Unit tests for api/chat_text.c: a chat text is 1..4000 characters (code
 * points, not bytes) without NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../api/chat_text.h"

/* n copies of the UTF-8 sequence unit. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(n * len + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[n * len] = '\0';
    return s;
}

static void test_characters_not_bytes(void **state)
{
    (void)state;
    assert_int_equal(chat_text_chars("abc", 3), 3);
    assert_int_equal(chat_text_chars("\xc3\xa9t\xc3\xa9", 5), 3);        /* été */
    assert_int_equal(chat_text_chars("\xf0\x9f\x98\x80", 4), 1);         /* one emoji */
    assert_int_equal(chat_text_chars("\xe2\x82\xac\xe2\x82\xac", 6), 2); /* €€ */
}

static void test_limits(void **state)
{
    (void)state;
    const char *units[] = {"x", "\xc3\xbc", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        char *ok = repeat(units[u], 4000), *over = repeat(units[u], 4001);
        assert_null(chat_text_problem(ok, strlen(ok)));
        assert_non_null(chat_text_problem(over, strlen(over)));
        free(ok);
        free(over);
    }
    assert_non_null(chat_text_problem("", 0));
    assert_null(chat_text_problem("a", 1));
    assert_non_null(chat_text_problem("a\0b", 3));
    assert_null(chat_text_problem("<script>alert(1)</script>", 25));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_characters_not_bytes),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
