/* chat: the support chat on the live channel.
 *
 * Inbound (from protocol.c, transport thread): chat.send and chat.read are
 * stored by the worker, chat.typing is checked and announced by it; the
 * database is never touched here. A refused one gets an error; a stored
 * message gets chat.sent (it is committed by then).
 *
 * Outbound: every change is announced through NOTIFY after its commit, on
 * whichever instance made it (db/chat.h), and comes back here from the
 * listener, on every instance alike:
 *  - a message (ids only: the worker reads it) goes as chat.message to every
 *    session of the conversation's client and of every admin, except the
 *    session that sent it over this channel (it had chat.sent);
 *  - typing goes to the other side only (an admin's to the client's
 *    sessions, a client's to every admin's), with the typer's name, which the
 *    worker reads (names are not sent through NOTIFY);
 *  - a read goes to the other side only, and is announced only when it
 *    marked something newly read.
 * Admins are found by the role of their sessions, which recheck.c keeps. */
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../db/events.h"
#include "hub_internal.h"

typedef char user_name[USER_NAME_MAX * 4 + 1];

/* What a chat job carries; owned by its job (chat_job_free). */
struct chat_job {
    /* SEND */
    struct chat_post post;
    char *text;
    char *client_msg_id; /* JSON text, or NULL */
    struct chat_message message;
    int retry_after;
    /* READ */
    struct chat_read read;
    struct chat_read_result read_result;
    /* TYPING: a batch, and what the worker found for each */
    struct chat_typing *typing_items;
    long long *typing_sessions;
    enum status *typing_out;
    int ntyping_items;
    /* DELIVER: message tuples and typing tuples as announced (db/events.h) */
    long long *messages;
    int nmessages;
    long long *typing;
    int ntyping;
    struct chat_message_list found; /* the messages that still exist */
    user_name *names;               /* one per typing tuple */
    enum status typing_status;
};

void chat_job_free(struct chat_job *c)
{
    if (!c)
        return;
    free(c->text);
    free(c->client_msg_id);
    chat_message_clear(&c->message);
    free(c->messages);
    free(c->typing);
    chat_message_list_free(&c->found);
    free(c->names);
    free(c->typing_items);
    free(c->typing_sessions);
    free(c->typing_out);
    free(c);
}

/* A job of kind with an empty chat part for session s; NULL when out of memory. */
static struct job *chat_job_new(enum job_kind kind, const struct hub_session *s)
{
    struct job *j = job_new(kind);
    if (j && !(j->chat = calloc(1, sizeof *j->chat))) {
        job_free(j);
        return NULL;
    }
    if (j && s) {
        j->session_id = s->id;
        j->user_id = s->user_id;
    }
    return j;
}

/* The conversations a session's user may write in: 0 (all) for an admin. */
static long long chat_scope(const struct hub_session *s)
{
    return s->role == ROLE_ADMIN ? 0 : s->user_id;
}

static void chat_busy(struct hub *h, struct hub_session *s)
{
    protocol_send_error(h, s, "unavailable", "the server is short of memory; try again", NULL, 0);
}

/* ---- who gets what ------------------------------------------------------------- */

/* Whether u is an admin: sessions of one user share its stored role
 * (recheck.c sets them together), but a session authenticated since the
 * last re-read may be ahead, so any of them counts. */
static bool chat_is_admin(const struct user_entry *u)
{
    for (int i = 0; i < u->sessions.n; i++)
        if (((const struct hub_session *)u->sessions.items[i])->role == ROLE_ADMIN)
            return true;
    return false;
}

/* Whether anyone here should get something for client_id's conversation. */
static bool chat_has_recipient(struct hub *h, long long client_id, bool to_client, bool to_admins)
{
    if (to_client && registry_user(h, client_id))
        return true;
    for (size_t i = 0; to_admins && i < h->users.cap; i++)
        if (h->users.keys[i] && chat_is_admin(h->users.vals[i]))
            return true;
    return false;
}

/* Sends text (of type) to the READY sessions of client_id when to_client,
 * and of every admin when to_admins; except session skip (0: none). */
