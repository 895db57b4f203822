/* registry: the hub's sessions (by id) and the READY sessions of each user
 * (by user id), the session caps, and closing. A session is counted in its
 * address's unauthenticated quota (unauth.c) until it authenticates, then in
 * the authenticated total. Transport thread only. */
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "hub_internal.h"

/* Idle sessions are most of the hub's memory (the bench holds 10,000 of
 * them): a field added to struct hub_session is paid that many times. */
_Static_assert(sizeof(struct hub_session) <= 264, "struct hub_session grew");

struct hub_session **registry_snapshot(const struct ptrvec *v, int *n)
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

/* Counts a refused connection and says how the transport closes it. */
static struct hub_session *registry_refuse(struct hub *h, struct hub_refusal *refusal,
                                           enum hub_close_reason reason, const char *text)
{
    atomic_fetch_add(&h->counters.closed[reason], 1);
    *refusal = (struct hub_refusal){.code = HUB_CLOSE_CODE_TRY_LATER, .reason = text};
    return NULL;
}

struct hub_session *registry_open(struct hub *h, void *conn, const char *addr, double now,
                                  struct hub_refusal *refusal)
{
    struct hub_session *s = calloc(1, sizeof *s);
    if (!s)
        return registry_refuse(h, refusal, HUB_CLOSED_UNAVAILABLE, "server busy");
    switch (unauth_take(h, s, addr)) {
    case UNAUTH_TAKEN:
        break;
    case UNAUTH_ADDR_FULL:
        free(s);
        return registry_refuse(h, refusal, HUB_CLOSED_UNAUTH_QUOTA,
                               "too many unauthenticated sessions");
    case UNAUTH_POOL_FULL:
        free(s);
        return registry_refuse(h, refusal, HUB_CLOSED_SESSION_CAP, "server full");
    case UNAUTH_NO_MEMORY:
        free(s);
        return registry_refuse(h, refusal, HUB_CLOSED_UNAVAILABLE, "server busy");
    }
    s->id = ++h->next_session_id;
    s->conn = conn;
    s->state = SESSION_AUTH_WAIT;
    s->kind = SESSION_KIND_UNAUTH;
    s->opened_at = now;
    s->flood_tokens = HUB_FLOOD_BURST;
    s->flood_at = now;
    if (!idmap_put(&h->sessions, s->id, s)) {
        unauth_release(h, s);
        free(s);
        return registry_refuse(h, refusal, HUB_CLOSED_UNAVAILABLE, "server busy");
    }
    h->nsessions++;
    atomic_fetch_add(&h->counters.open_sessions, 1);
    return s;
}

bool registry_promote(struct hub *h, struct hub_session *s)
{
    if (!s->unauth)
        return true; /* already counted in the total */
    if (h->nauthed >= h->limits.max_sessions)
        return false;
    unauth_release(h, s);
    h->nauthed++;
    return true;
}

struct hub_session *registry_session(struct hub *h, long long id)
{
    return idmap_get(&h->sessions, id);
}

struct user_entry *registry_user(struct hub *h, long long user_id)
{
    return user_id ? idmap_get(&h->users, user_id) : NULL;
}

bool registry_add_user(struct hub *h, struct hub_session *s)
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

static void registry_remove_user(struct hub *h, struct hub_session *s)
{
    struct user_entry *u = registry_user(h, s->user_id);
    if (!u)
        return;
    ptrvec_remove(&u->sessions, s);
    if (u->sessions.n == 0) {
        idmap_del(&h->users, u->user_id);
        free(u->sessions.items);
        free(u);
    }
}

int registry_user_session_count(struct hub *h, long long user_id)
{
    struct user_entry *u = idmap_get(&h->users, user_id);
    return u ? u->sessions.n : 0;
}

/* Takes s out of every delivery list (and frees its subscriptions). */
static void registry_detach(struct hub *h, struct hub_session *s)
{
    if (s->state == SESSION_READY && s->kind == SESSION_KIND_DEVICE)
        commands_detach(h, s);
    else if (s->state == SESSION_READY)
        registry_remove_user(h, s);
    usage_detach(h, s);
}

void registry_close(struct hub *h, struct hub_session *s, int code, enum hub_close_reason reason,
                    const char *text)
{
    if (s->state == SESSION_CLOSING)
        return;
    registry_detach(h, s);
    s->state = SESSION_CLOSING;
    s->reason = reason;
    h->transport.close(s->conn, code, text);
}

void registry_close_for_memory(struct hub *h, struct hub_session *s)
{
    log_error("hub: out of memory; closing a WebSocket session");
    registry_close(h, s, HUB_CLOSE_CODE_TRY_LATER, HUB_CLOSED_UNAVAILABLE, "server busy");
}

void registry_free(struct hub *h, struct hub_session *s, enum hub_close_reason reason)
{
    if (s->state != SESSION_CLOSING)
        registry_detach(h, s);
    enum hub_close_reason final = s->reason ? s->reason : reason ? reason : HUB_CLOSED_PEER;
    atomic_fetch_add(&h->counters.closed[final], 1);
    session_auth_forget(s);
    if (s->unauth)
        unauth_release(h, s);
    else
        h->nauthed--;
    idmap_del(&h->sessions, s->id);
    h->nsessions--;
    atomic_fetch_sub(&h->counters.open_sessions, 1);
    free(s);
}
