#include "hub.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../api/resources.h"
#include "../base/idmap.h"
#include "../base/metrics.h"
#include "../base/timefmt.h"

#define TOKEN_MAX      8192 /* longer than any token we issue */
#define SESSION_SCAN_S 0.25 /* auth and expiry deadlines are checked this often */

/* A copy of v's sessions, so that a loop survives removals from v (a
 * session closed or unsubscribed on the way). Caller frees; NULL if empty. */
static struct hub_session **snapshot(const struct ptrvec *v, int *n)
{
    *n = 0;
    struct hub_session **copy = v->n ? malloc((size_t)v->n * sizeof *copy) : NULL;
    if (copy) {
        memcpy(copy, v->items, (size_t)v->n * sizeof *copy);
        *n = v->n;
    } else if (v->n) {
        log_error("hub: out of memory; a message was not delivered");
    }
    return copy;
}

/* ======================================================================== */
/* State                                                                     */
/* ======================================================================== */

enum session_state {
    SESSION_AUTH_WAIT,      /* connected; the first message must be auth */
    SESSION_AUTHENTICATING, /* the token is being checked */
    SESSION_READY,
    SESSION_CLOSING, /* the hub asked the transport to close it */
};

struct pending_message {
    char *text;
    size_t len;
};

struct hub_session {
    long long id;
    void *conn;
    enum session_state state;
    double opened_at;
    long long user_id;
    enum role role;
    long long token_exp;
    bool reauth_in_flight;

    /* alerts */
    long long last_alert_id; /* the highest id sent; nothing at or below is sent */
    bool replaying;          /* live alerts wait until the replay caught up */
    bool replay_paused;      /* a full page was queued; the next waits for the drain */
    long long replay_cursor;

    long long *subs; /* grown on demand: most sessions subscribe to few devices */
    int nsubs, subs_cap;

    struct pending_message pending[HUB_PENDING_MAX];
    int npending;

    double flood_tokens, flood_at;
    enum hub_close_reason reason;
};

struct user_entry {
    long long user_id;
    struct ptrvec sessions; /* READY (and not closing) sessions */
};

struct device_entry {
    long long device_id;
    struct ptrvec subscribers;
    double last_read; /* when usage was last read for it */
    bool dirty;       /* readings arrived since */
    bool in_flight;   /* a usage read is queued or running */
};

enum job_kind { JOB_AUTH, JOB_REPLAY, JOB_ALERTS, JOB_OWNERS, JOB_USAGE, JOB_USERS, JOB_EVENTS };

/* A unit of work for the worker and, filled in, its result for the
 * transport thread. Events from the listener skip the worker. */
struct job {
    enum job_kind kind;
    struct job *next;
    long long session_id; /* AUTH, REPLAY; OWNERS: the subscriber asking, or 0 */
    bool reauth;
    bool sweep; /* USERS: the periodic re-check */
    char *token;
    long long user_id, since_id; /* REPLAY */
    long long *ids;              /* ALERTS, OWNERS, USAGE, USERS */
    int nids;
    struct listener_events events; /* EVENTS */

    enum status status;
    struct caller caller;
    struct alert_list alerts;
    struct device_owner *owners; /* nids entries */
    struct device_usage *usage;
    int nusage;
    enum role *roles; /* nids entries; ROLE_NONE: deleted */
};

struct job_queue {
    struct job *head, *tail;
};

struct hub {
    struct hub_limits limits;
    struct hub_store store;
    struct hub_transport transport;

    /* transport thread only */
    struct idmap sessions; /* id -> hub_session */
    struct idmap users;    /* user id -> user_entry */
    struct idmap devices;  /* device id -> device_entry */
    long long next_session_id;
    int nsessions;
    long long *dirty; /* device ids with dirty set */
    int ndirty, capdirty;
    double last_scan;
    double last_user_check;
    bool user_check_in_flight;

    /* worker */
    pthread_mutex_t jobs_mutex;
    pthread_cond_t jobs_cond;
    struct job_queue jobs;
    bool stopping;
    bool worker_running;
    pthread_t worker;

    /* results and events for the transport thread */
    pthread_mutex_t inbox_mutex;
    struct job_queue inbox;

    /* metrics, read by /metrics on other threads */
    atomic_int open_sessions;
    atomic_ulong alerts_delivered;
    atomic_ulong usage_sent;
    atomic_ulong messages_dropped;
    atomic_ulong closed[HUB_CLOSED_REASONS];
};

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
    [HUB_CLOSED_UNAVAILABLE] = "unavailable",
    [HUB_CLOSED_SHUTDOWN] = "shutdown",
};

/* ======================================================================== */
/* Jobs: queueing                                                            */
/* ======================================================================== */

static void queue_push(struct job_queue *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *queue_pop(struct job_queue *q)
{
    struct job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    return j;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->token);
    free(j->ids);
    listener_events_free(&j->events);
    alert_list_free(&j->alerts);
    free(j->owners);
    free(j->usage);
    free(j->roles);
    free(j);
}

static struct job *job_new(enum job_kind kind)
{
    struct job *j = calloc(1, sizeof *j);
    if (j)
        j->kind = kind;
    return j;
}

