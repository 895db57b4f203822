/* db: the connection pool and the typed calls handlers make.
 *
 * A fixed number of libpq connections, each prepared lazily with the
 * statements it runs. When PostgreSQL is away, db_pool_acquire() gives NULL
 * quickly (the caller answers 503) and the pool reconnects by itself once
 * PostgreSQL is back: at most one connection attempt per second while down.
 */
#ifndef WATTLINE_DB_H
#define WATTLINE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

struct db_pool;
struct db_conn;

struct db_pool_options {
    const char *url;          /* libpq connection string or URL */
    int size;                 /* connections */
    int statement_timeout_ms; /* per statement */
    int connect_timeout_s;    /* per attempt (libpq's minimum is 2) */
    const char *application_name;
    int timeout_s; /* DB_TIMEOUT_S: a vanished server is noticed within it (0: the kernel's) */
};

/* The libpq keywords of every connection the server opens (pool, watcher,
 * committers, listener), built in one place: the URL, connect_timeout, the
 * session settings (statement_timeout, UTC, no JIT), application_name, and
 * with timeout_s TCP keepalives (idle half of it, then 3 probes over the
 * other half) and tcp_user_timeout (timeout_s for unacknowledged data), so
 * that a server gone without a word is noticed within timeout_s whether the
 * connection was idle, sending or waiting for an answer. Pure: keys and
 * values point into p and opts, for PQconnectdbParams(keys, values, 1). */
#define DB_CONNECT_PARAMS_MAX 10
struct db_connect_params {
    const char *keys[DB_CONNECT_PARAMS_MAX + 1];
    const char *values[DB_CONNECT_PARAMS_MAX + 1];
    char connect_timeout[12], options[96];
    char keepalives_idle[12], keepalives_interval[12], keepalives_count[12];
    char tcp_user_timeout[16];
};
void db_connect_params_init(struct db_connect_params *p, const struct db_pool_options *opts);

/* Creates the pool without connecting (connections open on first use).
 * Returns NULL on allocation failure. Caller frees with db_pool_free(). */
struct db_pool *db_pool_create(const struct db_pool_options *opts);
void db_pool_free(struct db_pool *pool);

/* Borrows a connected connection, waiting up to wait_ms for a free one.
 * NULL when none is free in time or PostgreSQL cannot be reached. */
struct db_conn *db_pool_acquire(struct db_pool *pool, int wait_ms);
/* Returns a connection; one left broken or inside a transaction is closed
 * and reopened on its next use. NULL is a no-op. */
void db_pool_release(struct db_pool *pool, struct db_conn *conn);

/* What the pool last knew of PostgreSQL, for readiness probes; reading it
 * never touches the database. Kept by the pool's watcher (db_pool_watch):
 * confirmed once a second while PostgreSQL answers, set DOWN at once when
 * PostgreSQL closes the watcher's connection (a shutdown or restart) or when
 * any of the pool's own connection attempts fails. */
enum db_health {
    DB_HEALTH_UNKNOWN = 0, /* not checked yet (or no watcher) */
    DB_HEALTH_DOWN,        /* PostgreSQL did not answer */
    DB_HEALTH_OUTDATED,    /* it answers, but a migration is missing or differs */
    DB_HEALTH_READY,       /* it answers and the schema is current */
};

/* Seconds between the watcher's checks while nothing happens. */
#define DB_HEALTH_INTERVAL_S 1

/* The last state, and in *age_s how many seconds ago it was set or confirmed
 * (a check that hangs shows as a growing age). Thread-safe, never waits. */
enum db_health db_pool_health(struct db_pool *pool, double *age_s);

/* Starts the watcher thread, with a connection of its own outside the pool:
 * it checks that PostgreSQL answers and that every migration in list[0..n)
 * is applied (again after each reconnection), then sleeps on its socket so
 * that a closed connection is seen at once. Stopped by db_pool_free(). list
 * is borrowed and outlives the pool. False when the thread cannot start. */
struct migration;
bool db_pool_watch(struct db_pool *pool, const struct migration *list, size_t n);

/* A read replica's watcher (DATABASE_READ_URL): the same thread and
 * connection handling as db_pool_watch(), but each check asks whether the
 * server is a standby and how far behind the primary its replay is. Then
 * db_pool_health() is READY while it answers as a standby (DOWN when it does
 * not answer or has been promoted: its reads would no longer follow the
 * primary), and db_pool_replica_lag() is that lag. No schema check: the
 * schema is the primary's, replicated. False when the thread cannot start. */
bool db_pool_watch_replica(struct db_pool *pool);

/* The replay lag, in seconds, the replica's watcher last measured: 0 when
 * everything received is replayed, else the age of the last transaction
 * replayed. Negative when unknown (not checked yet, down, or nothing
 * replayed since the standby started while WAL waits). */
double db_pool_replica_lag(struct db_pool *pool);

struct db_pool_stats {
    int size;
    int in_use;
    int connected;
    unsigned long acquire_timeouts;
    unsigned long connect_failures;
};
void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out);

/* Opens a connection outside the pool (CLI commands, the LISTEN connection).
 * NULL on failure, with the reason (without secrets) in err. */
struct db_conn *db_connect(const struct db_pool_options *opts, char *err, size_t errlen);
void db_disconnect(struct db_conn *conn);

/* True when the connection is up and no close notice from the server waits
 * in its socket (PostgreSQL restarted since its last use). Cheap: no query. */
bool db_conn_alive(struct db_conn *conn);

/* ---- transactions ---------------------------------------------------------
 * One owner per transaction. A db_ call either runs a whole transaction itself
 * (it has committed or rolled back when it returns: every name without _in_tx)
 * or works inside one its caller has open and says so: its name ends in _in_tx.
 * No call returns with a transaction left open for its caller to finish; the
 * readings cursor (readings_query.h) owns its transaction from open to close. */

/* A step of work made of _in_tx calls; ctx is the caller's. */
typedef enum status (*db_tx_fn)(struct db_conn *conn, void *ctx);

/* Runs body(conn, ctx) between BEGIN and COMMIT, rolling back when it does not
 * return STATUS_OK. Returns body's status, else the status of the COMMIT. */
enum status db_transaction(struct db_conn *conn, db_tx_fn body, void *ctx);

/* The bare commands, for a module that must keep its own shape of transaction
 * (ingestion's group commit announces usage after its COMMIT). Anything else
 * uses db_transaction(). */
enum status db_begin(struct db_conn *conn);
/* BEGIN, sent with the next statement that waits for a result (one round
 * trip for both; libpq's pipeline mode): its failure is that statement's. */
enum status db_begin_pipelined(struct db_conn *conn);
enum status db_commit(struct db_conn *conn);
void db_rollback(struct db_conn *conn);

/* SELECT 1: the database answers. */
enum status db_ping(struct db_conn *conn);

#endif
