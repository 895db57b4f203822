#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "../base/log.h"
#include "../base/month.h"
#include "events.h"
#include "internal.h"
#include "retention.h"
#include "../base/clock.h"

#define CATCH_UP_PAGE     1000
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
#define IDLE_CHECK_S      30 /* a silent connection is probed this often */
#define SELECT_TIMEOUT_MS 1000

static const struct db_stmt NEWEST_ALERT = {"listener_newest_alert",
                                            "SELECT coalesce(max(id), 0) FROM alerts"};
static const struct db_stmt ALERTS_AFTER = {
    "listener_alerts_after", "SELECT id FROM alerts WHERE id > $1 ORDER BY id LIMIT $2"};

struct listener {
    struct listener_options opts;
    char *url;
    pthread_t thread;
    int wake[2]; /* self-pipe: listener_stop() writes, select() wakes */
    atomic_bool stopping;
    atomic_bool connected;
    atomic_ulong reconnects;
    atomic_llong last_alert_id;
    bool have_baseline; /* the first connection recorded the newest alert id */
};

/* ---- payload ------------------------------------------------------------ */

void listener_events_free(struct listener_events *ev)
{
    free(ev->alerts);
    free(ev->usage);
    free(ev->devices_changed);
    free(ev->users_changed);
    free(ev->commands);
    free(ev->command_devices);
    free(ev->chat_messages);
    free(ev->chat_typing);
    free(ev->chat_reads);
    free(ev->notices);
    *ev = (struct listener_events){0};
}

/* Copies a JSON array of positive integers; an absent member is empty. */
static bool parse_ids(const json_t *root, const char *name, long long **out, int *n)
{
    *out = NULL;
    *n = 0;
    const json_t *arr = json_object_get(root, name);
    if (!arr)
        return true;
    if (!json_is_array(arr))
        return false;
    size_t count = json_array_size(arr);
    if (count == 0)
        return true;
    if (count > 1000000 || !(*out = malloc(count * sizeof **out)))
        return false;
    for (size_t i = 0; i < count; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return false; /* the caller frees what was allocated */
        (*out)[i] = json_integer_value(v);
    }
    *n = (int)count;
    return true;
}

/* A JSON array of integers >= 0 whose length is a multiple of stride; *n
 * counts tuples. An absent member is empty. */
static bool parse_tuples(const json_t *root, const char *name, int stride, long long **out, int *n)
{
    *out = NULL;
    *n = 0;
    const json_t *arr = json_object_get(root, name);
    if (!arr)
        return true;
    size_t count = json_array_size(arr);
    if (!json_is_array(arr) || count % (size_t)stride != 0 || count > 1000000)
        return false;
    if (count == 0)
        return true;
    if (!(*out = malloc(count * sizeof **out)))
        return false;
    for (size_t i = 0; i < count; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return false; /* the caller frees what was allocated */
        (*out)[i] = json_integer_value(v);
    }
    *n = (int)(count / (size_t)stride);
    return true;
}

bool listener_parse_payload(const char *payload, struct listener_events *out)
{
    *out = (struct listener_events){0};
    json_t *root = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(root) && parse_ids(root, "alerts", &out->alerts, &out->nalerts) &&
              parse_ids(root, "usage", &out->usage, &out->nusage) &&
              parse_ids(root, "devices_changed", &out->devices_changed, &out->ndevices_changed) &&
              parse_ids(root, "users_changed", &out->users_changed, &out->nusers_changed) &&
              parse_ids(root, "commands", &out->commands, &out->ncommands) &&
              parse_ids(root, "command_devices", &out->command_devices, &out->ncommand_devices) &&

              parse_ids(root, "notices", &out->notices, &out->nnotices);
    if (ok) /* the chat's tuples (db/events.h) */
        ok = parse_tuples(root, "chat_messages", EVENTS_CHAT_MESSAGE_LEN, &out->chat_messages,
                          &out->nchat_messages) &&
             parse_tuples(root, "chat_typing", EVENTS_CHAT_TYPING_LEN, &out->chat_typing,
                          &out->nchat_typing) &&
             parse_tuples(root, "chat_reads", EVENTS_CHAT_READ_LEN, &out->chat_reads,
                          &out->nchat_reads);
    const json_t *horizon = json_object_get(root, "readings_horizon");
    if (ok && horizon) {
        ok = json_is_integer(horizon) && json_integer_value(horizon) > 0;
        out->readings_horizon = ok ? json_integer_value(horizon) : 0;
    }
    json_decref(root);
    if (!ok)
        listener_events_free(out);
    return ok;
}

