/* session_auth: how a session gets and keeps its identity. The first auth
 * (messages that arrive while the token is checked are held, then handled in
 * order), a fresh token later (re-auth), and the deadlines: no auth within
 * HUB_AUTH_TIMEOUT_S, or a token that ran out. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

void session_auth_reject(struct hub *h, struct hub_session *s)
{
    registry_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED, "unauthorized");
}

void session_auth_begin(struct hub *h, struct hub_session *s, const struct in_auth *auth)
{
    struct job *j = job_new(JOB_AUTH);
    if (j && !(j->token = strdup(auth->token))) {
        free(j);
        j = NULL;
    }
    if (!j) {
        registry_close_for_memory(h, s);
        return;
    }
    j->session_id = s->id;
    if (s->state == SESSION_READY) {
        j->reauth = true;
        s->reauth_in_flight = true;
    } else {
        s->state = SESSION_AUTHENTICATING;
        if (auth->has_since)
            replay_start(s, auth->since_alert_id);
    }
    job_submit(h, j);
}

void session_auth_begin_device(struct hub *h, struct hub_session *s, const char *device_token)
{
    struct job *j = job_new(JOB_AUTH);
    if (j && !(j->token = strdup(device_token))) {
        free(j);
        j = NULL;
    }
    if (!j) {
        registry_close_for_memory(h, s);
        return;
    }
    j->session_id = s->id;
    j->device = true;
    s->state = SESSION_AUTHENTICATING;
    job_submit(h, j);
}

bool session_auth_hold(struct hub_session *s, const char *text, size_t len)
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

void session_auth_forget(struct hub_session *s)
{
    for (int i = 0; i < s->npending; i++)
        free(s->pending[i].text);
    s->npending = 0;
}

void session_auth_run(struct hub *h, struct job *j)
{
    if (j->device)
        j->status = h->store.authenticate_device(h->store.ctx, j->token, &j->caller);
    else
        j->status = h->store.authenticate(h->store.ctx, j->token, &j->caller);
}

/* A device session: joins its device's list, says ready, gets its commands.
 * A device token does not expire; the session lasts until either side
 * closes it. */
static void session_auth_become_device(struct hub *h, struct hub_session *s, const struct caller *c)
{
    s->device_id = c->device_id;
    s->token_exp = LLONG_MAX;
    s->kind = SESSION_KIND_DEVICE;
    s->state = SESSION_READY;
    if (!commands_add_device(h, s)) {
        registry_close_for_memory(h, s);
        return;
    }
    struct out_message ready = {.type = OUT_READY, .u.ready.device_id = s->device_id};
    protocol_send(h, s, &ready);
}

/* Joins the user's sessions and says ready; then the replay, if asked for. */
static void session_auth_become_ready(struct hub *h, struct hub_session *s, const struct caller *c)
{
    s->user_id = c->user_id;
    s->role = c->role;
    s->token_exp = c->token_exp;
    if (!registry_add_user(h, s)) {
        s->state = SESSION_AUTHENTICATING; /* not in the user list: nothing to undo */
        registry_close_for_memory(h, s);
        return;
    }
    s->state = SESSION_READY;
    s->kind = SESSION_KIND_USER;
    struct out_message ready = {.type = OUT_READY, .u.ready.user_id = s->user_id};
    protocol_send(h, s, &ready);
    if (s->replaying)
        replay_request_page(h, s);
}

static void session_auth_apply_first(struct hub *h, struct hub_session *s, struct job *j,
                                     double now)
{
    bool bad =
        j->status != STATUS_OK && j->status != STATUS_UNAVAILABLE && j->status != STATUS_INTERNAL;
    /* The verifier allows clock skew; a session does not outlive its token. */
    if (bad || (j->status == STATUS_OK && !j->device && (double)j->caller.token_exp <= now)) {
        session_auth_reject(h, s);
        return;
    }
    if (j->status != STATUS_OK) {
        registry_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE,
                       "database unavailable");
        return;
    }
    if (!j->device &&
        registry_user_session_count(h, j->caller.user_id) >= h->limits.max_sessions_per_user) {
        registry_close(h, s, HUB_CLOSE_CODE_TOO_MANY, HUB_CLOSED_USER_CAP, "too many sessions");
        return;
    }
    /* Out of its address's quota, into the authenticated total. */
    if (!registry_promote(h, s)) {
        registry_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_SESSION_CAP, "server full");
        return;
    }
    if (j->device)
        session_auth_become_device(h, s, &j->caller);
    else
        session_auth_become_ready(h, s, &j->caller);
    /* Messages that arrived while the token was checked, in order. */
    for (int i = 0; i < s->npending; i++) {
        if (s->state == SESSION_READY)
            protocol_dispatch(h, s, s->pending[i].text, s->pending[i].len, now);
        free(s->pending[i].text);
    }
    s->npending = 0;
}

static void session_auth_apply_re(struct hub *h, struct hub_session *s, struct job *j, double now)
{
    s->reauth_in_flight = false;
    if (j->status == STATUS_UNAVAILABLE || j->status == STATUS_INTERNAL)
        return; /* the old token still runs until it expires */
    if (j->status != STATUS_OK || j->caller.user_id != s->user_id ||
        (double)j->caller.token_exp <= now) {
        session_auth_reject(h, s);
        return;
    }
    if (j->caller.token_exp > s->token_exp)
        s->token_exp = j->caller.token_exp;
    recheck_set_role(h, s, j->caller.role);
}

void session_auth_apply(struct hub *h, struct job *j, double now)
{
    struct hub_session *s = registry_session(h, j->session_id);
    if (!s || s->state == SESSION_CLOSING)
        return;
    if (j->reauth && s->state == SESSION_READY)
        session_auth_apply_re(h, s, j, now);
    else if (!j->reauth && s->state == SESSION_AUTHENTICATING)
        session_auth_apply_first(h, s, j, now);
}

void session_auth_scan(struct hub *h, double now)
{
    if (now - h->last_scan < HUB_SESSION_SCAN_S)
        return;
    h->last_scan = now;
    for (size_t i = 0; i < h->sessions.cap; i++) {
        struct hub_session *s = h->sessions.keys[i] ? h->sessions.vals[i] : NULL;
        if (!s)
            continue;
        bool authless = s->state == SESSION_AUTH_WAIT || s->state == SESSION_AUTHENTICATING;
        if (authless && now - s->opened_at >= HUB_AUTH_TIMEOUT_S)
            registry_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_TIMEOUT,
                           "auth timeout");
        else if (s->state == SESSION_READY && (double)s->token_exp <= now)
            registry_close(h, s, HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_TOKEN_EXPIRED,
                           "token expired");
    }
}
