#include "ingest.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "decode.h"
#include "group.h"

/* A group stops growing past this many readings (a single submission of up
 * to INGEST_BATCH_MAX always fits: at least one job is taken). */
#define GROUP_MAX_READINGS 20000
/* While the database is down, how often a committer tries to reconnect. */
#define RECONNECT_INTERVAL_S 0.5
/* Submissions in one group at most. */
#define GROUP_MAX_JOBS 4096

/* Two committers, each taking everything queued when it starts (their
 * commits can overlap because only alert-raising transactions notify before
 * committing; device row locks keep them off each other's devices). The
 * second joins only while SECOND_COMMITTER_READINGS readings or more wait:
 * a group's fixed cost is most of a single reading's, so one committer
 * alone, whose groups grow while it commits, stores single readings faster
 * and cheaper (bench, 64 connections: 11.1-12.7k readings/s at 114 µs of CPU
 * per reading against 10.5k at 139 with both taking every group); the
 * second takes over when a group is slow or the load is more than one can
 * take (batches). */
#define INGEST_COMMITTERS         2
#define SECOND_COMMITTER_READINGS 256

/* Live usage (the devices with new readings) is announced once per this
 * interval, for all the groups committed in it, instead of once per group:
 * sessions get usage at most once per second per device (the contract), and
 * a NOTIFY transaction per group cost PostgreSQL a fifth of its CPU per
 * reading in the single-reading benchmark. */
#define USAGE_INTERVAL_S 0.05

struct ingest;

/* A committer thread and what only it touches. */
struct committer {
    struct ingest *ing;
    pthread_t thread;
    bool started;
    void *conn; /* the store's */
    double last_connect_attempt;
    struct ingest_request *batch[GROUP_MAX_JOBS]; /* its current group */
};

struct ingest {
    struct ingest_store store;
    long long max_age_us;    /* MAX_READING_AGE_DAYS */
    atomic_llong horizon_us; /* the oldest ts kept (retired months), LLONG_MIN: none */

    pthread_mutex_t mutex;
    pthread_cond_t work; /* committers wait for submissions */
    struct ingest_request *head, *tail;
    long long queued; /* readings in the queue */
    int active;       /* committers storing a group */
    bool stopping;
    struct committer committers[INGEST_COMMITTERS];

    /* Devices whose usage is still to be announced (under mutex). */
    struct {
        long long *ids;
        int count, cap;
        double due; /* monotonic seconds; 0 while there are none */
    } usage;

    atomic_ullong readings, duplicates, transactions, alerts, failures;
};

/* ---- the committer thread ---------------------------------------------------- */

/* Makes sure the committer has a live connection; false when the database
 * cannot be reached (tried at most every RECONNECT_INTERVAL_S). */
static bool committer_connect(struct committer *cm)
{
    const struct ingest_store *store = &cm->ing->store;
    if (cm->conn && store->alive(cm->conn))
        return true;
    double now = clock_mono_s();
    if (now - cm->last_connect_attempt < RECONNECT_INTERVAL_S)
        return false;
    cm->last_connect_attempt = now;
    store->disconnect(cm->conn);
    char err[256];
    cm->conn = store->connect(store->ctx, err, sizeof err);
    if (!cm->conn)
        log_warn("ingest: %s", err);
    return cm->conn != NULL;
}

/* ---- live usage ------------------------------------------------------------------ */

/* Adds a group's devices to the usage to announce; the first sets when it
 * is due. Losing some to a lack of memory only delays their next figure. */
static void usage_add(struct ingest *ing, const long long *ids, int n)
{
    pthread_mutex_lock(&ing->mutex);
    if (ing->usage.count + n > ing->usage.cap) {
        int cap = ing->usage.cap ? ing->usage.cap : 256;
        while (cap < ing->usage.count + n)
            cap *= 2;
        long long *grown = realloc(ing->usage.ids, (size_t)cap * sizeof *grown);
        if (grown) {
            ing->usage.ids = grown;
            ing->usage.cap = cap;
        }
    }
    if (ing->usage.count + n <= ing->usage.cap) {
        memcpy(ing->usage.ids + ing->usage.count, ids, (size_t)n * sizeof *ids);
        if (ing->usage.count == 0)
            ing->usage.due = clock_mono_s() + USAGE_INTERVAL_S;
        ing->usage.count += n;
    } else {
        log_warn("ingest: out of memory: live usage of %d devices not announced", n);
    }
    pthread_mutex_unlock(&ing->mutex);
}

