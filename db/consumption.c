#include "consumption.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The device when the caller may see it: $1 its id, $2 the owner scope. */
#define VISIBLE_DEVICE "d.id = $1 AND ($2::bigint = 0 OR d.owner_id = $2)"

/* The hour forms answer, in binary, one row per stored UTC hour that meets
 * [lo, hi), oldest first (one row with a NULL hour when there is none): the
 * device's limit, the first bucket's start, lo, hi, the hour and its energy;
 * C spreads them over the buckets. One index range scan; no row when the
 * device is not visible. The bounds are worked out once (MATERIALIZED), not
 * for every row. */
#define HOURS_SELECT(cap_condition)                                                                \
    " SELECT d.max_hourly_kwh, b.first, b.lo, b.hi, h.hour, h.kwh"                                 \
    " FROM devices d CROSS JOIN bounds b"                                                          \
    " LEFT JOIN device_hours h ON h.device_id = d.id"                                              \
    "  AND h.hour > b.lo - interval '1 hour' AND h.hour < b.hi" cap_condition                      \
    " WHERE " VISIBLE_DEVICE " ORDER BY h.hour"

/* The local day $3 in zone $4: its hour buckets step by real hours from its
 * first instant, so a DST day has 23 or 25 of them. */
static const struct db_stmt DAY_HOURS = {
    "consumption_day_hours",
    "WITH bounds AS MATERIALIZED ("
    "  SELECT lo AS first, lo, hi FROM ("
    "   SELECT ($3::date)::timestamp AT TIME ZONE $4 AS lo,"
    "    ($3::date + 1)::timestamp AT TIME ZONE $4 AS hi) day)" HOURS_SELECT("")};

/* [$3, $4) (microseconds since the epoch) in zone $5: the first bucket
 * starts where the zone's hour containing lo began (lo minus the time
 * elapsed since, which avoids converting an ambiguous local time back). No
 * hour is read when the range holds more than $6 buckets. */
static const struct db_stmt HOURS = {
    "consumption_hours",
    "WITH bounds AS MATERIALIZED ("
    "  SELECT lo - ((lo AT TIME ZONE $5) - date_trunc('hour', lo AT TIME ZONE $5)) AS first,"
    "   lo, hi FROM ("
    "   SELECT timestamptz 'epoch' + $3::bigint * interval '1 microsecond' AS lo,"
    "    timestamptz 'epoch' + $4::bigint * interval '1 microsecond' AS hi) span)" HOURS_SELECT(
        " AND b.hi - b.first <= make_interval(hours => $6)")};

/* Day and month buckets step through local calendar time ($7 is 'day' or
 * 'month'), each converted back to an instant: a day is 23 to 25 hours long.
 * Each bucket takes, from every UTC hour it overlaps (clipped to [lo, hi)),
 * the share of its energy inside: one index range scan per bucket. The
 * series is a set-returning function in the select list, so LIMIT $6 stops
 * it early however long the range. (date_part, a double, rather than
 * extract, a numeric: several times faster here.) */
static const struct db_stmt CALENDAR = {
    "consumption_calendar",
    "WITH span AS ("
    "  SELECT timestamptz 'epoch' + $3::bigint * interval '1 microsecond' AS lo,"
    "   timestamptz 'epoch' + $4::bigint * interval '1 microsecond' AS hi),"
    " local AS ("
    "  SELECT date_trunc($7, lo AT TIME ZONE $5) AS first, hi AT TIME ZONE $5 AS last, lo, hi"
    "  FROM span),"
    " buckets AS ("
    "  SELECT s AT TIME ZONE $5 AS start, (s + ('1 ' || $7)::interval) AT TIME ZONE $5 AS stop,"
    "   lo, hi FROM ("
    "   SELECT generate_series(first, last - interval '1 microsecond', ('1 ' || $7)::interval)"
    "    AS s, lo, hi FROM local LIMIT $6) g)"
    " SELECT d.max_hourly_kwh, (extract(epoch FROM b.start) * 1000000)::bigint,"
    "  coalesce(e.kwh, 0)"
    " FROM devices d CROSS JOIN buckets b LEFT JOIN LATERAL ("
    "  SELECT sum(h.kwh * date_part('epoch',"
    "    least(h.hour + interval '1 hour', b.stop, b.hi) - greatest(h.hour, b.start, b.lo)"
    "   ) / 3600) AS kwh"
    "  FROM device_hours h"
    "  WHERE h.device_id = d.id AND h.hour > greatest(b.start, b.lo) - interval '1 hour'"
    "   AND h.hour < least(b.stop, b.hi)) e ON true"
    " WHERE " VISIBLE_DEVICE " ORDER BY b.start"};

static const char *const BUCKET_NAMES[] = {
    [CONSUMPTION_HOUR] = "hour", [CONSUMPTION_DAY] = "day", [CONSUMPTION_MONTH] = "month"};

const char *consumption_bucket_name(enum consumption_bucket b)
{
    return BUCKET_NAMES[b];
}

bool consumption_bucket_parse(const char *name, enum consumption_bucket *out)
{
    for (size_t i = 0; name && i < sizeof BUCKET_NAMES / sizeof BUCKET_NAMES[0]; i++) {
        if (!strcmp(name, BUCKET_NAMES[i])) {
            *out = (enum consumption_bucket)i;
            return true;
        }
    }
    return false;
}

void consumption_free(struct consumption *c)
{
    free(c->rows);
    *c = (struct consumption){0};
}

static long long max_ll(long long a, long long b)
{
    return a > b ? a : b;
}

static long long min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

