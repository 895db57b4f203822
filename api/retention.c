#include "retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../base/month.h"
#include "../db/retention.h"

static void say(const struct retention_options *o, const char *text)
{
    o->report.line(o->report.ctx, text);
}

/* Closes, archives (when asked and when it holds readings) and drops one month. */
static enum status retire_month(const struct retention_options *o, struct db_conn *c, int month,
                                bool has_readings)
{
    char name[MONTH_TEXT_MAX], text[128];
    month_format(month, name);
    enum status st = db_retention_close(c, month);
    if (st == STATUS_OK && o->archive_dir && has_readings)
        st = archive_month(c, o->archive_dir, month, o->force, &o->report, o->stop);
    if (st == STATUS_OK)
        st = db_retention_retire(c, month);
    if (st == STATUS_OK && has_readings)
        snprintf(text, sizeof text, "dropped %s", name);
    else if (st == STATUS_OK)
        snprintf(text, sizeof text, "retired %s (it held no readings)", name);
    else
        snprintf(text, sizeof text, "retiring %s failed (see the log); the next run retries it",
                 name);
    say(o, text);
    return st;
}

/* The months before `before` that hold readings, then before - 1 itself if
 * it holds none and the horizon is short of `before` (so that it reaches
 * `before` all the same; an hourly run with nothing due does nothing). */
static enum status retire_before(const struct retention_options *o, struct db_conn *c, int before)
{
    bool none;
    int horizon, *months = NULL, n = 0;
    enum status st = db_retention_horizon(c, &none, &horizon);
    if (st == STATUS_OK)
        st = db_retention_months(c, before, &months, &n);
    for (int i = 0; st == STATUS_OK && i < n; i++)
        st = o->stop && atomic_load(o->stop) ? STATUS_UNAVAILABLE
                                             : retire_month(o, c, months[i], true);
    if (st == STATUS_OK && (n == 0 || months[n - 1] != before - 1) && (none || horizon < before))
        st = retire_month(o, c, before - 1, false);
    free(months);
    return st;
}

enum status retention_run(const struct retention_options *o, int before, bool *skipped)
{
    *skipped = false;
    char err[512];
    struct db_pool_options dbo = *o->db;
    dbo.size = 1;
    struct db_conn *c = db_connect(&dbo, err, sizeof err);
    if (!c) {
        log_error("retention: %s", err);
        return STATUS_UNAVAILABLE;
    }
    bool locked;
    enum status st = db_retention_try_lock(c, &locked);
    if (st == STATUS_OK && !locked) {
        *skipped = true;
        say(o, "another instance is retiring months now: skipped");
    } else if (st == STATUS_OK) {
        st = retire_before(o, c, before);
        db_retention_unlock(c); /* also released with the connection */
    }
    db_disconnect(c);
    return st;
}

/* ---- the schedule ------------------------------------------------------- */

struct retention {
    struct retention_options opts; /* opts.stop points at stop_flag */
    atomic_bool stop_flag;
    int days;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping; /* under lock */
};

static void *retention_main(void *arg)
{
    struct retention *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        int before = month_first_kept((long long)clock_wall_s(), r->days);
        bool skipped;
        enum status st = retention_run(&r->opts, before, &skipped);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += st == STATUS_OK ? RETENTION_PERIOD_S : RETENTION_RETRY_S;
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct retention *retention_start(const struct retention_options *opts, int days)
{
    struct retention *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->opts = *opts;
    r->opts.stop = &r->stop_flag;
    r->days = days;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    return r;
}

void retention_stop(struct retention *r)
{
    if (!r)
        return;
    atomic_store(&r->stop_flag, true);
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
