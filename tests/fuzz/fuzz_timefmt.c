/* fuzz_timefmt: base/timefmt's RFC 3339 and date parsers.
 *
 * Properties (abort on violation):
 *  - whatever timefmt_parse accepts formats back to a text it accepts again,
 *    with the same instant: parse -> format -> parse is the identity;
 *  - the formatted text is canonical: formatting it again gives the same text;
 *  - an accepted instant is in years 1970..9999 (the header's range);
 *  - timefmt_parse_date accepts exactly "YYYY-MM-DD" of a real date, and its
 *    midnight parses as a date-time to timefmt_days_from_civil's day.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 10000-01-01T00:00:00Z: the first instant past the header's range. */
#define USEC_YEAR_10000 (253402300800LL * 1000000LL)

static void check(int ok, const char *what, const char *text)
{
    if (!ok) {
        fprintf(stderr, "fuzz_timefmt: %s: \"%s\"\n", what, text);
        abort();
    }
}

static void check_date_time(const char *s)
{
    long long usec;
    if (!timefmt_parse(s, &usec))
        return;
    check(usec >= 0 && usec < USEC_YEAR_10000, "accepted outside 1970..9999", s);
    char out[TIMEFMT_MAX];
    timefmt_format(usec, out);
    long long again;
    check(timefmt_parse(out, &again), "its own format is refused", out);
    check(again == usec, "parse -> format -> parse changed the instant", s);
    char twice[TIMEFMT_MAX];
    timefmt_format(again, twice);
    check(strcmp(out, twice) == 0, "format is not canonical", s);
}

static void check_date(const char *s)
{
    int y, m, d;
    if (!timefmt_parse_date(s, &y, &m, &d))
        return;
    check(strlen(s) == 10, "a date of another length", s);
    char text[TIMEFMT_MAX];
    snprintf(text, sizeof text, "%04d-%02d-%02d", y, m, d);
    check(strcmp(text, s) == 0, "date fields do not print back", s);
    snprintf(text, sizeof text, "%sT00:00:00Z", s);
    long long usec;
    check(timefmt_parse(text, &usec), "a valid date's midnight is refused", s);
    check(usec == timefmt_days_from_civil(y, m, d) * 86400LL * 1000000LL,
          "date and date-time disagree", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0; /* longer than any timestamp: nothing new to find */
    char s[65];
    memcpy(s, data, size);
    s[size] = '\0';
    check_date_time(s);
    check_date(s);
    return 0;
}
