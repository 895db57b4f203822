#include "month.h"

#include <stdio.h>
#include <string.h>

/* Days from 1970-01-01 to year-mon-01 (mon 1..12), proleptic Gregorian
 * (Howard Hinnant's days_from_civil). */
static long long days_from_civil(long long y, int mon)
{
    y -= mon <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool month_parse(const char *s, int *month)
{
    if (strlen(s) != 7 || s[4] != '-')
        return false;
    int y = 0, m = 0;
    for (int i = 0; i < 7; i++) {
        if (i == 4)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (i < 4)
            y = y * 10 + (s[i] - '0');
        else
            m = m * 10 + (s[i] - '0');
    }
    if (y < 1970 || m < 1 || m > 12)
        return false;
    *month = y * 12 + m - 1;
    return true;
}

/* Months are never before year 0; the modulo keeps the year to 4 digits. */
void month_format(int month, char out[MONTH_TEXT_MAX])
{
    unsigned m = month < 0 ? 0 : (unsigned)month;
    snprintf(out, MONTH_TEXT_MAX, "%04u-%02u", m / 12 % 10000, m % 12 + 1);
}

void month_format_date(int month, char out[MONTH_DATE_MAX])
{
    unsigned m = month < 0 ? 0 : (unsigned)month;
    snprintf(out, MONTH_DATE_MAX, "%04u-%02u-01", m / 12 % 10000, m % 12 + 1);
}

long long month_start(int month)
{
    return days_from_civil(month / 12, month % 12 + 1) * 86400;
}

int month_of(long long t)
{
    /* An estimate from the mean month (400 years are 4,800 months and
     * 146,097 days), then corrected by a step or two. */
    long long days = (t >= 0 ? t : t - 86399) / 86400;
    int m = (int)(1970 * 12 + days * 4800 / 146097);
    while (month_start(m) > t)
        m--;
    while (month_start(m + 1) <= t)
        m++;
    return m;
}

int month_first_kept(long long now, int days)
{
    return month_of(now - (long long)days * 86400);
}

bool month_archive_path(int month, long long device_id, char *out, size_t size)
{
    char m[MONTH_TEXT_MAX];
    month_format(month, m);
    int n = snprintf(out, size, "%s/device-%lld.csv.gz", m, device_id);
    return n > 0 && (size_t)n < size;
}