/* A job with a copy of ids; NULL when out of memory. */
static struct job *job_with_ids(enum job_kind kind, const long long *ids, int n)
{
    struct job *j = job_new(kind);
    if (!j)
        return NULL;
    j->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *j->ids);
    if (!j->ids) {
        free(j);
        return NULL;
    }
    memcpy(j->ids, ids, (size_t)n * sizeof *ids);
    j->nids = n;
    return j;
}

/* Hands a job to the worker (takes it; NULL is logged and dropped). */
static void submit(struct hub *h, struct job *j)
{
    if (!j) {
        log_error("hub: out of memory; a WebSocket job was dropped");
        return;
    }
    pthread_mutex_lock(&h->jobs_mutex);
    queue_push(&h->jobs, j);
    pthread_cond_signal(&h->jobs_cond);
    pthread_mutex_unlock(&h->jobs_mutex);
}

/* Hands a result or events to the transport thread. */
static void post_inbox(struct hub *h, struct job *j)
{
    pthread_mutex_lock(&h->inbox_mutex);
    queue_push(&h->inbox, j);
    pthread_mutex_unlock(&h->inbox_mutex);
    if (h->transport.wake)
        h->transport.wake(h->transport.ctx);
}

/* ======================================================================== */
/* Jobs: the worker side (database reads)                                     */
/* ======================================================================== */

static void run_auth(struct hub *h, struct job *j)
{
    j->status = h->store.authenticate(h->store.ctx, j->token, &j->caller);
}

static void run_replay(struct hub *h, struct job *j)
{
    j->status =
        h->store.alerts_since(h->store.ctx, j->user_id, j->since_id, HUB_REPLAY_PAGE, &j->alerts);
}

static void run_alerts(struct hub *h, struct job *j)
{
    j->status = h->store.alerts_by_ids(h->store.ctx, j->ids, j->nids, &j->alerts);
}

static void run_owners(struct hub *h, struct job *j)
{
    j->owners = calloc((size_t)j->nids, sizeof *j->owners);
    j->status =
        j->owners ? h->store.owners(h->store.ctx, j->ids, j->nids, j->owners) : STATUS_INTERNAL;
}

static void run_usage(struct hub *h, struct job *j)
{
    j->status = h->store.usage(h->store.ctx, j->ids, j->nids, &j->usage, &j->nusage);
}

static void run_users(struct hub *h, struct job *j)
{
    j->roles = calloc((size_t)j->nids, sizeof *j->roles);
    j->status =
        j->roles ? h->store.user_roles(h->store.ctx, j->ids, j->nids, j->roles) : STATUS_INTERNAL;
}

/* ======================================================================== */
/* Outgoing messages                                                         */
/* ======================================================================== */

enum out_kind { OUT_READY, OUT_ALERT, OUT_USAGE, OUT_ERROR };

struct out_error {
    const char *code;
    const char *message;
    const char *field;   /* or NULL */
    long long device_id; /* or 0 */
};

struct out_message {
    enum out_kind kind;
    union {
        long long user_id;                /* READY */
        const struct alert *alert;        /* ALERT */
        const struct device_usage *usage; /* USAGE */
        struct out_error error;           /* ERROR */
    } u;
};

static json_t *render_ready(const struct out_message *m)
{
    return json_pack("{s:s, s:I}", "type", "ready", "user_id", (json_int_t)m->u.user_id);
}

static json_t *render_alert(const struct out_message *m)
{
    json_t *alert = alert_to_json(m->u.alert);
    return alert ? json_pack("{s:s, s:o}", "type", "alert", "alert", alert) : NULL;
}

static json_t *render_usage(const struct out_message *m)
{
    const struct device_usage *u = m->u.usage;
    char hour[TIMEFMT_MAX], last[TIMEFMT_MAX];
    timefmt_format(u->hour_start, hour);
    timefmt_format(u->last_ts, last);
    return json_pack("{s:s, s:I, s:s, s:f, s:s}", "type", "usage", "device_id",
                     (json_int_t)u->device_id, "hour_start", hour, "hour_kwh", u->hour_kwh,
                     "last_ts", last);
}

static json_t *render_error(const struct out_message *m)
{
    const struct out_error *e = &m->u.error;
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "type", "error", "code", e->code, "message", e->message);
    if (o && e->field)
        json_object_set_new(o, "field", json_string(e->field));
    if (o && e->device_id)
        json_object_set_new(o, "device_id", json_integer(e->device_id));
    return o;
}

static json_t *(*const RENDER[])(const struct out_message *) = {
    [OUT_READY] = render_ready,
    [OUT_ALERT] = render_alert,
    [OUT_USAGE] = render_usage,
    [OUT_ERROR] = render_error,
};

/* The message as compact JSON text (caller frees), or NULL. */
static char *render(const struct out_message *m)
{
    json_t *o = RENDER[m->kind](m);
    char *text = o ? json_dumps(o, JSON_DUMP_FLAGS) : NULL;
    json_decref(o);
    return text;
}

static bool send_text(struct hub *h, struct hub_session *s, const char *text)
{
    if (!text || s->state == SESSION_CLOSING) {
        atomic_fetch_add(&h->messages_dropped, 1);
        return false;
    }
    /* On false the transport drops the session itself (slow consumer). */
    return h->transport.send(s->conn, text, strlen(text));
}

