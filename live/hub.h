/* hub: the WebSocket sessions and the typed messages between them and the
 * rest of Wattline. Knows nothing about libwebsockets: a transport (server/
 * ws.c) feeds it opened sessions, complete text messages and closes, and
 * gives it a way to queue text and close a session.
 *
 * Threads. Everything named "transport thread" below runs on the one thread
 * that owns the sockets; the session registry lives there and is never
 * locked. Database work (authentication, replay, alert and usage reads) runs
 * on the hub's worker thread, which hands results back through a locked
 * queue and transport->wake(); the transport then calls hub_drain(). Other
 * threads (the LISTEN thread) only call hub_post_events().
 *
 * Delivery. An alert goes to the READY sessions of the device's current
 * owner, each alert id at most once per session and in increasing id order
 * (a session remembers the last id it was sent). A session that asked for a
 * replay (since_alert_id) gets the stored alerts first, a page at a time as
 * its queue drains; live alerts are held back until the replay has caught
 * up. One worker thread keeps the two in order: a replay page read after an
 * alert committed contains it, and an alert read after the page arrives
 * after it. A session whose queue is already long when live alerts come
 * (a backlog upload can raise thousands at once) switches to the same paced
 * replay from its last id instead of queueing them all.
 *
 * Users. The stored role of every user with a session is re-read every
 * second (and at once on a users_changed notification): a deleted user's
 * sessions close with 4401, a demoted admin keeps only what a client may see.
 *
 * Chat. chat.send, chat.read and chat.typing are checked and stored (or,
 * for typing, only announced) by the worker; what changed comes back to every
 * instance through the listener (ids only) and goes to the sessions of the
 * conversation's client and of every admin (messages), or to the other side
 * only (typing, reads). See live/chat.c.
 *
 * Usage. Readings make the listener report device ids; devices some local
 * session subscribed to are read at most once per second each, and the
 * result goes to subscribers allowed to see the device at that moment (an
 * admin, or the owner read with the usage), so an owner change stops the old
 * owner's stream at once.
 *
 * Devices. A session whose auth carries a device_token is a device's: it
 * gets {"type":"command"} for each deliverable command of its device (the
 * worker claims them, db_commands_claim: at least once, locked for
 * COMMAND_LOCK_S) and answers with command_result; it is sent nothing else.
 * Users' sessions get {"type":"command"} for each command created or
 * changed, if they own its device or are admins.
 *
 * The modules behind this header, the message tables and the limits they
 * keep are described in hub_internal.h, which only live/ includes.
 */
#ifndef WATTLINE_HUB_H
#define WATTLINE_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "../db/alerts.h"
#include "../db/commands.h"
#include "../db/chat.h"
#include "../db/listener.h"
#include "../db/notifications.h"
#include "../db/usage.h"
#include "../api/handler.h"

/* WebSocket close codes the hub uses (1xxx are RFC 6455, 4xxx are ours). */
enum {
    HUB_CLOSE_CODE_POLICY = 1008,       /* flooding */
    HUB_CLOSE_CODE_TOO_BIG = 1009,      /* message over 64 KiB */
    HUB_CLOSE_CODE_GOING_AWAY = 1001,   /* server shutting down */
    HUB_CLOSE_CODE_TRY_LATER = 1013,    /* server full, address quota, database unavailable */
    HUB_CLOSE_CODE_UNAUTHORIZED = 4401, /* missing, bad or expired auth; user deleted */
    HUB_CLOSE_CODE_TOO_MANY = 4429,     /* the user has too many sessions */
};

