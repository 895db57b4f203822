/*
 * csv: reads meter readings from a CSV file.
 *
 * Two layouts are accepted:
 *   - the classic smart-meter sample: one cumulative kWh register value per
 *     line, optionally quoted ("18828.93849"), no timestamps;
 *   - "ts,value" lines (RFC 3339 timestamp, register value), for example the
 *     server's own CSV export with its "ts,meter_kwh" header.
 * Either may start with a header line (any first line that does not parse as
 * data). Blank lines, lines starting with '#', CRLF endings and a UTF-8 BOM are
 * tolerated. Values must be finite and >= 0; timestamps must strictly increase.
 */
#ifndef WATTLINE_SIM_CSV_H
#define WATTLINE_SIM_CSV_H

#include <stddef.h>
#include <stdint.h>

struct csv_data {
    size_t count;
    double *values; /* count register values, owned */
    int64_t *ts_us; /* count timestamps, owned; NULL for the classic layout */
};

/*
 * Parse `len` bytes of CSV text into `out` (which the caller later releases
 * with csv_data_free). Returns 0, or -1 with a message naming the line in `err`.
 */
int csv_parse(const char *text, size_t len, struct csv_data *out, char *err, size_t err_size);

/* Read and parse the file at `path`. Same contract as csv_parse. */
int csv_load(const char *path, struct csv_data *out, char *err, size_t err_size);

/* Release what csv_parse stored; safe on a zeroed or already freed struct. */
void csv_data_free(struct csv_data *data);

#endif