static bool send_message(struct hub *h, struct hub_session *s, const struct out_message *m)
{
    char *text = render(m);
    bool ok = send_text(h, s, text);
    free(text);
    return ok;
}

static void send_error(struct hub *h, struct hub_session *s, const char *code, const char *message,
                       const char *field, long long device_id)
{
    struct out_message m = {
        .kind = OUT_ERROR,
        .u.error = {.code = code, .message = message, .field = field, .device_id = device_id}};
    send_message(h, s, &m);
}

/* ======================================================================== */
/* Registry                                                                   */
/* ======================================================================== */

static struct hub_session *session_get(struct hub *h, long long id)
{
    return idmap_get(&h->sessions, id);
}

static bool user_add(struct hub *h, struct hub_session *s)
{
    struct user_entry *u = idmap_get(&h->users, s->user_id);
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return false;
        u->user_id = s->user_id;
        if (!idmap_put(&h->users, u->user_id, u)) {
            free(u);
            return false;
        }
    }
    return ptrvec_add(&u->sessions, s);
}

static void user_remove(struct hub *h, struct hub_session *s)
{
    struct user_entry *u = s->user_id ? idmap_get(&h->users, s->user_id) : NULL;
    if (!u)
        return;
    ptrvec_remove(&u->sessions, s);
    if (u->sessions.n == 0) {
        idmap_del(&h->users, u->user_id);
        free(u->sessions.items);
        free(u);
    }
}

static int user_session_count(struct hub *h, long long user_id)
{
    struct user_entry *u = idmap_get(&h->users, user_id);
    return u ? u->sessions.n : 0;
}

static bool session_subscribed(const struct hub_session *s, long long device_id)
{
    for (int i = 0; i < s->nsubs; i++)
        if (s->subs[i] == device_id)
            return true;
    return false;
}

/* Forgets a device entry nobody subscribes to (its dirty mark goes stale
 * harmlessly: flush skips ids without an entry). */
static void device_release_if_unused(struct hub *h, struct device_entry *d)
{
    if (d->subscribers.n > 0)
        return;
    idmap_del(&h->devices, d->device_id);
    free(d->subscribers.items);
    free(d);
}

static bool subscribe(struct hub *h, struct hub_session *s, long long device_id)
{
    struct device_entry *d = idmap_get(&h->devices, device_id);
    if (!d) {
        if (!(d = calloc(1, sizeof *d)))
            return false;
        d->device_id = device_id;
        if (!idmap_put(&h->devices, device_id, d)) {
            free(d);
            return false;
        }
    }
    if (s->nsubs == s->subs_cap) {
        int cap = s->subs_cap ? 2 * s->subs_cap : 4;
        long long *subs = realloc(s->subs, (size_t)cap * sizeof *subs);
        if (!subs) {
            device_release_if_unused(h, d);
            return false;
        }
        s->subs = subs;
        s->subs_cap = cap;
    }
    if (!ptrvec_add(&d->subscribers, s)) {
        device_release_if_unused(h, d);
        return false;
    }
    s->subs[s->nsubs++] = device_id;
    return true;
}

static void unsubscribe(struct hub *h, struct hub_session *s, long long device_id)
{
    for (int i = 0; i < s->nsubs; i++) {
        if (s->subs[i] == device_id) {
            s->subs[i] = s->subs[--s->nsubs];
            break;
        }
    }
    struct device_entry *d = idmap_get(&h->devices, device_id);
    if (d) {
        ptrvec_remove(&d->subscribers, s);
        device_release_if_unused(h, d);
    }
}

/* Takes s out of every delivery list. */
static void session_detach(struct hub *h, struct hub_session *s)
{
    if (s->state == SESSION_READY)
        user_remove(h, s);
    while (s->nsubs > 0)
        unsubscribe(h, s, s->subs[0]);
}

/* Asks the transport to close s; nothing more is sent to it. */
static void session_close(struct hub *h, struct hub_session *s, int code,
                          enum hub_close_reason reason, const char *text)
{
    if (s->state == SESSION_CLOSING)
        return;
    session_detach(h, s);
    s->state = SESSION_CLOSING;
    s->reason = reason;
    h->transport.close(s->conn, code, text);
}

static void close_for_memory(struct hub *h, struct hub_session *s)
{
    log_error("hub: out of memory; closing a WebSocket session");
    session_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE, "server busy");
}

/* ======================================================================== */
/* Alerts and replay                                                         */
/* ======================================================================== */

static void request_replay_page(struct hub *h, struct hub_session *s)
{
    struct job *j = job_new(JOB_REPLAY);
    if (j) {
        j->session_id = s->id;
        j->user_id = s->user_id;
        j->since_id = s->replay_cursor;
    }
    submit(h, j);
}

/* Sends a to s unless s already had it (or a later one); true when sent. */
static bool deliver_alert(struct hub *h, struct hub_session *s, const struct alert *a, char **text)
{
    if (a->id <= s->last_alert_id)
        return false;
    if (!*text) {
        struct out_message m = {.kind = OUT_ALERT, .u.alert = a};
        *text = render(&m);
    }
    s->last_alert_id = a->id;
    if (!send_text(h, s, *text))
        return false;
    atomic_fetch_add(&h->alerts_delivered, 1);
    return true;
}

