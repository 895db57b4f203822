#define _POSIX_C_SOURCE 200809L

#include "run.h"

#include "timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define RUN_TICK_MS 200

static bool is_power_of_two(unsigned n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static const char *label(const struct meter *m)
{
    return m->name[0] ? m->name : "server";
}

/* Tell people about an answer that was not a plain success. */
static void report(struct run *r, const struct meter *m, const struct client_answer *a,
                   unsigned attempts_before)
{
    const char *sep = m->name[0] ? ": " : "";
    const char *name = m->name;
    if (m->failed) {
        /* Whatever the verdict (a single reading too large ends here too). */
        const char *what = a->status != 0 ? "refused the readings"
                                          : "cannot be reached safely (check --url and --cacert)";
        progress_event(r->progress, true, "%s %s, not retrying: %s (%zu readings kept in %s)",
                       label(m), what, a->message, spool_pending(&m->spool), m->spool.path);
    } else if (a->verdict == RETRY_ACK && attempts_before > 0) {
        progress_event(r->progress, false, "%s%sserver answers again; sending the backlog", name,
                       sep);
    } else if (a->verdict == RETRY_AGAIN && is_power_of_two(m->attempt)) {
        /* Attempts 1, 2, 4, 8...: a long outage should not flood the terminal. */
        progress_event(r->progress, false, "%s%s%s; retry %u in %.1f s", name, sep,
                       a->message[0] ? a->message : "no answer", m->attempt,
                       (double)(m->retry_at_mono - time_mono_us()) / 1e6);
    } else if (a->verdict == RETRY_SHRINK) {
        progress_event(r->progress, false, "%s%sbatch too large (HTTP 413); now %zu at a time",
                       name, sep, m->batch_limit);
    }
}

static struct meter *meter_of(CURL *easy)
{
    char *owner = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
    return (struct meter *)owner;
}

struct delivery {
    struct run *run;
    struct meter *meter;
};

/* One command a poll brought: obeyed (or answered as before), and told. */
static void deliver(void *ctx, const struct command_order *order, struct command_outcome *out)
{
    struct delivery *d = ctx;
    struct meter *m = d->meter;
    uint64_t before = m->counters.commands_obeyed + m->counters.commands_failed;
    meter_command(m, order, out);
    bool again = m->counters.commands_obeyed + m->counters.commands_failed == before;
    run_report_command(d->run, m, out, again);
}

void run_report_command(struct run *r, const struct meter *m, const struct command_outcome *out,
                        bool again)
{
    progress_event(r->progress, false, "%s%scommand %lld %s%s%s%s", m->name, m->name[0] ? ": " : "",
                   (long long)out->id, again ? "delivered again, answered as before: " : "",
                   out->succeeded ? "succeeded" : "failed", out->succeeded ? "" : ": ",
                   out->succeeded ? "" : out->error);
}

/* A finished request of a meter's commander: a poll or an answer. */
static void handle_command_done(struct run *r, struct meter *m, CURLcode code)
{
    char msg[CLIENT_MESSAGE_MAX + 128];
    struct delivery d = {.run = r, .meter = m};
    enum commander_event ev = commander_finish(&m->commander, code, time_mono_us(),
                                               retry_random(&r->rng), deliver, &d, msg, sizeof msg);
    const char *sep = m->name[0] ? ": " : "";
    switch (ev) {
    case COMMANDER_QUIET:
    case COMMANDER_BACK:
        if (msg[0] != '\0') /* an answer that could not be queued */
            progress_event(r->progress, true, "%s%s%s", m->name, sep, msg);
        if (ev == COMMANDER_BACK)
            progress_event(r->progress, false, "%s%sthe server answers about commands again",
                           m->name, sep);
        break;
    case COMMANDER_RETRY:
        if (is_power_of_two(m->commander.attempt))
            progress_event(r->progress, false, "%s%s%s; retry %u in %.1f s", m->name, sep, msg,
                           m->commander.attempt,
                           (double)(m->commander.retry_at_mono - time_mono_us()) / 1e6);
        break;
    case COMMANDER_DROPPED:
    case COMMANDER_STOPPED:
        progress_event(r->progress, true, "%s%s%s", m->name, sep, msg);
        break;
    }
}

static void handle_done(struct run *r, CURLMsg *msg)
{
    CURL *easy = msg->easy_handle;
    CURLcode code = msg->data.result;
    struct meter *m = meter_of(easy);
    if (easy == m->commander.conn.easy) {
        handle_command_done(r, m, code);
        return;
    }
    struct client_answer answer;
    client_answer(&m->client, code, time_now_us(), &answer);
    unsigned attempts_before = m->attempt;
    if (meter_finish_request(m, &answer, time_mono_us(), retry_random(&r->rng)) != 0)
        progress_event(r->progress, true,
                       "%s: cannot record an acknowledgement in the spool (%s); those readings "
                       "will be sent again",
                       m->spool.path, strerror(errno));
    report(r, m, &answer, attempts_before);
}

/* True when the meter still has commands to take: --commands over HTTP, not refused for good. */
static bool commands_open(const struct meter *m)
{
    return m->commander.conn.easy != NULL && !m->commander.stopped;
}

/* Spool what is due; false (with err) when a spool cannot be written. */
static bool generate_all(struct run *r, int64_t now_wall, bool *all_done, char *err,
                         size_t err_size)
{
    *all_done = true;
    for (size_t i = 0; i < r->count; i++) {
        struct meter *m = &r->meters[i];
        if (!m->failed && meter_generate(m, now_wall, r->window) != 0) {
            snprintf(err, err_size, "cannot write spool %s: %s", m->spool.path, strerror(errno));
            return false;
        }
        /* With --commands a meter waits for commands until the run is stopped. */
        if (!meter_done(m) || commands_open(m))
            *all_done = false;
    }
    return true;
}

/*
 * Start the commanders' polls and answers. They have connections of their own
 * (see run_loop), outside `max_connections`: a long-poll holds one for
 * seconds and must not keep readings waiting.
 */
static bool start_commands(struct run *r, CURLM *multi, char *err, size_t err_size)
{
    int64_t now = time_mono_us();
    for (size_t i = 0; i < r->count; i++) {
        struct commander *c = &r->meters[i].commander;
        if (!commander_ready(c, now))
            continue;
        if (commander_start(c, now) != 0 ||
            curl_multi_add_handle(multi, c->conn.easy) != CURLM_OK) {
            commander_abandon(c);
            snprintf(err, err_size, "out of memory preparing a request for commands");
            return false;
        }
    }
    return true;
}

/* Start requests for ready meters, round robin from `first` for fairness. */
static bool start_requests(struct run *r, CURLM *multi, size_t *active, size_t first, char *err,
                           size_t err_size)
{
    int64_t now = time_mono_us();
    if (!start_commands(r, multi, err, err_size))
        return false;
    for (size_t k = 0; k < r->count && *active < r->max_connections; k++) {
        struct meter *m = &r->meters[(first + k) % r->count];
        if (!meter_ready(m, now))
            continue;
        if (meter_start_request(m) != 0 ||
            curl_multi_add_handle(multi, m->client.easy) != CURLM_OK) {
            m->in_flight = 0;
            snprintf(err, err_size, "out of memory preparing a request");
            return false;
        }
        (*active)++;
    }
    return true;
}

/* Milliseconds until something is due: a reading, or the end of a backoff. */
static int wait_ms(const struct run *r)
{
    int64_t wall = time_now_us(), mono = time_mono_us();
    int64_t wait = (int64_t)RUN_TICK_MS * 1000;
    for (size_t i = 0; i < r->count; i++) {
        const struct meter *m = &r->meters[i];
        if (spool_pending(&m->spool) < r->window) {
            int64_t due = meter_next_due(m);
            if (due != INT64_MAX && due - wall < wait)
                wait = due - wall;
        }
        if (m->in_flight == 0 && spool_pending(&m->spool) > 0 && m->retry_at_mono > mono &&
            m->retry_at_mono - mono < wait)
            wait = m->retry_at_mono - mono;
        const struct commander *c = &m->commander;
        if (commands_open(m) && c->state == COMMANDER_IDLE && c->retry_at_mono - mono < wait)
            wait = c->retry_at_mono - mono;
    }
    return wait <= 0 ? 0 : (int)((wait + 999) / 1000);
}

static void abandon_requests(struct run *r, CURLM *multi)
{
    for (size_t i = 0; i < r->count; i++) {
        struct meter *m = &r->meters[i];
        if (m->in_flight > 0) {
            curl_multi_remove_handle(multi, m->client.easy);
            m->in_flight = 0; /* still pending in the spool */
        }
        if (m->commander.state != COMMANDER_IDLE) {
            /* An unanswered command is delivered again once its lock runs out. */
            curl_multi_remove_handle(multi, m->commander.conn.easy);
            commander_abandon(&m->commander);
        }
    }
}

CURLM *run_commands_open(struct run *r)
{
    size_t commanders = 0;
    for (size_t i = 0; i < r->count; i++)
        commanders += r->meters[i].commander.conn.easy != NULL;
    if (commanders == 0)
        return NULL;
    CURLM *multi = curl_multi_init();
    if (multi != NULL)
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)commanders);
    return multi;
}

