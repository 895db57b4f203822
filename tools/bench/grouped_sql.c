/* grouped_sql: the grouped-SQL ceiling of the single-reading benchmark.
 *
 *   grouped_sql CONNINFO FIRST_DEVICE DEVICES CLIENTS GROUP SECONDS
 *
 * The best this schema allows with groups of GROUP readings: CLIENTS
 * connections, each writing to its own DEVICES / CLIENTS devices (ids from
 * FIRST_DEVICE on, contiguous), each transaction GROUP readings of GROUP
 * different devices (many devices, one reading each, as Wattline's groups of
 * single-reading requests are), doing a group's per-reading work:
 *   - insert the readings (one statement, unnest of arrays);
 *   - add each reading's energy to its device's hour, update each device's
 *     last_seen_at and newest reading, and raise the alerts of the hours over
 *     their limit (one statement: data-modifying CTEs over the same arrays);
 * BEGIN, both statements and COMMIT are sent at once (libpq pipeline mode),
 * so a transaction costs one round trip and one WAL flush. Energy is added,
 * not recomputed: the client knows each device's previous register, which
 * saves the reads (the device lock, the stored hours) Wattline does. Same
 * tables, indexes and durability (synchronous_commit as the cluster has it).
 *
 * Prints one JSON object on stdout:
 *   {"clients","group","transactions","readings","seconds","readings_per_s",
 *    "latency_us": {"p50","p99","max"}}   (per transaction, send to sync)
 * Exit status 0 on success, 1 on a database error, 2 for bad arguments.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR_US 3600000000LL
/* Each reading adds this much energy to its device's register (0.001 kWh). */
#define STEP_KWH 0.001

/* The statements read best as SQL, laid out by hand. */
// clang-format off
static const char INSERT_READINGS[] =
    "INSERT INTO readings (device_id, ts, value)"
    " SELECT d, timestamptz 'epoch' + us * interval '1 microsecond', v"
    " FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS t(d, us, v)";

/* One row per device: the hour of its reading gains the reading's energy.
 * The alert insert reads both CTEs, so both run; with the bench's limits no
 * hour goes over, as in the measured run. */
static const char WRITE_HOURS_DEVICES[] =
    "WITH r AS MATERIALIZED ("
    "  SELECT d, timestamptz 'epoch' + us * interval '1 microsecond' AS ts, v, kwh"
    "  FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[]) AS t(d, us, v, kwh)),"
    " h AS ("
    "  INSERT INTO device_hours (device_id, hour, kwh)"
    "  SELECT d, date_trunc('hour', ts - interval '1 microsecond', 'UTC'), kwh FROM r"
    "  ON CONFLICT (device_id, hour) DO UPDATE SET kwh = device_hours.kwh + EXCLUDED.kwh"
    "  RETURNING device_id, hour, kwh),"
    " dev AS ("
    "  UPDATE devices SET last_seen_at = r.ts, latest_reading_ts = r.ts, latest_reading_value = r.v"
    "  FROM r WHERE devices.id = r.d RETURNING devices.id, devices.max_hourly_kwh)"
    " INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)"
    " SELECT h.device_id, h.hour, h.kwh, dev.max_hourly_kwh"
    " FROM h JOIN dev ON dev.id = h.device_id WHERE h.kwh > dev.max_hourly_kwh"
    " ON CONFLICT (device_id, hour_start) DO NOTHING";
// clang-format on

