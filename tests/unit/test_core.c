/* Pure parts of the core: routing, configuration, problem documents,
 * migrations, static paths, timestamps, the JSON writer
 * (checked against jansson, which prints every other document). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../api/handler.h"
#include "../../base/json_writer.h"
#include "../../base/timefmt.h"
#include "../../base/config.h"
#include "../../db/migration_files.h"
#include "../../server/router.h"
#include "../../server/static_files.h"

/* ---- router ---- */

static int h1(const struct request *q, struct response *r, struct app *a)
{
    (void)q, (void)r, (void)a;
    return 1;
}

static const struct route TABLE[] = {
    {"GET", "/api/v1/devices", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP},
    {"POST", "/api/v1/devices", h1, ACCESS_ADMIN, BODY_JSON, THREAD_HTTP},
    {"GET", "/api/v1/devices/{id}", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP},
    {"PATCH", "/api/v1/devices/{id}", h1, ACCESS_USER, BODY_JSON, THREAD_HTTP},
    {"POST", "/api/v1/devices/{id}/token", h1, ACCESS_ADMIN, BODY_NONE, THREAD_HTTP},
    {"GET", "/api/v1/devices/{id}/consumption", h1, ACCESS_USER, BODY_NONE, THREAD_HTTP},
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

/* ---- problem documents ---- */

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

/* ---- configuration ---- */

struct fake_env {
    const char *const *pairs; /* name, value, name, value, ..., NULL */
};

static const char *fake_getenv(const char *name, void *ctx)
{
    const struct fake_env *env = ctx;
    for (const char *const *p = env->pairs; *p; p += 2)
        if (!strcmp(p[0], name))
            return p[1];
    return NULL;
}

static void config_reads_env_and_flags_override(void **state)
{
    (void)state;
    const char *pairs[] = {
        "DATABASE_URL", "postgresql:///x", "HTTP_PORT", "9000", "LOG_FORMAT", "json", NULL};
    struct fake_env env = {pairs};
    char *argv[] = {"--http-port=9100", "--ws-port", "9101", "--no-migrate"};
    struct config cfg;
    char err[256];
    assert_true(config_parse(&cfg, fake_getenv, &env, 4, argv, err, sizeof err));
    assert_int_equal(cfg.http_port, 9100);
    assert_int_equal(cfg.ws_port, 9101);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_true(cfg.no_migrate);
    assert_string_equal(cfg.http_addr, "127.0.0.1");
    config_free(&cfg);
}

static void config_rejects_bad_values_with_one_line(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *missing_db[] = {NULL};
    struct fake_env env = {missing_db};
    assert_false(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "DATABASE_URL"));
    config_free(&cfg);

    const char *bad_port[] = {"DATABASE_URL", "x", "HTTP_PORT", "80000", NULL};
    env.pairs = bad_port;
    assert_false(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "HTTP_PORT"));
    assert_null(strchr(err, '\n'));
    config_free(&cfg);

    const char *ok[] = {"DATABASE_URL", "x", NULL};
    env.pairs = ok;
    char *unknown[] = {"--no-such-flag=1"};
    assert_false(config_parse(&cfg, fake_getenv, &env, 1, unknown, err, sizeof err));
    config_free(&cfg);
    char *bad_level[] = {"--log-level", "loud"};
    assert_false(config_parse(&cfg, fake_getenv, &env, 2, bad_level, err, sizeof err));
    config_free(&cfg);
}

