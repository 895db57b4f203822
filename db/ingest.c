#include "ingest.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "events.h"
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
    "  latest_reading_value, offline_since IS NOT NULL, " EPOCH("forecast_hour")
    " FROM devices WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"};

/* The stored hours of each device from its newest reading's hour to the
 * hour of $2 (its newest reading in the group): those that readings after
 * the newest stored one add to. Sent right after LOCK, in the same round
 * trip: a statement of its own takes its own snapshot, so it sees what the
 * previous holders of the devices' locks committed. */
static const struct db_stmt NEAR_HOURS = {
    "ingest_near_hours",
    "SELECT b.device_id, " EPOCH("h.hour") ", h.kwh"
    " FROM unnest($1::bigint[], $2::bigint[]) AS b(device_id, newest_us)"
    " JOIN devices d ON d.id = b.device_id"
    " JOIN device_hours h ON h.device_id = b.device_id"
    "  AND h.hour >= date_bin('1 hour', d.latest_reading_ts, timestamptz 'epoch')"
    "  AND h.hour <= " TS("b.newest_us")
    " ORDER BY b.device_id"};

/* Readings known to follow every stored one of their devices: a plain
 * insert, without the speculative insertion of ON CONFLICT; a row stored
 * after all fails the transaction (unique_violation). */
static const struct db_stmt APPEND = {
    "ingest_append",
    "INSERT INTO readings (device_id, ts, value)"
    " SELECT device_id, " TS("us") ", value"
    " FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS t(device_id, us, value)"};

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

/* The hours, and each device's last_seen_at and newest reading. */
static const struct db_stmt WRITE = {
    "ingest_write",
    "WITH up AS ("
    "  INSERT INTO device_hours (device_id, hour, kwh)"
    "  SELECT device_id, " TS("us") ", kwh"
    "  FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS h(device_id, us, kwh)"
    "  ON CONFLICT (device_id, hour) DO UPDATE SET kwh = EXCLUDED.kwh)"
    " UPDATE devices d SET last_seen_at = greatest(d.last_seen_at, " TS("s.us") "),"
    "  latest_reading_ts = coalesce(" TS("l.us") ", d.latest_reading_ts),"
    "  latest_reading_value = coalesce(l.value, d.latest_reading_value),"
    /* The offline sweep's deadline; NULL (unchanged, so the update stays HOT)
     * for a device without offline_after_s. */
    "  offline_due_at = greatest(d.last_seen_at, " TS("s.us") ")"
    "   + d.offline_after_s * interval '1 second'"
    " FROM unnest($4::bigint[], $5::bigint[]) AS s(device_id, us)"
    " LEFT JOIN unnest($6::bigint[], $7::bigint[], $8::float8[]) AS l(device_id, us, value)"
    "  ON l.device_id = s.device_id"
    " WHERE d.id = s.device_id"};

/* Alerts for the hours over their device's limit (the device rows are
 * locked: the limit is the one the hours were judged against), ids in
 * (device, hour) order. Each new alert is queued for its owner's webhooks in
 * this same transaction (the outbox, migrations/0009_notifications.sql). */
static const struct db_stmt RAISE = {
    "ingest_raise",
    "WITH raised AS ("
    "  INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)"
    "  SELECT h.device_id, " TS("h.us") ", h.kwh, d.max_hourly_kwh"
    "  FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS h(device_id, us, kwh)"
    "  JOIN devices d ON d.id = h.device_id WHERE h.kwh > d.max_hourly_kwh"
    "  ORDER BY h.device_id, h.us"
    "  ON CONFLICT (device_id, hour_start) DO NOTHING"
    "  RETURNING id, device_id, hour_start, hour_kwh, max_hourly_kwh, created_at)"
    " SELECT id, notification_enqueue_alert(id, device_id, hour_start, hour_kwh,"
    "  max_hourly_kwh, created_at)"
    " FROM raised ORDER BY id"};

/* Devices that were offline and have an accepted reading again: online,
 * once (the rows are locked), with their owners told. */