static void chat_fan_out(struct hub *h, enum out_type type, const char *text, long long client_id,
                         bool to_client, bool to_admins, long long skip)
{
    if (!text)
        return;
    for (size_t i = 0; i < h->users.cap; i++) {
        struct user_entry *u = h->users.keys[i] ? h->users.vals[i] : NULL;
        if (!u || !((to_client && u->user_id == client_id) || (to_admins && chat_is_admin(u))))
            continue;
        bool is_client = to_client && u->user_id == client_id;
        int n;
        /* A copy: a send that overflows a queue may close that session. */
        struct hub_session **targets = registry_snapshot(&u->sessions, &n);
        for (int k = 0; k < n; k++) {
            struct hub_session *s = targets[k];
            bool wanted = is_client || (to_admins && s->role == ROLE_ADMIN);
            if (wanted && s->state == SESSION_READY && s->id != skip &&
                protocol_send_text(h, s, type, text))
                atomic_fetch_add(&h->counters.chat_sent, 1);
        }
        free(targets);
    }
}

/* ---- chat.send ------------------------------------------------------------------ */

void chat_send(struct hub *h, struct hub_session *s, const struct in_chat_send *m)
{
    struct job *j = chat_job_new(JOB_CHAT_SEND, s);
    struct chat_job *c = j ? j->chat : NULL;
    if (c) {
        c->text = strdup(m->text);
        c->client_msg_id = m->client_msg_id ? strdup(m->client_msg_id) : NULL;
    }
    if (!c || !c->text || (m->client_msg_id && !c->client_msg_id)) {
        job_free(j);
        chat_busy(h, s);
        return;
    }
    c->post = (struct chat_post){
        .conversation_id = m->conversation_id,
        .owner_scope = chat_scope(s),
        .sender_id = s->user_id,
        .sender_role = s->role,
        .text = c->text,
        .origin_instance = h->instance_id,
        .origin_session = s->id,
    };
    job_submit(h, j);
}

void chat_run_send(struct hub *h, struct job *j)
{
    struct chat_job *c = j->chat;
    j->status = h->store.chat_post(h->store.ctx, &c->post, &c->message, &c->retry_after);
}

/* An error about a chat.* message of s: it names the conversation and, for
 * a chat.send, the client's id of the message. */
static void chat_send_error(struct hub *h, struct hub_session *s, const char *code,
                            const char *message, const char *field, long long conversation_id,
                            const char *client_msg_id, int retry_after)
{
    struct out_message m = {.type = OUT_ERROR,
                            .u.error = {.code = code,
                                        .message = message,
                                        .field = field,
                                        .conversation_id = conversation_id,
                                        .client_msg_id = client_msg_id,
                                        .retry_after = retry_after}};
    protocol_send(h, s, &m);
}

/* The answer to a chat.* message the worker could not act on. */
static void chat_send_failure(struct hub *h, struct hub_session *s, enum status st,
                              long long conversation_id, const char *client_msg_id)
{
    if (st == STATUS_NOT_FOUND)
        chat_send_error(h, s, "not_found", "no such conversation", "conversation_id",
                        conversation_id, client_msg_id, 0);
    else if (st == STATUS_INVALID)
        chat_send_error(h, s, "invalid_field", "text must be 1 to 4000 characters", "text",
                        conversation_id, client_msg_id, 0);
    else
        chat_send_error(h, s, "unavailable", "the database is unavailable; try again", NULL,
                        conversation_id, client_msg_id, 0);
}

void chat_apply_send(struct hub *h, struct job *j, double now)
{
    (void)now;
    struct chat_job *c = j->chat;
    struct hub_session *s = registry_session(h, j->session_id);
    if (!s || s->state != SESSION_READY || s->user_id != j->user_id)
        return; /* stored all the same: its user's other sessions get chat.message */
    if (j->status != STATUS_OK) {
        chat_send_failure(h, s, j->status, c->post.conversation_id, c->client_msg_id);
    } else if (c->retry_after > 0) {
        chat_send_error(h, s, "rate_limited", "too many messages; wait before sending more", NULL,
                        c->post.conversation_id, c->client_msg_id, c->retry_after);
    } else {
        struct out_message m = {
            .type = OUT_CHAT_SENT,
            .u.chat_sent = {.client_msg_id = c->client_msg_id, .message = &c->message}};
        protocol_send(h, s, &m);
    }
}

/* ---- chat.read ------------------------------------------------------------------ */