/* A live alert, unless s's queue is long: then s catches up by paced replay
 * from its last id (this alert included) as its queue drains. */
static void deliver_live_alert(struct hub *h, struct hub_session *s, const struct alert *a,
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
    deliver_alert(h, s, a, text);
}

static void apply_replay(struct hub *h, struct job *j)
{
    struct hub_session *s = session_get(h, j->session_id);
    if (!s || s->state != SESSION_READY || s->user_id != j->user_id || !s->replaying)
        return;
    if (j->status != STATUS_OK) {
        /* The client reconnects with since_alert_id and loses nothing. */
        session_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE,
                      "database unavailable");
        return;
    }
    int sent = 0;
    for (int i = 0; i < j->alerts.count && s->state == SESSION_READY; i++) {
        char *text = NULL;
        sent += deliver_alert(h, s, &j->alerts.items[i], &text);
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
        request_replay_page(h, s);
}

static void apply_alerts(struct hub *h, struct job *j)
{
    if (j->status != STATUS_OK) {
        log_warn("hub: could not read %d notified alert(s); sessions replay them on reconnect",
                 j->nids);
        return;
    }
    for (int i = 0; i < j->alerts.count; i++) {
        const struct alert *a = &j->alerts.items[i];
        struct user_entry *u = a->owner_id ? idmap_get(&h->users, a->owner_id) : NULL;
        if (!u)
            continue;
        char *text = NULL;
        int n;
        struct hub_session **targets = snapshot(&u->sessions, &n);
        for (int k = 0; k < n; k++)
            if (targets[k]->state == SESSION_READY && !targets[k]->replaying)
                deliver_live_alert(h, targets[k], a, &text);
        free(targets);
        free(text);
    }
}

/* ======================================================================== */
/* Authentication                                                            */
/* ======================================================================== */

static void dispatch(struct hub *h, struct hub_session *s, const char *text, size_t len,
                     double now);

static void become_ready(struct hub *h, struct hub_session *s, const struct caller *c)
{
    s->user_id = c->user_id;
    s->role = c->role;
    s->token_exp = c->token_exp;
    if (!user_add(h, s)) {
        s->state = SESSION_AUTHENTICATING; /* not in the user list: nothing to undo */
        close_for_memory(h, s);
        return;
    }
    s->state = SESSION_READY;
    struct out_message ready = {.kind = OUT_READY, .u.user_id = s->user_id};
    send_message(h, s, &ready);
    if (s->replaying)
        request_replay_page(h, s);
}

static void apply_first_auth(struct hub *h, struct hub_session *s, struct job *j, double now)
{
    /* The verifier allows clock skew; a session does not outlive its token. */
    if (j->status == STATUS_UNAUTHORIZED ||
        (j->status == STATUS_OK && (double)j->caller.token_exp <= now)) {
        session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "unauthorized");
        return;
    }
    if (j->status != STATUS_OK) {
        session_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE,
                      "database unavailable");
        return;
    }
    if (user_session_count(h, j->caller.user_id) >= h->limits.max_sessions_per_user) {
        session_close(h, s, HUB_CLOSE_CODE_TOO_MANY, HUB_CLOSED_USER_CAP, "too many sessions");
        return;
    }
    become_ready(h, s, &j->caller);
    /* Messages that arrived while the token was checked, in order. */
    for (int i = 0; i < s->npending; i++) {
        if (s->state == SESSION_READY)
            dispatch(h, s, s->pending[i].text, s->pending[i].len, now);
        free(s->pending[i].text);
    }
    s->npending = 0;
}

static void recheck_subscriptions(struct hub *h, struct hub_session *s);

static void set_role(struct hub *h, struct hub_session *s, enum role role)
{
    bool demoted = s->role == ROLE_ADMIN && role != ROLE_ADMIN;
    s->role = role;
    if (demoted)
        recheck_subscriptions(h, s);
}

static void apply_reauth(struct hub *h, struct hub_session *s, struct job *j, double now)
{
    s->reauth_in_flight = false;
    if (j->status == STATUS_UNAVAILABLE || j->status == STATUS_INTERNAL)
        return; /* the old token still runs until it expires */
    if (j->status != STATUS_OK || j->caller.user_id != s->user_id ||
        (double)j->caller.token_exp <= now) {
        session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "unauthorized");
        return;
    }
    if (j->caller.token_exp > s->token_exp)
        s->token_exp = j->caller.token_exp;
    set_role(h, s, j->caller.role);
}

static void apply_auth(struct hub *h, struct job *j, double now)
{
    struct hub_session *s = session_get(h, j->session_id);
    if (!s || s->state == SESSION_CLOSING)
        return;
    if (j->reauth && s->state == SESSION_READY)
        apply_reauth(h, s, j, now);
    else if (!j->reauth && s->state == SESSION_AUTHENTICATING)
        apply_first_auth(h, s, j, now);
}

/* ======================================================================== */
/* Subscriptions and usage                                                   */
/* ======================================================================== */

static bool may_see(const struct hub_session *s, bool exists, long long owner_id)
{
    return exists && (s->role == ROLE_ADMIN || (owner_id != 0 && owner_id == s->user_id));
}

