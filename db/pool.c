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
    char *url;
    char *options; /* "-c statement_timeout=..." */
    char connect_timeout[12];
    char *application_name;
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
    struct db_watch *watch; /* NULL until db_pool_watch() */
};

/* While PostgreSQL is down, one attempt per this many seconds; the rest of the
 * requests fail at once instead of each waiting for a connect timeout. */
#define RECONNECT_INTERVAL_S 0.5

static PGconn *open_connection(const char *url, const char *options, const char *connect_timeout,
                               const char *application_name)
{
    /* dbname is expanded from the URL first; the keywords after it win. */
    const char *keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *values[] = {url, connect_timeout, options, application_name, NULL};
    return PQconnectdbParams(keys, values, 1);
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
    char options[64];
    snprintf(options, sizeof options, "-c statement_timeout=%d -c TimeZone=UTC -c jit=off",
             opts->statement_timeout_ms);
    snprintf(pool->connect_timeout, sizeof pool->connect_timeout, "%d", opts->connect_timeout_s);
    pool->url = strdup(opts->url);
    pool->options = strdup(options);
    pool->application_name = strdup(opts->application_name ? opts->application_name : "wattline");
    pool->size = opts->size;
    pool->conns = calloc((size_t)opts->size, sizeof *pool->conns);
    if (!pool->url || !pool->options || !pool->application_name || !pool->conns) {
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
    free(pool->url);
    free(pool->options);
    free(pool->application_name);
    free(pool);
}

PGconn *db_pool_connect(struct db_pool *pool)
{
    return open_connection(pool->url, pool->options, pool->connect_timeout, pool->application_name);
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
        pool->watch = db_watch_start(pool, list, n);
    return pool->watch != NULL;
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
    char options[64], timeout[12];
    snprintf(options, sizeof options, "-c statement_timeout=%d -c TimeZone=UTC -c jit=off",
             opts->statement_timeout_ms);
    snprintf(timeout, sizeof timeout, "%d", opts->connect_timeout_s);
    struct db_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->pg = open_connection(opts->url, options, timeout,
                            opts->application_name ? opts->application_name : "wattline");
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