/* ---- handing over ------------------------------------------------------- */

static void note_alert_ids(struct listener *l, const long long *ids, int n)
{
    long long last = atomic_load(&l->last_alert_id);
    for (int i = 0; i < n; i++)
        if (ids[i] > last)
            last = ids[i];
    atomic_store(&l->last_alert_id, last);
}

static void hand_over(struct listener *l, struct listener_events *ev)
{
    note_alert_ids(l, ev->alerts, ev->nalerts);
    l->opts.on_events(l->opts.ctx, ev);
}

/* Hands over every notification libpq has buffered; returns how many. */
static int handle_notifications(struct listener *l, PGconn *pg)
{
    int count = 0;
    PGnotify *n;
    while ((n = PQnotifies(pg)) != NULL) {
        struct listener_events ev;
        if (listener_parse_payload(n->extra, &ev))
            hand_over(l, &ev);
        else
            log_warn("listener: ignoring a malformed %s payload", EVENTS_CHANNEL);
        PQfreemem(n);
        count++;
    }
    return count;
}

/* ---- connection --------------------------------------------------------- */

static enum status record_baseline(struct listener *l, struct db_conn *c)
{
    PGresult *res = db_exec(c, &NEWEST_ALERT, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK) {
        atomic_store(&l->last_alert_id, db_get_ll(res, 0, 0));
        l->have_baseline = true;
    }
    PQclear(res);
    return st;
}

/* Hands over every alert newer than the last one handed over, a page at a time. */
static enum status catch_up(struct listener *l, struct db_conn *c)
{
    for (;;) {
        char after[24], limit[16];
        snprintf(after, sizeof after, "%lld", atomic_load(&l->last_alert_id));
        snprintf(limit, sizeof limit, "%d", CATCH_UP_PAGE);
        const char *params[] = {after, limit};
        PGresult *res = db_exec(c, &ALERTS_AFTER, 2, params);
        enum status st = db_check(c, res, PGRES_TUPLES_OK);
        int rows = st == STATUS_OK ? PQntuples(res) : 0;
        struct listener_events ev = {0};
        if (rows > 0 && !(ev.alerts = malloc((size_t)rows * sizeof *ev.alerts)))
            st = STATUS_INTERNAL;
        for (int i = 0; st == STATUS_OK && i < rows; i++)
            ev.alerts[i] = db_get_ll(res, i, 0);
        PQclear(res);
        if (st != STATUS_OK) {
            free(ev.alerts);
            return st;
        }
        if (rows > 0) {
            ev.nalerts = rows;
            log_info("listener: catching up %d alert(s)", rows);
            hand_over(l, &ev);
        }
        if (rows < CATCH_UP_PAGE)
            return STATUS_OK;
    }
}

/* The horizon as the table has it, handed over like a notification. */
static enum status hand_over_horizon(struct listener *l, struct db_conn *c)
{
    bool none;
    int month;
    enum status st = db_retention_horizon(c, &none, &month);
    if (st == STATUS_OK && !none) {
        struct listener_events ev = {.readings_horizon = month_start(month)};
        hand_over(l, &ev);
    }
    return st;
}

