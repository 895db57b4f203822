/* replay: alerts to the sessions of their device's owner. Live alerts (read
 * by id when the listener reports them) and the paced replay of stored ones
 * (a page at a time, the next when the session's queue drains) go through
 * one worker, so a page read after an alert committed contains it and an
 * alert read after the page arrives after it; a session remembers the last
 * id it was sent and never gets that id or a lower one again. */
#include <stdlib.h>

#include "../base/log.h"
#include "hub_internal.h"

void replay_start(struct hub_session *s, long long since_id)
{
    s->replaying = true;
    s->replay_cursor = since_id;
    s->last_alert_id = since_id;
}

void replay_request_page(struct hub *h, struct hub_session *s)
{
    struct job *j = job_new(JOB_REPLAY);
    if (j) {
        j->session_id = s->id;
        j->user_id = s->user_id;
        j->since_id = s->replay_cursor;
    }
    job_submit(h, j);
}

void replay_resume(struct hub *h, struct hub_session *s)
{
    if (s->state == SESSION_READY && s->replaying && s->replay_paused) {
        s->replay_paused = false;
        replay_request_page(h, s);
    }
}

void replay_on_alerts(struct hub *h, const long long *ids, int n)
{
    if (n > 0 && h->users.count > 0)
        job_submit(h, job_with_ids(JOB_ALERTS, ids, n));
}

/* Sends a to s unless s already had it (or a later one); true when sent.
 * *text is a's rendering, made on first use and shared by the sessions. */
static bool replay_deliver(struct hub *h, struct hub_session *s, const struct alert *a, char **text)
{
    if (a->id <= s->last_alert_id)
        return false;
    if (!*text) {
        struct out_message m = {.type = OUT_ALERT, .u.alert.alert = a};
        *text = protocol_render(&m);
    }
    s->last_alert_id = a->id;
    if (!protocol_send_text(h, s, OUT_ALERT, *text))
        return false;
    atomic_fetch_add(&h->counters.alerts_delivered, 1);
    return true;
}

/* A live alert, unless s's queue is long: then s catches up by paced replay
 * from its last id (this alert included) as its queue drains. */
static void replay_deliver_live(struct hub *h, struct hub_session *s, const struct alert *a,
                                char **text)
{
    if (a->id <= s->last_alert_id)
        return;
    if (h->transport.queued(s->conn) >= HUB_LIVE_BACKLOG) {
        s->replaying = true;
        s->replay_paused = true;
        s->replay_cursor = s->last_alert_id;
        return;
    }
    replay_deliver(h, s, a, text);
}

void replay_run_page(struct hub *h, struct job *j)
{
    j->status =
        h->store.alerts_since(h->store.ctx, j->user_id, j->since_id, HUB_REPLAY_PAGE, &j->alerts);
}

void replay_apply_page(struct hub *h, struct job *j, double now)
{
    (void)now;
    struct hub_session *s = registry_session(h, j->session_id);
    if (!s || s->state != SESSION_READY || s->user_id != j->user_id || !s->replaying)
        return;
    if (j->status != STATUS_OK) {
        /* The client reconnects with since_alert_id and loses nothing. */
        registry_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE,
                       "database unavailable");
        return;
    }
    int sent = 0;
    for (int i = 0; i < j->alerts.count && s->state == SESSION_READY; i++) {
        char *text = NULL;
        sent += replay_deliver(h, s, &j->alerts.items[i], &text);
        free(text);
        s->replay_cursor = j->alerts.items[i].id;
    }
    if (s->state != SESSION_READY)
        return;
    if (j->alerts.count < HUB_REPLAY_PAGE)
        s->replaying = false; /* caught up: live alerts flow from here */
    else if (sent > 0)
        s->replay_paused = true; /* the next page when the queue drains */
    else
        replay_request_page(h, s);
}

void replay_run_alerts(struct hub *h, struct job *j)
{
    j->status = h->store.alerts_by_ids(h->store.ctx, j->ids, j->nids, &j->alerts);
}

void replay_apply_alerts(struct hub *h, struct job *j, double now)
{
    (void)now;
    if (j->status != STATUS_OK) {
        log_warn("hub: could not read %d notified alert(s); sessions replay them on reconnect",
                 j->nids);
        return;
    }
    for (int i = 0; i < j->alerts.count; i++) {
        const struct alert *a = &j->alerts.items[i];
        struct user_entry *u = registry_user(h, a->owner_id);
        if (!u)
            continue;
        char *text = NULL;
        int n;
        struct hub_session **targets = registry_snapshot(&u->sessions, &n);
        for (int k = 0; k < n; k++)
            if (targets[k]->state == SESSION_READY && !targets[k]->replaying)
                replay_deliver_live(h, targets[k], a, &text);
        free(targets);
        free(text);
    }
}