/* Re-reads the owners of s's devices; apply_owners drops what s may no longer see. */
static void recheck_subscriptions(struct hub *h, struct hub_session *s)
{
    if (s->nsubs > 0)
        submit(h, job_with_ids(JOB_OWNERS, s->subs, s->nsubs));
}

static void apply_owners(struct hub *h, struct job *j)
{
    struct hub_session *asker = j->session_id ? session_get(h, j->session_id) : NULL;
    if (j->status != STATUS_OK) {
        if (asker && asker->state == SESSION_READY && session_subscribed(asker, j->ids[0])) {
            unsubscribe(h, asker, j->ids[0]);
            send_error(h, asker, "unavailable", "the database is unavailable; try again", NULL,
                       j->ids[0]);
        }
        return;
    }
    for (int i = 0; i < j->nids; i++) {
        const struct device_owner *o = &j->owners[i];
        struct device_entry *d = idmap_get(&h->devices, o->device_id);
        if (!d)
            continue;
        int n;
        struct hub_session **subs = snapshot(&d->subscribers, &n);
        for (int k = 0; k < n; k++) {
            if (may_see(subs[k], o->exists, o->owner_id))
                continue;
            unsubscribe(h, subs[k], o->device_id); /* may free d */
            if (subs[k] == asker)
                send_error(h, asker, "not_found", "no such device", "device_id", o->device_id);
        }
        free(subs);
    }
}

static void mark_dirty(struct hub *h, struct device_entry *d)
{
    if (d->dirty)
        return;
    if (h->ndirty == h->capdirty) {
        int cap = h->capdirty ? h->capdirty * 2 : 64;
        long long *more = realloc(h->dirty, (size_t)cap * sizeof *more);
        if (!more)
            return; /* this burst's usage message is skipped; the next reading brings it */
        h->dirty = more;
        h->capdirty = cap;
    }
    d->dirty = true;
    h->dirty[h->ndirty++] = d->device_id;
}

/* Reads the dirty devices whose last read is a second old, in one job. */
static void flush_usage(struct hub *h, double now)
{
    if (h->ndirty == 0)
        return;
    long long *due = malloc((size_t)h->ndirty * sizeof *due);
    if (!due)
        return; /* tried again on the next tick */
    int ndue = 0, keep = 0;
    for (int i = 0; i < h->ndirty; i++) {
        struct device_entry *d = idmap_get(&h->devices, h->dirty[i]);
        if (!d || !d->dirty)
            continue; /* unsubscribed meanwhile */
        if (d->in_flight || now - d->last_read < HUB_USAGE_INTERVAL_S) {
            h->dirty[keep++] = d->device_id;
            continue;
        }
        d->dirty = false;
        d->in_flight = true;
        d->last_read = now;
        due[ndue++] = d->device_id;
    }
    h->ndirty = keep;
    if (ndue > 0)
        submit(h, job_with_ids(JOB_USAGE, due, ndue));
    free(due);
}

static void apply_usage(struct hub *h, struct job *j)
{
    for (int i = 0; i < j->nids; i++) {
        struct device_entry *d = idmap_get(&h->devices, j->ids[i]);
        if (d)
            d->in_flight = false;
    }
    if (j->status != STATUS_OK)
        return;
    for (int i = 0; i < j->nusage; i++) {
        const struct device_usage *u = &j->usage[i];
        struct device_entry *d = idmap_get(&h->devices, u->device_id);
        if (!d)
            continue;
        struct out_message m = {.kind = OUT_USAGE, .u.usage = u};
        char *text = render(&m);
        int n;
        struct hub_session **subs = snapshot(&d->subscribers, &n);
        for (int k = 0; k < n; k++) {
            if (!may_see(subs[k], true, u->owner_id))
                unsubscribe(h, subs[k], u->device_id); /* the device changed hands */
            else if (send_text(h, subs[k], text))
                atomic_fetch_add(&h->usage_sent, 1);
        }
        free(subs);
        free(text);
    }
}

static void apply_users(struct hub *h, struct job *j)
{
    if (j->sweep)
        h->user_check_in_flight = false;
    if (j->status != STATUS_OK) {
        if (!j->sweep) /* the sweep runs every second: it says nothing while the DB is away */
            log_warn("hub: could not re-read %d changed user(s)", j->nids);
        return;
    }
    for (int i = 0; i < j->nids; i++) {
        struct user_entry *u = idmap_get(&h->users, j->ids[i]);
        while (u && j->roles[i] == ROLE_NONE && u->sessions.n > 0) {
            /* Closing takes the session out of u; the last one frees u. */
            bool last = u->sessions.n == 1;
            session_close(h, u->sessions.items[0], HUB_CLOSE_CODE_UNAUTHORIZED,
                          HUB_CLOSED_USER_DELETED, "user deleted");
            if (last)
                u = NULL;
        }
        for (int k = 0; u && k < u->sessions.n; k++)
            set_role(h, u->sessions.items[k], j->roles[i]);
    }
}

