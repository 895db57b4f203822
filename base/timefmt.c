#include "timefmt.h"

#include <stdio.h>
#include <string.h>

#define USEC_PER_SEC 1000000LL
/* 9999-12-31T23:59:59Z: the last second timefmt_format can write. */
#define SECS_MAX 253402300799LL

/* Howard Hinnant's days_from_civil. */
long long timefmt_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((long long)yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int DAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : DAYS[m - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool parse_date(const char **p, int *y, int *m, int *d)
{
    return digits(p, 4, y) && expect(p, '-') && digits(p, 2, m) && expect(p, '-') &&
           digits(p, 2, d) && *y >= 1970 && *y <= 9999 && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= days_in_month(*y, *m);
}

bool timefmt_parse_date(const char *s, int *y, int *m, int *d)
{
    return parse_date(&s, y, m, d) && *s == '\0';
}

bool timefmt_parse(const char *s, long long *usec)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!parse_date(&p, &y, &mo, &d))
        return false;
    if (*p != 'T' && *p != 't')
        return false;
    p++;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
        !digits(&p, 2, &sec) || h > 23 || mi > 59 || sec > 59)
        return false;
    long long frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 6)
                frac = frac * 10 + (*p - '0');
            n++, p++;
        }
        if (n == 0 || n > 9)
            return false;
        for (; n < 6; n++)
            frac *= 10;
    }
    long long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = sign * (oh * 3600LL + om * 60LL);
    } else {
        return false;
    }
    if (*p)
        return false;
    long long secs = timefmt_days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec;
    secs -= offset;
    /* The range holds for the instant, not only for the local date: a
     * negative offset on 9999-12-31 is already in year 10000 in UTC. */
    if (secs < 0 || secs > SECS_MAX)
        return false;
    *usec = secs * USEC_PER_SEC + frac;
    return true;
}

/* Writes v as exactly n digits, zero-padded. */
static char *put_digits(char *p, long long v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

/* By hand rather than snprintf: every chart answer formats one per hour. */
void timefmt_format(long long usec, char out[TIMEFMT_MAX])
{
    long long secs = usec / USEC_PER_SEC, frac = usec % USEC_PER_SEC;
    if (frac < 0) {
        frac += USEC_PER_SEC;
        secs--;
    }
    long long days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    char *p = out;
    if (y < 0 || y > 9999) {
        snprintf(out, TIMEFMT_MAX, "%04d-%02d-%02dT00:00:00Z", y, m, d); /* out of range */
        return;
    }
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem % 60, 2);
    if (frac) {
        int digits = 6;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        *p++ = '.';
        p = put_digits(p, frac, digits);
    }
    *p++ = 'Z';
    *p = '\0';
}
