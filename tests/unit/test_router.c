/* server/router: matching a method and path against the route table,
 * 404 against 405, path parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../server/router.h"

static int h1(const struct request *q, struct response *r, struct app *a)
{
    (void)q, (void)r, (void)a;
    return 1;
}

static const struct route TABLE[] = {
    {"GET", "/api/v1/devices", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP, NULL, false},
    {"POST", "/api/v1/devices", h1, ACCESS_ADMIN, BODY_JSON, THREAD_HTTP, NULL, false},
    {"GET", "/api/v1/devices/{id}", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP, NULL, false},
    {"PATCH", "/api/v1/devices/{id}", h1, ACCESS_USER, BODY_JSON, THREAD_HTTP, NULL, false},
    {"POST", "/api/v1/devices/{id}/token", h1, ACCESS_ADMIN, BODY_NONE, THREAD_HTTP, NULL, false},
    {"GET", "/api/v1/devices/{id}/consumption", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP, NULL,
     false},
};
#define NTABLE (sizeof TABLE / sizeof TABLE[0])

static void router_finds_literal_and_parameter_routes(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/devices", &m), ROUTE_FOUND);
    assert_int_equal(m.index, 0);
    assert_int_equal(router_match(TABLE, NTABLE, "POST", "/api/v1/devices", &m), ROUTE_FOUND);
    assert_int_equal(m.index, 1);
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/devices/42/consumption", &m),
                     ROUTE_FOUND);
    assert_int_equal(m.index, 5);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "42");
}

static void router_tells_404_from_405(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/nothing", &m), ROUTE_NOT_FOUND);
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/devices/7/token", &m),
                     ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(router_match(TABLE, NTABLE, "DELETE", "/api/v1/devices/7", &m),
                     ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD, PATCH");
}

static void router_rejects_empty_segments_and_trailing_slashes(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/devices//consumption", &m),
                     ROUTE_NOT_FOUND);
    assert_int_equal(router_match(TABLE, NTABLE, "GET", "/api/v1/devices/", &m), ROUTE_NOT_FOUND);
    assert_int_equal(router_match(TABLE, NTABLE, "HEAD", "/api/v1/devices/3", &m), ROUTE_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_finds_literal_and_parameter_routes),
        cmocka_unit_test(router_tells_404_from_405),
        cmocka_unit_test(router_rejects_empty_segments_and_trailing_slashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
