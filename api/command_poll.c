#include "command_poll.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "app.h"

#define SWEEP_BATCH 1000

struct command_poll {
    struct db_pool *pool;
    int lock_s;
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* work for the thread, or a claim finished */
    struct command_wait *head;
    struct command_wait *current; /* claiming, unlisted: a wake still marks it */
    bool stopping, releasing;
    double next_sweep;
    pthread_t thread;
};

static void unlink_wait(struct command_poll *p, struct command_wait *w)
{
    for (struct command_wait **at = &p->head; *at; at = &(*at)->next) {
        if (*at == w) {
            *at = w->next;
            w->next = NULL;
            w->listed = false;
            return;
        }
    }
}

static void link_wait(struct command_poll *p, struct command_wait *w)
{
    w->next = p->head;
    p->head = w;
    w->listed = true;
}

/* A poll that has claimed something, or has waited long enough. */
static struct command_wait *next_due(struct command_poll *p, double now, double *earliest)
{
    for (struct command_wait *w = p->head; w; w = w->next) {
        if (w->dirty || w->deadline <= now || p->releasing)
            return w;
        if (w->deadline < *earliest)
            *earliest = w->deadline;
    }
    return NULL;
}

/* On the thread, outside the mutex: w is unlisted and busy. */
static bool claim_for(struct command_poll *p, struct command_wait *w)
{
    struct db_conn *c = db_pool_acquire(p->pool, APP_DB_WAIT_MS);
    if (!c) {
        w->status = STATUS_UNAVAILABLE;
        return true;
    }
    w->status = db_commands_claim(c, w->device_id, p->lock_s, COMMANDS_CLAIM_MAX, &w->claimed);
    db_pool_release(p->pool, c);
    return w->status != STATUS_OK || w->claimed.count > 0;
}

static void serve_one(struct command_poll *p, struct command_wait *w, double now)
{
    unlink_wait(p, w);
    w->busy = true;
    bool claim = w->dirty && !p->releasing;
    w->dirty = false;
    p->current = w;
    pthread_mutex_unlock(&p->mutex);
    bool done = claim && claim_for(p, w);
    pthread_mutex_lock(&p->mutex);
    p->current = NULL;
    w->busy = false;
    if (done || w->deadline <= now || p->releasing)
        deferred_resume(w->resume); /* w is its owner's again from here */
    else
        link_wait(p, w);
    pthread_cond_broadcast(&p->cond); /* a remove() may wait for w */
}

static void sweep(struct command_poll *p)
{
    pthread_mutex_unlock(&p->mutex);
    struct db_conn *c = db_pool_acquire(p->pool, APP_DB_WAIT_MS);
    if (c) {
        int n = 0;
        if (db_commands_expire(c, SWEEP_BATCH, &n) != STATUS_OK)
            log_warn("commands: the expiry sweep failed; retrying");
        db_pool_release(p->pool, c);
    }
    pthread_mutex_lock(&p->mutex);
}

static void wait_until(struct command_poll *p, double when_mono)
{
    double wait_s = when_mono - clock_mono_s();
    if (wait_s <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)(wait_s * 1e9) + ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(&p->cond, &p->mutex, &ts);
}

static void *poll_main(void *arg)
{
    struct command_poll *p = arg;
    pthread_mutex_lock(&p->mutex);
    while (!p->stopping) {
        double now = clock_mono_s();
        if (now >= p->next_sweep) {
            p->next_sweep = now + COMMAND_POLL_SWEEP_S;
            sweep(p);
            continue;
        }
        double earliest = p->next_sweep;
        struct command_wait *w = next_due(p, now, &earliest);
        if (w)
            serve_one(p, w, now);
        else
            wait_until(p, earliest);
    }
    /* Whoever is left is answered, empty. */
    while (p->head) {
        struct command_wait *w = p->head;
        unlink_wait(p, w);
        deferred_resume(w->resume);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

struct command_poll *command_poll_start(struct db_pool *pool, int lock_s)
{
    struct command_poll *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pool = pool;
    p->lock_s = lock_s;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    p->next_sweep = clock_mono_s() + COMMAND_POLL_SWEEP_S;
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0) {
        pthread_mutex_destroy(&p->mutex);
        pthread_cond_destroy(&p->cond);
        free(p);
        return NULL;
    }
    return p;
}

void command_poll_stop(struct command_poll *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mutex);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->cond);
    free(p);
}

void command_poll_release_all(struct command_poll *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mutex);
    p->releasing = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

void command_poll_add(struct command_poll *p, struct command_wait *w)
{
    pthread_mutex_lock(&p->mutex);
    w->dirty = true; /* claims once at once: nothing created before is missed */
    link_wait(p, w);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

void command_poll_remove(struct command_poll *p, struct command_wait *w)
{
    pthread_mutex_lock(&p->mutex);
    while (w->busy)
        pthread_cond_wait(&p->cond, &p->mutex);
    if (w->listed)
        unlink_wait(p, w);
    pthread_mutex_unlock(&p->mutex);
}

static bool mark_if_for(struct command_wait *w, const long long *device_ids, int n)
{
    for (int i = 0; i < n; i++) {
        if (w->device_id == device_ids[i]) {
            w->dirty = true;
            return true;
        }
    }
    return false;
}

void command_poll_wake(struct command_poll *p, const long long *device_ids, int n)
{
    if (!p || n == 0)
        return;
    bool any = false;
    pthread_mutex_lock(&p->mutex);
    for (struct command_wait *w = p->head; w; w = w->next)
        any |= mark_if_for(w, device_ids, n);
    /* A claim under way may have read before the change committed. */
    if (p->current)
        any |= mark_if_for(p->current, device_ids, n);
    if (any)
        pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}