static void config_requires_a_long_enough_jwt_secret(void **state)
{
    (void)state;
    const char *short_secret[] = {"DATABASE_URL", "x", "JWT_SECRET", "short", NULL};
    struct fake_env env = {short_secret};
    struct config cfg;
    char err[256];
    assert_true(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_false(config_check_serve(&cfg, err, sizeof err));
    config_free(&cfg);
    const char *good[] = {"DATABASE_URL", "x", "JWT_SECRET", "0123456789abcdef0123456789abcdef",
                          NULL};
    env.pairs = good;
    assert_true(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_true(config_check_serve(&cfg, err, sizeof err));
    assert_int_equal(cfg.jwt_secret_len, 32);
    config_free(&cfg);
}

/* ---- migrations ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void migrations_load_in_numeric_order_with_checksums(void **state)
{
    (void)state;
    char dir[] = "/tmp/wattline-mig-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "10_later.sql", "SELECT 10;");
    write_file(dir, "2_second.sql", "SELECT 2;");
    write_file(dir, "0001_first.sql", "SELECT 1;");
    write_file(dir, "README.md", "not a migration");
    struct migration_set set;
    char err[256];
    assert_true(migrations_load(dir, &set, err, sizeof err));
    assert_int_equal(set.count, 3);
    assert_int_equal(set.items[0].version, 1);
    assert_int_equal(set.items[1].version, 2);
    assert_int_equal(set.items[2].version, 10);
    /* SHA-256 of "SELECT 1;" */
    assert_string_equal(set.items[0].checksum,
                        "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a");
    char first_sum[65];
    memcpy(first_sum, set.items[0].checksum, sizeof first_sum);
    migrations_free(&set);

    /* A changed file changes its checksum. */
    write_file(dir, "0001_first.sql", "SELECT 1 ;");
    assert_true(migrations_load(dir, &set, err, sizeof err));
    assert_string_not_equal(set.items[0].checksum, first_sum);
    migrations_free(&set);

    /* Two files with one version are refused. */
    write_file(dir, "0002_again.sql", "SELECT 2;");
    assert_false(migrations_load(dir, &set, err, sizeof err));
    assert_non_null(strstr(err, "share version 2"));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void migration_names_are_parsed_strictly(void **state)
{
    (void)state;
    long v;
    assert_true(migrations_parse_name("0003_devices.sql", &v));
    assert_int_equal(v, 3);
    assert_false(migrations_parse_name("devices.sql", &v));
    assert_false(migrations_parse_name("0003devices.sql", &v));
    assert_false(migrations_parse_name("0003_devices.sql.bak", &v));
    assert_false(migrations_parse_name("0003_.sq", &v));
}

/* ---- static files ---- */

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

/* ---- timestamps ---- */

static void rfc3339_parses_strictly_and_keeps_microseconds(void **state)
{
    (void)state;
    long long us;
    assert_true(timefmt_parse("2026-11-21T10:10:00Z", &us));
    assert_int_equal(us, 1795255800LL * 1000000);
    char out[TIMEFMT_MAX];
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00Z");
    assert_true(timefmt_parse("2026-11-21T12:10:00.250+02:00", &us));
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00.25Z");
    assert_true(timefmt_parse("2026-11-21t10:10:00.000001z", &us));
    timefmt_format(us, out);
    assert_string_equal(out, "2026-11-21T10:10:00.000001Z");
    assert_true(timefmt_parse("2024-02-29T00:00:00Z", &us));

    const char *bad[] = {"2026-11-21 10:10:00Z",     "2026-11-21T10:10:00",
                         "2026-13-01T00:00:00Z",     "2026-02-29T00:00:00Z",
                         "2026-11-21T24:00:00Z",     "2026-11-21T10:60:00Z",
                         "2026-11-21T10:10:60Z",     "2026-11-21T10:10:00.Z",
                         "2026-11-21T10:10Z",        "2026-11-21T10:10:00+0200",
                         "2026-11-21T10:10:00Zjunk", "",
                         "1969-12-31T23:59:59Z",     "2026-11-21T10:10:00.1234567891Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(timefmt_parse(bad[i], &us));
}

static void rfc3339_round_trips_known_instants(void **state)
{
    (void)state;
    long long us;
    assert_true(timefmt_parse("1970-01-01T00:00:00Z", &us));
    assert_int_equal(us, 0);
    assert_true(timefmt_parse("2000-03-01T00:00:00Z", &us));
    assert_int_equal(us, 951868800LL * 1000000);
    char out[TIMEFMT_MAX];
    timefmt_format(951868800LL * 1000000 + 500000, out);
    assert_string_equal(out, "2000-03-01T00:00:00.5Z");
}

/* ---- JSON writer ---- */

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_finds_literal_and_parameter_routes),
        cmocka_unit_test(router_tells_404_from_405),
        cmocka_unit_test(router_rejects_empty_segments_and_trailing_slashes),
        cmocka_unit_test(request_param_id_accepts_only_positive_integers),
        cmocka_unit_test(query_lookup_finds_the_first_value),
        cmocka_unit_test(problems_follow_rfc9457_and_add_headers),
        cmocka_unit_test(config_reads_env_and_flags_override),
        cmocka_unit_test(config_rejects_bad_values_with_one_line),
        cmocka_unit_test(config_requires_a_long_enough_jwt_secret),
        cmocka_unit_test(migrations_load_in_numeric_order_with_checksums),
        cmocka_unit_test(migration_names_are_parsed_strictly),
        cmocka_unit_test(static_paths_cannot_leave_the_web_root),
        cmocka_unit_test(rfc3339_parses_strictly_and_keeps_microseconds),
        cmocka_unit_test(rfc3339_round_trips_known_instants),
        cmocka_unit_test(json_writer_prints_what_jansson_prints),
        cmocka_unit_test(json_writer_grows_past_its_first_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
