/* hub: the public entry points of the live channel. Each hands its work to
 * the module that owns it (see hub_internal.h for the map); what is left
 * here is the hub's lifetime, the clock (hub_tick), the listener's events
 * and the metrics. */
#include "hub.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "../base/crypto.h"
#include "../base/log.h"
#include "../base/metrics.h"
#include "hub_internal.h"

static const char *const CLOSE_REASON_LABEL[HUB_CLOSED_REASONS] = {
    [HUB_CLOSED_NONE] = "none",
    [HUB_CLOSED_PEER] = "peer",
    [HUB_CLOSED_AUTH_TIMEOUT] = "auth_timeout",
    [HUB_CLOSED_AUTH_FAILED] = "auth_failed",
    [HUB_CLOSED_TOKEN_EXPIRED] = "token_expired",
    [HUB_CLOSED_USER_DELETED] = "user_deleted",
    [HUB_CLOSED_TOO_LARGE] = "too_large",
    [HUB_CLOSED_FLOOD] = "flood",
    [HUB_CLOSED_SLOW_CONSUMER] = "slow_consumer",
    [HUB_CLOSED_SESSION_CAP] = "session_cap",
    [HUB_CLOSED_USER_CAP] = "user_cap",
    [HUB_CLOSED_UNAUTH_QUOTA] = "unauth_quota",
    [HUB_CLOSED_UNAVAILABLE] = "unavailable",
    [HUB_CLOSED_SHUTDOWN] = "shutdown",
};

/* ---- lifetime -------------------------------------------------------------- */

struct hub *hub_create(const struct hub_limits *limits, const struct hub_store *store)
{
    struct hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    unsigned long long id = 0;
    if (!crypto_random((unsigned char *)&id, sizeof id))
        id = (unsigned long long)(uintptr_t)h; /* still tells instances apart in practice */
    h->instance_id = (long long)(id & (unsigned long long)LLONG_MAX) | 1;
    h->limits = *limits;
    h->store = *store;
    unauth_init(&h->unauth);
    jobs_init(&h->jobs);
    return h;
}

void hub_set_transport(struct hub *h, const struct hub_transport *transport)
{
    h->transport = *transport;
}

bool hub_start(struct hub *h)
{
    return jobs_start(h);
}

void hub_stop(struct hub *h)
{
    if (h)
        jobs_stop(h);
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    jobs_stop(h);
    /* Sessions are closed by the transport before this; entries left behind
     * would be a bug upstream, but are still freed. */
    for (size_t i = 0; i < h->sessions.cap; i++)
        if (h->sessions.keys[i])
            registry_free(h, h->sessions.vals[i], HUB_CLOSED_SHUTDOWN);
    idmap_free(&h->sessions);
    idmap_free(&h->users);
    unauth_free(&h->unauth);
    usage_free(h);
    commands_free(h);
    chat_free(h);
    jobs_destroy(&h->jobs);
    free(h);
}

/* ---- transport thread ------------------------------------------------------ */

struct hub_session *hub_session_open(struct hub *h, void *conn, const char *addr, double now,
                                     struct hub_refusal *refusal)
{
    return registry_open(h, conn, addr, now, refusal);
}

void hub_session_message(struct hub *h, struct hub_session *s, const char *text, size_t len,
                         double now)
{
    if (s->state == SESSION_CLOSING)
        return;
    if (!protocol_flood_allows(s, now)) {
        registry_close(h, s, HUB_CLOSE_CODE_POLICY, HUB_CLOSED_FLOOD, "too many messages");
        return;
    }
    if (s->state == SESSION_AUTHENTICATING) {
        if (!session_auth_hold(s, text, len))
            registry_close(h, s, HUB_CLOSE_CODE_POLICY, HUB_CLOSED_FLOOD, "wait for ready");
        return;
    }
    protocol_dispatch(h, s, text, len, now);
}

