/* readings_csv: a device's readings as CSV, the one rendering the export
 * (handlers/readings_export.c) and the archive (api/archive.c) share, so an
 * archived month is byte for byte what the export of that month gives. */
#ifndef WATTLINE_API_READINGS_CSV_H
#define WATTLINE_API_READINGS_CSV_H

#include <stddef.h>

#include "../base/timefmt.h"
#include "../db/models.h"
#include "../db/readings_query.h"

/* The longest line: an RFC 3339 time, a comma, a double ("%.17g" takes at
 * most 24 characters), a newline. */
#define READINGS_CSV_LINE_MAX (TIMEFMT_MAX + 1 + 32 + 1)

/* The header line, "ts,meter_kwh\n" or "ts,kwh\n" (static). */
const char *readings_csv_header(enum reading_type type);

/* Writes r's line ("2026-11-21T10:10:00Z,48213.7\n") at out, which has room
 * for READINGS_CSV_LINE_MAX bytes; returns its length (without the NUL). */
size_t readings_csv_line(const struct reading *r, char *out);

#endif
