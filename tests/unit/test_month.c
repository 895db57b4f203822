/* base/month.c: months as integers, which months retention retires, archive names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../base/month.h"

#define DAY 86400LL

static int month(const char *s)
{
    int m = -1;
    assert_true(month_parse(s, &m));
    return m;
}

static void parse_and_format_round_trip(void **state)
{
    (void)state;
    char text[MONTH_TEXT_MAX], date[MONTH_DATE_MAX];
    assert_int_equal(month("2026-08"), 2026 * 12 + 7);
    assert_int_equal(month("2026-01") - 1, month("2025-12"));
    month_format(month("2026-08"), text);
    assert_string_equal(text, "2026-08");
    month_format(month("1970-01"), text);
    assert_string_equal(text, "1970-01");
    month_format_date(month("2026-12") + 1, date);
    assert_string_equal(date, "2027-01-01");
}

static void parse_refuses_anything_but_yyyy_mm(void **state)
{
    (void)state;
    int m = 42;
    const char *bad[] = {"",         "2026",    "2026-8",   "2026-13",  "2026-00",
                         "26-08-01", "2026/08", "2026-08 ", " 2026-08", "2026-08-01",
                         "1969-12",  "20x6-08", "-026-08",  "2026--8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(month_parse(bad[i], &m));
    assert_int_equal(m, 42);
}

static void start_and_month_of_agree_at_the_edges(void **state)
{
    (void)state;
    assert_int_equal(month_start(month("1970-01")), 0);
    assert_int_equal(month_start(month("2026-08")), 1785542400LL); /* 2026-08-01T00:00:00Z */
    assert_int_equal(month_start(month("2024-03")) - month_start(month("2024-02")), 29 * DAY);
    assert_int_equal(month_start(month("2100-03")) - month_start(month("2100-02")), 28 * DAY);
    assert_int_equal(month_start(month("2000-03")) - month_start(month("2000-02")), 29 * DAY);
    /* every month from 1970 to 2400: its first second and the one before it */
    for (int m = month("1970-02"); m <= month("2400-12"); m++) {
        assert_int_equal(month_of(month_start(m)), m);
        assert_int_equal(month_of(month_start(m) - 1), m - 1);
        assert_int_equal(month_of(month_start(m + 1) - 1), m);
    }
}

static void a_month_is_due_once_all_of_it_is_older(void **state)
{
    (void)state;
    long long sep1 = month_start(month("2026-09"));
    /* 30 days at 2026-10-01T00:00:00Z: the cutoff is September 1st, so all of
     * August is older (it goes) and September is kept. */
    assert_int_equal(month_first_kept(sep1 + 30 * DAY, 30), month("2026-09"));
    /* A second earlier, August's last second is not older yet: August is kept. */
    assert_int_equal(month_first_kept(sep1 + 30 * DAY - 1, 30), month("2026-08"));
    /* 90 days on 2026-12-07: the cutoff is 2026-09-08, so August and before go. */
    assert_int_equal(month_first_kept(month_start(month("2026-12")) + 6 * DAY + 3600, 90),
                     month("2026-09"));
    /* One day on the first of a month retires the month before. */
    assert_int_equal(month_first_kept(sep1 + DAY, 1), month("2026-09"));
    assert_int_equal(month_first_kept(sep1 + DAY - 1, 1), month("2026-08"));
}

static void archive_paths_name_month_and_device(void **state)
{
    (void)state;
    char path[64];
    assert_true(month_archive_path(month("2026-08"), 17, path, sizeof path));
    assert_string_equal(path, "2026-08/device-17.csv.gz");
    assert_true(month_archive_path(month("2026-08"), 9223372036854775807LL, path, sizeof path));
    assert_string_equal(path, "2026-08/device-9223372036854775807.csv.gz");
    char small[24];
    assert_false(month_archive_path(month("2026-08"), 1234567, small, sizeof small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_format_round_trip),
        cmocka_unit_test(parse_refuses_anything_but_yyyy_mm),
        cmocka_unit_test(start_and_month_of_agree_at_the_edges),
        cmocka_unit_test(a_month_is_due_once_all_of_it_is_older),
        cmocka_unit_test(archive_paths_name_month_and_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
