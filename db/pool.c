#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/log.h"
#include "internal.h"
#include "../base/clock.h"

struct db_pool {
    struct db_pool_options opts; /* its strings owned */
    int size;

    pthread_mutex_t mutex;
    pthread_cond_t available;
    struct db_conn *conns;
    struct db_conn *free_list;
    int in_use;
    double down_since;   /* 0 while PostgreSQL answers */
    double last_attempt; /* last connection attempt while down */

    atomic_ulong acquire_timeouts;
    atomic_ulong connect_failures;

    /* enum db_health in the low 2 bits, the monotonic milliseconds it was set
     * at above them: one word, so a reader never sees a state with another's
     * time. */
    atomic_ullong health;
    atomic_llong replica_lag_us; /* a replica's replay lag; < 0 unknown */
    struct db_watch *watch;      /* NULL until db_pool_watch() or db_pool_watch_replica() */
};

/* While PostgreSQL is down, one attempt per this many seconds; the rest of the
 * requests fail at once instead of each waiting for a connect timeout. */
#define RECONNECT_INTERVAL_S 0.5

void db_connect_params_init(struct db_connect_params *p, const struct db_pool_options *opts)
{
    memset(p, 0, sizeof *p);
    int n = 0;
#define PARAM(k, v) (p->keys[n] = (k), p->values[n] = (v), n++)
    /* dbname is expanded from the URL first; the keywords after it win. */
    PARAM("dbname", opts->url);
    snprintf(p->connect_timeout, sizeof p->connect_timeout, "%d", opts->connect_timeout_s);
    PARAM("connect_timeout", p->connect_timeout);
    snprintf(p->options, sizeof p->options, "-c statement_timeout=%d -c TimeZone=UTC -c jit=off",
             opts->statement_timeout_ms);
    PARAM("options", p->options);
    PARAM("application_name", opts->application_name ? opts->application_name : "wattline");
    if (opts->timeout_s > 0) {
        int idle = (opts->timeout_s + 1) / 2;
        int interval = (opts->timeout_s - idle) / 3 > 0 ? (opts->timeout_s - idle) / 3 : 1;
        snprintf(p->keepalives_idle, sizeof p->keepalives_idle, "%d", idle);
        snprintf(p->keepalives_interval, sizeof p->keepalives_interval, "%d", interval);
        snprintf(p->keepalives_count, sizeof p->keepalives_count, "%d", 3);
        snprintf(p->tcp_user_timeout, sizeof p->tcp_user_timeout, "%d", opts->timeout_s * 1000);
        PARAM("keepalives", "1");
        PARAM("keepalives_idle", p->keepalives_idle);
        PARAM("keepalives_interval", p->keepalives_interval);
        PARAM("keepalives_count", p->keepalives_count);
        PARAM("tcp_user_timeout", p->tcp_user_timeout);
    }
#undef PARAM
}

static PGconn *open_connection(const struct db_pool_options *opts)
{
    struct db_connect_params p;
    db_connect_params_init(&p, opts);
    return PQconnectdbParams(p.keys, p.values, 1);
}

static void conn_reset_prepared(struct db_conn *c)
{
    c->nprepared = 0;
}

struct db_pool *db_pool_create(const struct db_pool_options *opts)
{
    struct db_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->opts = *opts;
    pool->opts.url = strdup(opts->url);
    pool->opts.application_name =
        strdup(opts->application_name ? opts->application_name : "wattline");
    pool->size = opts->size;
    atomic_init(&pool->replica_lag_us, -1);
    pool->conns = calloc((size_t)opts->size, sizeof *pool->conns);
    if (!pool->opts.url || !pool->opts.application_name || !pool->conns) {
        db_pool_free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->available, NULL);
    for (int i = opts->size - 1; i >= 0; i--) {
        pool->conns[i].next_free = pool->free_list;
        pool->free_list = &pool->conns[i];
    }
    return pool;
}

void db_pool_free(struct db_pool *pool)
{
    if (!pool)
        return;
    db_watch_stop(pool->watch);
    if (pool->conns) {
        for (int i = 0; i < pool->size; i++)
            PQfinish(pool->conns[i].pg);
        pthread_mutex_destroy(&pool->mutex);
        pthread_cond_destroy(&pool->available);
    }
    free(pool->conns);
    free((char *)pool->opts.url);
    free((char *)pool->opts.application_name);
    free(pool);
}

PGconn *db_pool_connect(struct db_pool *pool)
{
    return open_connection(&pool->opts);
}

void db_pool_health_set(struct db_pool *pool, enum db_health state)
{
    unsigned long long ms = (unsigned long long)(clock_mono_s() * 1000);
    atomic_store(&pool->health, ms << 2 | (unsigned long long)state);
}

enum db_health db_pool_health(struct db_pool *pool, double *age_s)
{
    unsigned long long word = atomic_load(&pool->health);
    *age_s = word ? clock_mono_s() - (double)(word >> 2) / 1000 : 0;
    return (enum db_health)(word & 3);
}