void consumption_spread_hours(const struct consumption_hour *hours, size_t nhours, long long first,
                              long long lo, long long hi, size_t nbuckets, double *out)
{
    size_t next = 0; /* the first hour that may still meet a bucket */
    for (size_t k = 0; k < nbuckets; k++) {
        long long start = max_ll(first + (long long)k * CONSUMPTION_HOUR_US, lo);
        long long stop = min_ll(first + (long long)(k + 1) * CONSUMPTION_HOUR_US, hi);
        while (next < nhours && hours[next].hour + CONSUMPTION_HOUR_US <= start)
            next++;
        double kwh = 0;
        for (size_t i = next; i < nhours && hours[i].hour < stop; i++) {
            long long inside =
                min_ll(hours[i].hour + CONSUMPTION_HOUR_US, stop) - max_ll(hours[i].hour, start);
            if (inside > 0)
                kwh += hours[i].kwh * ((double)inside / (double)CONSUMPTION_HOUR_US);
        }
        out[k] = kwh;
    }
}

/* Like db_check, but PostgreSQL's "time zone not recognized" (22023, the
 * only invalid parameter value these statements can meet) is the caller's
 * mistake: STATUS_INVALID, not an error worth logging. No row at all is a
 * device the caller may not see. */
static enum status check_result(struct db_conn *c, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "22023"))
        return STATUS_INVALID;
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) == 0)
        return STATUS_NOT_FOUND;
    return st;
}

/* The binary rows of HOURS_SELECT, spread over the hour buckets. */
static enum status spread_rows(const PGresult *res, int max_buckets, struct consumption *out)
{
    out->max_hourly_kwh = db_bin_float8(res, 0, 0);
    long long first = db_bin_timestamptz(res, 0, 1);
    long long lo = db_bin_timestamptz(res, 0, 2), hi = db_bin_timestamptz(res, 0, 3);
    long long nbuckets = (hi - first + CONSUMPTION_HOUR_US - 1) / CONSUMPTION_HOUR_US;
    if (nbuckets > max_buckets) {
        out->too_many = true;
        return STATUS_OK;
    }
    int nrows = PQntuples(res);
    struct consumption_hour *hours = calloc((size_t)nrows, sizeof *hours);
    double *kwh = calloc((size_t)nbuckets, sizeof *kwh);
    out->rows = calloc((size_t)nbuckets, sizeof *out->rows);
    enum status st = STATUS_INTERNAL;
    if (hours && kwh && out->rows) {
        size_t nhours = 0;
        for (int i = 0; i < nrows; i++) {
            if (!db_is_null(res, i, 4))
                hours[nhours++] = (struct consumption_hour){db_bin_timestamptz(res, i, 4),
                                                            db_bin_float8(res, i, 5)};
        }
        consumption_spread_hours(hours, nhours, first, lo, hi, (size_t)nbuckets, kwh);
        for (long long k = 0; k < nbuckets; k++)
            out->rows[k] = (struct consumption_row){first + k * CONSUMPTION_HOUR_US, kwh[k]};
        out->count = (int)nbuckets;
        st = STATUS_OK;
    }
    free(hours);
    free(kwh);
    return st;
}

/* The text rows of CALENDAR, one per bucket. */
static enum status bucket_rows(const PGresult *res, int max_buckets, struct consumption *out)
{
    out->max_hourly_kwh = db_get_double(res, 0, 0);
    int n = PQntuples(res);
    if (n > max_buckets) {
        out->too_many = true;
        return STATUS_OK;
    }
    out->rows = calloc((size_t)n, sizeof *out->rows);
    if (!out->rows)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++)
        out->rows[i] = (struct consumption_row){db_get_ll(res, i, 1), db_get_double(res, i, 2)};
    out->count = n;
    return STATUS_OK;
}

/* Reads a result of one of the statements above (PQclear()ing it); out is
 * cleared first and owns what it holds whatever the outcome. */
static enum status read_result(struct db_conn *c, PGresult *res,
                               enum status (*read_rows)(const PGresult *, int,
                                                        struct consumption *),
                               int max_buckets, struct consumption *out)
{
    *out = (struct consumption){0};
    enum status st = check_result(c, res);
    if (st == STATUS_OK)
        st = read_rows(res, max_buckets, out);
    PQclear(res);
    return st;
}

enum status db_consumption_day(struct db_conn *c, long long device_id, long long owner_scope,
                               const char *date, const char *tz, struct consumption *out)
{
    struct db_ll_text idt, scopet;
    const char *params[] = {db_ll(&idt, device_id), db_ll(&scopet, owner_scope), date, tz};
    /* A local day is at most 25 hours (or 26 in a zone that once moved its
     * clock two hours): the cap is never reached. */
    return read_result(c, db_exec_binary(c, &DAY_HOURS, 4, params), spread_rows, 48, out);
}

enum status db_consumption_buckets(struct db_conn *c, long long device_id, long long owner_scope,
                                   long long from, long long to, enum consumption_bucket bucket,
                                   const char *tz, int max_buckets, struct consumption *out)
{
    struct db_ll_text idt, scopet, fromt, tot, capt;
    const char *params[] = {
        db_ll(&idt, device_id),
        db_ll(&scopet, owner_scope),
        db_ll(&fromt, from),
        db_ll(&tot, to),
        tz,
        db_ll(&capt, bucket == CONSUMPTION_HOUR ? max_buckets : (long long)max_buckets + 1),
        consumption_bucket_name(bucket)};
    if (bucket == CONSUMPTION_HOUR)
        return read_result(c, db_exec_binary(c, &HOURS, 6, params), spread_rows, max_buckets, out);
    return read_result(c, db_exec(c, &CALENDAR, 7, params), bucket_rows, max_buckets, out);
}
