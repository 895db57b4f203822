/*
 * timeutil: the simulator's notion of time, on top of the server's own date
 * arithmetic (base/timefmt) and clocks (base/clock).
 *
 * Every instant is an int64_t count of microseconds since the Unix epoch (UTC),
 * the precision the server keeps. Durations are microseconds too. What is here
 * is only what the simulator needs beyond those modules: int64_t adapters, the
 * command line's durations and ranges, and alignment to a reading interval.
 * All functions here are pure except the two clock readers.
 */
#ifndef WATTLINE_SIM_TIMEUTIL_H
#define WATTLINE_SIM_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../../base/timefmt.h"

#define US_PER_SEC  INT64_C(1000000)
#define US_PER_MIN  (60 * US_PER_SEC)
#define US_PER_HOUR (60 * US_PER_MIN)
#define US_PER_DAY  (24 * US_PER_HOUR)

/* Longest text time_format_rfc3339 writes, with its terminating NUL. */
#define TIME_RFC3339_SIZE TIMEFMT_MAX

/*
 * Parse an RFC 3339 timestamp ("2026-11-21T10:10:00Z", "...T12:10:00.25+02:00")
 * as the server does (timefmt_parse: years 1970..9999, fractions beyond
 * microseconds truncated). A space instead of the 'T' is also accepted, as RFC
 * 3339 allows for readability, since spreadsheets and psql write CSV files that
 * way. Returns 0, or -1 when `text` is not exactly one valid timestamp.
 */
int time_parse_rfc3339(const char *text, int64_t *out_us);

/*
 * Write `us` as RFC 3339 UTC the way the server does (timefmt_format:
 * "2026-11-21T10:10:00Z"; a fraction only when the instant has one, without
 * trailing zeros). Returns the length written, or 0 when `size` is smaller than
 * TIME_RFC3339_SIZE.
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

/* Wall-clock time, microseconds since the epoch (clock_wall_s). */
int64_t time_now_us(void);

/* Monotonic time for timers, microseconds from an arbitrary origin (clock_mono_s). */
int64_t time_mono_us(void);

#endif
