#include "schedule.h"

#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int64_t schedule_due_us(const struct pacing *p, int64_t ts_us)
{
    if (!p->paced)
        return INT64_MIN;
    if (p->speed <= 1.0)
        return ts_us;
    double offset = (double)(ts_us - p->anchor_ts_us) / p->speed;
    int64_t due = p->anchor_wall_us + (int64_t)llround(offset);
    return due > ts_us ? due : ts_us;
}

int64_t schedule_default_start(int64_t now_us, int64_t interval_us, int64_t readings, double speed)
{
    int64_t aligned = time_align_down(now_us, interval_us);
    if (speed <= 1.0)
        return aligned;
    int64_t steps = readings == INT64_MAX ? US_PER_DAY / interval_us : readings - 1;
    int64_t max_steps = aligned / interval_us; /* not before 1970, and no overflow */
    if (steps < 0)
        steps = 0;
    if (steps > max_steps)
        steps = max_steps;
    return aligned - steps * interval_us;
}

/* Round to 15 significant digits, the precision of the text form. */
static double normalise(double v)
{
    char text[32];
    snprintf(text, sizeof text, "%.15g", v);
    return strtod(text, NULL);
}

double schedule_wire_value(enum reading_type type, double reg, bool has_previous, double previous)
{
    if (type == READING_CUMULATIVE)
        return normalise(reg);
    if (!has_previous)
        return 0.0;
    if (reg < previous)
        return normalise(reg);
    /* Register values carry at most a few decimals; the subtraction's binary
     * noise (10.034060000001045) is not energy. */
    return normalise(round((reg - previous) * 1e9) / 1e9);
}

const char *schedule_member(enum reading_type type)
{
    return type == READING_CUMULATIVE ? "meter_kwh" : "kwh";
}

const char *schedule_type_name(enum reading_type type)
{
    return type == READING_CUMULATIVE ? "cumulative" : "interval";
}
