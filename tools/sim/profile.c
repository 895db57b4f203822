#include "profile.h"

#include "timeutil.h"

#include <math.h>
#include <string.h>

#define TWO_PI       6.283185307179586
#define DAY_MEAN_KWH 9.0

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: a fast bijective hash with good avalanche. */
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* A uniform number in [0, 1) determined by (seed, a, b). */
static double unit_hash(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t h = mix64(seed ^ mix64(a ^ mix64(b)));
    return (double)(h >> 11) * 0x1.0p-53;
}

static int64_t epoch_day(void)
{
    return timefmt_days_from_civil(2020, 1, 1);
}

static bool is_weekend(int64_t day)
{
    /* 1970-01-01 was a Thursday; 0 = Sunday. */
    int64_t dow = ((day % 7) + 7 + 4) % 7;
    return dow == 0 || dow == 6;
}

/* Energy of one whole UTC day. */
static double day_energy(const struct profile *p, int64_t day)
{
    double season = 1.0 + 0.25 * cos(TWO_PI * (double)(day - epoch_day() - 14) / 365.2425);
    double weekend = is_weekend(day) ? 1.2 : 1.0;
    double noise = 1.0 + 0.15 * (unit_hash(p->seed, (uint64_t)day, 1) +
                                 unit_hash(p->seed, (uint64_t)day, 2) - 1.0);
    return DAY_MEAN_KWH * p->scale * season * weekend * noise;
}

static double bump(double hour, double centre, double width)
{
    double z = (hour - centre) / width;
    return exp(-0.5 * z * z);
}

/* Relative load in one minute of `day` (arbitrary units, > 0). */
static double minute_weight(const struct profile *p, int64_t day, int minute, double shift)
{
    double h = minute / 60.0;
    double w;
    if (is_weekend(day))
        w = 0.35 + 1.0 * bump(h, 9.5 + shift, 1.3) + 0.9 * bump(h, 13.0 + shift, 1.6) +
            1.8 * bump(h, 19.0 + shift, 1.6);
    else
        w = 0.30 + 1.3 * bump(h, 7.0 + shift, 0.8) + 0.4 * bump(h, 12.75 + shift, 1.2) +
            2.0 * bump(h, 19.5 + shift, 1.5);
    uint64_t key = (uint64_t)day * PROFILE_MINUTES_PER_DAY + (uint64_t)minute;
    w *= 0.75 + 0.5 * unit_hash(p->seed, key, 3);
    /* Kettles, ovens, washing machines: a few short bursts while people are up. */
    if (h >= 6.0 && h < 23.0 && unit_hash(p->seed, key, 4) < 1.0 / 45)
        w += 2.5;
    return w;
}

static void load_shape(struct profile *p, int64_t day)
{
    if (p->shape_valid && p->shape_day == day)
        return;
    double shift = unit_hash(p->seed, (uint64_t)day, 5) - 0.5; /* +-30 min */
    p->shape_cum[0] = 0;
    for (int m = 0; m < PROFILE_MINUTES_PER_DAY; m++)
        p->shape_cum[m + 1] = p->shape_cum[m] + minute_weight(p, day, m, shift);
    p->day_kwh = day_energy(p, day);
    p->shape_day = day;
    p->shape_valid = true;
}

/* Register at 00:00 UTC of `day`; walks forward from the cached day. */
static double register_at_day_start(struct profile *p, int64_t day)
{
    if (day < p->start_day) {
        p->start_day = epoch_day();
        p->start_register = p->base_register;
    }
    while (p->start_day < day) {
        p->start_register += day_energy(p, p->start_day);
        p->start_day++;
    }
    return p->start_register;
}

int profile_init(struct profile *p, const char *name, uint64_t seed)
{
    if (strcmp(name, "household") != 0)
        return -1;
    memset(p, 0, sizeof *p);
    p->seed = seed;
    p->scale = 0.6 + 1.0 * unit_hash(seed, 0, 6);
    p->base_register = round((2000.0 + 40000.0 * unit_hash(seed, 0, 7)) * 1000.0) / 1000.0;
    p->start_day = epoch_day();
    p->start_register = p->base_register;
    return 0;
}

double profile_register_at(struct profile *p, int64_t ts_us)
{
    int64_t day = time_align_down(ts_us, US_PER_DAY) / US_PER_DAY;
    if (day < epoch_day())
        return p->base_register;
    double start = register_at_day_start(p, day);
    load_shape(p, day);
    int64_t in_day = ts_us - day * US_PER_DAY;
    int minute = (int)(in_day / US_PER_MIN);
    double frac = (double)(in_day % US_PER_MIN) / (double)US_PER_MIN;
    double cum = p->shape_cum[minute] + frac * (p->shape_cum[minute + 1] - p->shape_cum[minute]);
    double reg = start + p->day_kwh * cum / p->shape_cum[PROFILE_MINUTES_PER_DAY];
    return round(reg * 1000.0) / 1000.0;
}
