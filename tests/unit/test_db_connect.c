/* db/pool.c: the libpq keywords every connection is opened with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../db/db.h"

static const char *value_of(const struct db_connect_params *p, const char *key)
{
    for (int i = 0; p->keys[i]; i++)
        if (!strcmp(p->keys[i], key))
            return p->values[i];
    return NULL;
}

static void the_url_comes_first_and_the_session_settings_after(void **state)
{
    (void)state;
    struct db_pool_options opts = {.url = "postgresql://u@h/db",
                                   .statement_timeout_ms = 2500,
                                   .connect_timeout_s = 3,
                                   .timeout_s = 10};
    struct db_connect_params p;
    db_connect_params_init(&p, &opts);
    assert_string_equal(p.keys[0], "dbname"); /* expanded first: the keywords after it win */
    assert_string_equal(p.values[0], "postgresql://u@h/db");
    assert_string_equal(value_of(&p, "connect_timeout"), "3");
    assert_string_equal(value_of(&p, "options"),
                        "-c statement_timeout=2500 -c TimeZone=UTC -c jit=off");
    assert_string_equal(value_of(&p, "application_name"), "wattline");
}

/* DB_TIMEOUT_S=10: idle 5 s, then 3 probes 1 s apart (notice within ~8 s of
 * silence), and 10 s for data the server never acknowledges. */
static void db_timeout_gives_keepalives_and_a_user_timeout(void **state)
{
    (void)state;
    const struct {
        int timeout_s;
        const char *idle, *interval, *user_timeout_ms;
    } cases[] = {
        {10, "5", "1", "10000"},
        {2, "1", "1", "2000"},
        {60, "30", "10", "60000"},
        {15, "8", "2", "15000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct db_pool_options opts = {.url = "x", .timeout_s = cases[i].timeout_s};
        struct db_connect_params p;
        db_connect_params_init(&p, &opts);
        assert_string_equal(value_of(&p, "keepalives"), "1");
        assert_string_equal(value_of(&p, "keepalives_idle"), cases[i].idle);
        assert_string_equal(value_of(&p, "keepalives_interval"), cases[i].interval);
        assert_string_equal(value_of(&p, "keepalives_count"), "3");
        assert_string_equal(value_of(&p, "tcp_user_timeout"), cases[i].user_timeout_ms);
        /* Noticed within the timeout when idle too (whole seconds: at 2 s, 4). */
        int idle = atoi(value_of(&p, "keepalives_idle"));
        int interval = atoi(value_of(&p, "keepalives_interval"));
        assert_true(idle + 3 * interval <= (cases[i].timeout_s < 4 ? 4 : cases[i].timeout_s));
    }
}

static void without_a_timeout_the_kernel_decides(void **state)
{
    (void)state;
    struct db_pool_options opts = {.url = "x", .application_name = "wattline-ingest"};
    struct db_connect_params p;
    db_connect_params_init(&p, &opts);
    assert_null(value_of(&p, "keepalives"));
    assert_null(value_of(&p, "tcp_user_timeout"));
    assert_string_equal(value_of(&p, "application_name"), "wattline-ingest");
    int n = 0;
    while (p.keys[n])
        n++;
    assert_true(n <= DB_CONNECT_PARAMS_MAX);
    assert_null(p.values[n]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_url_comes_first_and_the_session_settings_after),
        cmocka_unit_test(db_timeout_gives_keepalives_and_a_user_timeout),
        cmocka_unit_test(without_a_timeout_the_kernel_decides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