static struct db_conn *connect_and_listen(struct listener *l, char *err, size_t errlen)
{
    struct db_pool_options opts = {
        .url = l->url,
        .size = 1,
        .statement_timeout_ms = 30000,
        .connect_timeout_s = l->opts.connect_timeout_s,
        .application_name = LISTENER_APPLICATION_NAME,
        .timeout_s = l->opts.timeout_s,
    };
    struct db_conn *c = db_connect(&opts, err, errlen);
    if (!c)
        return NULL;
    /* LISTEN before looking at the table: nothing can fall between the two. */
    enum status st = db_command(c, "LISTEN " EVENTS_CHANNEL);
    if (st == STATUS_OK)
        st = l->have_baseline ? catch_up(l, c) : record_baseline(l, c);
    if (st == STATUS_OK)
        st = hand_over_horizon(l, c);
    if (st != STATUS_OK) {
        snprintf(err, errlen, "LISTEN or catch-up failed");
        db_disconnect(c);
        return NULL;
    }
    return c;
}

/* Waits up to ms for the socket (or the stop pipe); false on a select error. */
static bool wait_readable(struct listener *l, int sock, int ms)
{
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(l->wake[0], &fds);
    if (sock >= 0)
        FD_SET(sock, &fds);
    int maxfd = sock > l->wake[0] ? sock : l->wake[0];
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int n = select(maxfd + 1, &fds, NULL, NULL, &tv);
    return n >= 0 || errno == EINTR;
}

/* Serves one connection until it breaks or the listener stops. */
static void serve_connection(struct listener *l, struct db_conn *c)
{
    double last_traffic = clock_mono_s();
    while (!atomic_load(&l->stopping)) {
        int sock = PQsocket(c->pg);
        if (sock < 0 || !wait_readable(l, sock, SELECT_TIMEOUT_MS))
            return;
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
            log_warn("listener: connection lost: %s", PQerrorMessage(c->pg));
            return;
        }
        if (handle_notifications(l, c->pg) > 0) {
            last_traffic = clock_mono_s();
        } else if (clock_mono_s() - last_traffic > IDLE_CHECK_S) {
            /* A half-open TCP connection never says so: ask. */
            if (db_ping(c) != STATUS_OK)
                return;
            handle_notifications(l, c->pg);
            last_traffic = clock_mono_s();
        }
    }
}

static void *listener_main(void *arg)
{
    struct listener *l = arg;
    int backoff_ms = BACKOFF_MIN_MS;
    bool ever_connected = false;
    while (!atomic_load(&l->stopping)) {
        char err[512];
        struct db_conn *c = connect_and_listen(l, err, sizeof err);
        if (!c) {
            log_warn("listener: %s; retrying in %d ms", err, backoff_ms);
            wait_readable(l, -1, backoff_ms);
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
            continue;
        }
        if (ever_connected)
            atomic_fetch_add(&l->reconnects, 1);
        ever_connected = true;
        backoff_ms = BACKOFF_MIN_MS;
        atomic_store(&l->connected, true);
        log_info("listener: listening on %s", EVENTS_CHANNEL);
        serve_connection(l, c);
        atomic_store(&l->connected, false);
        db_disconnect(c);
    }
    return NULL;
}

struct listener *listener_start(const struct listener_options *opts)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->opts = *opts;
    l->url = strdup(opts->url);
    if (!l->url || pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(l->url);
        free(l);
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
        close(l->wake[0]);
        close(l->wake[1]);
        free(l->url);
        free(l);
        return NULL;
    }
    return l;
}

void listener_stop(struct listener *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, true);
    ssize_t ignored = write(l->wake[1], "x", 1);
    (void)ignored; /* the pipe is only a nudge: the flag is what counts */
    pthread_join(l->thread, NULL);
    close(l->wake[0]);
    close(l->wake[1]);
    free(l->url);
    free(l);
}

void listener_stats(struct listener *l, struct listener_stats *out)
{
    *out = (struct listener_stats){
        .reconnects = atomic_load(&l->reconnects),
        .connected = atomic_load(&l->connected),
        .last_alert_id = atomic_load(&l->last_alert_id),
    };
}