void hub_session_drained(struct hub *h, struct hub_session *s)
{
    if (s->kind == SESSION_KIND_USER)
        replay_resume(h, s);
}

void hub_session_closed(struct hub *h, struct hub_session *s, enum hub_close_reason reason)
{
    registry_free(h, s, reason);
}

void hub_tick(struct hub *h, double now)
{
    usage_flush(h, now);
    recheck_sweep(h, now);
    session_auth_scan(h, now);
    commands_tick(h, now);
}

void hub_drain(struct hub *h, double now)
{
    jobs_apply_inbox(h, now);
}

void hub_apply_events(struct hub *h, struct job *j, double now)
{
    /* In this order the jobs keep the order they had in one module. */
    replay_on_alerts(h, j->events.alerts, j->events.nalerts);
    usage_on_events(h, &j->events, now);
    recheck_on_events(h, &j->events);
    commands_on_events(h, &j->events);
    chat_on_events(h, &j->events);
    notices_on_events(h, j->events.notices, j->events.nnotices);
}

void hub_count_dropped(struct hub *h, unsigned long n)
{
    atomic_fetch_add(&h->counters.messages_dropped, n);
}

/* ---- any thread ------------------------------------------------------------ */

void hub_post_events(struct hub *h, struct listener_events *ev)
{
    struct job *j = job_new(JOB_EVENTS);
    if (!j) {
        log_error("hub: out of memory; a notification was dropped");
        listener_events_free(ev);
        return;
    }
    j->events = *ev;
    *ev = (struct listener_events){0};
    jobs_post_inbox(h, j);
}

void hub_on_listener_events(void *hub, struct listener_events *ev)
{
    hub_post_events(hub, ev);
}

bool hub_work_once(struct hub *h)
{
    return jobs_work_once(h);
}

void hub_render_metrics(struct hub *h, char **buf, size_t *len, size_t *cap)
{
    if (!h)
        return;
    struct hub_counters *c = &h->counters;
    metrics_printf(buf, len, cap,
                   "# HELP wattline_ws_sessions_open WebSocket sessions open now.\n"
                   "# TYPE wattline_ws_sessions_open gauge\n"
                   "wattline_ws_sessions_open %d\n"
                   "# HELP wattline_ws_alerts_delivered_total Alert messages sent to sessions.\n"
                   "# TYPE wattline_ws_alerts_delivered_total counter\n"
                   "wattline_ws_alerts_delivered_total %lu\n"
                   "# HELP wattline_ws_usage_sent_total Usage messages sent to sessions.\n"
                   "# TYPE wattline_ws_usage_sent_total counter\n"
                   "wattline_ws_usage_sent_total %lu\n"
                   "# HELP wattline_ws_chat_sent_total Chat messages, typing and read receipts "
                   "sent to sessions.\n"
                   "# TYPE wattline_ws_chat_sent_total counter\n"
                   "wattline_ws_chat_sent_total %lu\n"
                   "# HELP wattline_ws_messages_dropped_total Messages not sent because the "
                   "session was closing or its queue was full.\n"
                   "# TYPE wattline_ws_messages_dropped_total counter\n"
                   "wattline_ws_messages_dropped_total %lu\n"
                   "# HELP wattline_ws_sessions_closed_total WebSocket sessions ended, by "
                   "reason.\n"
                   "# TYPE wattline_ws_sessions_closed_total counter\n",
                   atomic_load(&c->open_sessions), atomic_load(&c->alerts_delivered),
                   atomic_load(&c->usage_sent), atomic_load(&c->chat_sent),
                   atomic_load(&c->messages_dropped));
    for (int r = HUB_CLOSED_PEER; r < HUB_CLOSED_REASONS; r++)
        metrics_printf(buf, len, cap, "wattline_ws_sessions_closed_total{reason=\"%s\"} %lu\n",
                       CLOSE_REASON_LABEL[r], atomic_load(&c->closed[r]));
}
