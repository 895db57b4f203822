#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Microseconds since the epoch <-> timestamptz, exactly. */
#define TS(us)    "(timestamptz 'epoch' + (" us ") * interval '1 microsecond')"
#define EPOCH(ts) "(extract(epoch FROM " ts ") * 1000000)::bigint"

/* The statements read best as SQL, laid out by hand. */
// clang-format off

/* Locks the devices in ascending id order (no deadlock between instances),
 * with each one's newest reading. FOR UPDATE returns the version of the row
 * that the previous lock holder committed (READ COMMITTED re-reads a row it
 * waited for), and every transaction that stores a newer reading updates the
 * row before it commits. */
static const struct db_stmt LOCK = {
    "ingest_lock",
    "SELECT id, reading_type, max_hourly_kwh, " EPOCH("latest_reading_ts") ","
    "  latest_reading_value"
    " FROM devices WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"};

/* Answers (in binary) the rows it inserted; C finds them among its own. */
static const struct db_stmt INSERT = {
    "ingest_insert",
    "INSERT INTO readings (device_id, ts, value)"
    " SELECT device_id, " TS("us") ", value"
    " FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS t(device_id, us, value)"
    " ON CONFLICT DO NOTHING RETURNING device_id, ts"};

/* For each device: a = the reading before lo (or lo), z = the reading after
 * hi (or hi); the hours [floor(a), floor(z) + 1h) are the ones whose energy
 * may have changed. Their recomputation needs the readings from the last one
 * at or before the first hour to the first one at or after the end.
 * MATERIALIZED and OFFSET 0 keep the planner from re-running the correlated
 * subqueries per partition or hash-joining every partition. */
static const struct db_stmt CONTEXT = {
    "ingest_context",
    "WITH b AS MATERIALIZED ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS b(device_id, lo, hi)),"
    " bounds AS MATERIALIZED ("
    "  SELECT b.device_id,"
    "   date_trunc('hour', coalesce((SELECT max(r.ts) FROM readings r"
    "     WHERE r.device_id = b.device_id AND r.ts < " TS("b.lo") "), " TS("b.lo") ")) AS h0,"
    "   date_trunc('hour', coalesce((SELECT min(r.ts) FROM readings r"
    "     WHERE r.device_id = b.device_id AND r.ts > " TS("b.hi") "), " TS("b.hi") "))"
    "     + interval '1 hour' AS h1"
    "  FROM b),"
    " ctx AS MATERIALIZED ("
    "  SELECT bounds.*,"
    "   coalesce((SELECT max(r.ts) FROM readings r"
    "     WHERE r.device_id = bounds.device_id AND r.ts <= bounds.h0), bounds.h0) AS r0,"
    "   coalesce((SELECT min(r.ts) FROM readings r"
    "     WHERE r.device_id = bounds.device_id AND r.ts >= bounds.h1), bounds.h1) AS r1"
    "  FROM bounds)"
    " SELECT c.device_id, " EPOCH("c.h0") ", " EPOCH("c.h1") ", " EPOCH("r.ts") ", r.value"
    " FROM ctx c CROSS JOIN LATERAL ("
    "  SELECT ts, value FROM readings r"
    "  WHERE r.device_id = c.device_id AND r.ts BETWEEN c.r0 AND c.r1 OFFSET 0) r"
    " ORDER BY c.device_id, r.ts"};

/* The stored energy of hours [first, end) of each device: what readings
 * appended after the newest one add to. */
static const struct db_stmt HOURS = {
    "ingest_hours",
    "SELECT b.device_id, " EPOCH("h.hour") ", h.kwh"
    " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS b(device_id, first_us, end_us)"
    " JOIN device_hours h ON h.device_id = b.device_id"
    "  AND h.hour >= " TS("b.first_us") " AND h.hour < " TS("b.end_us")
    " ORDER BY b.device_id"};