static const struct db_stmt ONLINE = {
    "ingest_online",
    "WITH back AS ("
    "  UPDATE devices SET offline_since = NULL"
    "  WHERE id = ANY($1::bigint[]) AND offline_since IS NOT NULL"
    "  RETURNING id, name, owner_id, last_seen_at)"
    " SELECT count(notification_enqueue(owner_id, 'device_status',"
    "  device_status_message(id, name, 'online', last_seen_at), true)) FROM back"};

/* Forecasts, once per device and hour; each new one goes to its owner
 * (sessions and webhooks, as the owner's preferences say). */
static const struct db_stmt FORECAST = {
    "ingest_forecast",
    "WITH f AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[],"
    "   $5::float8[], $6::bigint[]) AS f(device_id, hour_us, so_far, projected, lim, at_us)),"
    " ins AS ("
    "  INSERT INTO forecasts (device_id, hour_start, hour_kwh_so_far, projected_kwh,"
    "   max_hourly_kwh, at)"
    "  SELECT device_id, " TS("hour_us") ", so_far, projected, lim, " TS("at_us") " FROM f"
    "  ON CONFLICT (device_id, hour_start) DO NOTHING RETURNING *),"
    " mark AS ("
    "  UPDATE devices d SET forecast_hour = " TS("f.hour_us") " FROM f WHERE d.id = f.device_id)"
    " SELECT count(notification_enqueue(d.owner_id, 'forecast', json_build_object("
    "  'type', 'forecast', 'forecast', json_build_object('device_id', d.id,"
    "  'device_name', d.name, 'hour_start', rfc3339(i.hour_start),"
    "  'hour_kwh_so_far', i.hour_kwh_so_far, 'projected_kwh', i.projected_kwh,"
    "  'max_hourly_kwh', i.max_hourly_kwh, 'at', rfc3339(i.at)))::text, true))"
    " FROM ins i JOIN devices d ON d.id = i.device_id"};

/* Automation (issue 16): the over_limit_command of each raised alert's
 * device, queued for that alert. Same transaction as the alerts: a crash
 * loses both or neither, and the unique index on alert_id makes it one per
 * alert. The group has locked its devices' rows, so the per-device cap
 * counts what is committed (a queue already full gets no more). */
static const struct db_stmt OVER_LIMIT_COMMANDS = {
    "ingest_over_limit_commands",
    "INSERT INTO commands (device_id, name, params, alert_id, expires_at)"
    " SELECT a.device_id, d.over_limit_command->>'name',"
    "  coalesce(d.over_limit_command->'params', '{}'), a.id, now() + make_interval(secs => $2::int)"
    " FROM alerts a JOIN devices d ON d.id = a.device_id"
    " WHERE a.id = ANY($1::bigint[]) AND d.over_limit_command IS NOT NULL"
    "  AND (SELECT count(*) FROM commands k WHERE k.device_id = a.device_id"
    "   AND k.status IN ('queued', 'sent') AND k.expires_at > now()) < $3"
    " ORDER BY a.id"
    " ON CONFLICT (alert_id) WHERE alert_id IS NOT NULL DO NOTHING RETURNING id, device_id"};

/* An arbitrary constant naming "raising alerts" among advisory locks. */
static const struct db_stmt LOCK_ALERTS = {
    "ingest_lock_alerts", "SELECT pg_advisory_xact_lock(7239002)"};

static const struct db_stmt PARTITIONS = {
    "ingest_partitions",
    "SELECT readings_ensure_partitions((now() AT TIME ZONE 'UTC' - interval '1 month')::date, 4)"};

// clang-format on

/* Builds the text of one array parameter from one member of n structs:
 * items is the array, stride the size of an element, offset the member's. */
static const char *ll_column(struct db_array *a, const void *items, size_t stride, size_t offset,
                             int n)
{
    db_array_init(a);
    for (int i = 0; i < n; i++) {
        long long v;
        memcpy(&v, (const char *)items + (size_t)i * stride + offset, sizeof v);
        db_array_add_ll(a, v);
    }
    return db_array_finish(a);
}

