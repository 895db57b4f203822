#include "consumption.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* [lo, hi) from $2 and $3 (microseconds since the epoch). */
#define SPAN                                                                                       \
    "span AS ("                                                                                    \
    "  SELECT timestamptz 'epoch' + $2::bigint * interval '1 microsecond' AS lo,"                  \
    "   timestamptz 'epoch' + $3::bigint * interval '1 microsecond' AS hi)"

/* The energy of each bucket: every UTC hour of device_hours that overlaps the
 * bucket (clipped to [lo, hi)) contributes the share of its energy that falls
 * inside, assuming the hour's energy was spread evenly over it. For zones at
 * whole-hour offsets the share is all or nothing (kwh * 1.0, exact); in a
 * zone such as Asia/Kolkata (UTC+05:30) each local hour takes half of two UTC
 * hours. One index range scan of device_hours per bucket. (date_part, a
 * double, rather than extract, a numeric: several times faster here.) */
#define BUCKET_ENERGY                                                                              \
    " SELECT (extract(epoch FROM b.start) * 1000000)::bigint, coalesce(e.kwh, 0)"                  \
    " FROM buckets b LEFT JOIN LATERAL ("                                                          \
    "  SELECT sum(h.kwh * date_part('epoch',"                                                      \
    "    least(h.hour + interval '1 hour', b.stop, b.hi) - greatest(h.hour, b.start, b.lo)"        \
    "   ) / 3600) AS kwh"                                                                          \
    "  FROM device_hours h"                                                                        \
    "  WHERE h.device_id = $1 AND h.hour > greatest(b.start, b.lo) - interval '1 hour'"            \
    "   AND h.hour < least(b.stop, b.hi)) e ON true"                                               \
    " ORDER BY b.start"

/* Hour buckets step by real hours (3,600 s), so a DST day has 23 or 25 of
 * them; the first one starts where the zone's hour containing lo began (lo
 * minus the time elapsed since, which avoids converting an ambiguous local
 * time back). The series is a set-returning function in the select list, so
 * LIMIT stops it early however long the range. */
static const struct db_stmt HOURS = {
    "consumption_hours",
    "WITH " SPAN ","
    " aligned AS ("
    "  SELECT lo - ((lo AT TIME ZONE $4) - date_trunc('hour', lo AT TIME ZONE $4)) AS first,"
    "   lo, hi FROM span),"
    " buckets AS ("
    "  SELECT s AS start, s + interval '1 hour' AS stop, lo, hi FROM ("
    "   SELECT generate_series(first, hi - interval '1 microsecond', interval '1 hour') AS s,"
    "    lo, hi FROM aligned LIMIT $5) g)" BUCKET_ENERGY};

/* The day form in one statement: the local day $2 in zone $3 (23 to 25 hour
 * buckets), no round trip to compute its bounds first. $4 is the bucket cap. */
static const struct db_stmt DAY_HOURS = {
    "consumption_day_hours",
    "WITH span AS ("
    "  SELECT ($2::date)::timestamp AT TIME ZONE $3 AS lo,"
    "   ($2::date + 1)::timestamp AT TIME ZONE $3 AS hi),"
    " buckets AS ("
    "  SELECT s AS start, s + interval '1 hour' AS stop, lo, hi FROM ("
    "   SELECT generate_series(lo, hi - interval '1 microsecond', interval '1 hour') AS s,"
    "    lo, hi FROM span LIMIT $4) g)" BUCKET_ENERGY};

/* Day and month buckets step through local calendar time ($6 is 'day' or
 * 'month'), each converted back to an instant: a day is 23 to 25 hours long. */
static const struct db_stmt CALENDAR = {
    "consumption_calendar",
    "WITH " SPAN ","
    " local AS ("
    "  SELECT date_trunc($6, lo AT TIME ZONE $4) AS first, hi AT TIME ZONE $4 AS last, lo, hi"
    "  FROM span),"
    " buckets AS ("
    "  SELECT s AT TIME ZONE $4 AS start, (s + ('1 ' || $6)::interval) AT TIME ZONE $4 AS stop,"
    "   lo, hi FROM ("
    "   SELECT generate_series(first, last - interval '1 microsecond', ('1 ' || $6)::interval)"
    "    AS s, lo, hi FROM local LIMIT $5) g)" BUCKET_ENERGY};

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

/* Like db_check, but PostgreSQL's "time zone not recognized" (22023, the
 * only invalid parameter value these statements can meet) is the caller's
 * mistake: STATUS_INVALID, not an error worth logging. */
static enum status check_zone_result(struct db_conn *c, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "22023"))
        return STATUS_INVALID;
    return db_check(c, res, PGRES_TUPLES_OK);
}

static enum status read_rows(const PGresult *res, int max_buckets, struct consumption *out);

enum status db_consumption_day(struct db_conn *c, long long device_id, const char *date,
                               const char *tz, int max_buckets, struct consumption *out)
{
    *out = (struct consumption){0};
    struct db_ll_text idt, limitt;
    const char *params[] = {db_ll(&idt, device_id), date, tz,
                            db_ll(&limitt, (long long)max_buckets + 1)};
    PGresult *res = db_exec(c, &DAY_HOURS, 4, params);
    enum status st = check_zone_result(c, res);
    if (st == STATUS_OK)
        st = read_rows(res, max_buckets, out);
    PQclear(res);
    return st;
}

static enum status read_rows(const PGresult *res, int max_buckets, struct consumption *out)
{
    int n = PQntuples(res);
    if (n > max_buckets) {
        out->too_many = true;
        return STATUS_OK;
    }
    if (n == 0)
        return STATUS_OK;
    out->rows = calloc((size_t)n, sizeof *out->rows);
    if (!out->rows)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++)
        out->rows[i] = (struct consumption_row){db_get_ll(res, i, 0), db_get_double(res, i, 1)};
    out->count = n;
    return STATUS_OK;
}

enum status db_consumption_buckets(struct db_conn *c, long long device_id, long long from,
                                   long long to, enum consumption_bucket bucket, const char *tz,
                                   int max_buckets, struct consumption *out)
{
    *out = (struct consumption){0};
    struct db_ll_text idt, fromt, tot, limitt;
    const char *params[] = {db_ll(&idt, device_id),
                            db_ll(&fromt, from),
                            db_ll(&tot, to),
                            tz,
                            db_ll(&limitt, (long long)max_buckets + 1),
                            consumption_bucket_name(bucket)};
    PGresult *res = bucket == CONSUMPTION_HOUR ? db_exec(c, &HOURS, 5, params)
                                               : db_exec(c, &CALENDAR, 6, params);
    enum status st = check_zone_result(c, res);
    if (st == STATUS_OK)
        st = read_rows(res, max_buckets, out);
    PQclear(res);
    return st;
}