static const struct db_stmt WRITE = {
    "ingest_write",
    "WITH h AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS h(device_id, us, kwh)),"
    " up AS ("
    "  INSERT INTO device_hours (device_id, hour, kwh)"
    "  SELECT device_id, " TS("us") ", kwh FROM h"
    "  ON CONFLICT (device_id, hour) DO UPDATE SET kwh = EXCLUDED.kwh),"
    " seen AS ("
    "  UPDATE devices d SET last_seen_at = greatest(d.last_seen_at, " TS("s.us") "),"
    "   latest_reading_ts = coalesce(" TS("l.us") ", d.latest_reading_ts),"
    "   latest_reading_value = coalesce(l.value, d.latest_reading_value)"
    "  FROM unnest($4::bigint[], $5::bigint[]) AS s(device_id, us)"
    "  LEFT JOIN unnest($6::bigint[], $7::bigint[], $8::float8[]) AS l(device_id, us, value)"
    "   ON l.device_id = s.device_id"
    "  WHERE d.id = s.device_id),"
    " raised AS ("
    "  INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)"
    "  SELECT h.device_id, " TS("h.us") ", h.kwh, d.max_hourly_kwh"
    "  FROM h JOIN devices d ON d.id = h.device_id WHERE h.kwh > d.max_hourly_kwh"
    "  ORDER BY h.device_id, h.us"
    "  ON CONFLICT (device_id, hour_start) DO NOTHING RETURNING id)"
    " SELECT id FROM raised ORDER BY id"};

/* An arbitrary constant naming "raising alerts" among advisory locks. */
static const struct db_stmt LOCK_ALERTS = {
    "ingest_lock_alerts", "SELECT pg_advisory_xact_lock(7239002)"};

static const struct db_stmt PARTITIONS = {
    "ingest_partitions",
    "SELECT readings_ensure_partitions((now() AT TIME ZONE 'UTC' - interval '1 month')::date, 4)"};

// clang-format on

/* Builds the text of one array parameter from n values. */
static const char *ll_array(struct db_array *a, const long long *v, int n)
{
    db_array_init(a);
    for (int i = 0; i < n; i++)
        db_array_add_ll(a, v[i]);
    return db_array_finish(a);
}

static const char *double_array(struct db_array *a, const double *v, int n)
{
    db_array_init(a);
    for (int i = 0; i < n; i++)
        db_array_add_double(a, v[i]);
    return db_array_finish(a);
}

static void free_arrays(struct db_array *a, int n)
{
    for (int i = 0; i < n; i++)
        db_array_free(&a[i]);
}

