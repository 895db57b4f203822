#define _POSIX_C_SOURCE 200809L

#include "timeutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
int64_t time_days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void time_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

static bool is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Read exactly `n` decimal digits at *p; advance past them. */
static bool read_digits(const char **p, int n, int *out)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(*p)[i];
        if (!isdigit(c))
            return false;
        value = value * 10 + (c - '0');
    }
    *p += n;
    *out = value;
    return true;
}

static bool expect_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* ".ffffff..." -> microseconds; digits past the sixth are truncated. */
static bool read_fraction(const char **p, int64_t *us)
{
    *us = 0;
    if (**p != '.')
        return true;
    (*p)++;
    int digits = 0;
    int64_t scale = 100000;
    while (isdigit((unsigned char)**p)) {
        if (digits < 6) {
            *us += (**p - '0') * scale;
            scale /= 10;
        }
        digits++;
        (*p)++;
    }
    return digits > 0;
}

/* "Z" or "+HH:MM"/"-HH:MM" -> offset east of UTC in seconds. */
static bool read_offset(const char **p, int64_t *offset_s)
{
    char sign = **p;
    if (sign == 'Z' || sign == 'z') {
        (*p)++;
        *offset_s = 0;
        return true;
    }
    if (sign != '+' && sign != '-')
        return false;
    (*p)++;
    int hh, mm;
    if (!read_digits(p, 2, &hh) || !expect_char(p, ':') || !read_digits(p, 2, &mm))
        return false;
    if (hh > 23 || mm > 59)
        return false;
    *offset_s = (hh * 3600 + mm * 60) * (sign == '-' ? -1 : 1);
    return true;
}

int time_parse_rfc3339(const char *text, int64_t *out_us)
{
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (!read_digits(&p, 4, &year) || !expect_char(&p, '-') || !read_digits(&p, 2, &month) ||
        !expect_char(&p, '-') || !read_digits(&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!read_digits(&p, 2, &hour) || !expect_char(&p, ':') || !read_digits(&p, 2, &minute) ||
        !expect_char(&p, ':') || !read_digits(&p, 2, &second))
        return -1;
    int64_t fraction_us, offset_s;
    if (!read_fraction(&p, &fraction_us) || !read_offset(&p, &offset_s) || *p != '\0')
        return -1;
    /* Leap seconds (:60) cannot be represented by the server either. */
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return -1;
    int64_t days = time_days_from_civil(year, month, day);
    int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
    *out_us = seconds * US_PER_SEC + fraction_us;
    return 0;
}

int64_t time_align_down(int64_t us, int64_t step)
{
    int64_t rem = us % step;
    return rem < 0 ? us - rem - step : us - rem;
}

size_t time_format_rfc3339(int64_t us, char *buf, size_t size)
{
    if (size < TIME_RFC3339_SIZE)
        return 0;
    int64_t seconds = time_align_down(us, US_PER_SEC) / US_PER_SEC;
    int64_t fraction = us - seconds * US_PER_SEC;
    int64_t days = time_align_down(seconds, 86400) / 86400;
    int64_t in_day = seconds - days * 86400;
    int64_t year;
    int month, day;
    time_civil_from_days(days, &year, &month, &day);
    int n = snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)year, month, day,
                     (int)(in_day / 3600), (int)(in_day / 60 % 60), (int)(in_day % 60));
    if (n < 0 || (size_t)n >= size)
        return 0;
    if (fraction != 0) {
        char digits[8];
        snprintf(digits, sizeof digits, "%06lld", (long long)fraction);
        size_t len = strlen(digits);
        while (digits[len - 1] == '0')
            digits[--len] = '\0';
        n += snprintf(buf + n, size - (size_t)n, ".%s", digits);
    }
    n += snprintf(buf + n, size - (size_t)n, "Z");
    return (size_t)n;
}

static int64_t unit_us(char unit)
{
    switch (unit) {
    case 's':
        return US_PER_SEC;
    case 'm':
        return US_PER_MIN;
    case 'h':
        return US_PER_HOUR;
    case 'd':
        return US_PER_DAY;
    default:
        return 0;
    }
}

int time_parse_duration(const char *text, int64_t *out_us)
{
    const int64_t max_us = 366 * US_PER_DAY;
    const char *p = text;
    int64_t total = 0;
    bool bare = true;
    if (*p == '\0')
        return -1;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t number = 0;
        while (isdigit((unsigned char)*p)) {
            number = number * 10 + (*p++ - '0');
            if (number > max_us / US_PER_SEC)
                return -1;
        }
        int64_t scale = US_PER_SEC;
        if (*p != '\0') {
            scale = unit_us(*p++);
            bare = false;
            if (scale == 0)
                return -1;
        } else if (!bare) {
            return -1; /* "1h30": a trailing number needs its unit */
        }
        if (number > (max_us - total) / scale)
            return -1;
        total += number * scale;
    }
    if (total <= 0)
        return -1;
    *out_us = total;
    return 0;
}

int time_parse_range(const char *text, int64_t *from_us, int64_t *to_us)
{
    const char *dots = strstr(text, "..");
    if (dots == NULL || strstr(dots + 2, "..") != NULL)
        return -1;
    char from[64];
    size_t from_len = (size_t)(dots - text);
    if (from_len == 0 || from_len >= sizeof from)
        return -1;
    memcpy(from, text, from_len);
    from[from_len] = '\0';
    int64_t a, b;
    if (time_parse_rfc3339(from, &a) != 0 || time_parse_rfc3339(dots + 2, &b) != 0 || a >= b)
        return -1;
    *from_us = a;
    *to_us = b;
    return 0;
}

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t time_now_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

int64_t time_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}
