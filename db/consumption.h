/* consumption: a device's energy per hour, day or month of an IANA time zone,
 * read from device_hours (energy per UTC clock hour). The bucketing is done
 * by PostgreSQL, whose time zone database knows every DST rule. */
#ifndef WATTLINE_DB_CONSUMPTION_H
#define WATTLINE_DB_CONSUMPTION_H

#include <stdbool.h>

#include "db.h"

enum consumption_bucket { CONSUMPTION_HOUR = 0, CONSUMPTION_DAY, CONSUMPTION_MONTH };

/* "hour" / "day" / "month" and back; false for anything else. */
const char *consumption_bucket_name(enum consumption_bucket b);
bool consumption_bucket_parse(const char *name, enum consumption_bucket *out);

struct consumption_row {
    long long start; /* the bucket's first instant, microseconds since the epoch */
    double kwh;
};

struct consumption {
    struct consumption_row *rows; /* owned; consumption_free() */
    int count;
    bool too_many; /* the range holds more than the max_buckets asked for */
};

void consumption_free(struct consumption *c);

/* The energy of device_id in each bucket of zone tz that meets [from, to),
 * oldest first, every bucket present (0 without data). Buckets are aligned to
 * the zone's hours, days or months; only energy inside [from, to) counts.
 * At most max_buckets rows: a range with more sets out->too_many and returns
 * no rows. STATUS_INVALID when PostgreSQL does not know tz. */
/* The hours of the local day date ("YYYY-MM-DD", already validated) in tz,
 * in one statement. STATUS_INVALID for an unknown zone. */
enum status db_consumption_day(struct db_conn *conn, long long device_id, const char *date,
                               const char *tz, int max_buckets, struct consumption *out);

enum status db_consumption_buckets(struct db_conn *conn, long long device_id, long long from,
                                   long long to, enum consumption_bucket bucket, const char *tz,
                                   int max_buckets, struct consumption *out);

#endif