void chat_read(struct hub *h, struct hub_session *s, long long conversation_id, long long up_to_id)
{
    struct job *j = chat_job_new(JOB_CHAT_READ, s);
    if (!j) {
        chat_busy(h, s);
        return;
    }
    j->chat->read = (struct chat_read){.conversation_id = conversation_id,
                                       .owner_scope = chat_scope(s),
                                       .reader_id = s->user_id,
                                       .reader_side = s->role,
                                       .up_to_id = up_to_id};
    job_submit(h, j);
}

void chat_run_read(struct hub *h, struct job *j)
{
    j->status = h->store.chat_read(h->store.ctx, &j->chat->read, &j->chat->read_result);
}

/* A read is answered only when it failed: the other side hears of a
 * success. */
static void chat_answer_failure(struct hub *h, struct job *j, long long conversation_id)
{
    struct hub_session *s = registry_session(h, j->session_id);
    if (j->status != STATUS_OK && s && s->state == SESSION_READY && s->user_id == j->user_id)
        chat_send_failure(h, s, j->status, conversation_id, NULL);
}

void chat_apply_read(struct hub *h, struct job *j, double now)
{
    (void)now;
    chat_answer_failure(h, j, j->chat->read.conversation_id);
}

/* ---- chat.typing ----------------------------------------------------------------- */

/* Hands every typing waiting to the worker as one job (dropped when memory
 * is short: typing is a hint). */
static void chat_typing_submit(struct hub *h)
{
    struct chat_typing_batch *b = &h->typing;
    if (b->n == 0)
        return;
    struct job *j = chat_job_new(JOB_CHAT_TYPING, NULL);
    if (!j) {
        b->n = 0;
        return;
    }
    struct chat_job *c = j->chat;
    c->typing_items = malloc((size_t)b->n * sizeof *c->typing_items);
    c->typing_sessions = malloc((size_t)b->n * sizeof *c->typing_sessions);
    c->typing_out = calloc((size_t)b->n, sizeof *c->typing_out);
    if (!c->typing_items || !c->typing_sessions || !c->typing_out) {
        job_free(j);
        b->n = 0;
        return;
    }
    memcpy(c->typing_items, b->items, (size_t)b->n * sizeof *b->items);
    memcpy(c->typing_sessions, b->session_ids, (size_t)b->n * sizeof *b->session_ids);
    c->ntyping_items = b->n;
    b->n = 0;
    b->in_flight = true;
    job_submit(h, j);
}

/* Adds one typing to the batch; false when out of memory. */
static bool chat_typing_add(struct chat_typing_batch *b, const struct chat_typing *t,
                            long long session_id)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        struct chat_typing *items = realloc(b->items, (size_t)cap * sizeof *items);
        if (!items)
            return false;
        b->items = items;
        long long *ids = realloc(b->session_ids, (size_t)cap * sizeof *ids);
        if (!ids)
            return false;
        b->session_ids = ids;
        b->cap = cap;
    }
    b->items[b->n] = *t;
    b->session_ids[b->n++] = session_id;
    return true;
}

void chat_typing(struct hub *h, struct hub_session *s, long long conversation_id, double now)
{
    struct user_entry *u = registry_user(h, s->user_id);
    if (u && u->typing_conversation == conversation_id &&
        now - u->typing_at < HUB_TYPING_INTERVAL_S)
        return; /* the other side still shows "typing…" from the last one */
    const struct chat_typing t = {.conversation_id = conversation_id,
                                  .owner_scope = chat_scope(s),
                                  .sender_id = s->user_id,
                                  .sender_side = s->role};
    if (!chat_typing_add(&h->typing, &t, s->id))
        return; /* typing is a hint: losing one costs nothing */
    if (u) {
        u->typing_conversation = conversation_id;
        u->typing_at = now;
    }
    if (!h->typing.in_flight)
        chat_typing_submit(h);
}

void chat_run_typing(struct hub *h, struct job *j)
{
    struct chat_job *c = j->chat;
    j->status =
        h->store.chat_typing(h->store.ctx, c->typing_items, c->ntyping_items, c->typing_out);
}