/* Events from the listener: decide what this instance needs to read. */
static void apply_events(struct hub *h, struct job *j, double now)
{
    struct listener_events *ev = &j->events;
    if (ev->nalerts > 0 && h->users.count > 0)
        submit(h, job_with_ids(JOB_ALERTS, ev->alerts, ev->nalerts));
    for (int i = 0; i < ev->nusage; i++) {
        struct device_entry *d = idmap_get(&h->devices, ev->usage[i]);
        if (d)
            mark_dirty(h, d);
    }
    flush_usage(h, now);

    long long *local =
        malloc((size_t)(ev->ndevices_changed + ev->nusers_changed + 1) * sizeof *local);
    if (!local) {
        log_error("hub: out of memory; owner and user changes were not applied");
        return;
    }
    int n = 0;
    for (int i = 0; i < ev->ndevices_changed; i++)
        if (idmap_get(&h->devices, ev->devices_changed[i]))
            local[n++] = ev->devices_changed[i];
    if (n > 0)
        submit(h, job_with_ids(JOB_OWNERS, local, n));
    n = 0;
    for (int i = 0; i < ev->nusers_changed; i++)
        if (idmap_get(&h->users, ev->users_changed[i]))
            local[n++] = ev->users_changed[i];
    if (n > 0)
        submit(h, job_with_ids(JOB_USERS, local, n));
    free(local);
}

/* ======================================================================== */
/* Inbound messages                                                          */
/* ======================================================================== */

typedef void (*inbound_fn)(struct hub *h, struct hub_session *s, json_t *msg, double now);

/* A positive integer member, or false. */
static bool get_id(json_t *msg, const char *name, long long *out)
{
    json_t *v = json_object_get(msg, name);
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* {"type":"auth","token":"...","since_alert_id":N?}: the first message, or a
 * fresh token later that keeps the session past the old token's expiry. */
static void on_auth(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    const char *token = json_string_value(json_object_get(msg, "token"));
    json_t *since = json_object_get(msg, "since_alert_id");
    bool valid = token && token[0] && strlen(token) <= TOKEN_MAX &&
                 (!since || json_is_null(since) ||
                  (json_is_integer(since) && json_integer_value(since) >= 0));
    if (!valid) {
        session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "unauthorized");
        return;
    }
    struct job *j = job_new(JOB_AUTH);
    if (j && !(j->token = strdup(token))) {
        free(j);
        j = NULL;
    }
    if (!j) {
        close_for_memory(h, s);
        return;
    }
    j->session_id = s->id;
    if (s->state == SESSION_READY) {
        j->reauth = true;
        s->reauth_in_flight = true;
    } else {
        s->state = SESSION_AUTHENTICATING;
        if (json_is_integer(since)) {
            s->replaying = true;
            s->replay_cursor = json_integer_value(since);
            s->last_alert_id = s->replay_cursor;
        }
    }
    submit(h, j);
}

/* {"type":"subscribe","device_id":N}: usage of a device the caller may see.
 * Registered at once (so readings arriving meanwhile count) and checked by
 * the worker; apply_owners drops it with not_found when it is not visible. */
static void on_subscribe(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long device_id;
    if (!get_id(msg, "device_id", &device_id)) {
        send_error(h, s, "invalid_field", "device_id must be a positive integer", "device_id", 0);
        return;
    }
    if (session_subscribed(s, device_id))
        return;
    if (s->nsubs == HUB_MAX_SUBSCRIPTIONS) {
        send_error(h, s, "too_many_subscriptions", "unsubscribe from a device first", "device_id",
                   device_id);
        return;
    }
    if (!subscribe(h, s, device_id)) {
        close_for_memory(h, s);
        return;
    }
    struct job *j = job_with_ids(JOB_OWNERS, &device_id, 1);
    if (j)
        j->session_id = s->id;
    submit(h, j);
}

/* {"type":"unsubscribe","device_id":N} */
static void on_unsubscribe(struct hub *h, struct hub_session *s, json_t *msg, double now)
{
    (void)now;
    long long device_id;
    if (!get_id(msg, "device_id", &device_id)) {
        send_error(h, s, "invalid_field", "device_id must be a positive integer", "device_id", 0);
        return;
    }
    unsubscribe(h, s, device_id);
}

/* The inbound message types a READY session may send. */
static const struct inbound_route {
    const char *type;
    inbound_fn handle;
} INBOUND[] = {
    {"auth", on_auth},
    {"subscribe", on_subscribe},
    {"unsubscribe", on_unsubscribe},
};

static inbound_fn inbound_lookup(const char *type)
{
    for (size_t i = 0; type && i < sizeof INBOUND / sizeof *INBOUND; i++)
        if (!strcmp(INBOUND[i].type, type))
            return INBOUND[i].handle;
    return NULL;
}

/* Parses and routes one message of a session that has a state to act on. */
static void dispatch(struct hub *h, struct hub_session *s, const char *text, size_t len, double now)
{
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (s->state == SESSION_AUTH_WAIT) {
        if (type && !strcmp(type, "auth"))
            on_auth(h, s, msg, now);
        else
            session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "auth first");
    } else if (!json_is_object(msg) || !type) {
        send_error(h, s, "malformed", "a message is a JSON object with a string type", "type", 0);
    } else {
        inbound_fn handle = inbound_lookup(type);
        if (handle)
            handle(h, s, msg, now);
        else
            send_error(h, s, "unknown_type", "unknown message type", "type", 0);
    }
    json_decref(msg);
}

