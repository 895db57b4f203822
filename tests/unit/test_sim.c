/* Unit tests for the pure parts of the simulator (tools/sim): time parsing,
 * CSV reading, the household profile, scheduling, the spool file format and
 * its recovery, the retry policy, request bodies and the device list.
 * Expected values are written out by hand, not computed by the code under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, flock */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "csv.h"
#include "devices.h"
#include "profile.h"
#include "progress.h"
#include "retry.h"
#include "schedule.h"
#include "source.h"
#include "spool.h"
#include "timeutil.h"

/* 2026-11-21T10:10:00Z, worked out by hand: 20778 days after 1970-01-01. */
#define T_2026_11_21_1010 ((INT64_C(20778) * 86400 + 10 * 3600 + 10 * 60) * US_PER_SEC)

/* ---- timeutil ------------------------------------------------------------ */
/* The date arithmetic itself is base/timefmt's (tests/unit/test_timefmt.c);
 * these check the simulator's int64_t adapters and what it adds. */

static int64_t ts(const char *text)
{
    int64_t us = 0;
    assert_int_equal(time_parse_rfc3339(text, &us), 0);
    return us;
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    assert_int_equal(ts("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(ts("2026-11-21T10:10:00Z"), T_2026_11_21_1010);
    assert_int_equal(ts("2026-11-21T12:10:00+02:00"), T_2026_11_21_1010);
    assert_int_equal(ts("2026-11-21T05:40:00-04:30"), T_2026_11_21_1010);
    assert_int_equal(ts("2026-11-21t10:10:00z"), T_2026_11_21_1010);
    assert_int_equal(ts("2026-11-21 10:10:00Z"), T_2026_11_21_1010);
    assert_int_equal(ts("2026-11-21T10:10:00.25Z"), T_2026_11_21_1010 + 250000);
    assert_int_equal(ts("2026-11-21T10:10:00.0000019Z"), T_2026_11_21_1010 + 1);
    assert_int_equal(ts("2024-02-29T00:00:00Z"), INT64_C(19782) * 86400 * US_PER_SEC);

    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21T10:10:00",      /* no offset */
                         "2026-11-21T10:10Z",        /* no seconds */
                         "2026-11-21T10:10:00.Z",    /* empty fraction */
                         "2026-11-21T10:10:60Z",     /* leap second */
                         "2026-11-21T24:00:00Z",     /* hour 24 */
                         "2025-02-29T00:00:00Z",     /* not a leap year */
                         "2100-02-29T00:00:00Z",     /* century rule */
                         "2026-13-01T00:00:00Z",     /* month 13 */
                         "2026-11-21T10:10:00+2:00", /* short offset */
                         "2026-11-21T10:10:00Z ",    /* trailing blank */
                         "+2026-11-21T10:10:00Z",
                         "1969-12-31T23:59:59Z", /* before 1970: the server takes none */
                         "2026-11-21  10:10:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t us;
        if (time_parse_rfc3339(bad[i], &us) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    int64_t us;
    assert_int_equal(time_parse_rfc3339("2000-02-29T00:00:00Z", &us), 0);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    char buf[TIME_RFC3339_SIZE];
    assert_int_equal(time_format_rfc3339(T_2026_11_21_1010, buf, sizeof buf), 20);
    assert_string_equal(buf, "2026-11-21T10:10:00Z");
    time_format_rfc3339(T_2026_11_21_1010 + 250000, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21T10:10:00.25Z");
    time_format_rfc3339(T_2026_11_21_1010 + 1, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21T10:10:00.000001Z");
    time_format_rfc3339(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(time_format_rfc3339(0, buf, 10), 0);
    /* Round trip over a few centuries from 1970, day by day at odd times. */
    for (int64_t day = 0; day < 100000; day += 97) {
        int64_t us = day * US_PER_DAY + 12345678901;
        time_format_rfc3339(us, buf, sizeof buf);
        assert_int_equal(ts(buf), us);
    }
}

static void test_duration(void **state)
{
    (void)state;
    int64_t us;
    assert_int_equal(time_parse_duration("10m", &us), 0);
    assert_int_equal(us, 600 * US_PER_SEC);
    assert_int_equal(time_parse_duration("600", &us), 0);
    assert_int_equal(us, 600 * US_PER_SEC);
    assert_int_equal(time_parse_duration("1h30m", &us), 0);
    assert_int_equal(us, 5400 * US_PER_SEC);
    assert_int_equal(time_parse_duration("1d", &us), 0);
    assert_int_equal(us, US_PER_DAY);
    assert_int_equal(time_parse_duration("30s", &us), 0);
    assert_int_equal(us, 30 * US_PER_SEC);
    const char *bad[] = {"", "0", "0m", "10x", "m", "1h30", "-5m", "1.5h", "367d", "99999999999s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (time_parse_duration(bad[i], &us) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_range(void **state)
{
    (void)state;
    int64_t from, to;
    assert_int_equal(time_parse_range("2026-11-21T00:00:00Z..2026-11-21T10:10:00Z", &from, &to), 0);
    assert_int_equal(from, T_2026_11_21_1010 - (10 * 3600 + 600) * US_PER_SEC);
    assert_int_equal(to, T_2026_11_21_1010);
    assert_int_equal(time_parse_range("2026-11-21T10:10:00Z..2026-11-21T10:10:00Z", &from, &to),
                     -1); /* empty */
    assert_int_equal(time_parse_range("2026-11-22T00:00:00Z..2026-11-21T00:00:00Z", &from, &to),
                     -1); /* reversed */
    assert_int_equal(time_parse_range("2026-11-21T00:00:00Z", &from, &to), -1);
    assert_int_equal(time_parse_range("..2026-11-21T00:00:00Z", &from, &to), -1);
    assert_int_equal(time_parse_range("2026-11-21T00:00:00Z..", &from, &to), -1);
    assert_int_equal(
        time_parse_range("2026-11-21T00:00:00Z..2026-11-22T00:00:00Z..2026-11-23T00:00:00Z", &from,
                         &to),
        -1);
}

static void test_align_down(void **state)
{
    (void)state;
    assert_int_equal(time_align_down(1250, 600), 1200);
    assert_int_equal(time_align_down(1200, 600), 1200);
    assert_int_equal(time_align_down(-1, 600), -600);
    assert_int_equal(time_align_down(-600, 600), -600);
}

/* ---- csv ----------------------------------------------------------------- */

static struct csv_data parse_ok(const char *text)
{
    struct csv_data d;
    char err[256] = "";
    if (csv_parse(text, strlen(text), &d, err, sizeof err) != 0)
        fail_msg("csv_parse failed: %s", err);
    return d;
}

static void parse_fails(const char *text, const char *expected_err)
{
    struct csv_data d;
    char err[256] = "";
    assert_int_equal(csv_parse(text, strlen(text), &d, err, sizeof err), -1);
    assert_string_equal(err, expected_err);
    assert_null(d.values);
}

static void test_csv_classic(void **state)
{
    (void)state;
    /* The first lines of the classic sample, as published. */
    struct csv_data d = parse_ok("0.5\n1\n3.64170771\n7.55216266\n10.23553823\n");
    assert_int_equal(d.count, 5);
    assert_null(d.ts_us);
    assert_true(d.values[0] == 0.5);
    assert_true(d.values[2] == 3.64170771);
    assert_true(d.values[4] == 10.23553823);
    csv_data_free(&d);

    /* Quoted, CRLF, a BOM, blank lines, comments, no final newline. */
    d = parse_ok("\xEF\xBB\xBF\"18828.93849\"\r\n\r\n # note\n\"18829.5\"\r\n  18830 ");
    assert_int_equal(d.count, 3);
    assert_true(d.values[0] == 18828.93849);
    assert_true(d.values[1] == 18829.5);
    assert_true(d.values[2] == 18830.0);
    csv_data_free(&d);

    /* A one-column header is skipped. */
    d = parse_ok("meter_kwh\n1.5\n2.5\n");
    assert_int_equal(d.count, 2);
    assert_true(d.values[0] == 1.5);
    csv_data_free(&d);
}

static void test_csv_ts_value(void **state)
{
    (void)state;
    struct csv_data d = parse_ok("ts,meter_kwh\n2026-11-21T10:10:00Z,48213.7\n"
                                 "\"2026-11-21T12:20:00+02:00\", \"48214.25\"\n");
    assert_int_equal(d.count, 2);
    assert_non_null(d.ts_us);
    assert_int_equal(d.ts_us[0], T_2026_11_21_1010);
    assert_int_equal(d.ts_us[1], T_2026_11_21_1010 + 600 * US_PER_SEC);
    assert_true(d.values[0] == 48213.7);
    assert_true(d.values[1] == 48214.25);
    csv_data_free(&d);

    d = parse_ok("2026-11-21T10:10:00Z,1\n"); /* no header */
    assert_int_equal(d.count, 1);
    csv_data_free(&d);
}

static void test_csv_errors(void **state)
{
    (void)state;
    parse_fails("", "no readings");
    parse_fails("header only\n", "no readings");
    parse_fails("1\n2\n-3\n", "line 3: not a number >= 0");
    parse_fails("1\nnan\n", "line 2: not a number >= 0");
    parse_fails("1\ninf\n", "line 2: not a number >= 0");
    parse_fails("1\n0x10\n", "line 2: not a number >= 0");
    parse_fails("1\n2 kWh\n", "line 2: not a number >= 0");
    parse_fails("1\n1e999\n", "line 2: not a number >= 0");
    parse_fails("1\n2026-11-21T10:10:00Z,2\n",
                "line 2: number of columns differs from the first line");
    parse_fails("1\n\"2\n", "line 2: expected one value or \"ts,value\"");
    parse_fails("1\n\"2\"x\n", "line 2: expected one value or \"ts,value\"");
    parse_fails("a,b,c\n", "line 1: expected one value or \"ts,value\"");
    parse_fails("ts,v\n2026-11-21T10:10:00Z,1\n2026-11-21T10:10:00Z,2\n",
                "line 3: timestamps must increase from line to line");
    parse_fails("ts,v\n2026-11-21T10:10:00Z,1\nyesterday,2\n",
                "line 3: expected an RFC 3339 timestamp and a number >= 0");
    const char with_nul[] = "1\n2\0\n";
    struct csv_data d;
    char err[64];
    assert_int_equal(csv_parse(with_nul, sizeof with_nul - 1, &d, err, sizeof err), -1);
    assert_string_equal(err, "line 2: NUL byte");
}

static void test_csv_files(void **state)
{
    (void)state;
    struct csv_data d;
    char err[256];
    /* The classic sample must load as is (skipped where the shared data is absent). */
    const char *shared = "/work/shared/data/sensor.csv";
    if (access(shared, R_OK) == 0) {
        assert_int_equal(csv_load(shared, &d, err, sizeof err), 0);
        assert_int_equal(d.count, 3998);
        assert_true(d.values[0] == 0.5);
        assert_true(d.values[3997] == 47973.02036);
        csv_data_free(&d);
    }
    assert_int_equal(csv_load("/nonexistent/sensor.csv", &d, err, sizeof err), -1);
    assert_string_equal(err, "No such file or directory");
}

/* ---- profile ------------------------------------------------------------- */

static void test_profile_deterministic(void **state)
{
    (void)state;
    struct profile a, b, other;
    assert_int_equal(profile_init(&a, "household", 7), 0);
    assert_int_equal(profile_init(&b, "household", 7), 0);
    assert_int_equal(profile_init(&other, "household", 8), 0);
    assert_int_equal(profile_init(&other, "office", 8), -1);
    assert_int_equal(profile_init(&other, "household", 8), 0);
    int64_t t0 = ts("2026-11-02T00:00:00Z");
    /* b is asked in reverse order: the caches must not change the answers. */
    double forward[200];
    for (int i = 0; i < 200; i++)
        forward[i] = profile_register_at(&a, t0 + i * 17 * US_PER_MIN);
    for (int i = 199; i >= 0; i--)
        assert_true(profile_register_at(&b, t0 + i * 17 * US_PER_MIN) == forward[i]);
    assert_true(profile_register_at(&other, t0) != forward[0]);
    /* Values have 1 Wh resolution. */
    for (int i = 0; i < 200; i++)
        assert_true(fabs(forward[i] * 1000 - round(forward[i] * 1000)) < 1e-6);
    /* Before the profile's epoch the register stands still. */
    int64_t early = ts("2019-06-01T00:00:00Z");
    assert_true(profile_register_at(&a, early) == profile_register_at(&a, early - US_PER_DAY));
    assert_true(profile_register_at(&a, early) < forward[0]);
}

static void test_profile_shape(void **state)
{
    (void)state;
    struct profile p;
    profile_init(&p, "household", 1);
    int64_t monday = ts("2026-11-02T00:00:00Z"); /* a Monday */
    double hour_sum[24] = {0}, weekday = 0, weekend = 0;
    double prev = profile_register_at(&p, monday);
    for (int day = 0; day < 28; day++) {
        int64_t day_start = monday + day * US_PER_DAY;
        double total = 0;
        for (int h = 0; h < 24; h++) {
            double reg = profile_register_at(&p, day_start + (h + 1) * US_PER_HOUR);
            assert_true(reg >= prev); /* a register never goes down */
            hour_sum[h] += reg - prev;
            total += reg - prev;
            prev = reg;
        }
        assert_true(total > 3.0 && total < 40.0);
        if (day % 7 >= 5)
            weekend += total / 8;
        else
            weekday += total / 20;
    }
    assert_true(weekend > weekday * 1.05);
    double night = (hour_sum[2] + hour_sum[3]) / 2, evening = (hour_sum[19] + hour_sum[20]) / 2;
    double morning = (hour_sum[7] + hour_sum[8]) / 2, afternoon = (hour_sum[15] + hour_sum[16]) / 2;
    assert_true(evening > 3 * night);
    assert_true(morning > 1.5 * night);
    assert_true(evening > afternoon && morning > night);
    /* Within an hour the register rises smoothly: 10-minute steps are all > 0. */
    for (int i = 1; i < 144; i++)
        assert_true(profile_register_at(&p, monday + i * 10 * US_PER_MIN) >
                    profile_register_at(&p, monday + (i - 1) * 10 * US_PER_MIN));
}

/* ---- source -------------------------------------------------------------- */

static void test_source_timeline(void **state)
{
    (void)state;
    struct source s;
    char err[256];
    assert_int_equal(source_open_profile(&s, "household", 3, err, sizeof err), 0);
    assert_string_equal(s.desc, "profile:household seed=3");
    assert_int_equal(source_open_profile(&s, "nope", 3, err, sizeof err), -1);
    assert_string_equal(err, "unknown profile \"nope\" (known: household)");
    source_open_profile(&s, "household", 3, err, sizeof err);
    int64_t start = ts("2026-11-20T00:00:00Z");
    source_set_timeline(&s, start, 10 * US_PER_MIN);
    /* Backfill [00:05, 01:00): readings at 00:10 ... 00:50. */
    source_set_bounds(&s, start + 5 * US_PER_MIN, start + US_PER_HOUR, INT64_MAX);
    struct reading r;
    assert_int_equal(s.first_seq, 1);
    assert_false(source_get(&s, 0, &r));
    assert_true(source_get(&s, 1, &r));
    assert_int_equal(r.ts_us, start + 10 * US_PER_MIN);
    assert_true(source_get(&s, 5, &r));
    assert_false(source_get(&s, 6, &r));
    double prev;
    assert_true(source_previous_register(&s, 0, &prev)); /* a profile always has one */
    source_set_bounds(&s, INT64_MIN, INT64_MAX, 3);
    assert_true(source_get(&s, 2, &r));
    assert_false(source_get(&s, 3, &r));
    source_close(&s);
}

static const char *write_temp(const char *dir, const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sim.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_source_csv(void **state)
{
    (void)state;
    struct source s;
    char err[512];
    const char *path = write_temp(tmpdir, "ts.csv",
                                  "ts,meter_kwh\n2026-11-20T00:00:00Z,10\n"
                                  "2026-11-20T00:15:00Z,11\n2026-11-20T00:30:00Z,9\n");
    assert_int_equal(source_open_spec(&s, path, 1, err, sizeof err), 0);
    assert_true(source_has_timestamps(&s));
    assert_int_equal(source_length(&s), 3);
    /* Bounds by time pick the readings inside [00:10, 00:30). */
    source_set_bounds(&s, ts("2026-11-20T00:10:00Z"), ts("2026-11-20T00:30:00Z"), INT64_MAX);
    struct reading r;
    assert_false(source_get(&s, 0, &r));
    assert_true(source_get(&s, 1, &r));
    assert_int_equal(r.ts_us, ts("2026-11-20T00:15:00Z"));
    assert_true(r.reg == 11);
    assert_false(source_get(&s, 2, &r));
    double prev;
    assert_false(source_previous_register(&s, 0, &prev));
    assert_true(source_previous_register(&s, 1, &prev));
    assert_true(prev == 10);
    source_close(&s);

    assert_int_equal(source_open_spec(&s, "csv:/nonexistent.csv", 1, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent.csv: No such file or directory");
}

/* ---- schedule ------------------------------------------------------------ */

static void test_schedule_due(void **state)
{
    (void)state;
    int64_t ts0 = ts("2026-11-20T00:00:00Z"), now = ts("2026-11-21T00:00:00Z");
    struct pacing live = {.paced = true, .speed = 1, .anchor_wall_us = now, .anchor_ts_us = ts0};
    assert_int_equal(schedule_due_us(&live, ts0), ts0); /* the past goes at once */
    assert_int_equal(schedule_due_us(&live, now + 600), now + 600);
    /* A day in a minute: 1440 times faster from the anchor. */
    struct pacing fast = {.paced = true, .speed = 1440, .anchor_wall_us = now, .anchor_ts_us = ts0};
    assert_int_equal(schedule_due_us(&fast, ts0), now);
    assert_int_equal(schedule_due_us(&fast, ts0 + US_PER_HOUR), now + 2500000);
    /* ...but never before a reading's own time. */
    assert_int_equal(schedule_due_us(&fast, now + 2 * US_PER_DAY), now + 2 * US_PER_DAY);
    struct pacing backfill = {.paced = false};
    assert_int_equal(schedule_due_us(&backfill, now + US_PER_DAY), INT64_MIN);
}

static void test_schedule_default_start(void **state)
{
    (void)state;
    int64_t now = ts("2026-11-21T10:17:42Z"), iv = 10 * US_PER_MIN;
    assert_int_equal(schedule_default_start(now, iv, 100, 1), ts("2026-11-21T10:10:00Z"));
    /* 145 readings end at the aligned now. */
    assert_int_equal(schedule_default_start(now, iv, 145, 60), ts("2026-11-20T10:10:00Z"));
    assert_int_equal(schedule_default_start(now, iv, INT64_MAX, 60), ts("2026-11-20T10:10:00Z"));
    assert_int_equal(schedule_default_start(now, iv, 1, 60), ts("2026-11-21T10:10:00Z"));
    assert_int_equal(schedule_default_start(now, iv, INT64_MAX - 1, 60), 0); /* not before 1970 */
}

static void test_schedule_wire_value(void **state)
{
    (void)state;
    assert_true(schedule_wire_value(READING_CUMULATIVE, 48213.7, false, 0) == 48213.7);
    assert_true(schedule_wire_value(READING_INTERVAL, 47962.72161, true, 47952.68755) == 10.03406);
    assert_true(schedule_wire_value(READING_INTERVAL, 0.3, true, 0.1) == 0.2);
    assert_true(schedule_wire_value(READING_INTERVAL, 5, false, 0) == 0);
    assert_true(schedule_wire_value(READING_INTERVAL, 2.5, true, 9000) == 2.5); /* meter reset */
    assert_string_equal(schedule_member(READING_CUMULATIVE), "meter_kwh");
    assert_string_equal(schedule_member(READING_INTERVAL), "kwh");
}

/* ---- spool --------------------------------------------------------------- */

static struct spool_meta test_meta(void)
{
    struct spool_meta m = {.start_us = ts("2026-11-20T00:00:00Z"), .interval_us = 600000000};
    strcpy(m.type, "cumulative");
    strcpy(m.source, "csv:/data/my meter, v2.csv");
    return m;
}

static struct spool_entry entry(int64_t seq)
{
    struct spool_entry e = {.seq = seq,
                            .ts_us = ts("2026-11-20T00:00:00Z") + seq * 600000000,
                            .value = 48213.7 + (double)seq / 4};
    return e;
}

static char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_spool_entry_format(void **state)
{
    (void)state;
    char line[128];
    struct spool_entry e = {.seq = 42, .ts_us = T_2026_11_21_1010 + 250000, .value = 48213.7};
    assert_int_equal(spool_format_entry(&e, line, sizeof line), 34);
    assert_string_equal(line, "2026-11-21T10:10:00.25Z,48213.7,42");
    struct spool_entry back;
    assert_int_equal(spool_parse_entry(line, &back), 0);
    assert_int_equal(back.seq, 42);
    assert_int_equal(back.ts_us, e.ts_us);
    assert_true(back.value == 48213.7);
    const char *bad[] = {"",
                         "2026-11-21T10:10:00Z,1",
                         "2026-11-21T10:10:00Z,1,",
                         "2026-11-21T10:10:00Z,x,1",
                         "2026-11-21T10:10:00Z,-1,1",
                         "2026-11-21T10:10:00Z,1,-1",
                         "2026-11-21T10:10:00Z,1,2,3",
                         "x,1,1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (spool_parse_entry(bad[i], &back) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_spool_lifecycle(void **state)
{
    (void)state;
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/life.spool", tmpdir);
    struct spool_meta meta = test_meta();
    struct spool sp;
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_false(sp.resumed);
    assert_false(sp.has_last);
    struct spool_entry batch[5] = {entry(0), entry(1), entry(2), entry(3), entry(4)};
    assert_int_equal(spool_append(&sp, batch, 5), 0);
    assert_int_equal(spool_pending(&sp), 5);
    assert_int_equal(spool_peek(&sp, 0)->seq, 0);
    assert_null(spool_peek(&sp, 5));
    assert_int_equal(spool_ack(&sp, 2), 0);
    assert_int_equal(spool_pending(&sp), 3);
    assert_int_equal(spool_peek(&sp, 0)->seq, 2);

    /* A second simulator cannot open it while this one has it. */
    struct spool other;
    assert_int_equal(spool_open(&other, path, &meta, err, sizeof err), -1);
    assert_non_null(strstr(err, "in use by another simulator"));
    spool_close(&sp);

    /* Reopen: the header comes back, the two acked readings do not. */
    struct spool_meta different = test_meta();
    strcpy(different.type, "interval");
    assert_int_equal(spool_open(&sp, path, &different, err, sizeof err), 0);
    assert_true(sp.resumed);
    assert_string_equal(sp.meta.type, "cumulative");
    assert_string_equal(sp.meta.source, "csv:/data/my meter, v2.csv");
    assert_int_equal(sp.meta.start_us, meta.start_us);
    assert_int_equal(sp.meta.interval_us, 600000000);
    assert_int_equal(spool_pending(&sp), 3);
    assert_int_equal(spool_peek(&sp, 0)->seq, 2);
    assert_true(spool_peek(&sp, 2)->value == 48214.7);
    assert_true(sp.has_last);
    assert_int_equal(sp.last.seq, 4);
    assert_int_equal(spool_ack(&sp, 3), 0);
    assert_int_equal(spool_pending(&sp), 0);
    spool_close(&sp);

    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_int_equal(spool_pending(&sp), 0);
    assert_int_equal(sp.last.seq, 4);
    spool_close(&sp);
}

static void test_spool_torn_tail_and_corruption(void **state)
{
    (void)state;
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/torn.spool", tmpdir);
    struct spool_meta meta = test_meta();
    struct spool sp;
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    struct spool_entry batch[2] = {entry(0), entry(1)};
    assert_int_equal(spool_append(&sp, batch, 2), 0);
    spool_close(&sp);
    /* A crash in the middle of writing the third line. */
    FILE *f = fopen(path, "a");
    fputs("2026-11-20T00:20:00Z,482", f);
    fclose(f);
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_int_equal(spool_pending(&sp), 2);
    assert_int_equal(sp.last.seq, 1);
    struct spool_entry third = entry(2);
    assert_int_equal(spool_append(&sp, &third, 1), 0); /* lands on a clean line */
    spool_close(&sp);
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_int_equal(spool_pending(&sp), 3);
    assert_int_equal(spool_peek(&sp, 2)->seq, 2);
    spool_close(&sp);

    /* A damaged line in the middle is refused, not skipped. */
    f = fopen(path, "a");
    fputs("garbage\n2026-11-20T00:40:00Z,1,4\n", f);
    fclose(f);
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 5 is corrupt"));

    const char *not_spool = write_temp(tmpdir, "notes.txt", "hello\n");
    assert_int_equal(spool_open(&sp, not_spool, &meta, err, sizeof err), -1);
    assert_non_null(strstr(err, "is not a wattline-sim spool"));
}

static void test_spool_compaction(void **state)
{
    (void)state;
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/compact.spool", tmpdir);
    struct spool_meta meta = test_meta();
    struct spool sp;
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    struct spool_entry batch[10];
    for (int i = 0; i < 10; i++)
        batch[i] = entry(i);
    assert_int_equal(spool_append(&sp, batch, 10), 0);
    assert_int_equal(spool_ack(&sp, 7), 0);
    /* Under the threshold nothing happens. */
    off_t before = sp.size;
    assert_int_equal(spool_compact(&sp, 1 << 20), 0);
    assert_int_equal(sp.size, before);
    /* Over it only the pending readings stay. */
    assert_int_equal(spool_compact(&sp, 0), 0);
    assert_true(sp.size < before);
    assert_int_equal(spool_pending(&sp), 3);
    struct spool_entry more = entry(10);
    assert_int_equal(spool_append(&sp, &more, 1), 0); /* appends still work on the new file */
    assert_int_equal(spool_ack(&sp, 1), 0);
    spool_close(&sp);
    const char *text = slurp(path);
    assert_null(strstr(text, ",48213.7,0\n")); /* acknowledged readings are gone */
    assert_non_null(strstr(text, ",48215.45,7\n"));
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_int_equal(spool_pending(&sp), 3);
    assert_int_equal(spool_peek(&sp, 0)->seq, 8);
    assert_int_equal(sp.last.seq, 10);
    /* Everything acknowledged: the newest reading stays, marked as acknowledged. */
    assert_int_equal(spool_ack(&sp, 3), 0);
    assert_int_equal(spool_compact(&sp, 0), 0);
    spool_close(&sp);
    char expected[512];
    snprintf(expected, sizeof expected,
             "#wattline-sim-spool 1 type=cumulative start=2026-11-20T00:00:00Z "
             "interval_us=600000000 source=csv:/data/my meter, v2.csv\n"
             "2026-11-20T01:40:00Z,48216.2,10\n#ack %zu\n",
             strlen("#wattline-sim-spool 1 type=cumulative start=2026-11-20T00:00:00Z "
                    "interval_us=600000000 source=csv:/data/my meter, v2.csv\n"
                    "2026-11-20T01:40:00Z,48216.2,10\n"));
    assert_string_equal(slurp(path), expected);
    assert_int_equal(spool_open(&sp, path, &meta, err, sizeof err), 0);
    assert_int_equal(spool_pending(&sp), 0);
    assert_int_equal(sp.last.seq, 10);
    spool_close(&sp);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* ---- retry ----------------------------------------------------------------- */

static void test_retry_classify(void **state)
{
    (void)state;
    assert_int_equal(retry_classify_status(200), RETRY_ACK);
    assert_int_equal(retry_classify_status(408), RETRY_AGAIN);
    assert_int_equal(retry_classify_status(429), RETRY_AGAIN);
    assert_int_equal(retry_classify_status(500), RETRY_AGAIN);
    assert_int_equal(retry_classify_status(503), RETRY_AGAIN);
    assert_int_equal(retry_classify_status(599), RETRY_AGAIN);
    assert_int_equal(retry_classify_status(413), RETRY_SHRINK);
    assert_int_equal(retry_classify_status(400), RETRY_FATAL);
    assert_int_equal(retry_classify_status(401), RETRY_FATAL);
    assert_int_equal(retry_classify_status(403), RETRY_FATAL);
    assert_int_equal(retry_classify_status(404), RETRY_FATAL);
    assert_int_equal(retry_classify_status(422), RETRY_FATAL);
    assert_int_equal(retry_classify_status(301), RETRY_FATAL);
    assert_true(client_transport_retryable(CURLE_COULDNT_CONNECT));
    assert_true(client_transport_retryable(CURLE_OPERATION_TIMEDOUT));
    assert_true(client_transport_retryable(CURLE_GOT_NOTHING));
    assert_true(client_transport_retryable(CURLE_RECV_ERROR));
    assert_false(client_transport_retryable(CURLE_PEER_FAILED_VERIFICATION));
    assert_false(client_transport_retryable(CURLE_URL_MALFORMAT));
}

static void test_retry_backoff(void **state)
{
    (void)state;
    /* The ceiling doubles from 200 ms and stops at 30 s. */
    assert_int_equal(retry_backoff_us(0, 200000), 200000);
    assert_int_equal(retry_backoff_us(0, 200001), 0);
    assert_int_equal(retry_backoff_us(1, 400000), 400000);
    assert_int_equal(retry_backoff_us(7, 25600000), 25600000);
    assert_int_equal(retry_backoff_us(8, 30000000), 30000000);
    assert_int_equal(retry_backoff_us(8, 30000001), 0);
    assert_int_equal(retry_backoff_us(200, 30000000), 30000000);
    /* Full jitter: over many draws the waits spread over the whole range. */
    uint64_t rng = 42;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t d = retry_backoff_us(3, retry_random(&rng));
        assert_true(d >= 0 && d <= 1600000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 20000 && hi > 1580000);
    assert_int_equal(retry_delay_us(0, 5, 2 * US_PER_SEC), 2 * US_PER_SEC);
    assert_int_equal(retry_delay_us(0, 5, -1), 5);
}

static void test_retry_after(void **state)
{
    (void)state;
    int64_t now = ts("2026-11-21T10:10:00Z");
    assert_int_equal(retry_after_parse(" 2\r\n", now), 2 * US_PER_SEC);
    assert_int_equal(retry_after_parse("0", now), 0);
    assert_int_equal(retry_after_parse("86400", now), RETRY_AFTER_MAX_US);
    assert_int_equal(retry_after_parse("99999999999999", now), RETRY_AFTER_MAX_US);
    assert_int_equal(retry_after_parse("Sat, 21 Nov 2026 10:10:30 GMT", now), 30 * US_PER_SEC);
    assert_int_equal(retry_after_parse("Sat, 21 Nov 2026 10:00:00 GMT", now), 0);
    assert_int_equal(retry_after_parse("", now), -1);
    assert_int_equal(retry_after_parse("soon", now), -1);
    assert_int_equal(retry_after_parse("-5", now), -1);
}

/* ---- client bodies and problems -------------------------------------------- */

static void test_client_body(void **state)
{
    (void)state;
    struct spool_entry e[2] = {{.ts_us = T_2026_11_21_1010, .value = 48213.7},
                               {.ts_us = T_2026_11_21_1010 + 250000, .value = 48214.0}};
    char *body = client_build_body(e, 1, "meter_kwh");
    assert_string_equal(body, "{\"ts\":\"2026-11-21T10:10:00Z\",\"meter_kwh\":48213.7}");
    free(body);
    body = client_build_body(e, 2, "kwh");
    assert_string_equal(body,
                        "{\"measurements\":[{\"ts\":\"2026-11-21T10:10:00Z\",\"kwh\":48213.7},"
                        "{\"ts\":\"2026-11-21T10:10:00.25Z\",\"kwh\":48214.0}]}");
    free(body);
}

static void test_client_problem(void **state)
{
    (void)state;
    char out[256];
    const char *p = "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,"
                    "\"detail\":\"device token revoked\",\"code\":\"invalid_token\"}";
    client_describe_problem(401, p, strlen(p), out, sizeof out);
    assert_string_equal(out, "HTTP 401 Unauthorized: device token revoked (invalid_token)");
    p = "{\"title\":\"Unprocessable "
        "Content\",\"detail\":\"bad\\nvalue\",\"code\":\"invalid_field\","
        "\"field\":\"measurements[17].kwh\"}";
    client_describe_problem(422, p, strlen(p), out, sizeof out);
    assert_string_equal(
        out, "HTTP 422 Unprocessable Content: bad value (invalid_field, measurements[17].kwh)");
    client_describe_problem(404, "<html>", 6, out, sizeof out);
    assert_string_equal(out, "HTTP 404");
}

/* ---- devices and progress -------------------------------------------------- */

static void test_devices(void **state)
{
    (void)state;
    struct device_spec *list;
    size_t n;
    char err[256];
    assert_int_equal(devices_parse("# gateway\n\ntokA profile:household kitchen\r\n"
                                   "  tokB\t/data/sensor.csv\n",
                                   &list, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].token, "tokA");
    assert_string_equal(list[0].source, "profile:household");
    assert_string_equal(list[0].name, "kitchen");
    assert_string_equal(list[1].source, "/data/sensor.csv");
    assert_string_equal(list[1].name, "device-2");
    devices_free(list, n);

    struct {
        const char *text, *err;
    } bad[] = {
        {"", "no devices"},
        {"# nothing\n", "no devices"},
        {"tokA\n", "line 1: expected \"TOKEN SOURCE [NAME]\""},
        {"tokA a b c\n", "line 1: expected \"TOKEN SOURCE [NAME]\""},
        {"tokA a x\ntokA b y\n", "line 2: the same token as device x"},
        {"tokA a x\ntokB b x\n", "line 2: the same name as device x"},
        {"tokA a ../x\n", "line 1: a name is 1-63 of A-Z a-z 0-9 . _ - (not starting with .)"},
        {"tok\x01 a\n", "line 1: the token has invalid characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(devices_parse(bad[i].text, &list, &n, err, sizeof err), -1);
        assert_string_equal(err, bad[i].err);
        assert_null(list);
    }
    assert_true(devices_token_valid("wl_dev_AbC-123._~+/="));
    assert_false(devices_token_valid("two words"));
    assert_false(devices_token_valid(""));
    assert_false(devices_token_valid("line\r\nX-Evil: 1"));
}

static void test_progress_format(void **state)
{
    (void)state;
    struct progress_totals t = {
        .counters = {.sent = 150, .acked = 145, .duplicates = 3, .retries = 2},
        .pending = 5,
        .meters = 1,
    };
    char line[160];
    progress_format(&t, line, sizeof line);
    assert_string_equal(line, "sent 150  acked 145  dup 3  pending 5  retries 2");
    t.meters = 4;
    t.failed = 1;
    progress_format(&t, line, sizeof line);
    assert_string_equal(line, "sent 150  acked 145  dup 3  pending 5  retries 2  devices 3/4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_align_down),
        cmocka_unit_test(test_csv_classic),
        cmocka_unit_test(test_csv_ts_value),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_files),
        cmocka_unit_test(test_profile_deterministic),
        cmocka_unit_test(test_profile_shape),
        cmocka_unit_test(test_source_timeline),
        cmocka_unit_test(test_source_csv),
        cmocka_unit_test(test_schedule_due),
        cmocka_unit_test(test_schedule_default_start),
        cmocka_unit_test(test_schedule_wire_value),
        cmocka_unit_test(test_spool_entry_format),
        cmocka_unit_test(test_spool_lifecycle),
        cmocka_unit_test(test_spool_torn_tail_and_corruption),
        cmocka_unit_test(test_spool_compaction),
        cmocka_unit_test(test_retry_classify),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_client_body),
        cmocka_unit_test(test_client_problem),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_progress_format),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
