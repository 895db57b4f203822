#define _POSIX_C_SOURCE 200809L

#include "broker_run.h"

#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RUN_TICK_MS        200
#define CONNECT_TIMEOUT_MS 10000
#define CONFIRM_TIMEOUT_MS 30000

static bool is_power_of_two(unsigned n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* Milliseconds until something is due: a reading, or the end of a backoff. */
static int wait_ms(const struct run *r, const struct meter *m)
{
    int64_t wall = time_now_us(), mono = time_mono_us();
    int64_t wait = (int64_t)RUN_TICK_MS * 1000;
    if (spool_pending(&m->spool) < r->window) {
        int64_t due = meter_next_due(m);
        if (due != INT64_MAX && due - wall < wait)
            wait = due - wall;
    }
    if (spool_pending(&m->spool) > 0 && m->retry_at_mono > mono && m->retry_at_mono - mono < wait)
        wait = m->retry_at_mono - mono;
    return wait <= 0 ? 0 : (int)((wait + 999) / 1000);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short, and the loop sees the stop flag */
}

/*
 * Account for an attempt through meter_finish_request, as an HTTP answer
 * would be: a confirmation acknowledges the in-flight readings, anything else
 * is retried after a backoff (or, `fatal`, ends the meter).
 */
static void finish(struct run *r, struct meter *m, enum retry_verdict verdict, const char *why)
{
    struct client_answer a = {
        .verdict = verdict, .retry_after_us = -1, .accepted = -1, .duplicates = -1};
    snprintf(a.message, sizeof a.message, "%s", why);
    unsigned attempts_before = m->attempt;
    if (meter_finish_request(m, &a, time_mono_us(), retry_random(&r->rng)) != 0)
        progress_event(r->progress, true,
                       "%s: cannot record an acknowledgement in the spool (%s); those readings "
                       "will be sent again",
                       m->spool.path, strerror(errno));
    if (m->failed) {
        progress_event(r->progress, true,
                       "the broker refused the device, not retrying: %s (%zu readings kept in %s)",
                       why, spool_pending(&m->spool), m->spool.path);
    } else if (verdict == RETRY_ACK && attempts_before > 0) {
        progress_event(r->progress, false, "the broker takes messages again; sending the backlog");
    } else if (verdict == RETRY_AGAIN && is_power_of_two(m->attempt)) {
        /* Attempts 1, 2, 4, 8...: a long outage should not flood the terminal. */
        progress_event(r->progress, false, "%s; retry %u in %.1f s", why, m->attempt,
                       (double)(m->retry_at_mono - time_mono_us()) / 1e6);
    }
}

/* Connect when a reading waits and no backoff runs; false when there is nothing to send yet. */
static bool ensure_connected(struct run *r, struct meter *m, struct link *l, bool *ever)
{
    if (l->connected)
        return true;
    /* Commands over MQTT come only to a connected device: connect even with nothing to send. */
    if ((spool_pending(&m->spool) == 0 && !l->target.commands) || m->retry_at_mono > time_mono_us())
        return false;
    char msg[LINK_MESSAGE_MAX];
    enum link_status st = link_connect(l, CONNECT_TIMEOUT_MS, msg, sizeof msg);
    if (st == LINK_OK) {
        *ever = true;
        return true;
    }
    m->in_flight = 0;
    finish(r, m, st == LINK_REFUSED && !*ever ? RETRY_FATAL : RETRY_AGAIN, msg);
    return false;
}

/* Publish the oldest pending readings as one message and account for the answer. */
static void publish(struct run *r, struct meter *m, struct link *l)
{
    size_t pending = spool_pending(&m->spool);
    size_t n = pending < m->batch_limit ? pending : m->batch_limit;
    m->in_flight = n;
    m->counters.sent += n;
    char msg[LINK_MESSAGE_MAX];
    enum link_status st = link_send(l, spool_peek(&m->spool, 0), n, schedule_member(m->type),
                                    CONFIRM_TIMEOUT_MS, r->stop, msg, sizeof msg);
    if (st != LINK_OK && *r->stop) {
        m->in_flight = 0; /* still pending in the spool; no retry to count */
        return;
    }
    finish(r, m, st == LINK_OK ? RETRY_ACK : RETRY_AGAIN, msg);
}

/* Obey the commands that came over MQTT and publish their answers. */
static void answer_commands(struct run *r, struct meter *m, struct link *l, uint64_t *unreadable)
{
    if (l->unreadable != *unreadable) {
        /* Without an id there is nothing to answer; a real command comes again. */
        progress_event(r->progress, true, "%llu message(s) on %s without a command id: ignored",
                       (unsigned long long)(l->unreadable - *unreadable), l->commands_topic);
        *unreadable = l->unreadable;
    }
    struct command_order order;
    while (link_take_command(l, &order)) {
        struct command_outcome out;
        uint64_t before = m->counters.commands_obeyed + m->counters.commands_failed;
        meter_command(m, &order, &out);
        run_report_command(r, m, &out,
                           m->counters.commands_obeyed + m->counters.commands_failed == before);
        if (link_answer(l, &out) != 0)
            progress_event(r->progress, true,
                           "out of memory keeping the answer to command %lld; the server "
                           "delivers it again",
                           (long long)out.id);
    }
}

enum run_result broker_run_loop(struct run *r, struct link *l, char *err, size_t err_size)
{
    struct meter *m = &r->meters[0];
    enum run_result result = RUN_STOPPED;
    bool ever_connected = false;
    uint64_t unreadable = 0;
    /* --amqp with --url and --commands: commands are polled for over HTTP meanwhile. */
    CURLM *polls = run_commands_open(r);
    if (polls == NULL && m->commander.conn.easy != NULL) {
        snprintf(err, err_size, "cannot create a libcurl multi handle");
        return RUN_BROKEN;
    }
    while (!*r->stop) {
        if (!m->failed && meter_generate(m, time_now_us(), r->window) != 0) {
            snprintf(err, err_size, "cannot write spool %s: %s", m->spool.path, strerror(errno));
            result = RUN_BROKEN;
            break;
        }
        /* With --commands the device waits for commands until stopped (or refused). */
        if (meter_done(m) && (!m->commands || m->failed)) {
            result = RUN_DONE;
            break;
        }
        if (polls != NULL && !run_commands_step(r, polls, err, err_size)) {
            result = RUN_BROKEN;
            break;
        }
        if (ensure_connected(r, m, l, &ever_connected) && meter_ready(m, time_mono_us())) {
            publish(r, m, l);
        } else {
            int ms = wait_ms(r, m);
            char msg[LINK_MESSAGE_MAX];
            if (!l->connected)
                sleep_ms(ms);
            else if (link_idle(l, ms, msg, sizeof msg) != LINK_OK)
                progress_event(r->progress, false, "%s; reconnecting when a reading waits", msg);
        }
        answer_commands(r, m, l, &unreadable);
        struct progress_totals totals;
        progress_sum(r->meters, r->count, &totals);
        progress_draw(r->progress, &totals, time_mono_us(), false);
    }
    run_commands_close(r, polls);
    link_disconnect(l);
    return result;
}
