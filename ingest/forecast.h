/* forecast: the contract's projection of an hour's energy. Pure.
 *
 * At a device's newest reading, at least 15 minutes into its clock hour
 * (UTC), the hour's energy so far scaled to the full hour (x 60 / minutes
 * from the hour's start to the reading) over max_hourly_kwh is a forecast,
 * but only while the hour is the current one: a backfill of a past hour
 * never forecasts (what it would forecast has already happened). This is a
 * straight-line extrapolation of the hour so far: it knows nothing of the
 * device's habits, the time of day, or what the next minutes hold. */
#ifndef WATTLINE_INGEST_FORECAST_H
#define WATTLINE_INGEST_FORECAST_H

#include <stdbool.h>

#define FORECAST_MIN_MINUTES 15

/* True when the reading at reading_ts (microseconds), whose hour's energy up
 * to it is so_far, forecasts going over limit; *projected is then the
 * projection. now_us: the server's time (the hour must contain it). */
bool forecast_judge(long long reading_ts, long long now_us, double so_far, double limit,
                    double *projected);

#endif