/* The index of (device, ts) in rows sorted by device then ts, or -1. */
static int find_row(const long long *devices, const long long *ts, int n, long long device,
                    long long at)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (devices[mid] < device || (devices[mid] == device && ts[mid] < at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && devices[lo] == device && ts[lo] == at ? lo : -1;
}

static struct ingest_device *find_device(struct ingest_device *list, int n, long long id)
{
    for (int i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

enum status db_ingest_lock_devices(struct db_conn *c, const long long *ids, int n,
                                   struct ingest_device *out)
{
    struct db_array a;
    const char *params[] = {ll_array(&a, ids, n)};
    if (!params[0]) {
        db_array_free(&a);
        return STATUS_INTERNAL;
    }
    PGresult *res = db_exec(c, &LOCK, 1, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    for (int i = 0; i < n; i++)
        out[i] = (struct ingest_device){.id = ids[i]};
    for (int row = 0; st == STATUS_OK && row < PQntuples(res); row++) {
        struct ingest_device *d = find_device(out, n, db_get_ll(res, row, 0));
        if (!d)
            continue;
        d->exists = true;
        reading_type_parse(PQgetvalue(res, row, 1), &d->type);
        d->limit = db_get_double(res, row, 2);
        d->has_latest = !db_is_null(res, row, 3);
        d->latest_ts = db_get_ll(res, row, 3);
        d->latest_value = db_get_double(res, row, 4);
    }
    PQclear(res);
    db_array_free(&a);
    return st;
}

enum status db_ingest_insert(struct db_conn *c, const long long *device_ids, const long long *ts,
                             const double *values, int n, bool *inserted)
{
    struct db_array a[3];
    const char *params[] = {ll_array(&a[0], device_ids, n), ll_array(&a[1], ts, n),
                            double_array(&a[2], values, n)};
    enum status st = STATUS_INTERNAL;
    if (params[0] && params[1] && params[2]) {
        PGresult *res = db_exec_binary(c, &INSERT, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        for (int i = 0; i < n; i++)
            inserted[i] = false;
        for (int row = 0; st == STATUS_OK && row < PQntuples(res); row++) {
            int i = find_row(device_ids, ts, n, db_bin_int8(res, row, 0),
                             db_bin_timestamptz(res, row, 1));
            if (i >= 0)
                inserted[i] = true;
        }
        PQclear(res);
    }
    free_arrays(a, 3);
    return st;
}

enum status db_ingest_context(struct db_conn *c, const long long *ids, const long long *lo,
                              const long long *hi, int n, struct ingest_context *out)
{
    struct db_array a[3];
    const char *params[] = {ll_array(&a[0], ids, n), ll_array(&a[1], lo, n),
                            ll_array(&a[2], hi, n)};
    enum status st = STATUS_INTERNAL;
    out->rows = NULL;
    out->count = 0;
    if (params[0] && params[1] && params[2]) {
        PGresult *res = db_exec(c, &CONTEXT, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        if (rows > 0 && !(out->rows = malloc((size_t)rows * sizeof *out->rows)))
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++) {
            out->rows[i] = (struct ingest_context_row){
                .device_id = db_get_ll(res, i, 0),
                .first_hour = db_get_ll(res, i, 1),
                .end_hour = db_get_ll(res, i, 2),
                .ts = db_get_ll(res, i, 3),
                .value = db_get_double(res, i, 4),
            };
            out->count++;
        }
        PQclear(res);
    }
    free_arrays(a, 3);
    return st;
}

enum status db_ingest_hours(struct db_conn *c, const long long *ids, const long long *first,
                            const long long *end, int n, struct ingest_hour_list *out)
{
    struct db_array a[3];
    const char *params[] = {ll_array(&a[0], ids, n), ll_array(&a[1], first, n),
                            ll_array(&a[2], end, n)};
    enum status st = STATUS_INTERNAL;
    *out = (struct ingest_hour_list){0};
    if (params[0] && params[1] && params[2]) {
        PGresult *res = db_exec(c, &HOURS, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        if (rows > 0 && !(out->hours = malloc((size_t)rows * sizeof *out->hours)))
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++)
            out->hours[out->count++] = (struct ingest_hour){
                .device_id = db_get_ll(res, i, 0),
                .hour = db_get_ll(res, i, 1),
                .kwh = db_get_double(res, i, 2),
            };
        PQclear(res);
    }
    free_arrays(a, 3);
    return st;
}

void db_ingest_context_free(struct ingest_context *ctx)
{
    free(ctx->rows);
    ctx->rows = NULL;
    ctx->count = 0;
}

enum status db_ingest_write(struct db_conn *c, const struct ingest_write *w, long long **alert_ids,
                            int *nalerts)
{
    struct db_array a[8];
    const char *params[] = {ll_array(&a[0], w->hour_devices, w->nhours),
                            ll_array(&a[1], w->hours, w->nhours),
                            double_array(&a[2], w->kwh, w->nhours),
                            ll_array(&a[3], w->seen_devices, w->nseen),
                            ll_array(&a[4], w->seen_at, w->nseen),
                            ll_array(&a[5], w->latest_devices, w->nlatest),
                            ll_array(&a[6], w->latest_ts, w->nlatest),
                            double_array(&a[7], w->latest_values, w->nlatest)};
    enum status st = STATUS_INTERNAL;
    *alert_ids = NULL;
    *nalerts = 0;
    bool built = true;
    for (int i = 0; i < 8; i++)
        built = built && params[i];
    if (built) {
        PGresult *res = db_exec(c, &WRITE, 8, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        if (rows > 0 && !(*alert_ids = malloc((size_t)rows * sizeof **alert_ids)))
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++)
            (*alert_ids)[(*nalerts)++] = db_get_ll(res, i, 0);
        PQclear(res);
    }
    free_arrays(a, 8);
    return st;
}

enum status db_ingest_lock_alerts(struct db_conn *c)
{
    PGresult *res = db_exec(c, &LOCK_ALERTS, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    PQclear(res);
    return st;
}

enum status db_ingest_ensure_partitions(struct db_conn *c)
{
    PGresult *res = db_exec(c, &PARTITIONS, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    PQclear(res);
    return st;
}
