/*
 * profile: a synthetic household electricity meter.
 *
 * The register (cumulative kWh) is a pure function of the instant and a seed:
 * the same meter asked for the same instant always answers the same value, so
 * a restarted simulator, a backfill and a live run of one meter agree and the
 * server's deduplication sees true duplicates. The register starts at a
 * seed-dependent value on 2020-01-01T00:00Z and never goes down.
 *
 * Shape: each day has its own total (about 9 kWh times a per-household size
 * factor, more at weekends and in winter, +-15 % day to day), spread over the
 * day's minutes by a load curve with a night base load, a morning peak, a
 * smaller midday bump and the evening peak (later and broader at weekends),
 * per-minute noise and short appliance bursts.
 */
#ifndef WATTLINE_SIM_PROFILE_H
#define WATTLINE_SIM_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#define PROFILE_MINUTES_PER_DAY 1440

struct profile {
    uint64_t seed;
    double scale;         /* household size factor */
    double base_register; /* register at the profile epoch */
    /* cache: the register at 00:00 UTC of start_day */
    int64_t start_day;
    double start_register;
    /* cache: the load curve of shape_day, cumulated per minute */
    int64_t shape_day;
    bool shape_valid;
    double day_kwh;
    double shape_cum[PROFILE_MINUTES_PER_DAY + 1];
};

/* Set up a profile by name ("household" is the only one). Returns 0, or -1 for
 * an unknown name. */
int profile_init(struct profile *p, const char *name, uint64_t seed);

/* The register in kWh at `ts_us`, rounded to the meter's 1 Wh resolution. */
double profile_register_at(struct profile *p, int64_t ts_us);

#endif