/* Why a session ended (the /metrics label). */
enum hub_close_reason {
    HUB_CLOSED_NONE = 0,
    HUB_CLOSED_PEER,          /* the client left, or stopped answering pings */
    HUB_CLOSED_AUTH_TIMEOUT,  /* no auth within 10 seconds */
    HUB_CLOSED_AUTH_FAILED,   /* bad token, or a first message that is not auth */
    HUB_CLOSED_TOKEN_EXPIRED, /* the token ran out without a fresh auth */
    HUB_CLOSED_USER_DELETED,
    HUB_CLOSED_TOO_LARGE, /* message over 64 KiB */
    HUB_CLOSED_FLOOD,
    HUB_CLOSED_SLOW_CONSUMER, /* its outgoing queue overflowed */
    HUB_CLOSED_SESSION_CAP,   /* ws_max_sessions reached */
    HUB_CLOSED_USER_CAP,      /* ws_max_sessions_per_user reached */
    HUB_CLOSED_UNAUTH_QUOTA,  /* ws_max_unauth_per_addr reached */
    HUB_CLOSED_UNAVAILABLE,   /* the database could not check the token */
    HUB_CLOSED_SHUTDOWN,
    HUB_CLOSED_REASONS
};

/* The database operations the worker needs; the real ones are in
 * hub_store.c, the unit tests bring fakes. Called on the worker thread. */
struct hub_store {
    /* STATUS_UNAUTHORIZED for a bad token or a deleted user. */
    enum status (*authenticate)(void *ctx, const char *token, struct caller *out);
    /* Alerts of owner_id's devices with id > since_id, oldest first. */
    enum status (*alerts_since)(void *ctx, long long owner_id, long long since_id, int limit,
                                struct alert_list *out);
    enum status (*alerts_by_ids)(void *ctx, const long long *ids, int n, struct alert_list *out);
    enum status (*owners)(void *ctx, const long long *ids, int n, struct device_owner *out);
    enum status (*usage)(void *ctx, const long long *ids, int n, struct device_usage **out,
                         int *count);
    /* out[i]: the stored role of ids[i]; ROLE_NONE for a deleted user. */
    enum status (*user_roles)(void *ctx, const long long *ids, int n, enum role *out);
    /* A device token: STATUS_OK with out->device_id, else not a device's. */
    enum status (*authenticate_device)(void *ctx, const char *token, struct caller *out);
    /* As db_commands_by_ids, db_commands_claim (with COMMAND_LOCK_S) and
     * db_commands_answer (db/commands.h). */
    enum status (*commands_by_ids)(void *ctx, const long long *ids, int n,
                                   struct command_list *out);
    /* As db_commands_live_muted: who turned commands off for sessions. */
    enum status (*commands_live_muted)(void *ctx, const long long *ids, int n, long long **users,
                                       int *count);
    enum status (*commands_claim)(void *ctx, long long device_id, struct command_list *out);
    enum status (*commands_answer)(void *ctx, long long device_id, long long id,
                                   const struct command_answer *answer, struct command *out,
                                   bool *changed);
    /* The support chat (db/chat.h: each announces what it changed). */
    enum status (*chat_post)(void *ctx, const struct chat_post *in, struct chat_message *out,
                             int *retry_after_s);
    enum status (*chat_read)(void *ctx, const struct chat_read *in, struct chat_read_result *out);
    enum status (*chat_typing)(void *ctx, const struct chat_typing *in, int n, enum status *out);
    enum status (*chat_messages)(void *ctx, const long long *ids, int n,
                                 struct chat_message_list *out);
    enum status (*user_names)(void *ctx, const long long *ids, int n,
                              char (*out)[USER_NAME_MAX * 4 + 1]);
    /* The events with these ids meant for sessions (forecast, device_status);
     * NULL: none are read. */
    enum status (*notices)(void *ctx, const long long *ids, int n, struct notice_list *out);
    void *ctx;
};

/* The store backed by app->pool and app->authn. */
struct hub_store hub_store_for_app(struct app *app);

/* What the hub asks of the transport (transport thread, except wake). */
struct hub_transport {
    /* Queues one text frame on conn; false when conn's queue is full, in which
     * case the transport closes the session itself (HUB_CLOSED_SLOW_CONSUMER). */
    bool (*send)(void *conn, const char *text, size_t len);
    /* Messages queued on conn and not yet written. */
    size_t (*queued)(void *conn);
    /* Closes conn with a WebSocket close code. hub_session_closed() follows. */
    void (*close)(void *conn, int code, const char *reason);
    /* Any thread: make the transport thread call hub_drain() soon. */
    void (*wake)(void *ctx);
    void *ctx;
};