bool db_pool_watch(struct db_pool *pool, const struct migration *list, size_t n)
{
    if (!pool->watch)
        pool->watch = db_watch_start(pool, list, n, false);
    return pool->watch != NULL;
}

bool db_pool_watch_replica(struct db_pool *pool)
{
    if (!pool->watch)
        pool->watch = db_watch_start(pool, NULL, 0, true);
    return pool->watch != NULL;
}

void db_pool_replica_lag_set(struct db_pool *pool, double lag_s)
{
    atomic_store(&pool->replica_lag_us, lag_s < 0 ? -1 : (long long)(lag_s * 1e6));
}

double db_pool_replica_lag(struct db_pool *pool)
{
    long long us = atomic_load(&pool->replica_lag_us);
    return us < 0 ? -1 : (double)us / 1e6;
}

/* A connection is usable when libpq thinks so and no close notice from the
 * server is waiting in its socket (PostgreSQL restarted since last use). */
bool db_conn_alive(struct db_conn *c)
{
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return false;
    if (!PQconsumeInput(c->pg))
        return false;
    return PQstatus(c->pg) == CONNECTION_OK;
}

/* Called without the mutex. Returns false when PostgreSQL cannot be reached. */
static bool conn_ensure(struct db_pool *pool, struct db_conn *c)
{
    if (db_conn_alive(c))
        return true;

    pthread_mutex_lock(&pool->mutex);
    double now = clock_mono_s();
    bool skip = pool->down_since > 0 && now - pool->last_attempt < RECONNECT_INTERVAL_S;
    if (!skip)
        pool->last_attempt = now;
    pthread_mutex_unlock(&pool->mutex);
    if (skip)
        return false;

    PQfinish(c->pg);
    conn_reset_prepared(c);
    c->pg = db_pool_connect(pool);
    bool ok = c->pg && PQstatus(c->pg) == CONNECTION_OK;

    pthread_mutex_lock(&pool->mutex);
    if (ok && pool->down_since > 0) {
        log_info("database: connection restored after %.1f s", clock_mono_s() - pool->down_since);
        pool->down_since = 0;
    } else if (!ok && pool->down_since == 0) {
        pool->down_since = now;
        log_error("database: cannot connect: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
    }
    pthread_mutex_unlock(&pool->mutex);
    if (!ok) {
        db_pool_health_set(pool, DB_HEALTH_DOWN); /* readyz knows before the next check */
        atomic_fetch_add(&pool->connect_failures, 1);
        PQfinish(c->pg);
        c->pg = NULL;
    }
    return ok;
}

struct db_conn *db_pool_acquire(struct db_pool *pool, int wait_ms)
{
    struct timespec deadline = clock_deadline_ms(CLOCK_REALTIME, wait_ms);

    pthread_mutex_lock(&pool->mutex);
    while (!pool->free_list) {
        if (pthread_cond_timedwait(&pool->available, &pool->mutex, &deadline) == ETIMEDOUT &&
            !pool->free_list) {
            pthread_mutex_unlock(&pool->mutex);
            atomic_fetch_add(&pool->acquire_timeouts, 1);
            return NULL;
        }
    }
    struct db_conn *c = pool->free_list;
    pool->free_list = c->next_free;
    pool->in_use++;
    pthread_mutex_unlock(&pool->mutex);

    if (!conn_ensure(pool, c)) {
        db_pool_release(pool, c);
        return NULL;
    }
    return c;
}

void db_pool_release(struct db_pool *pool, struct db_conn *c)
{
    if (!c)
        return;
    if (c->pg && (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        /* A connection left mid-transaction or broken is not reused as is. */
        PQfinish(c->pg);
        c->pg = NULL;
        conn_reset_prepared(c);
    }
    pthread_mutex_lock(&pool->mutex);
    c->next_free = pool->free_list;
    pool->free_list = c;
    pool->in_use--;
    pthread_cond_signal(&pool->available);
    pthread_mutex_unlock(&pool->mutex);
}

void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    pthread_mutex_lock(&pool->mutex);
    out->size = pool->size;
    out->in_use = pool->in_use;
    out->connected = 0;
    for (int i = 0; i < pool->size; i++)
        out->connected += pool->conns[i].pg != NULL;
    pthread_mutex_unlock(&pool->mutex);
    out->acquire_timeouts = atomic_load(&pool->acquire_timeouts);
    out->connect_failures = atomic_load(&pool->connect_failures);
}

struct db_conn *db_connect(const struct db_pool_options *opts, char *err, size_t errlen)
{
    struct db_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->pg = open_connection(opts);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s",
                 c->pg ? PQerrorMessage(c->pg) : "out of memory");
        err[strcspn(err, "\n")] = '\0';
        db_disconnect(c);
        return NULL;
    }
    return c;
}

void db_disconnect(struct db_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}
