/* server/static_files: paths that stay in the web root, content types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../server/static_files.h"

static void static_paths_cannot_leave_the_web_root(void **state)
{
    (void)state;
    assert_true(static_files_path_safe("/"));
    assert_true(static_files_path_safe("/js/app.js"));
    assert_true(static_files_path_safe("/a..b/c"));
    assert_false(static_files_path_safe("/../etc/passwd"));
    assert_false(static_files_path_safe("/js/../../etc/passwd"));
    assert_false(static_files_path_safe("/js/.."));
    assert_false(static_files_path_safe("/./x"));
    assert_false(static_files_path_safe("//etc/passwd"));
    assert_false(static_files_path_safe("/js\\..\\x"));
    assert_false(static_files_path_safe("js/app.js"));
    assert_string_equal(static_files_content_type("/x/app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(static_files_content_type("/index.html"), "text/html; charset=utf-8");
    assert_string_equal(static_files_content_type("/noext"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(static_paths_cannot_leave_the_web_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