static const char *double_column(struct db_array *a, const void *items, size_t stride,
                                 size_t offset, int n)
{
    db_array_init(a);
    for (int i = 0; i < n; i++) {
        double v;
        memcpy(&v, (const char *)items + (size_t)i * stride + offset, sizeof v);
        db_array_add_double(a, v);
    }
    return db_array_finish(a);
}

/* The column `field` of the n structs of type `type` at items. */
#define LL_COLUMN(a, items, n, type, field)                                                        \
    ll_column((a), (items), sizeof(type), offsetof(type, field), (n))
#define DOUBLE_COLUMN(a, items, n, type, field)                                                    \
    double_column((a), (items), sizeof(type), offsetof(type, field), (n))

static bool all_built(const char *const *params, int n)
{
    for (int i = 0; i < n; i++)
        if (!params[i])
            return false;
    return true;
}

static void free_arrays(struct db_array *a, int n)
{
    for (int i = 0; i < n; i++)
        db_array_free(&a[i]);
}

/* The index of (device, ts) in rows sorted by device then ts, or -1. */
static int find_row(const struct ingest_row *rows, int n, long long device, long long at)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (rows[mid].device_id < device || (rows[mid].device_id == device && rows[mid].ts < at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && rows[lo].device_id == device && rows[lo].ts == at ? lo : -1;
}

/* The entry of id among devices sorted by ascending id, or NULL. */
static struct ingest_device *find_device(struct ingest_device *devices, int n, long long id)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (devices[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && devices[lo].id == id ? &devices[lo] : NULL;
}

/* Reads rows of (device_id, hour, kwh) into out. */
static enum status read_hours(struct db_conn *c, const PGresult *res, struct ingest_hour_list *out)
{
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->hours, &items, &n);
    out->hours = items;
    for (int i = 0; i < n; i++)
        out->hours[i] = (struct ingest_hour){
            .device_id = db_get_ll(res, i, 0),
            .hour = db_get_ll(res, i, 1),
            .kwh = db_get_double(res, i, 2),
        };
    out->count = n;
    return st;
}

enum status db_ingest_lock_devices_in_tx(struct db_conn *c, struct ingest_device *devices, int n,
                                         struct ingest_hour_list *hours)
{
    struct db_array a[2];
    const char *params[] = {LL_COLUMN(&a[0], devices, n, struct ingest_device, id),
                            LL_COLUMN(&a[1], devices, n, struct ingest_device, newest_ts)};
    *hours = (struct ingest_hour_list){0};
    for (int i = 0; i < n; i++) {
        devices[i].exists = false;
        devices[i].has_latest = false;
    }
    if (!all_built(params, 2)) {
        free_arrays(a, 2);
        return STATUS_INTERNAL;
    }
    PGresult *res = NULL;
    enum status st = db_queue_keep(c, &LOCK, 1, params, &res);
    if (st == STATUS_OK) {
        PGresult *near = db_exec(c, &NEAR_HOURS, 2, params);
        st = read_hours(c, near, hours);
        PQclear(near);
    }
    for (int row = 0; st == STATUS_OK && res && row < PQntuples(res); row++) {
        struct ingest_device *d = find_device(devices, n, db_get_ll(res, row, 0));
        if (!d)
            continue;
        d->exists = true;
        reading_type_parse(PQgetvalue(res, row, 1), &d->type);
        d->limit = db_get_double(res, row, 2);
        d->has_latest = !db_is_null(res, row, 3);
        d->latest_ts = db_get_ll(res, row, 3);
        d->latest_value = db_get_double(res, row, 4);
        d->offline = db_get_bool(res, row, 5);
        d->forecast_hour = db_get_ll(res, row, 6);
    }
    PQclear(res);
    free_arrays(a, 2);
    return st;
}

enum status db_ingest_append_in_tx(struct db_conn *c, const struct ingest_row *rows, int n)
{
    struct db_array a[3];
    const char *params[] = {LL_COLUMN(&a[0], rows, n, struct ingest_row, device_id),
                            LL_COLUMN(&a[1], rows, n, struct ingest_row, ts),
                            DOUBLE_COLUMN(&a[2], rows, n, struct ingest_row, value)};
    enum status st = all_built(params, 3) ? db_queue(c, &APPEND, 3, params) : STATUS_INTERNAL;
    free_arrays(a, 3);
    return st;
}

enum status db_ingest_insert_in_tx(struct db_conn *c, const struct ingest_row *rows, int n,
                                   bool *inserted)
{
    struct db_array a[3];
    const char *params[] = {LL_COLUMN(&a[0], rows, n, struct ingest_row, device_id),
                            LL_COLUMN(&a[1], rows, n, struct ingest_row, ts),
                            DOUBLE_COLUMN(&a[2], rows, n, struct ingest_row, value)};
    enum status st = STATUS_INTERNAL;
    for (int i = 0; i < n; i++)
        inserted[i] = false;
    if (all_built(params, 3)) {
        PGresult *res = db_exec_binary(c, &INSERT, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        for (int row = 0; st == STATUS_OK && row < PQntuples(res); row++) {
            int i = find_row(rows, n, db_bin_int8(res, row, 0), db_bin_timestamptz(res, row, 1));
            if (i >= 0)
                inserted[i] = true;
        }
        PQclear(res);
    }
    free_arrays(a, 3);
    return st;
}

/* The three array parameters of a list of spans. */
static bool span_params(struct db_array *a, const struct ingest_span *spans, int n,
                        const char **params)
{
    params[0] = LL_COLUMN(&a[0], spans, n, struct ingest_span, device_id);
    params[1] = LL_COLUMN(&a[1], spans, n, struct ingest_span, from);
    params[2] = LL_COLUMN(&a[2], spans, n, struct ingest_span, to);
    return all_built(params, 3);
}

enum status db_ingest_context_in_tx(struct db_conn *c, const struct ingest_span *spans, int n,
                                    struct ingest_context *out)
{
    struct db_array a[3];
    const char *params[3];
    enum status st = STATUS_INTERNAL;
    *out = (struct ingest_context){0};
    if (span_params(a, spans, n, params)) {
        PGresult *res = db_exec(c, &CONTEXT, 3, params);
        void *items;
        int rows;
        st = db_check_rows(c, res, sizeof *out->rows, &items, &rows);
        out->rows = items;
        for (int i = 0; i < rows; i++)
            out->rows[out->count++] = (struct ingest_context_row){
                .device_id = db_get_ll(res, i, 0),
                .first_hour = db_get_ll(res, i, 1),
                .end_hour = db_get_ll(res, i, 2),
                .ts = db_get_ll(res, i, 3),
                .value = db_get_double(res, i, 4),
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

enum status db_ingest_write_in_tx(struct db_conn *c, const struct ingest_write *w)
{
    struct db_array a[8];
    const char *params[] = {
        LL_COLUMN(&a[0], w->hours, w->nhours, struct ingest_hour, device_id),
        LL_COLUMN(&a[1], w->hours, w->nhours, struct ingest_hour, hour),
        DOUBLE_COLUMN(&a[2], w->hours, w->nhours, struct ingest_hour, kwh),
        LL_COLUMN(&a[3], w->seen, w->nseen, struct ingest_device, id),
        LL_COLUMN(&a[4], w->seen, w->nseen, struct ingest_device, seen_at),
        LL_COLUMN(&a[5], w->latest, w->nlatest, struct ingest_row, device_id),
        LL_COLUMN(&a[6], w->latest, w->nlatest, struct ingest_row, ts),
        DOUBLE_COLUMN(&a[7], w->latest, w->nlatest, struct ingest_row, value),
    };
    enum status st = all_built(params, 8) ? db_queue(c, &WRITE, 8, params) : STATUS_INTERNAL;
    free_arrays(a, 8);
    if (st == STATUS_OK && w->nonline > 0) {
        struct db_array ids;
        const char *online[] = {db_array_of_ll(&ids, w->online, w->nonline)};
        st = online[0] ? db_queue(c, &ONLINE, 1, online) : STATUS_INTERNAL;
        db_array_free(&ids);
    }
    return st;
}

enum status db_ingest_forecast_in_tx(struct db_conn *c, const struct ingest_forecast *f, int n)
{
    struct db_array a[6];
    const char *params[] = {
        LL_COLUMN(&a[0], f, n, struct ingest_forecast, device_id),
        LL_COLUMN(&a[1], f, n, struct ingest_forecast, hour),
        DOUBLE_COLUMN(&a[2], f, n, struct ingest_forecast, so_far),
        DOUBLE_COLUMN(&a[3], f, n, struct ingest_forecast, projected),
        DOUBLE_COLUMN(&a[4], f, n, struct ingest_forecast, limit),
        LL_COLUMN(&a[5], f, n, struct ingest_forecast, at),
    };
    enum status st = all_built(params, 6) ? db_queue(c, &FORECAST, 6, params) : STATUS_INTERNAL;
    free_arrays(a, 6);
    return st;
}

/* Queues the over-limit commands of the alerts raised and announces them in
 * the same transaction: only when there are some (a device with an
 * over_limit_command went over), so the usual alert transaction pays one
 * statement more and no NOTIFY more. */
static enum status queue_over_limit_commands_in_tx(struct db_conn *c, const long long *alert_ids,
                                                   int n)
{
    struct db_array ids;
    struct db_ll_text ttlt, maxt;
    const char *params[] = {db_array_of_ll(&ids, alert_ids, n),
                            db_ll(&ttlt, COMMANDS_TTL_DEFAULT_S),
                            db_ll(&maxt, COMMANDS_PER_DEVICE_MAX)};
    enum status st = STATUS_INTERNAL;
    if (params[0]) {
        PGresult *res = db_exec(c, &OVER_LIMIT_COMMANDS, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        long long *got = rows > 0 ? malloc((size_t)rows * 2 * sizeof *got) : NULL;
        if (rows > 0 && !got)
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++) {
            got[i] = EVENTS_COMMAND(db_get_ll(res, i, 0), COMMAND_QUEUED);
            got[rows + i] = db_get_ll(res, i, 1);
        }
        PQclear(res);
        if (st == STATUS_OK && rows > 0)
            st = db_events_notify(c, &(struct events){.commands = got,
                                                      .ncommands = rows,
                                                      .command_devices = got + rows,
                                                      .ncommand_devices = rows});
        free(got);
    }
    db_array_free(&ids);
    return st;
}

enum status db_ingest_raise_alerts_in_tx(struct db_conn *c, const struct ingest_hour *hours, int n,
                                         long long **alert_ids, int *nalerts)
{
    struct db_array a[3];
    const char *params[] = {
        LL_COLUMN(&a[0], hours, n, struct ingest_hour, device_id),
        LL_COLUMN(&a[1], hours, n, struct ingest_hour, hour),
        DOUBLE_COLUMN(&a[2], hours, n, struct ingest_hour, kwh),
    };
    enum status st = STATUS_INTERNAL;
    *alert_ids = NULL;
    *nalerts = 0;
    if (all_built(params, 3)) {
        PGresult *res = db_exec(c, &RAISE, 3, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        if (rows > 0 && !(*alert_ids = malloc((size_t)rows * sizeof **alert_ids)))
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++)
            (*alert_ids)[(*nalerts)++] = db_get_ll(res, i, 0);
        PQclear(res);
    }
    free_arrays(a, 3);
    if (st == STATUS_OK && *nalerts > 0)
        st = queue_over_limit_commands_in_tx(c, *alert_ids, *nalerts);
    return st;
}

enum status db_ingest_lock_alerts_in_tx(struct db_conn *c)
{
    return db_queue(c, &LOCK_ALERTS, 0, NULL);
}

enum status db_ingest_ensure_partitions(struct db_conn *c)
{
    PGresult *res = db_exec(c, &PARTITIONS, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    PQclear(res);
    return st;
}
