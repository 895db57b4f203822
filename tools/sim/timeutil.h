/*
 * timeutil: the simulator's notion of time.
 *
 * Every instant is an int64_t count of microseconds since the Unix epoch (UTC),
 * the precision the server keeps. Durations are microseconds too. All functions
 * here are pure except the two clock readers.
 */
#ifndef WATTLINE_SIM_TIMEUTIL_H
#define WATTLINE_SIM_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define US_PER_SEC  INT64_C(1000000)
#define US_PER_MIN  (60 * US_PER_SEC)
#define US_PER_HOUR (60 * US_PER_MIN)
#define US_PER_DAY  (24 * US_PER_HOUR)

/* Longest text time_format_rfc3339 writes, with its terminating NUL. */
#define TIME_RFC3339_SIZE 40

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t time_days_from_civil(int64_t year, int month, int day);

/* Inverse of time_days_from_civil. */
void time_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/*
 * Parse an RFC 3339 timestamp ("2026-11-21T10:10:00Z", "...T12:10:00.25+02:00").
 * Fractions beyond microseconds are truncated. Returns 0, or -1 when `text` is
 * not exactly one valid timestamp.
 */
int time_parse_rfc3339(const char *text, int64_t *out_us);

/*
 * Write `us` as RFC 3339 UTC ("2026-11-21T10:10:00Z"; a fraction only when the
 * instant has one, without trailing zeros). Returns the length written, or 0
 * when `size` is smaller than TIME_RFC3339_SIZE.
 */
size_t time_format_rfc3339(int64_t us, char *buf, size_t size);

/*
 * Parse a duration: a bare number of seconds ("600") or number-unit pairs with
 * units s, m, h, d ("10m", "1h30m"). Returns 0 for a duration > 0 and at most
 * 366 days, else -1.
 */
int time_parse_duration(const char *text, int64_t *out_us);

/* Parse "FROM..TO" (both RFC 3339, FROM < TO). Returns 0 or -1. */
int time_parse_range(const char *text, int64_t *from_us, int64_t *to_us);

/* Largest multiple of `step` (> 0) not after `us` (floor, also for negatives). */
int64_t time_align_down(int64_t us, int64_t step);

/* Wall-clock time, microseconds since the epoch. */
int64_t time_now_us(void);

/* Monotonic time for timers, microseconds from an arbitrary origin. */
int64_t time_mono_us(void);

#endif
