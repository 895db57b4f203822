/* Unit tests for the pure parts of wattline-sim --commands: what a command asks
 * (tools/sim/command.c), the answer's body, the memory of ids already obeyed, and the
 * register while the relay is off (tools/sim/relay.c); then a meter obeying them
 * (tools/sim/meter.c) with a CSV source and a spool in a temporary directory. Expected
 * values are written out by hand, not computed by the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "meter.h"
#include "relay.h"
#include "timeutil.h"

static struct command_order parse_ok(const char *text)
{
    struct command_order o;
    if (command_parse_text(text, strlen(text), &o) != 0)
        fail_msg("refused %s", text);
    return o;
}

static void refused(const char *text, const char *says)
{
    struct command_order o = parse_ok(text);
    assert_int_equal(o.action, COMMAND_REFUSE);
    if (strstr(o.error, says) == NULL)
        fail_msg("%s: error \"%s\" does not say \"%s\"", text, o.error, says);
}

static void test_parse_known(void **state)
{
    (void)state;
    struct command_order o = parse_ok("{\"id\": 7, \"name\": \"relay\", \"params\": {\"state\": "
                                      "\"off\"}, \"status\": \"sent\", \"attempts\": 1}");
    assert_int_equal(o.id, 7);
    assert_int_equal(o.action, COMMAND_RELAY);
    assert_false(o.relay_on);
    o = parse_ok("{\"id\": 8, \"name\": \"relay\", \"params\": {\"state\": \"on\"}}");
    assert_int_equal(o.action, COMMAND_RELAY);
    assert_true(o.relay_on);
    o = parse_ok("{\"id\": 9, \"name\": \"interval\", \"params\": {\"seconds\": 86400}}");
    assert_int_equal(o.action, COMMAND_INTERVAL);
    assert_int_equal(o.seconds, 86400);
    o = parse_ok("{\"id\": 10, \"name\": \"interval\", \"params\": {\"seconds\": 60.0}}");
    assert_int_equal(o.seconds, 60);
    o = parse_ok("{\"id\": 11, \"name\": \"interval\", \"params\": {\"seconds\": 1}}");
    assert_int_equal(o.seconds, 1);
}

static void test_parse_envelope(void **state)
{
    (void)state;
    /* The WebSocket's shape, which an MQTT message may have too. */
    struct command_order o = parse_ok("{\"type\": \"command\", \"command\": {\"id\": 12, \"name\": "
                                      "\"relay\", \"params\": {\"state\": \"on\"}}}");
    assert_int_equal(o.id, 12);
    assert_int_equal(o.action, COMMAND_RELAY);
    assert_true(o.relay_on);
}

static void test_parse_refused(void **state)
{
    (void)state;
    refused("{\"id\": 1, \"name\": \"reboot\", \"params\": {}}", "unknown command");
    refused("{\"id\": 1, \"name\": \"reboot\"}", "unknown command");
    refused("{\"id\": 1, \"name\": \"relay\"}", "state");
    refused("{\"id\": 1, \"name\": \"relay\", \"params\": {}}", "state");
    refused("{\"id\": 1, \"name\": \"relay\", \"params\": {\"state\": \"dim\"}}", "state");
    refused("{\"id\": 1, \"name\": \"relay\", \"params\": {\"state\": true}}", "state");
    refused("{\"id\": 1, \"name\": \"relay\", \"params\": {\"state\": \"on\", \"x\": 1}}", "state");
    refused("{\"id\": 1, \"name\": \"relay\", \"params\": [\"on\"]}", "params");
    refused("{\"id\": 1, \"name\": \"interval\", \"params\": {\"seconds\": 0}}", "1 to 86400");
    refused("{\"id\": 1, \"name\": \"interval\", \"params\": {\"seconds\": 86401}}", "1 to 86400");
    refused("{\"id\": 1, \"name\": \"interval\", \"params\": {\"seconds\": -5}}", "1 to 86400");
    refused("{\"id\": 1, \"name\": \"interval\", \"params\": {\"seconds\": 1.5}}", "whole");
    refused("{\"id\": 1, \"name\": \"interval\", \"params\": {\"seconds\": \"60\"}}", "seconds");
    refused("{\"id\": 1, \"params\": {}}", "no name");
}