void chat_apply_typing(struct hub *h, struct job *j, double now)
{
    (void)now;
    struct chat_job *c = j->chat;
    h->typing.in_flight = false;
    for (int i = 0; i < c->ntyping_items; i++) {
        struct hub_session *s = registry_session(h, c->typing_sessions[i]);
        enum status st = j->status == STATUS_OK ? c->typing_out[i] : j->status;
        if (st != STATUS_OK && s && s->state == SESSION_READY &&
            s->user_id == c->typing_items[i].sender_id)
            chat_send_failure(h, s, st, c->typing_items[i].conversation_id, NULL);
    }
    chat_typing_submit(h); /* what came while this batch was out */
}

void chat_free(struct hub *h)
{
    free(h->typing.items);
    free(h->typing.session_ids);
    h->typing = (struct chat_typing_batch){0};
    for (size_t i = 0; i < h->typing_seen.cap; i++)
        if (h->typing_seen.keys[i])
            free(h->typing_seen.vals[i]);
    idmap_free(&h->typing_seen);
}

/* ---- announcements ----------------------------------------------------------------- */

/* Reads need nothing from the database: the tuple has it all. */
static void chat_deliver_reads(struct hub *h, const long long *t, int n)
{
    for (int i = 0; i < n; i++, t += EVENTS_CHAT_READ_LEN) {
        struct out_message m = {
            .type = OUT_CHAT_READ,
            .u.chat_read = {
                .conversation_id = t[0], .reader_id = t[2], .up_to_id = t[4], .read_at = t[5]}};
        char *text = protocol_render(&m);
        bool by_admin = t[3] == ROLE_ADMIN;
        chat_fan_out(h, OUT_CHAT_READ, text, t[1], by_admin, !by_admin, 0);
        free(text);
    }
}

/* Copies the tuples (of len integers, the client's id at index client_at)
 * that someone here should hear of; messages go to both sides, typing to the
 * side other than the typer's (its role at index 3). */
static long long *chat_local_tuples(struct hub *h, const long long *t, int n, int len, bool typing,
                                    int *kept)
{
    *kept = 0;
    long long *copy = n ? malloc((size_t)n * (size_t)len * sizeof *copy) : NULL;
    for (int i = 0; copy && i < n; i++, t += len) {
        bool by_admin = typing && t[3] == ROLE_ADMIN;
        bool to_client = !typing || by_admin, to_admins = !typing || !by_admin;
        if (chat_has_recipient(h, t[1], to_client, to_admins))
            memcpy(&copy[(size_t)(*kept)++ * (size_t)len], t, (size_t)len * sizeof *t);
    }
    return copy;
}

void chat_on_events(struct hub *h, const struct listener_events *ev)
{
    if (h->users.count == 0)
        return; /* nobody here to tell */
    chat_deliver_reads(h, ev->chat_reads, ev->nchat_reads);
    if (ev->nchat_messages == 0 && ev->nchat_typing == 0)
        return;
    struct job *j = chat_job_new(JOB_CHAT_DELIVER, NULL);
    struct chat_job *c = j ? j->chat : NULL;
    if (c) {
        c->messages = chat_local_tuples(h, ev->chat_messages, ev->nchat_messages,
                                        EVENTS_CHAT_MESSAGE_LEN, false, &c->nmessages);
        c->typing = chat_local_tuples(h, ev->chat_typing, ev->nchat_typing, EVENTS_CHAT_TYPING_LEN,
                                      true, &c->ntyping);
    }
    if (!c || (ev->nchat_messages && !c->messages) || (ev->nchat_typing && !c->typing)) {
        log_error("hub: out of memory; chat messages were not relayed");
        job_free(j);
        return;
    }
    if (c->nmessages == 0 && c->ntyping == 0) {
        job_free(j); /* none of it is for anyone here: nothing to read */
        return;
    }
    job_submit(h, j);
}

void chat_run_deliver(struct hub *h, struct job *j)
{
    struct chat_job *c = j->chat;
    j->status = STATUS_OK;
    if (c->nmessages) {
        long long *ids = malloc((size_t)c->nmessages * sizeof *ids);
        for (int i = 0; ids && i < c->nmessages; i++)
            ids[i] = c->messages[i * EVENTS_CHAT_MESSAGE_LEN];
        j->status = ids ? h->store.chat_messages(h->store.ctx, ids, c->nmessages, &c->found)
                        : STATUS_INTERNAL;
        free(ids);
    }
    c->typing_status = STATUS_INTERNAL;
    if (c->ntyping && (c->names = calloc((size_t)c->ntyping, sizeof *c->names))) {
        long long *ids = malloc((size_t)c->ntyping * sizeof *ids);
        for (int i = 0; ids && i < c->ntyping; i++)
            ids[i] = c->typing[i * EVENTS_CHAT_TYPING_LEN + 2];
        c->typing_status =
            ids ? h->store.user_names(h->store.ctx, ids, c->ntyping, c->names) : STATUS_INTERNAL;
        free(ids);
    }
}

