#define _POSIX_C_SOURCE 200809L

#include "timeutil.h"

#include "../../base/clock.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* The date and the time of an RFC 3339 timestamp: "YYYY-MM-DD" is 10 long. */
#define DATE_LEN 10

int time_parse_rfc3339(const char *text, int64_t *out_us)
{
    char copy[64];
    size_t len = strlen(text);
    if (len >= sizeof copy)
        return -1;
    memcpy(copy, text, len + 1);
    if (len > DATE_LEN && copy[DATE_LEN] == ' ')
        copy[DATE_LEN] = 'T';
    long long us;
    if (!timefmt_parse(copy, &us))
        return -1;
    *out_us = (int64_t)us;
    return 0;
}

size_t time_format_rfc3339(int64_t us, char *buf, size_t size)
{
    if (size < TIME_RFC3339_SIZE)
        return 0;
    timefmt_format((long long)us, buf);
    return strlen(buf);
}

int64_t time_align_down(int64_t us, int64_t step)
{
    int64_t rem = us % step;
    return rem < 0 ? us - rem - step : us - rem;
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

/* The clocks give seconds as doubles: today's wall time to within a quarter of
 * a microsecond, so rounding gives the microsecond clock_gettime() would. */
int64_t time_now_us(void)
{
    return (int64_t)llround(clock_wall_s() * 1e6);
}

int64_t time_mono_us(void)
{
    return (int64_t)llround(clock_mono_s() * 1e6);
}