static bool usage_due(const struct ingest *ing, double now)
{
    return ing->usage.count > 0 && now >= ing->usage.due;
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Announces the pending usage when it is due, or now if force: each device
 * once, in one NOTIFY transaction of its own (outside any group's, which
 * could then no longer share a WAL flush). */
static void usage_announce(struct committer *cm, bool force)
{
    struct ingest *ing = cm->ing;
    pthread_mutex_lock(&ing->mutex);
    long long *ids = NULL;
    int n = 0;
    if (force ? ing->usage.count > 0 : usage_due(ing, clock_mono_s())) {
        ids = ing->usage.ids;
        n = ing->usage.count;
        ing->usage.ids = NULL;
        ing->usage.count = ing->usage.cap = 0;
    }
    pthread_mutex_unlock(&ing->mutex);
    if (n == 0)
        return;
    qsort(ids, (size_t)n, sizeof *ids, by_value);
    int unique = 0;
    for (int i = 0; i < n; i++)
        if (unique == 0 || ids[i] != ids[unique - 1])
            ids[unique++] = ids[i];
    if (!committer_connect(cm) ||
        cm->ing->store.notify(cm->conn, NULL, 0, ids, unique) != STATUS_OK)
        log_warn("ingest: live usage of %d devices not announced", unique);
    free(ids);
}

/* Waits, with the mutex held, for submissions, the stop, or the pending
 * usage falling due. */
static void wait_for_work(struct ingest *ing)
{
    if (ing->usage.count == 0) {
        pthread_cond_wait(&ing->work, &ing->mutex);
        return;
    }
    double due = ing->usage.due;
    struct timespec until = {.tv_sec = (time_t)due,
                             .tv_nsec = (long)((due - (double)(time_t)due) * 1e9)};
    pthread_cond_timedwait(&ing->work, &ing->mutex, &until);
}

/* Takes the queued jobs into batch, up to GROUP_MAX_READINGS readings (but
 * at least one job). Called with the mutex held. */
static int take_jobs(struct ingest *ing, struct ingest_request **batch)
{
    int n = 0, readings = 0;
    while (ing->head && n < GROUP_MAX_JOBS &&
           (n == 0 || readings + ing->head->in.n <= GROUP_MAX_READINGS)) {
        struct ingest_request *job = ing->head;
        ing->head = job->next;
        readings += job->in.n;
        batch[n++] = job;
    }
    if (!ing->head)
        ing->tail = NULL;
    ing->queued -= readings;
    return n;
}

/* Whether a committer should take the queued jobs now (mutex held): when
 * none is storing a group, when enough wait for a second, or to drain the
 * queue at the stop. */
static bool may_take(const struct ingest *ing)
{
    return ing->head &&
           (ing->active == 0 || ing->queued >= SECOND_COMMITTER_READINGS || ing->stopping);
}

/* Commits one group and counts what it did; the jobs' statuses are set. */
static enum status committer_commit(struct committer *cm, struct ingest_request **jobs, int n)
{
    struct ingest *ing = cm->ing;
    struct ingest_group_outcome out;
    enum status st = ingest_group_commit(&ing->store, cm->conn, jobs, n, ing->max_age_us, &out);
    if (st == STATUS_OK) {
        atomic_fetch_add(&ing->readings, out.stored);
        atomic_fetch_add(&ing->duplicates, out.duplicates);
        atomic_fetch_add(&ing->transactions, 1);
        atomic_fetch_add(&ing->alerts, (unsigned long long)out.alerts);
        if (out.nusage > 0)
            usage_add(ing, out.usage, out.nusage);
        free(out.usage);
    } else {
        atomic_fetch_add(&ing->failures, 1);
    }
    return st;
}

static void finish_jobs(struct ingest_request **jobs, int n)
{
    for (int i = 0; i < n; i++)
        jobs[i]->done(jobs[i]); /* may free the request: touch it no more */
}

/* Stores one group. A group fails as a whole; unless the database is away,
 * its jobs are retried one by one so that one bad submission fails alone. */
static void committer_run(struct committer *cm, struct ingest_request **jobs, int n)
{
    if (!committer_connect(cm)) {
        for (int i = 0; i < n; i++)
            jobs[i]->status = STATUS_UNAVAILABLE;
        finish_jobs(jobs, n);
        return;
    }
    enum status st = committer_commit(cm, jobs, n);
    if (st != STATUS_OK && st != STATUS_UNAVAILABLE && n > 1) {
        for (int i = 0; i < n; i++) {
            committer_commit(cm, &jobs[i], 1);
            finish_jobs(&jobs[i], 1);
        }
        return;
    }
    finish_jobs(jobs, n);
}

static void *committer_main(void *arg)
{
    struct committer *cm = arg;
    struct ingest *ing = cm->ing;
    /* Connected before the first group, like the pool: a committer is ready
     * to take over the moment the other is busy, even while the database
     * refuses new connections. */
    committer_connect(cm);
    for (;;) {
        pthread_mutex_lock(&ing->mutex);
        while (!ing->stopping && !may_take(ing) && !usage_due(ing, clock_mono_s()))
            wait_for_work(ing);
        if (!ing->head && ing->stopping) {
            pthread_mutex_unlock(&ing->mutex);
            break;
        }
        int n = may_take(ing) ? take_jobs(ing, cm->batch) : 0;
        ing->active += n > 0;
        pthread_mutex_unlock(&ing->mutex);
        if (n > 0) {
            committer_run(cm, cm->batch, n);
            pthread_mutex_lock(&ing->mutex);
            ing->active--;
            pthread_mutex_unlock(&ing->mutex);
        }
        usage_announce(cm, false);
    }
    usage_announce(cm, true); /* what the last groups stored */
    return NULL;
}

/* ---- public ---------------------------------------------------------------------- */

struct ingest *ingest_start(const struct ingest_store *store, long long max_age_us, char *err,
                            size_t errlen)
{
    struct ingest *ing = calloc(1, sizeof *ing);
    if (!ing) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ing->store = *store;
    ing->max_age_us = max_age_us;
    atomic_init(&ing->horizon_us, LLONG_MIN);
    pthread_mutex_init(&ing->mutex, NULL);
    /* Monotonic: the pending usage's deadline is (wait_for_work). */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ing->work, &attr);
    pthread_condattr_destroy(&attr);
    for (int i = 0; i < INGEST_COMMITTERS; i++) {
        struct committer *cm = &ing->committers[i];
        cm->ing = ing;
        if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) {
            snprintf(err, errlen, "cannot start the ingestion threads");
            ingest_stop(ing);
            return NULL;
        }
        cm->started = true;
    }
    return ing;
}

