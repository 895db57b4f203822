/* timefmt: RFC 3339 timestamps <-> microseconds since the Unix epoch (UTC). */
#ifndef WATTLINE_TIMEFMT_H
#define WATTLINE_TIMEFMT_H

#include <stdbool.h>

#define TIMEFMT_MAX 40

/* Parses a full RFC 3339 date-time ("2026-11-21T10:10:00.25+02:00"), strictly:
 * every field present and in range, 'T' or 't' between date and time, 'Z'/'z'
 * or a ±HH:MM offset, up to 9 fraction digits (kept to the microsecond).
 * The instant, in UTC, in years 1970..9999. Returns false for anything else. */
bool timefmt_parse(const char *s, long long *usec);

/* Formats as UTC: "2026-11-21T10:15:00Z", with a fraction only when not whole
 * seconds ("2026-11-21T10:15:00.25Z"). */
void timefmt_format(long long usec, char out[TIMEFMT_MAX]);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
long long timefmt_days_from_civil(int y, int m, int d);

/* Parses "YYYY-MM-DD" strictly. */
bool timefmt_parse_date(const char *s, int *y, int *m, int *d);

#endif
