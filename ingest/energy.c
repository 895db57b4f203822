#include "energy.h"

#include <float.h>

long long energy_hour_floor(long long ts)
{
    long long h = ts / ENERGY_HOUR_US * ENERGY_HOUR_US;
    return h > ts ? h - ENERGY_HOUR_US : h; /* floor, also before 1970 */
}

static void interval_hours(const struct energy_reading *r, size_t n, long long first_hour,
                           size_t nhours, double *out)
{
    for (size_t i = 0; i < n; i++) {
        long long h = energy_hour_floor(r[i].ts);
        if (h < first_hour)
            continue;
        unsigned long long slot = (unsigned long long)((h - first_hour) / ENERGY_HOUR_US);
        if (slot < nhours)
            out[slot] += r[i].value;
    }
}

/* Adds the interval (a, b] with energy delta, spread evenly, to the hours of
 * the range it overlaps. Each hour gets delta * overlap / length, computed the
 * same way whichever range is being recomputed. */
static void spread(long long a, long long b, double delta, long long first_hour, size_t nhours,
                   double *out)
{
    long long end = first_hour + (long long)nhours * ENERGY_HOUR_US;
    long long lo = a > first_hour ? a : first_hour;
    long long hi = b < end ? b : end;
    double length = (double)(b - a);
    for (long long h = energy_hour_floor(lo); h < hi; h += ENERGY_HOUR_US) {
        long long from = a > h ? a : h;
        long long to = b < h + ENERGY_HOUR_US ? b : h + ENERGY_HOUR_US;
        if (to <= from)
            continue;
        size_t slot = (size_t)((h - first_hour) / ENERGY_HOUR_US);
        out[slot] += delta * ((double)(to - from) / length);
    }
}

static void cumulative_hours(const struct energy_reading *r, size_t n, long long first_hour,
                             size_t nhours, double *out)
{
    for (size_t i = 1; i < n; i++) {
        double delta = r[i].value >= r[i - 1].value ? r[i].value - r[i - 1].value : r[i].value;
        if (r[i].ts > r[i - 1].ts)
            spread(r[i - 1].ts, r[i].ts, delta, first_hour, nhours, out);
    }
}

void energy_add(enum reading_type type, const struct energy_reading *readings, size_t n,
                long long first_hour, size_t nhours, double *out)
{
    if (type == READING_INTERVAL)
        interval_hours(readings, n, first_hour, nhours, out);
    else
        cumulative_hours(readings, n, first_hour, nhours, out);
    /* Each contribution is finite (a difference of two finite registers, or
     * a reading, times a share <= 1); only a sum can overflow, and only with
     * readings stored before values were bounded (check.h). Such an hour is
     * the largest double: what the same sum gives whichever of its partial
     * sums was stored, so appending still equals recomputing. */
    for (size_t i = 0; i < nhours; i++)
        if (!(out[i] <= DBL_MAX))
            out[i] = DBL_MAX;
}

void energy_hours(enum reading_type type, const struct energy_reading *readings, size_t n,
                  long long first_hour, size_t nhours, double *out)
{
    for (size_t i = 0; i < nhours; i++)
        out[i] = 0.0;
    energy_add(type, readings, n, first_hour, nhours, out);
}