void ingest_stop(struct ingest *ing)
{
    if (!ing)
        return;
    pthread_mutex_lock(&ing->mutex);
    ing->stopping = true;
    pthread_cond_broadcast(&ing->work);
    pthread_mutex_unlock(&ing->mutex);
    for (int i = 0; i < INGEST_COMMITTERS; i++) {
        struct committer *cm = &ing->committers[i];
        if (cm->started)
            pthread_join(cm->thread, NULL);
        ing->store.disconnect(cm->conn);
    }
    pthread_mutex_destroy(&ing->mutex);
    pthread_cond_destroy(&ing->work);
    free(ing->usage.ids);
    free(ing);
}

int ingest_fail_queued(struct ingest *ing)
{
    if (!ing)
        return 0;
    pthread_mutex_lock(&ing->mutex);
    ing->stopping = true;
    struct ingest_request *queued = ing->head;
    ing->head = ing->tail = NULL;
    ing->queued = 0;
    pthread_mutex_unlock(&ing->mutex);
    int n = 0;
    for (struct ingest_request *job = queued, *next; job; job = next, n++) {
        next = job->next; /* done() may free the request */
        job->status = STATUS_UNAVAILABLE;
        job->done(job);
    }
    return n;
}

void ingest_set_horizon(struct ingest *ing, long long oldest_kept_us)
{
    /* Only forward: a horizon heard late (a reconnect's read racing a
     * NOTIFY) never reopens a retired month. */
    long long cur = atomic_load(&ing->horizon_us);
    while (oldest_kept_us > cur &&
           !atomic_compare_exchange_weak(&ing->horizon_us, &cur, oldest_kept_us)) {
    }
}