static void test_parse_unanswerable(void **state)
{
    (void)state;
    /* Without an id there is nothing to answer. */
    const char *bad[] = {"",
                         "[]",
                         "{}",
                         "not json",
                         "{\"id\": 0, \"name\": \"relay\"}",
                         "{\"id\": -3, \"name\": \"relay\"}",
                         "{\"id\": \"7\", \"name\": \"relay\"}",
                         "{\"id\": 1.5, \"name\": \"relay\"}",
                         "{\"id\": 1, \"id\": 2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct command_order o;
        if (command_parse_text(bad[i], strlen(bad[i]), &o) != -1)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_parse_poll(void **state)
{
    (void)state;
    const char *body = "{\"items\": [{\"id\": 3, \"name\": \"relay\", \"params\": {\"state\": "
                       "\"off\"}}, {\"name\": \"no id\"}, {\"id\": 4, \"name\": \"x\"}]}";
    struct command_order *list;
    size_t n;
    assert_int_equal(command_parse_poll(body, strlen(body), &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, 3);
    assert_int_equal(list[0].action, COMMAND_RELAY);
    assert_int_equal(list[1].id, 4);
    assert_int_equal(list[1].action, COMMAND_REFUSE);
    assert_string_equal(list[1].error, "unknown command");
    free(list);

    assert_int_equal(command_parse_poll("{\"items\": []}", 13, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    assert_int_equal(command_parse_poll("{\"items\": 3}", 12, &list, &n), -1);
    assert_int_equal(command_parse_poll("<html>", 6, &list, &n), -1);
    assert_null(list);
}

static void body_is(const struct command_outcome *o, bool with_id, const char *want)
{
    char *body = command_result_body(o, with_id);
    assert_non_null(body);
    assert_string_equal(body, want);
    free(body);
}

static void test_result_bodies(void **state)
{
    (void)state;
    struct command_outcome o = {.id = 5, .succeeded = true, .action = COMMAND_RELAY};
    body_is(&o, false, "{\"status\":\"succeeded\",\"result\":{\"state\":\"off\"}}");
    o.relay_on = true;
    body_is(&o, true,
            "{\"type\":\"command_result\",\"id\":5,\"status\":\"succeeded\",\"result\":{\"state\":"
            "\"on\"}}");
    o = (struct command_outcome){
        .id = 6, .succeeded = true, .action = COMMAND_INTERVAL, .seconds = 300};
    body_is(&o, false, "{\"status\":\"succeeded\",\"result\":{\"seconds\":300}}");
    o = (struct command_outcome){.id = 7, .action = COMMAND_REFUSE, .error = "unknown command"};
    body_is(&o, false, "{\"status\":\"failed\",\"error\":\"unknown command\"}");
    body_is(&o, true,
            "{\"type\":\"command_result\",\"id\":7,\"status\":\"failed\",\"error\":\"unknown "
            "command\"}");
    /* A failed interval says why, not what it would have been. */
    o = (struct command_outcome){
        .id = 8, .action = COMMAND_INTERVAL, .seconds = 60, .error = "say \"why\""};
    body_is(&o, false, "{\"status\":\"failed\",\"error\":\"say \\\"why\\\"\"}");
}

struct obey_log {
    int calls;
};

static void obey_relay(void *ctx, const struct command_order *order, struct command_outcome *out)
{
    struct obey_log *log = ctx;
    log->calls++;
    out->succeeded = order->action == COMMAND_RELAY;
    out->action = order->action;
    out->relay_on = order->relay_on;
    if (!out->succeeded)
        strcpy(out->error, order->error);
}

static void test_redelivery_obeyed_once(void **state)
{
    (void)state;
    struct command_memory *mem = calloc(1, sizeof *mem);
    assert_non_null(mem);
    struct obey_log log = {0};
    struct command_order off = {.id = 41, .action = COMMAND_RELAY, .relay_on = false};
    struct command_outcome out;
    assert_true(command_handle(mem, &off, obey_relay, &log, &out));
    assert_int_equal(log.calls, 1);
    assert_true(out.succeeded);
    assert_int_equal(out.id, 41);

    /* The same id again, even with other contents: the first outcome, not obeyed again. */
    struct command_order again = {.id = 41, .action = COMMAND_RELAY, .relay_on = true};
    assert_false(command_handle(mem, &again, obey_relay, &log, &out));
    assert_int_equal(log.calls, 1);
    assert_int_equal(out.id, 41);
    assert_false(out.relay_on);

    struct command_order unknown = {.id = 42, .action = COMMAND_REFUSE, .error = "unknown command"};
    assert_true(command_handle(mem, &unknown, obey_relay, &log, &out));
    assert_false(command_handle(mem, &unknown, obey_relay, &log, &out));
    assert_int_equal(log.calls, 2);
    assert_false(out.succeeded);
    assert_string_equal(out.error, "unknown command");
    free(mem);
}

static void test_memory_forgets_oldest(void **state)
{
    (void)state;
    struct command_memory *mem = calloc(1, sizeof *mem);
    assert_non_null(mem);
    for (int64_t id = 1; id <= COMMAND_MEMORY_MAX + 3; id++) {
        struct command_outcome o = {.id = id, .succeeded = true};
        command_remember(mem, &o);
    }
    assert_int_equal(mem->count, COMMAND_MEMORY_MAX);
    assert_null(command_recall(mem, 1));
    assert_null(command_recall(mem, 3));
    assert_non_null(command_recall(mem, 4));
    assert_non_null(command_recall(mem, COMMAND_MEMORY_MAX + 3));
    /* Remembering a known id updates it in place: nothing else is forgotten. */
    struct command_outcome update = {.id = 4, .succeeded = false};
    command_remember(mem, &update);
    assert_false(command_recall(mem, 4)->succeeded);
    assert_non_null(command_recall(mem, 5));
    free(mem);
}

static void test_relay_identity_when_on(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r);
    assert_true(relay_register(&r, 100.5) == 100.5);
    assert_true(relay_register(&r, 101.25) == 101.25);
    relay_switch(&r, true); /* on already: nothing changes */
    assert_true(relay_register(&r, 102.0) == 102.0);
}

static void test_relay_off_holds_on_continues(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r);
    assert_true(relay_register(&r, 10) == 10);
    assert_true(relay_register(&r, 11) == 11);
    relay_switch(&r, false);
    /* Off: still at 11 however much the source counts. */
    assert_true(relay_register(&r, 12) == 11);
    assert_true(relay_register(&r, 15) == 11);
    assert_true(relay_register(&r, 20) == 11);
    relay_switch(&r, true);
    /* On: the next reading adds only what came since the last off one (21 - 20). */
    assert_true(relay_register(&r, 21) == 12);
    assert_true(relay_register(&r, 23) == 14);
    /* A second off period adds to the offset. */
    relay_switch(&r, false);
    assert_true(relay_register(&r, 30) == 14);
    relay_switch(&r, true);
    assert_true(relay_register(&r, 31) == 15);
    assert_true(r.offset == 16);
}

static void test_relay_off_from_the_start(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r);
    relay_switch(&r, false);
    assert_true(relay_register(&r, 50) == 50); /* the first reading is where it stands */
    assert_true(relay_register(&r, 55) == 50);
    relay_switch(&r, true);
    assert_true(relay_register(&r, 56) == 51);
}

static void test_relay_source_reset(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r);
    relay_register(&r, 100);
    relay_switch(&r, false);
    relay_register(&r, 110); /* held at 100, offset 10 */
    relay_switch(&r, true);
    assert_true(relay_register(&r, 111) == 101);
    /* The source's meter was reset: so is this one, never below zero. */
    assert_true(relay_register(&r, 3) == 3);
    assert_true(relay_register(&r, 4) == 4);
    /* A reset while off keeps it still, and it continues from there once on. */
    relay_switch(&r, false);
    assert_true(relay_register(&r, 9) == 4);
    assert_true(relay_register(&r, 1) == 4);
    relay_switch(&r, true);
    assert_true(relay_register(&r, 2) == 5);
}

/* ---- a meter obeying commands ------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sim_commands.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *temp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define T0_TEXT "2026-11-20T00:00:00Z"

static int64_t t0(void)
{
    int64_t us;
    assert_int_equal(time_parse_rfc3339(T0_TEXT, &us), 0);
    return us;
}

/* Live settings, a minute apart from T0, no HTTP: the meter is driven by hand. */
static struct meter_settings live_settings(void)
{
    struct meter_settings set = {.type = READING_CUMULATIVE,
                                 .interval_us = 60 * US_PER_SEC,
                                 .start_us = t0(),
                                 .start_given = true,
                                 .count = INT64_MAX,
                                 .speed = 1.0,
                                 .batch = 500,
                                 .commands = true};
    return set;
}

static void open_meter(struct meter *m, const char *csv, const char *spool,
                       const struct meter_settings *set)
{
    struct source src;
    char err[1600];
    if (source_open_csv(&src, csv, err, sizeof err) != 0 ||
        meter_open(m, "", &src, "token", spool, set, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* The values and timestamps of the readings spooled but not acknowledged. */
static void expect_pending(const struct meter *m, size_t n, const double *values,
                           const int64_t *minutes)
{
    assert_int_equal(spool_pending(&m->spool), n);
    for (size_t i = 0; i < n; i++) {
        const struct spool_entry *e = spool_peek(&m->spool, i);
        if (e->value != values[i] || e->ts_us != t0() + minutes[i] * US_PER_MIN)
            fail_msg("reading %zu: %g at +%lld s, want %g at +%lld min", i, e->value,
                     (long long)((e->ts_us - t0()) / US_PER_SEC), values[i], (long long)minutes[i]);
    }
}

static struct command_outcome command(struct meter *m, const char *json)
{
    struct command_order order = parse_ok(json);
    struct command_outcome out;
    meter_command(m, &order, &out);
    return out;
}

static void test_meter_relay_and_interval(void **state)
{
    (void)state;
    const char *csv = "10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n";
    write_file(temp_path("steps.csv"), csv);
    char csv_path[512], spool_path[512];
    snprintf(csv_path, sizeof csv_path, "%s", temp_path("steps.csv"));
    snprintf(spool_path, sizeof spool_path, "%s", temp_path("steps.spool"));
    struct meter_settings set = live_settings();
    struct meter *m = calloc(1, sizeof *m);
    assert_non_null(m);
    open_meter(m, csv_path, spool_path, &set);

    assert_int_equal(meter_generate(m, t0() + US_PER_MIN, 100), 0);
    struct command_outcome out = command(m, "{\"id\": 1, \"name\": \"relay\", \"params\": "
                                            "{\"state\": \"off\"}}");
    assert_true(out.succeeded);
    assert_false(out.relay_on);
    /* Off: readings keep coming a minute apart, the register still at 11. */
    assert_int_equal(meter_generate(m, t0() + 3 * US_PER_MIN, 100), 0);
    out = command(m, "{\"id\": 2, \"name\": \"relay\", \"params\": {\"state\": \"on\"}}");
    assert_true(out.succeeded);
    /* On: one step a reading from 11, not from the source's 14. */
    assert_int_equal(meter_generate(m, t0() + 4 * US_PER_MIN, 100), 0);
    /* Command 1 delivered again: the same answer, and the relay stays on. */
    out = command(m, "{\"id\": 1, \"name\": \"relay\", \"params\": {\"state\": \"off\"}}");
    assert_true(out.succeeded);
    assert_false(out.relay_on);
    assert_int_equal(meter_generate(m, t0() + 5 * US_PER_MIN, 100), 0);
    {
        const double values[] = {10, 11, 11, 11, 12, 13};
        const int64_t minutes[] = {0, 1, 2, 3, 4, 5};
        expect_pending(m, 6, values, minutes);
    }

    /* Every two minutes from the next reading on: +7, +9. */
    out = command(m, "{\"id\": 3, \"name\": \"interval\", \"params\": {\"seconds\": 120}}");
    assert_true(out.succeeded);
    assert_int_equal(out.seconds, 120);
    assert_int_equal(meter_generate(m, t0() + 6 * US_PER_MIN + 59 * US_PER_SEC, 100), 0);
    assert_int_equal(spool_pending(&m->spool), 6);
    assert_int_equal(meter_generate(m, t0() + 7 * US_PER_MIN, 100), 0);
    {
        const double values[] = {10, 11, 11, 11, 12, 13, 14};
        const int64_t minutes[] = {0, 1, 2, 3, 4, 5, 7};
        expect_pending(m, 7, values, minutes);
    }
    out = command(m, "{\"id\": 4, \"name\": \"reboot\"}");
    assert_false(out.succeeded);
    assert_string_equal(out.error, "unknown command");
    assert_int_equal(m->counters.commands_obeyed, 3);
    assert_int_equal(m->counters.commands_failed, 1);
    meter_close(m);

    /* A restart: the spool keeps the two-minute time line and the register's offset. */
    set.start_given = false;
    open_meter(m, csv_path, spool_path, &set);
    assert_int_equal(meter_generate(m, t0() + 9 * US_PER_MIN, 100), 0);
    {
        const double values[] = {10, 11, 11, 11, 12, 13, 14, 15};
        const int64_t minutes[] = {0, 1, 2, 3, 4, 5, 7, 9};
        expect_pending(m, 8, values, minutes);
    }
    meter_close(m);
    free(m);
}

static void test_meter_interval_refused_for_timestamps(void **state)
{
    (void)state;
    write_file(temp_path("ts.csv"), "ts,meter_kwh\n" T0_TEXT ",1\n2026-11-20T00:15:00Z,2\n");
    char csv_path[512], spool_path[512];
    snprintf(csv_path, sizeof csv_path, "%s", temp_path("ts.csv"));
    snprintf(spool_path, sizeof spool_path, "%s", temp_path("ts.spool"));
    struct meter_settings set = live_settings();
    set.start_given = false;
    struct meter *m = calloc(1, sizeof *m);
    assert_non_null(m);
    open_meter(m, csv_path, spool_path, &set);
    struct command_outcome out =
        command(m, "{\"id\": 9, \"name\": \"interval\", \"params\": {\"seconds\": 5}}");
    assert_false(out.succeeded);
    assert_non_null(strstr(out.error, "timestamps"));
    assert_int_equal(m->counters.commands_failed, 1);
    meter_close(m);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_known),
        cmocka_unit_test(test_parse_envelope),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_parse_unanswerable),
        cmocka_unit_test(test_parse_poll),
        cmocka_unit_test(test_result_bodies),
        cmocka_unit_test(test_redelivery_obeyed_once),
        cmocka_unit_test(test_memory_forgets_oldest),
        cmocka_unit_test(test_relay_identity_when_on),
        cmocka_unit_test(test_relay_off_holds_on_continues),
        cmocka_unit_test(test_relay_off_from_the_start),
        cmocka_unit_test(test_relay_source_reset),
        cmocka_unit_test(test_meter_relay_and_interval),
        cmocka_unit_test(test_meter_interval_refused_for_timestamps),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
