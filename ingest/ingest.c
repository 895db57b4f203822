#include "ingest.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Two committers, each taking everything queued when it starts: while one
 * waits for its commit to reach the disk, the other runs the next group's
 * statements (their commits can overlap because only alert-raising
 * transactions notify before committing). Device row locks keep them off
 * each other's devices. */
#define INGEST_COMMITTERS 2

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
    bool stopping;
    struct committer committers[INGEST_COMMITTERS];

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
    return n;
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
        while (!ing->stopping && !ing->head)
            pthread_cond_wait(&ing->work, &ing->mutex);
        if (!ing->head && ing->stopping) {
            pthread_mutex_unlock(&ing->mutex);
            break;
        }
        int n = take_jobs(ing, cm->batch);
        pthread_mutex_unlock(&ing->mutex);
        committer_run(cm, cm->batch, n);
    }
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
    pthread_cond_init(&ing->work, NULL);
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
