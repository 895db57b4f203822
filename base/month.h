/* month: UTC calendar months as small integers, for retention and archives.
 * Pure: no clock, no I/O.
 *
 * A month is year * 12 + (month - 1): 2026-08 is 24319. Consecutive months
 * are consecutive integers, so "the month before" is m - 1.
 */
#ifndef WATTLINE_BASE_MONTH_H
#define WATTLINE_BASE_MONTH_H

#include <stdbool.h>
#include <stddef.h>

/* "YYYY-MM" plus its NUL; MONTH_DATE_MAX fits "YYYY-MM-01". */
#define MONTH_TEXT_MAX 8
#define MONTH_DATE_MAX 11

/* Parses exactly "YYYY-MM" (years 1970..9999, months 01..12). */
bool month_parse(const char *s, int *month);

/* "YYYY-MM" into out (MONTH_TEXT_MAX). */
void month_format(int month, char out[MONTH_TEXT_MAX]);

/* "YYYY-MM-01", the month's first day as an SQL date, into out (MONTH_DATE_MAX). */
void month_format_date(int month, char out[MONTH_DATE_MAX]);

/* The month containing t (seconds since the epoch, UTC). */
int month_of(long long t);

/* The month's first instant, seconds since the epoch (UTC). */
long long month_start(int month);

/* With RAW_RETENTION_DAYS = days at time now (seconds): the oldest month that
 * is kept. A month is retired once all of it is older than now - days, that
 * is once its end is at or before that instant: every month before the
 * returned one. */
int month_first_kept(long long now, int days);

/* The archive file of a device's readings of a month, relative to
 * ARCHIVE_DIR: "<yyyy-mm>/device-<id>.csv.gz". False when out is too small. */
bool month_archive_path(int month, long long device_id, char *out, size_t size);

#endif
