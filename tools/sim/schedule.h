/*
 * schedule: when a simulated reading is sent, and what value it carries.
 *
 * Live mode maps simulated time onto the wall clock: with --speed 1 a reading
 * is sent when the wall clock reaches its timestamp (so a backlog from the
 * past goes at once); with --speed N the readings after the anchor (the first
 * reading of this process) come N times faster. Either way a reading is never
 * sent before its own timestamp, because the server rejects readings from
 * the future; a compressed run that catches up with the present continues in
 * real time.
 */
#ifndef WATTLINE_SIM_SCHEDULE_H
#define WATTLINE_SIM_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

enum reading_type { READING_CUMULATIVE, READING_INTERVAL };

struct pacing {
    bool paced;             /* false: backfill, everything is due at once */
    double speed;           /* >= 1 */
    int64_t anchor_wall_us; /* wall time when the anchor reading was due */
    int64_t anchor_ts_us;   /* timestamp of the anchor reading */
};

/* Wall-clock time at which the reading stamped `ts_us` is due. */
int64_t schedule_due_us(const struct pacing *p, int64_t ts_us);

/*
 * Default timestamp of the first reading: with speed 1, now aligned down to
 * the interval; faster, early enough that the last of `readings` readings
 * (INT64_MAX: unbounded, then a day's worth) is stamped about now.
 */
int64_t schedule_default_start(int64_t now_us, int64_t interval_us, int64_t readings, double speed);

/*
 * The value sent for a reading with register `reg`: the register itself for a
 * cumulative device; for an interval device the energy since the previous
 * reading (0 when there is none, the whole register after a meter reset).
 * Rounded to 15 significant digits, the form in which it is spooled and sent.
 */
double schedule_wire_value(enum reading_type type, double reg, bool has_previous, double previous);

/* The JSON member for the type: "meter_kwh" or "kwh". */
const char *schedule_member(enum reading_type type);

/* "cumulative" or "interval". */
const char *schedule_type_name(enum reading_type type);

#endif