/* Authenticated sessions and sessions still waiting for their auth are
 * counted apart, so that sockets that never authenticate cannot keep users
 * out: the first are at most max_sessions in all, the second at most
 * max_unauth_per_addr per client address and, to bound what they hold,
 * max_sessions in all as well (a pool of their own). */
struct hub_limits {
    int max_sessions;          /* authenticated sessions; and, apart, unauthenticated ones */
    int max_sessions_per_user; /* authenticated sessions of one user */
    int max_unauth_per_addr;   /* sessions not yet authenticated, per client address */
    int command_lock_s;        /* COMMAND_LOCK_S: when a device's sent commands may go again */
};

/* Why hub_session_open() refused a connection: the close code and reason
 * text the transport closes it with (the refusal is already counted). */
struct hub_refusal {
    int code;
    const char *reason; /* a string literal */
};

/* The client address as text, as the transport settles it (today the peer;
 * an address given by a trusted proxy later). Longer is not an address. */
#define HUB_ADDR_MAX 64

struct hub;
struct hub_session;

/* Creates a hub (no threads yet). NULL when out of memory. */
struct hub *hub_create(const struct hub_limits *limits, const struct hub_store *store);
/* Sets the transport before any session opens. */
void hub_set_transport(struct hub *hub, const struct hub_transport *transport);
/* Starts the worker thread. */
bool hub_start(struct hub *hub);
/* Stops the worker thread (jobs still queued are dropped). Call before the
 * transport is destroyed: the worker wakes the transport. */
void hub_stop(struct hub *hub);
/* Frees the hub; every session must have been closed. NULL is a no-op. */
void hub_free(struct hub *hub);

/* ---- transport thread ---------------------------------------------------- */

/* A new connection (conn is the transport's handle, borrowed until
 * hub_session_closed) from the client at addr (borrowed; the canonical text
 * of an IP address, or NULL or "" when unknown: the unknown clients share one
 * quota). NULL when refused, with *refusal saying how the transport closes
 * it: 1013 when addr already has max_unauth_per_addr sessions waiting for
 * their auth, when the pool of such sessions is full, or when memory is
 * short. now is wall-clock seconds. */
struct hub_session *hub_session_open(struct hub *hub, void *conn, const char *addr, double now,
                                     struct hub_refusal *refusal);
/* One complete text message from the client. */
void hub_session_message(struct hub *hub, struct hub_session *s, const char *text, size_t len,
                         double now);
/* The transport's queue for s ran empty (resumes a paused replay). */
void hub_session_drained(struct hub *hub, struct hub_session *s);
/* The connection is gone; s is freed. reason is the transport's view
 * (HUB_CLOSED_PEER, _TOO_LARGE, _SLOW_CONSUMER, _SHUTDOWN); a close the hub
 * asked for keeps the hub's own reason. */
void hub_session_closed(struct hub *hub, struct hub_session *s, enum hub_close_reason reason);
/* Timers: auth timeouts, token expiry, usage coalescing. Call often (10/s). */
void hub_tick(struct hub *hub, double now);
/* Applies what other threads handed over (results, events). */
void hub_drain(struct hub *hub, double now);

/* Messages the transport threw away (a closing or overflowing session). */
void hub_count_dropped(struct hub *hub, unsigned long n);

/* ---- any thread ------------------------------------------------------------ */

/* Takes ownership of ev's arrays (the listener's on_events). */
void hub_post_events(struct hub *hub, struct listener_events *ev);

/* listener_events_fn adapter: ctx is the hub. */
void hub_on_listener_events(void *hub, struct listener_events *ev);

/* Runs one queued worker job on the calling thread; false when none was
 * queued. The worker thread loops on it; unit tests call it directly. */
bool hub_work_once(struct hub *hub);

/* Appends the WebSocket families in Prometheus text format. */
void hub_render_metrics(struct hub *hub, char **buf, size_t *len, size_t *cap);

#endif
