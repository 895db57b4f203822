#include "forecast.h"

#include <math.h>

#include "energy.h"

bool forecast_judge(long long reading_ts, long long now_us, double so_far, double limit,
                    double *projected)
{
    long long hour = energy_hour_floor(reading_ts);
    *projected = 0.0;
    if (hour != energy_hour_floor(now_us))
        return false; /* a past (or future) hour: not the current one */
    double minutes = (double)(reading_ts - hour) / 60e6;
    if (minutes < FORECAST_MIN_MINUTES)
        return false;
    double p = so_far * 60.0 / minutes;
    if (!isfinite(p))
        return false;
    *projected = p;
    return p > limit;
}
