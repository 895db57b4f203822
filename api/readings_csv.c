#include "readings_csv.h"

#include <stdio.h>

#include "handler.h"

const char *readings_csv_header(enum reading_type type)
{
    return type == READING_INTERVAL ? "ts,kwh\n" : "ts,meter_kwh\n";
}

size_t readings_csv_line(const struct reading *r, char *out)
{
    char ts[TIMEFMT_MAX], value[32];
    timefmt_format(r->ts, ts);
    format_double_exact(r->value, value, sizeof value); /* reads back exactly */
    return (size_t)snprintf(out, READINGS_CSV_LINE_MAX, "%s,%s\n", ts, value);
}