bool run_commands_step(struct run *r, CURLM *multi, char *err, size_t err_size)
{
    if (!start_commands(r, multi, err, err_size))
        return false;
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        handle_done(r, msg);
        curl_multi_remove_handle(multi, easy);
    }
    return true;
}

void run_commands_close(struct run *r, CURLM *multi)
{
    if (multi == NULL)
        return;
    /* Only the commanders are on this handle: the readings go to the broker. */
    for (size_t i = 0; i < r->count; i++) {
        struct commander *c = &r->meters[i].commander;
        if (c->state != COMMANDER_IDLE) {
            curl_multi_remove_handle(multi, c->conn.easy);
            commander_abandon(c);
        }
    }
    curl_multi_cleanup(multi);
}

enum run_result run_loop(struct run *r, char *err, size_t err_size)
{
    CURLM *multi = curl_multi_init();
    if (multi == NULL) {
        snprintf(err, err_size, "cannot create a libcurl multi handle");
        return RUN_BROKEN;
    }
    /* Bounded connections, kept alive in the multi handle's cache between requests;
     * each commander's one request comes on top, so a long-poll never queues a reading. */
    size_t commanders = 0;
    for (size_t i = 0; i < r->count; i++)
        commanders += r->meters[i].commander.conn.easy != NULL;
    long connections = (long)(r->max_connections + commanders);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, connections);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, connections);
    enum run_result result = RUN_STOPPED;
    size_t active = 0, round = 0;
    while (!*r->stop) {
        bool all_done;
        if (!generate_all(r, time_now_us(), &all_done, err, err_size)) {
            result = RUN_BROKEN;
            break;
        }
        if (all_done && active == 0) {
            result = RUN_DONE;
            break;
        }
        if (!start_requests(r, multi, &active, round++ % r->count, err, err_size)) {
            result = RUN_BROKEN;
            break;
        }
        int running = 0;
        curl_multi_poll(multi, NULL, 0, wait_ms(r), NULL);
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            bool command = easy == meter_of(easy)->commander.conn.easy;
            handle_done(r, msg); /* reads msg before the handle is removed */
            curl_multi_remove_handle(multi, easy);
            if (!command)
                active--;
        }
        struct progress_totals totals;
        progress_sum(r->meters, r->count, &totals);
        progress_draw(r->progress, &totals, time_mono_us(), false);
    }
    abandon_requests(r, multi);
    curl_multi_cleanup(multi);
    return result;
}