/* Token bucket: HUB_FLOOD_RATE per second, bursts of HUB_FLOOD_BURST. */
static bool flood_allows(struct hub_session *s, double now)
{
    s->flood_tokens += (now - s->flood_at) * HUB_FLOOD_RATE;
    if (s->flood_tokens > HUB_FLOOD_BURST)
        s->flood_tokens = HUB_FLOOD_BURST;
    s->flood_at = now;
    if (s->flood_tokens < 1.0)
        return false;
    s->flood_tokens -= 1.0;
    return true;
}

/* Holds a message that came while the token is checked. */
static bool hold_pending(struct hub_session *s, const char *text, size_t len)
{
    if (s->npending == HUB_PENDING_MAX)
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    struct pending_message *p = &s->pending[s->npending++];
    p->text = copy;
    p->len = len;
    return true;
}

/* ======================================================================== */
/* Public: transport thread                                                  */
/* ======================================================================== */

struct hub_session *hub_session_open(struct hub *h, void *conn, double now)
{
    if (h->nsessions >= h->limits.max_sessions)
        return NULL;
    struct hub_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = ++h->next_session_id;
    s->conn = conn;
    s->state = SESSION_AUTH_WAIT;
    s->opened_at = now;
    s->flood_tokens = HUB_FLOOD_BURST;
    s->flood_at = now;
    if (!idmap_put(&h->sessions, s->id, s)) {
        free(s);
        return NULL;
    }
    h->nsessions++;
    atomic_fetch_add(&h->open_sessions, 1);
    return s;
}

void hub_session_message(struct hub *h, struct hub_session *s, const char *text, size_t len,
                         double now)
{
    if (s->state == SESSION_CLOSING)
        return;
    if (!flood_allows(s, now)) {
        session_close(h, s, HUB_CLOSE_CODE_POLICY, HUB_CLOSED_FLOOD, "too many messages");
        return;
    }
    if (s->state == SESSION_AUTHENTICATING) {
        if (!hold_pending(s, text, len))
            session_close(h, s, HUB_CLOSE_CODE_POLICY, HUB_CLOSED_FLOOD, "wait for ready");
        return;
    }
    dispatch(h, s, text, len, now);
}

void hub_session_drained(struct hub *h, struct hub_session *s)
{
    if (s->state == SESSION_READY && s->replaying && s->replay_paused) {
        s->replay_paused = false;
        request_replay_page(h, s);
    }
}

void hub_session_closed(struct hub *h, struct hub_session *s, enum hub_close_reason reason)
{
    if (s->state != SESSION_CLOSING)
        session_detach(h, s);
    enum hub_close_reason final = s->reason ? s->reason : reason ? reason : HUB_CLOSED_PEER;
    atomic_fetch_add(&h->closed[final], 1);
    for (int i = 0; i < s->npending; i++)
        free(s->pending[i].text);
    free(s->subs);
    idmap_del(&h->sessions, s->id);
    h->nsessions--;
    atomic_fetch_sub(&h->open_sessions, 1);
    free(s);
}

static void scan_deadlines(struct hub *h, double now)
{
    for (size_t i = 0; i < h->sessions.cap; i++) {
        struct hub_session *s = h->sessions.keys[i] ? h->sessions.vals[i] : NULL;
        if (!s)
            continue;
        bool authless = s->state == SESSION_AUTH_WAIT || s->state == SESSION_AUTHENTICATING;
        if (authless && now - s->opened_at >= HUB_AUTH_TIMEOUT_S)
            session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_TIMEOUT,
                          "auth timeout");
        else if (s->state == SESSION_READY && (double)s->token_exp <= now)
            session_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_TOKEN_EXPIRED,
                          "token expired");
    }
}

/* Re-reads the stored role of every user with a session, in one job. */
static void recheck_users(struct hub *h, double now)
{
    if (h->user_check_in_flight || now - h->last_user_check < HUB_USER_RECHECK_S ||
        h->users.count == 0)
        return;
    h->last_user_check = now;
    long long *ids = malloc(h->users.count * sizeof *ids);
    if (!ids)
        return; /* tried again on the next tick */
    int n = 0;
    for (size_t i = 0; i < h->users.cap; i++)
        if (h->users.keys[i])
            ids[n++] = h->users.keys[i];
    struct job *j = job_with_ids(JOB_USERS, ids, n);
    free(ids);
    if (j) {
        j->sweep = true;
        h->user_check_in_flight = true;
    }
    submit(h, j);
}

void hub_tick(struct hub *h, double now)
{
    flush_usage(h, now);
    recheck_users(h, now);
    if (now - h->last_scan >= SESSION_SCAN_S) {
        h->last_scan = now;
        scan_deadlines(h, now);
    }
}

void hub_drain(struct hub *h, double now)
{
    pthread_mutex_lock(&h->inbox_mutex);
    struct job_queue batch = h->inbox;
    h->inbox = (struct job_queue){0};
    pthread_mutex_unlock(&h->inbox_mutex);

    struct job *j;
    while ((j = queue_pop(&batch)) != NULL) {
        switch (j->kind) {
        case JOB_AUTH:
            apply_auth(h, j, now);
            break;
        case JOB_REPLAY:
            apply_replay(h, j);
            break;
        case JOB_ALERTS:
            apply_alerts(h, j);
            break;
        case JOB_OWNERS:
            apply_owners(h, j);
            break;
        case JOB_USAGE:
            apply_usage(h, j);
            break;
        case JOB_USERS:
            apply_users(h, j);
            break;
        case JOB_EVENTS:
            apply_events(h, j, now);
            break;
        }
        job_free(j);
    }
}

