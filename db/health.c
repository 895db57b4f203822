/* health: the pool's watcher, which keeps db_pool_health() current so that a
 * readiness probe reads a word instead of querying (on an HTTP thread, behind
 * whatever holds the pool's connections). A read replica's pool has a watcher
 * of its own, which measures the standby's replay lag instead: a thread of
 * its own so that a replica that hangs (a connect or statement timeout) never
 * ages the primary's state, which /readyz reads. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "internal.h"
#include "migrate.h"

struct db_watch {
    struct db_pool *pool;
    const struct migration *list; /* borrowed */
    size_t n;
    struct db_conn conn; /* its own: never waits for, or takes, a pooled one */
    bool schema_current; /* on this connection: checked again after a reconnection */
    bool replica;        /* a read replica's watcher: checks the standby's lag */
    bool warned;         /* a replica that is no standby was logged once */
    int stop_pipe[2];    /* written once by db_watch_stop() */
    pthread_t thread;
};

static bool watch_connect(struct db_watch *w)
{
    PQfinish(w->conn.pg);
    w->conn = (struct db_conn){.pg = db_pool_connect(w->pool)};
    w->schema_current = false;
    if (w->conn.pg && PQstatus(w->conn.pg) == CONNECTION_OK)
        return true;
    PQfinish(w->conn.pg);
    w->conn.pg = NULL;
    return false;
}

/* Before the first migration, schema_migrations does not exist: asking for
 * it would log a database error once a second. */
static enum db_health watch_schema(struct db_watch *w)
{
    PGresult *res = PQexec(w->conn.pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    bool answered = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    bool exists = answered && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!answered)
        return DB_HEALTH_DOWN;
    if (!exists)
        return DB_HEALTH_OUTDATED;
    enum status st = db_migrate_check(&w->conn, w->list, w->n);
    if (st == STATUS_CONFLICT)
        return DB_HEALTH_OUTDATED;
    w->schema_current = st == STATUS_OK;
    return w->schema_current ? DB_HEALTH_READY : DB_HEALTH_DOWN;
}

/* A standby's state and replay lag in one statement. The lag is 0 when all
 * WAL received is replayed (an idle primary sends none, and the age of the
 * last replayed transaction would grow without meaning anything), else that
 * age; NULL when nothing was replayed yet, or when this is no standby. */
static const char REPLICA_SQL[] =
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END";

/* A promoted (or misconfigured) replica answers but no longer follows the
 * primary: its reads could miss every write from then on, so it is DOWN. */
static enum db_health watch_replica(struct db_watch *w)
{
    bool answered = false, standby = false;
    double lag = -1;
    /* Right after a quiet spell, the first transaction's WAL is received a
     * moment before it is replayed, and the age of the previous replay then
     * reads as a lag of the whole spell: a lag is believed only when a
     * second look, 100 ms later, still sees one. */
    for (int look = 0; look < 2; look++) {
        if (look)
            nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        PGresult *res = PQexec(w->conn.pg, REPLICA_SQL);
        answered = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        standby = answered && PQgetvalue(res, 0, 0)[0] == 't';
        bool measured = standby && !PQgetisnull(res, 0, 1);
        lag = measured ? strtod(PQgetvalue(res, 0, 1), NULL) : -1;
        PQclear(res);
        if (measured && lag < 0)
            lag = 0; /* clocks of two machines: a standby "ahead" is not behind */
        if (lag == 0 || !standby)
            break;
    }
    db_pool_replica_lag_set(w->pool, lag);
    if (answered && !standby && !w->warned)
        log_warn("database: DATABASE_READ_URL is not a standby (promoted?): reads use the "
                 "primary");
    w->warned = answered && !standby;
    if (answered && !standby) {
        /* Connect anew at the next check: a multi-host URL with
         * target_session_attrs=prefer-standby then finds a standby if one is left. */
        PQfinish(w->conn.pg);
        w->conn.pg = NULL;
    }
    return standby ? DB_HEALTH_READY : DB_HEALTH_DOWN;
}

/* One check: connected, answering, schema current. The schema only moves
 * forward under a running server, so once current on a connection a ping
 * is enough. */
static enum db_health watch_check(struct db_watch *w)
{
    if (!db_conn_alive(&w->conn) && !watch_connect(w)) {
        if (w->replica)
            db_pool_replica_lag_set(w->pool, -1);
        return DB_HEALTH_DOWN;
    }
    if (w->replica)
        return watch_replica(w);
    if (!w->schema_current)
        return watch_schema(w);
    return db_ping(&w->conn) == STATUS_OK ? DB_HEALTH_READY : DB_HEALTH_DOWN;
}

/* Sleeps until the next check is due, or PostgreSQL closes the connection
 * (then at once), or db_watch_stop() (false). */
static bool watch_sleep(struct db_watch *w)
{
    double due = clock_mono_s() + DB_HEALTH_INTERVAL_S;
    for (;;) {
        int ms = (int)((due - clock_mono_s()) * 1000);
        if (ms <= 0)
            return true;
        struct pollfd fds[2] = {{.fd = w->stop_pipe[0], .events = POLLIN},
                                {.fd = w->conn.pg ? PQsocket(w->conn.pg) : -1, .events = POLLIN}};
        int n = poll(fds, 2, ms);
        if (n < 0 && errno != EINTR)
            return true;
        if (fds[0].revents)
            return false;
        /* Readable while idle: a notice, or the server saying goodbye. */
        if (fds[1].revents && !db_conn_alive(&w->conn))
            return true;
    }
}

static void *watch_main(void *arg)
{
    struct db_watch *w = arg;
    do
        db_pool_health_set(w->pool, watch_check(w));
    while (watch_sleep(w));
    return NULL;
}

struct db_watch *db_watch_start(struct db_pool *pool, const struct migration *list, size_t n,
                                bool replica)
{
    struct db_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    *w = (struct db_watch){.pool = pool, .list = list, .n = n, .replica = replica};
    if (pipe2(w->stop_pipe, O_CLOEXEC) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        close(w->stop_pipe[0]);
        close(w->stop_pipe[1]);
        free(w);
        return NULL;
    }
    return w;
}

void db_watch_stop(struct db_watch *w)
{
    if (!w)
        return;
    /* A check under way finishes first: at most a connect or statement timeout. */
    while (write(w->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(w->thread, NULL);
    close(w->stop_pipe[0]);
    close(w->stop_pipe[1]);
    PQfinish(w->conn.pg);
    free(w);
}
