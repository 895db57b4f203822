/* base/config: settings from the environment and the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "../../base/config.h"

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
    assert_int_equal(cfg.ws_max_unauth_per_addr, 16);
    assert_int_equal(cfg.device_rate_per_min, 600);
    assert_int_equal(cfg.send_timeout_s, 60); /* the contract's default */
    assert_int_equal(cfg.export_max_per_user, 2);
    assert_int_equal(cfg.export_max_total, 16);
    assert_int_equal(cfg.command_lock_s, 30); /* the contract's default */
    config_free(&cfg);
}

/* COMMAND_LOCK_S is whole seconds, 1 or more. */
static void config_command_lock_is_at_least_one_second(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *one[] = {"DATABASE_URL", "x", "COMMAND_LOCK_S", "1", NULL};
    struct fake_env env = {one};
    assert_true(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_int_equal(cfg.command_lock_s, 1);
    config_free(&cfg);
    const char *bad[][5] = {{"DATABASE_URL", "x", "COMMAND_LOCK_S", "0", NULL},
                            {"DATABASE_URL", "x", "COMMAND_LOCK_S", "1.5", NULL},
                            {"DATABASE_URL", "x", "COMMAND_LOCK_S", "-3", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        env.pairs = bad[i];
        assert_false(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
        assert_non_null(strstr(err, "COMMAND_LOCK_S"));
        config_free(&cfg);
    }
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

static void config_parses_the_address_lists(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *defaults[] = {"DATABASE_URL", "x", NULL};
    struct fake_env env = {defaults};
    assert_true(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_int_equal(cfg.trusted_proxy_set.n, 0); /* nobody's X-Forwarded-For is believed */
    assert_true(netaddr_set_contains_text(&cfg.metrics_allow_set, "127.0.0.1"));
    assert_true(netaddr_set_contains_text(&cfg.metrics_allow_set, "::1"));
    assert_false(netaddr_set_contains_text(&cfg.metrics_allow_set, "10.0.0.1"));
    config_free(&cfg);

    const char *set[] = {
        "DATABASE_URL", "x", "TRUSTED_PROXIES", "172.28.0.0/24, fd00::2", "METRICS_ALLOW",
        "10.0.0.0/8",   NULL};
    env.pairs = set;
    assert_true(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_int_equal(cfg.trusted_proxy_set.n, 2);
    assert_true(netaddr_set_contains_text(&cfg.trusted_proxy_set, "172.28.0.10"));
    assert_false(netaddr_set_contains_text(&cfg.metrics_allow_set, "127.0.0.1"));
    config_free(&cfg);

    const char *bad[] = {"DATABASE_URL", "x", "TRUSTED_PROXIES", "nginx", NULL};
    env.pairs = bad;
    assert_false(config_parse(&cfg, fake_getenv, &env, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "TRUSTED_PROXIES"));
    assert_non_null(strstr(err, "'nginx'"));
    config_free(&cfg);
    char *bad_flag[] = {"--metrics-allow=10.0.0.0/40"};
    env.pairs = defaults;
    assert_false(config_parse(&cfg, fake_getenv, &env, 1, bad_flag, err, sizeof err));
    assert_non_null(strstr(err, "METRICS_ALLOW"));
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_reads_env_and_flags_override),
        cmocka_unit_test(config_rejects_bad_values_with_one_line),
        cmocka_unit_test(config_command_lock_is_at_least_one_second),
        cmocka_unit_test(config_requires_a_long_enough_jwt_secret),
        cmocka_unit_test(config_parses_the_address_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