void hub_count_refused(struct hub *h)
{
    atomic_fetch_add(&h->closed[HUB_CLOSED_SESSION_CAP], 1);
}

void hub_count_dropped(struct hub *h, unsigned long n)
{
    atomic_fetch_add(&h->messages_dropped, n);
}

/* ======================================================================== */
/* Public: any thread                                                        */
/* ======================================================================== */

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
    post_inbox(h, j);
}

void hub_on_listener_events(void *hub, struct listener_events *ev)
{
    hub_post_events(hub, ev);
}

static void run_job(struct hub *h, struct job *j)
{
    static void (*const RUN[])(struct hub *, struct job *) = {
        [JOB_AUTH] = run_auth,     [JOB_REPLAY] = run_replay, [JOB_ALERTS] = run_alerts,
        [JOB_OWNERS] = run_owners, [JOB_USAGE] = run_usage,   [JOB_USERS] = run_users,
    };
    RUN[j->kind](h, j);
    post_inbox(h, j);
}

bool hub_work_once(struct hub *h)
{
    pthread_mutex_lock(&h->jobs_mutex);
    struct job *j = queue_pop(&h->jobs);
    pthread_mutex_unlock(&h->jobs_mutex);
    if (j)
        run_job(h, j);
    return j != NULL;
}

/* One worker: jobs run in the order they were submitted, which is what keeps
 * replay pages and live alerts in order (see hub.h). */
static void *worker_main(void *arg)
{
    struct hub *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->jobs_mutex);
        while (!h->jobs.head && !h->stopping)
            pthread_cond_wait(&h->jobs_cond, &h->jobs_mutex);
        struct job *j = h->stopping ? NULL : queue_pop(&h->jobs);
        pthread_mutex_unlock(&h->jobs_mutex);
        if (!j)
            return NULL;
        run_job(h, j);
    }
}

struct hub *hub_create(const struct hub_limits *limits, const struct hub_store *store)
{
    struct hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->limits = *limits;
    h->store = *store;
    pthread_mutex_init(&h->jobs_mutex, NULL);
    pthread_cond_init(&h->jobs_cond, NULL);
    pthread_mutex_init(&h->inbox_mutex, NULL);
    return h;
}

void hub_set_transport(struct hub *h, const struct hub_transport *transport)
{
    h->transport = *transport;
}

bool hub_start(struct hub *h)
{
    h->stopping = false;
    h->worker_running = pthread_create(&h->worker, NULL, worker_main, h) == 0;
    return h->worker_running;
}

void hub_stop(struct hub *h)
{
    if (!h || !h->worker_running)
        return;
    pthread_mutex_lock(&h->jobs_mutex);
    h->stopping = true;
    pthread_cond_broadcast(&h->jobs_cond);
    pthread_mutex_unlock(&h->jobs_mutex);
    pthread_join(h->worker, NULL);
    h->worker_running = false;
}

static void free_queue(struct job_queue *q)
{
    struct job *j;
    while ((j = queue_pop(q)) != NULL)
        job_free(j);
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    hub_stop(h);
    free_queue(&h->jobs);
    free_queue(&h->inbox);
    /* Sessions are closed by the transport before this; entries left behind
     * would be a bug upstream, but are still freed. */
    for (size_t i = 0; i < h->sessions.cap; i++)
        if (h->sessions.keys[i])
            hub_session_closed(h, h->sessions.vals[i], HUB_CLOSED_SHUTDOWN);
    idmap_free(&h->sessions);
    idmap_free(&h->users);
    idmap_free(&h->devices);
    free(h->dirty);
    pthread_mutex_destroy(&h->jobs_mutex);
    pthread_cond_destroy(&h->jobs_cond);
    pthread_mutex_destroy(&h->inbox_mutex);
    free(h);
}

void hub_render_metrics(struct hub *h, char **buf, size_t *len, size_t *cap)
{
    if (!h)
        return;
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
                   "# HELP wattline_ws_messages_dropped_total Messages not sent because the "
                   "session was closing or its queue was full.\n"
                   "# TYPE wattline_ws_messages_dropped_total counter\n"
                   "wattline_ws_messages_dropped_total %lu\n"
                   "# HELP wattline_ws_sessions_closed_total WebSocket sessions ended, by "
                   "reason.\n"
                   "# TYPE wattline_ws_sessions_closed_total counter\n",
                   atomic_load(&h->open_sessions), atomic_load(&h->alerts_delivered),
                   atomic_load(&h->usage_sent), atomic_load(&h->messages_dropped));
    for (int r = HUB_CLOSED_PEER; r < HUB_CLOSED_REASONS; r++)
        metrics_printf(buf, len, cap, "wattline_ws_sessions_closed_total{reason=\"%s\"} %lu\n",
                       CLOSE_REASON_LABEL[r], atomic_load(&h->closed[r]));
}