/* The session that sent message id over this instance's channel, or 0. */
static long long chat_origin(const struct hub *h, const struct chat_job *c, long long id)
{
    for (int i = 0; i < c->nmessages; i++) {
        const long long *t = &c->messages[i * EVENTS_CHAT_MESSAGE_LEN];
        if (t[0] == id)
            return t[2] == h->instance_id ? t[3] : 0;
    }
    return 0;
}

/* When one sender typed last, as passed on here. */
struct typing_seen {
    long long conversation_id;
    double at;
};

/* Forgets senders whose last typing is older than the interval. */
static void chat_typing_seen_prune(struct hub *h, double now)
{
    long long *stale = malloc(h->typing_seen.count * sizeof *stale);
    size_t n = 0;
    for (size_t i = 0; stale && i < h->typing_seen.cap; i++) {
        const struct typing_seen *t = h->typing_seen.keys[i] ? h->typing_seen.vals[i] : NULL;
        if (t && now - t->at >= HUB_TYPING_INTERVAL_S)
            stale[n++] = h->typing_seen.keys[i];
    }
    /* Deleted after the scan: a deletion moves other entries of the table. */
    for (size_t i = 0; i < n; i++) {
        free(idmap_get(&h->typing_seen, stale[i]));
        idmap_del(&h->typing_seen, stale[i]);
    }
    free(stale);
}

/* Whether sender's typing in conversation_id may be passed on now. Every
 * instance receives the same stream of announcements and throttles it
 * alike, so a user typing in sessions on two instances is passed on once
 * per interval as well. */
static bool chat_typing_due(struct hub *h, long long sender, long long conversation_id, double now)
{
    struct typing_seen *t = idmap_get(&h->typing_seen, sender);
    if (t && t->conversation_id == conversation_id && now - t->at < HUB_TYPING_INTERVAL_S)
        return false;
    if (!t) {
        if (h->typing_seen.count >= HUB_TYPING_SEEN_MAX)
            chat_typing_seen_prune(h, now);
        if (!(t = malloc(sizeof *t)) || !idmap_put(&h->typing_seen, sender, t)) {
            free(t);
            return true; /* passed on unthrottled rather than lost */
        }
    }
    t->conversation_id = conversation_id;
    t->at = now;
    return true;
}

void chat_apply_deliver(struct hub *h, struct job *j, double now)
{
    struct chat_job *c = j->chat;
    if (j->status != STATUS_OK)
        log_warn("hub: could not read %d announced chat message(s); clients see them on their "
                 "next read",
                 c->nmessages);
    for (int i = 0; i < c->found.count; i++) {
        const struct chat_message *msg = &c->found.items[i];
        struct out_message m = {.type = OUT_CHAT_MESSAGE, .u.chat_message.message = msg};
        char *text = protocol_render(&m);
        chat_fan_out(h, OUT_CHAT_MESSAGE, text, msg->client_id, true, true,
                     chat_origin(h, c, msg->id));
        free(text);
    }
    if (c->ntyping && c->typing_status != STATUS_OK) {
        log_warn("hub: could not read the names of %d typing user(s)", c->ntyping);
        return;
    }
    for (int i = 0; i < c->ntyping; i++) {
        const long long *t = &c->typing[i * EVENTS_CHAT_TYPING_LEN];
        if (!chat_typing_due(h, t[2], t[0], now))
            continue;
        struct out_message m = {
            .type = OUT_CHAT_TYPING,
            .u.chat_typing = {.conversation_id = t[0], .user_id = t[2], .name = c->names[i]}};
        char *text = protocol_render(&m);
        bool by_admin = t[3] == ROLE_ADMIN;
        chat_fan_out(h, OUT_CHAT_TYPING, text, t[1], by_admin, !by_admin, 0);
        free(text);
    }
}