struct client {
    const char *conninfo;
    long long first_device; /* its own devices: first_device .. + ndevices - 1 */
    int ndevices;
    int group;
    long long deadline_ns;
    double *registers; /* each device's meter, kWh */
    long long *latencies_ns;
    long ntx, cap;
    bool failed;
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static bool parse_long(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A growable text buffer for one array parameter ("{1,2,3}"). */
struct text {
    char *s;
    size_t len, cap;
};

static bool text_add(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *s2 = realloc(t->s, cap);
        if (!s2)
            return false;
        t->s = s2;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
    return true;
}

static bool text_number(struct text *t, bool first, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool text_number(struct text *t, bool first, const char *fmt, ...)
{
    char buf[40];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return (first || text_add(t, ",", 1)) && n > 0 && text_add(t, buf, (size_t)n);
}

/* The four array parameters of one transaction: devices start .. start +
 * group - 1 of the client (round robin), all read at ts_us. */
static bool build_params(struct client *c, int start, long long ts_us, struct text *p)
{
    for (int k = 0; k < 4; k++) {
        p[k].len = 0;
        if (!text_add(&p[k], "{", 1))
            return false;
    }
    for (int i = 0; i < c->group; i++) {
        int d = (start + i) % c->ndevices;
        c->registers[d] += STEP_KWH;
        bool first = i == 0;
        if (!text_number(&p[0], first, "%lld", c->first_device + d) ||
            !text_number(&p[1], first, "%lld", ts_us) ||
            !text_number(&p[2], first, "%.17g", c->registers[d]) ||
            !text_number(&p[3], first, "%.17g", STEP_KWH))
            return false;
    }
    for (int k = 0; k < 4; k++)
        if (!text_add(&p[k], "}", 1))
            return false;
    return true;
}

/* Reads the pipeline's results up to its sync; false on any error. */
static bool read_pipeline(PGconn *conn)
{
    bool ok = true;
    for (;;) {
        PGresult *res = PQgetResult(conn);
        if (!res) {
            if (PQstatus(conn) == CONNECTION_BAD) {
                fprintf(stderr, "grouped_sql: %s", PQerrorMessage(conn));
                return false;
            }
            continue; /* the end of one statement's results */
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return ok;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            if (ok)
                fprintf(stderr, "grouped_sql: %s", PQerrorMessage(conn));
            ok = false;
        }
        PQclear(res);
    }
}

static bool send_transaction(PGconn *conn, const struct text *p)
{
    const char *params[] = {p[0].s, p[1].s, p[2].s, p[3].s};
    return PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
           PQsendQueryPrepared(conn, "insert_readings", 3, params, NULL, NULL, 0) &&
           PQsendQueryPrepared(conn, "write_hours_devices", 4, params, NULL, NULL, 0) &&
           PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(conn);
}

static bool prepare(PGconn *conn, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQprepare(conn, name, sql, nparams, NULL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "grouped_sql: %s", PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

static bool record(struct client *c, long long latency_ns)
{
    if (c->ntx == c->cap) {
        long cap = c->cap ? c->cap * 2 : 4096;
        long long *l = realloc(c->latencies_ns, (size_t)cap * sizeof *l);
        if (!l)
            return false;
        c->latencies_ns = l;
        c->cap = cap;
    }
    c->latencies_ns[c->ntx++] = latency_ns;
    return true;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct text p[4] = {{0}};
    PGconn *conn = PQconnectdb(c->conninfo);
    c->failed = true;
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "grouped_sql: %s", PQerrorMessage(conn));
        goto out;
    }
    if (!prepare(conn, "insert_readings", INSERT_READINGS, 3) ||
        !prepare(conn, "write_hours_devices", WRITE_HOURS_DEVICES, 4) || !PQenterPipelineMode(conn))
        goto out;
    long long last_us = 0;
    int start = 0;
    while (mono_ns() < c->deadline_ns) {
        /* One timestamp per transaction, increasing: no reading repeats. */
        long long ts_us = wall_us();
        ts_us = ts_us > last_us ? ts_us : last_us + 1;
        last_us = ts_us;
        if (!build_params(c, start, ts_us, p))
            goto out;
        start = (start + c->group) % c->ndevices;
        long long sent = mono_ns();
        if (!send_transaction(conn, p) || !read_pipeline(conn) || !record(c, mono_ns() - sent))
            goto out;
    }
    c->failed = false;
out:
    for (int k = 0; k < 4; k++)
        free(p[k].s);
    PQfinish(conn);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in microseconds. */
static double percentile_us(const long long *sorted, long n, double p)
{
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return (double)sorted[rank - 1] / 1000.0;
}

static int report(const struct client *clients, int n, int group, double seconds)
{
    long total = 0;
    for (int i = 0; i < n; i++)
        total += clients[i].ntx;
    long long *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    if (!all) {
        fprintf(stderr, "grouped_sql: out of memory\n");
        return 1;
    }
    long k = 0;
    for (int i = 0; i < n; i++)
        for (long j = 0; j < clients[i].ntx; j++)
            all[k++] = clients[i].latencies_ns[j];
    qsort(all, (size_t)total, sizeof *all, by_value);
    long long readings = (long long)total * group;
    printf("{\"clients\":%d,\"group\":%d,\"transactions\":%ld,\"readings\":%lld,"
           "\"seconds\":%.3f,\"readings_per_s\":%.1f,"
           "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
           n, group, total, readings, seconds, (double)readings / seconds,
           total ? percentile_us(all, total, 50) : 0, total ? percentile_us(all, total, 99) : 0,
           total ? (double)all[total - 1] / 1000.0 : 0);
    free(all);
    return 0;
}

int main(int argc, char **argv)
{
    long first, devices, nclients, group, seconds;
    if (argc != 7 || !parse_long(argv[2], 1, 1L << 50, &first) ||
        !parse_long(argv[3], 1, 10000000, &devices) || !parse_long(argv[4], 1, 256, &nclients) ||
        !parse_long(argv[5], 1, 100000, &group) || !parse_long(argv[6], 1, 3600, &seconds) ||
        devices / nclients < group) {
        fprintf(stderr, "usage: grouped_sql CONNINFO FIRST_DEVICE DEVICES CLIENTS GROUP SECONDS\n"
                        "  (each client needs GROUP devices of its own: DEVICES / CLIENTS >= "
                        "GROUP)\n");
        return 2;
    }
    int n = (int)nclients;
    int per = (int)(devices / nclients);
    struct client *clients = calloc((size_t)n, sizeof *clients);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    double *registers = calloc((size_t)devices, sizeof *registers);
    int status = 1;
    if (!clients || !threads || !registers) {
        fprintf(stderr, "grouped_sql: out of memory\n");
        goto out;
    }
    long long started = mono_ns();
    int running = 0;
    for (int i = 0; i < n; i++) {
        clients[i] = (struct client){.conninfo = argv[1],
                                     .first_device = first + (long long)i * per,
                                     .ndevices = per,
                                     .group = (int)group,
                                     .deadline_ns = started + seconds * 1000000000LL,
                                     .registers = registers + (size_t)i * (size_t)per};
        if (pthread_create(&threads[i], NULL, client_main, &clients[i]) != 0)
            break;
        running++;
    }
    bool failed = running < n;
    for (int i = 0; i < running; i++) {
        pthread_join(threads[i], NULL);
        failed = failed || clients[i].failed;
    }
    double elapsed = (double)(mono_ns() - started) / 1e9;
    if (!failed)
        status = report(clients, n, (int)group, elapsed);
out:
    for (int i = 0; clients && i < n; i++)
        free(clients[i].latencies_ns);
    free(registers);
    free(threads);
    free(clients);
    return status;
}