long long ingest_max_age_us(struct ingest *ing, long long now_us, long long max_age_us)
{
    long long horizon = ing ? atomic_load(&ing->horizon_us) : LLONG_MIN;
    /* ts < now - (now - horizon) is ts < horizon: the same too_old rule. */
    if (horizon != LLONG_MIN && now_us - horizon < max_age_us)
        return now_us - horizon;
    return max_age_us;
}

/* The rules again, whoever decoded the readings: a submission breaking one
 * stores nothing. Cheap next to the transaction that follows. */
static bool submission_valid(const struct ingest_submission *in, long long max_age_us)
{
    if (in->n < 1 || in->n > INGEST_BATCH_MAX || !in->readings)
        return false;
    for (int i = 0; i < in->n; i++)
        if (ingest_check(&in->readings[i], in->type, in->received_at, max_age_us) !=
            INGEST_CHECK_OK)
            return false;
    return true;
}

void ingest_enqueue(struct ingest *ing, struct ingest_request *req)
{
    req->next = NULL;
    req->result = (struct ingest_result){0};
    req->status = STATUS_OK;
    if (!submission_valid(&req->in, ingest_max_age_us(ing, req->in.received_at, ing->max_age_us))) {
        req->status = STATUS_INVALID;
        req->done(req);
        return;
    }
    pthread_mutex_lock(&ing->mutex);
    if (ing->stopping) {
        pthread_mutex_unlock(&ing->mutex);
        req->status = STATUS_UNAVAILABLE;
        req->done(req);
        return;
    }
    if (ing->tail)
        ing->tail->next = req;
    else
        ing->head = req;
    ing->tail = req;
    ing->queued += req->in.n;
    /* A busy committer takes it when its group is done: no one is woken
     * for nothing. */
    if (may_take(ing))
        pthread_cond_signal(&ing->work);
    pthread_mutex_unlock(&ing->mutex);
}

/* ingest_submit's waiting room. */
struct waiter {
    struct ingest_request req;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool done;
};

static void waiter_done(struct ingest_request *req)
{
    struct waiter *w = req->user;
    pthread_mutex_lock(&w->mutex);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mutex);
}

enum status ingest_submit(struct ingest *ing, const struct ingest_submission *sub,
                          struct ingest_result *out)
{
    struct waiter w = {.req = {.in = *sub, .done = waiter_done}};
    w.req.user = &w;
    pthread_mutex_init(&w.mutex, NULL);
    pthread_cond_init(&w.cond, NULL);
    ingest_enqueue(ing, &w.req);
    pthread_mutex_lock(&w.mutex);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mutex);
    pthread_mutex_unlock(&w.mutex);
    pthread_mutex_destroy(&w.mutex);
    pthread_cond_destroy(&w.cond);
    *out = w.req.result;
    return w.req.status;
}

void ingest_stats(struct ingest *ing, struct ingest_stats *out)
{
    out->readings = atomic_load(&ing->readings);
    out->duplicates = atomic_load(&ing->duplicates);
    out->transactions = atomic_load(&ing->transactions);
    out->alerts = atomic_load(&ing->alerts);
    out->failures = atomic_load(&ing->failures);
}
