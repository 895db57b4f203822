/* energy: how readings become energy per UTC clock hour (the contract's
 * rules), as pure arithmetic.
 *
 * Interval readings belong to the hour containing their ts. For cumulative
 * registers, the difference between consecutive readings is spread evenly
 * over the time between them; a lower register means a reset, and the later
 * register is then the energy since it. Energy before the first reading is 0.
 *
 * An hour's value is always the left-to-right sum, in ts order, of the
 * contributions of the readings (or intervals) touching it, starting from 0.
 * So the figure depends only on the stored readings, never on the order or
 * batching in which they arrived: recomputing an hour gives the same double.
 * Every figure is finite: a sum that would overflow is the largest double.
 */
#ifndef WATTLINE_ENERGY_H
#define WATTLINE_ENERGY_H

#include <stddef.h>

#include "../db/models.h"

#define ENERGY_HOUR_US 3600000000LL

struct energy_reading {
    long long ts; /* microseconds since the epoch */
    double value; /* register (cumulative) or energy since the previous (interval) */
};

/* The start of the UTC hour containing ts. */
long long energy_hour_floor(long long ts);

/* Computes kWh for each hour in [first_hour, first_hour + nhours * 1h) into
 * out[0..nhours) from readings sorted by ts (strictly increasing). For the
 * result to be exact, readings must include every reading inside the range
 * plus, for cumulative devices, the last reading at or before first_hour and
 * the first reading at or after its end (when they exist). */
void energy_hours(enum reading_type type, const struct energy_reading *readings, size_t n,
                  long long first_hour, size_t nhours, double *out);

/* Adds to out[] (the stored figures of those hours) the energy of readings
 * appended after every stored one, in ts order. For a cumulative device,
 * readings[0] must be the newest stored reading (its own energy is already
 * counted); for an interval device, only the new readings. Because an hour is
 * a left-to-right sum in ts order, the result is bit for bit what
 * energy_hours() computes from all the readings. */
void energy_add(enum reading_type type, const struct energy_reading *readings, size_t n,
                long long first_hour, size_t nhours, double *out);

#endif
