/* consumption: a device's energy per hour, day or month of an IANA time zone,
 * read from device_hours (energy per UTC clock hour). PostgreSQL, whose time
 * zone database knows every DST rule, places the buckets; the device's
 * visibility is checked in the same statement. */
#ifndef WATTLINE_DB_CONSUMPTION_H
#define WATTLINE_DB_CONSUMPTION_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

#define CONSUMPTION_HOUR_US 3600000000LL

enum consumption_bucket { CONSUMPTION_HOUR = 0, CONSUMPTION_DAY, CONSUMPTION_MONTH };

/* "hour" / "day" / "month" and back; false for anything else. */
const char *consumption_bucket_name(enum consumption_bucket b);
bool consumption_bucket_parse(const char *name, enum consumption_bucket *out);

struct consumption_row {
    long long start; /* the bucket's first instant, microseconds since the epoch */
    double kwh;
};

struct consumption {
    double max_hourly_kwh;        /* the device's limit */
    struct consumption_row *rows; /* owned; consumption_free() */
    int count;
    bool too_many; /* the range holds more than the max_buckets asked for */
};

void consumption_free(struct consumption *c);

/* The energy of device_id in each bucket of zone tz that meets [from, to),
 * oldest first, every bucket present (0 without data). Buckets are aligned to
 * the zone's hours, days or months; only energy inside [from, to) counts.
 * owner_scope is 0 for an admin, else the caller's id: another owner's device
 * is STATUS_NOT_FOUND. A range of more than max_buckets sets out->too_many and
 * gives no rows. STATUS_INVALID when PostgreSQL does not know tz. */
enum status db_consumption_buckets(struct db_conn *conn, long long device_id, long long owner_scope,
                                   long long from, long long to, enum consumption_bucket bucket,
                                   const char *tz, int max_buckets, struct consumption *out);

/* The same for the hours of the local day date ("YYYY-MM-DD", already
 * validated) in tz: 23 to 25 of them. */
enum status db_consumption_day(struct db_conn *conn, long long device_id, long long owner_scope,
                               const char *date, const char *tz, struct consumption *out);

/* One UTC hour of device_hours. */
struct consumption_hour {
    long long hour; /* its first instant, microseconds since the epoch */
    double kwh;
};

/* Fills out[k] (k < nbuckets) with the energy of the hour-long bucket
 * starting at first + k hours, counting only what falls inside [lo, hi):
 * every UTC hour overlapping the bucket gives it the share of its energy
 * that falls inside, as if spread evenly over the hour. hours are sorted by
 * hour. For zones at whole-hour offsets a share is all or nothing (kwh * 1.0:
 * exact); in Asia/Kolkata (UTC+05:30) a local hour takes half of two. Each
 * bucket is a left-to-right sum in hour order, starting from 0. */
void consumption_spread_hours(const struct consumption_hour *hours, size_t nhours, long long first,
                              long long lo, long long hi, size_t nbuckets, double *out);

#endif
