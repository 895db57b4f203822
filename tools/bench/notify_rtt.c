/* notify_rtt: the ceiling of the alert-latency benchmark.
 *
 *   notify_rtt CONNINFO COUNT RATE
 *
 * Measures PostgreSQL's LISTEN/NOTIFY round trip the way Wattline's alerts
 * travel: one connection runs, at a steady RATE per second, a transaction that
 * inserts a row and notifies in the same commit (synchronous_commit as the
 * server configures it); a second connection LISTENs. For each of COUNT
 * transactions it records the time from sending the statement to receiving
 * the notification (the round trip), and from the commit's acknowledgement to
 * receiving it (what a reader notified at commit could gain at best).
 *
 * Prints one JSON object on stdout (microseconds):
 *   {"count", "rtt_us": {"p50","p99","max"}, "after_commit_us": {"p50","p99","max"}}
 * Exit status 0 on success, 1 on a database error or a lost notification, 2 for
 * bad arguments. The table it writes (bench_notify) is dropped at the end.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNEL "bench_rtt"
/* A notification that has not arrived after this long counts as lost. */
#define LOST_AFTER_NS (5LL * 1000 * 1000 * 1000)

static const char CREATE_TABLE[] = "CREATE TABLE IF NOT EXISTS bench_notify ("
                                   " seq bigint PRIMARY KEY,"
                                   " at timestamptz NOT NULL DEFAULT now())";
static const char DROP_TABLE[] = "DROP TABLE IF EXISTS bench_notify";
/* One statement, so one implicit transaction: the row and the notification
 * commit together, as the server's alerts and their NOTIFY do. */
static const char INSERT_NOTIFY[] =
    "WITH ins AS (INSERT INTO bench_notify (seq) VALUES ($1::bigint) RETURNING seq)"
    " SELECT pg_notify('" CHANNEL "', seq::text) FROM ins";

struct sample {
    long long rtt_ns;
    long long after_commit_ns;
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(long long deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000LL,
                          .tv_nsec = deadline_ns % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static bool run_command(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "notify_rtt: %s", PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

static PGconn *connect_or_report(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "notify_rtt: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Drains the writer's results once they are complete; true when the statement
 * has finished (successfully or not: *failed says which). */
static bool writer_finished(PGconn *writer, bool *failed)
{
    if (!PQconsumeInput(writer)) {
        *failed = true;
        return true;
    }
    while (!PQisBusy(writer)) {
        PGresult *res = PQgetResult(writer);
        if (!res)
            return true;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "notify_rtt: %s", PQerrorMessage(writer));
            *failed = true;
        }
        PQclear(res);
    }
    return false;
}

/* True when the notification for seq has arrived on the listener. */
static bool listener_received(PGconn *listener, long long seq, bool *failed)
{
    if (!PQconsumeInput(listener)) {
        *failed = true;
        return false;
    }
    bool seen = false;
    PGnotify *n;
    while ((n = PQnotifies(listener))) {
        if (strtoll(n->extra, NULL, 10) == seq)
            seen = true;
        PQfreemem(n);
    }
    return seen;
}

/* Sends one transaction and waits for both its completion and its
 * notification, whichever comes first. */
static bool measure_one(PGconn *writer, PGconn *listener, long long seq, struct sample *out)
{
    char seq_text[24];
    snprintf(seq_text, sizeof seq_text, "%lld", seq);
    const char *params[] = {seq_text};
    long long sent = now_ns();
    if (!PQsendQueryParams(writer, INSERT_NOTIFY, 1, NULL, params, NULL, NULL, 0)) {
        fprintf(stderr, "notify_rtt: %s", PQerrorMessage(writer));
        return false;
    }
    long long committed = 0, received = 0;
    bool failed = false;
    while (!failed && (!committed || !received)) {
        if (now_ns() - sent > LOST_AFTER_NS) {
            fprintf(stderr, "notify_rtt: notification %lld lost\n", seq);
            return false;
        }
        struct pollfd fds[2] = {{.fd = PQsocket(writer), .events = POLLIN},
                                {.fd = PQsocket(listener), .events = POLLIN}};
        if (poll(fds, 2, 100) < 0 && errno != EINTR)
            return false;
        if (!committed && writer_finished(writer, &failed))
            committed = now_ns();
        if (!received && listener_received(listener, seq, &failed))
            received = now_ns();
    }
    out->rtt_ns = received - sent;
    out->after_commit_ns = received - committed;
    return !failed;
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in microseconds. */
static double percentile_us(const long long *sorted, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return (double)sorted[rank - 1] / 1000.0;
}

static void print_stats(const char *name, long long *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, by_value);
    printf("\"%s\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}", name, percentile_us(values, n, 50),
           percentile_us(values, n, 99), (double)values[n - 1] / 1000.0);
}

static void report(const struct sample *samples, int n)
{
    long long *rtt = malloc((size_t)n * sizeof *rtt);
    long long *after = malloc((size_t)n * sizeof *after);
    if (!rtt || !after) {
        free(rtt);
        free(after);
        fprintf(stderr, "notify_rtt: out of memory\n");
        return;
    }
    for (int i = 0; i < n; i++) {
        rtt[i] = samples[i].rtt_ns;
        after[i] = samples[i].after_commit_ns;
    }
    printf("{\"count\":%d,", n);
    print_stats("rtt_us", rtt, n);
    putchar(',');
    print_stats("after_commit_us", after, n);
    puts("}");
    free(rtt);
    free(after);
}

static bool parse_positive(const char *text, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > max)
        return false;
    *out = v;
    return true;
}

static int run(PGconn *writer, PGconn *listener, long count, long rate)
{
    struct sample *samples = calloc((size_t)count, sizeof *samples);
    if (!samples) {
        fprintf(stderr, "notify_rtt: out of memory\n");
        return 1;
    }
    int status = 1;
    if (run_command(writer, DROP_TABLE) && run_command(writer, CREATE_TABLE) &&
        run_command(listener, "LISTEN " CHANNEL)) {
        long long period = 1000000000LL / rate, next = now_ns();
        long i = 0;
        for (; i < count && measure_one(writer, listener, i + 1, &samples[i]); i++) {
            next += period;
            sleep_until(next);
        }
        if (i == count) {
            report(samples, (int)count);
            status = 0;
        }
    }
    if (!run_command(writer, DROP_TABLE))
        status = 1;
    free(samples);
    return status;
}

int main(int argc, char **argv)
{
    long count, rate;
    if (argc != 4 || !parse_positive(argv[2], 10000000, &count) ||
        !parse_positive(argv[3], 100000, &rate)) {
        fprintf(stderr, "usage: notify_rtt CONNINFO COUNT RATE\n");
        return 2;
    }
    PGconn *writer = connect_or_report(argv[1]);
    PGconn *listener = writer ? connect_or_report(argv[1]) : NULL;
    int status = writer && listener ? run(writer, listener, count, rate) : 1;
    PQfinish(listener);
    PQfinish(writer);
    return status;
}
