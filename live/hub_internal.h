/* hub_internal: what the modules of live/ share with one another.
 *
 * Never included outside live/. The exceptions are live's own tests
 * (tests/unit/test_hub*.c, tests/fuzz/fuzz_hub.c), which drive the modules
 * white-box; the transport and every other layer see only hub.h.
 *
 * Module map, one job each, in the order a message flows through them:
 *
 *   hub.c          the public entry points: lifecycle, tick, drain, events, metrics
 *   protocol.c     the wire: the inbound message table and its dispatcher, the
 *                  outbound render table, the flood limit. The only module that
 *                  reads or writes JSON.
 *   session_auth.c first auth, re-auth, messages held meanwhile, deadlines
 *   registry.c     sessions and the per-user lists; caps; closing
 *   unauth.c       sessions not yet authenticated, counted per client address
 *   replay.c       alert delivery: live alerts and paced replay
 *   usage.c        subscriptions and once-a-second usage coalescing
 *   recheck.c      stored roles re-read: deleted users, demoted admins
 *   commands.c     commands: device sessions (claim, push, answers) and users' status
 *   chat.c         the support chat: send, read, typing, and their fan-out
 *   jobs.c         the worker thread, its queues, and the job table (run, apply)
 *
 * Threads: everything here runs on the transport thread, except the run_*
 * functions of the job table (the worker) and jobs_post_inbox (any thread).
 */
#ifndef WATTLINE_HUB_INTERNAL_H
#define WATTLINE_HUB_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "../base/idmap.h"
#include "hub.h"

#define HUB_AUTH_TIMEOUT_S    10.0
#define HUB_USAGE_INTERVAL_S  1.0  /* at most one usage message per device per second */
#define HUB_MAX_SUBSCRIPTIONS 256  /* per session */
#define HUB_REPLAY_PAGE       200  /* alerts per replay read */
#define HUB_PENDING_MAX       8    /* messages held while an auth is checked */
#define HUB_FLOOD_RATE        20.0 /* inbound messages per second, sustained */
#define HUB_FLOOD_BURST       60.0 /* and in a burst */
#define HUB_LIVE_BACKLOG      256  /* queued messages past which live alerts are paced */
#define HUB_USER_RECHECK_S    1.0  /* sessions' users are re-read this often */
#define HUB_TOKEN_MAX         8192 /* longer than any token we issue */
#define HUB_SESSION_SCAN_S    0.25 /* auth and expiry deadlines are checked this often */
#define HUB_TYPING_INTERVAL_S 2.0  /* a user's typing is passed on at most this often */
#define HUB_CLIENT_MSG_ID_MAX 128  /* bytes of a chat.send's client_msg_id string */
#define HUB_TYPING_SEEN_MAX   4096 /* typing senders remembered before the stale ones go */

/* ======================================================================== */
/* Sessions                                                                  */
/* ======================================================================== */

enum session_state {
    SESSION_AUTH_WAIT,      /* connected; the first message must be auth */
    SESSION_AUTHENTICATING, /* the token is being checked */
    SESSION_READY,
    SESSION_CLOSING, /* the hub asked the transport to close it */
};

/* Who is at the other end, settled by the auth. The kind decides which
 * inbound messages a session may send and which outbound ones it may get
 * (the two tables of protocol.c), and how a refused message is answered.
 * A device session (issue 16) is one more kind: SESSION_KIND_DEVICE here,
 * KIND_BIT_DEVICE below, a row in protocol.c's kind table, and the bit in
 * the rows of the messages it may send or receive. */
enum session_kind {
    SESSION_KIND_UNAUTH, /* not authenticated yet: it may only send auth */
    SESSION_KIND_USER,   /* a user's (client or admin) */
    SESSION_KIND_DEVICE, /* a device's: commands and their answers, nothing else */
    SESSION_KINDS
};

/* Sets of kinds, for the message tables. */
#define KIND_BIT_UNAUTH (1u << SESSION_KIND_UNAUTH)
#define KIND_BIT_USER   (1u << SESSION_KIND_USER)
#define KIND_BIT_DEVICE (1u << SESSION_KIND_DEVICE)

struct unauth_entry; /* unauth.c */

struct pending_message {
    char *text; /* owned; freed when dispatched or when the session ends */
    size_t len;
};

/* One per connection; owned by the registry (registry_open .. registry_free).
 * Idle sessions are most of the memory the hub uses: no field here may grow
 * with what the session does, beyond the subscriptions it asks for. */
struct hub_session {
    long long id;
    void *conn; /* the transport's; borrowed */
    enum session_state state;
    enum session_kind kind; /* fills state's padding: no size change */
    double opened_at;
    long long user_id;
    enum role role;
    bool reauth_in_flight; /* in role's padding */
    long long token_exp;
    /* unauth.c: the address count s is in until it authenticates; NULL once
     * it did (it is then in the authenticated total) */
    struct unauth_entry *unauth;

    /* A user session's replay position, or a device session's device: the
     * two kinds never share a session, and a field more is paid per session. */
    union {
        long long last_alert_id; /* replay.c: the highest id sent; nothing at or below is */
        long long device_id;     /* commands.c: SESSION_KIND_DEVICE */
    };
    /* replay.c */
    bool replaying;     /* live alerts wait until the replay caught up */
    bool replay_paused; /* a full page was queued; the next waits for the drain */
    long long replay_cursor;

    /* usage.c; grown on demand: most sessions subscribe to few devices */
    long long *subs;
    int nsubs, subs_cap;

    /* session_auth.c */
    struct pending_message pending[HUB_PENDING_MAX];
    int npending;

    /* protocol.c */
    double flood_tokens, flood_at;
    enum hub_close_reason reason;
};

/* The READY sessions of one user (registry.c). */
struct user_entry {
    long long user_id;
    struct ptrvec sessions; /* borrowed hub_session pointers */
    /* chat.c: the user's last typing passed on, for the throttle */
    long long typing_conversation;
    double typing_at;
};

/* ======================================================================== */
/* Jobs                                                                      */
/* ======================================================================== */

/* One row each in jobs.c's table: what the worker runs, and what the
 * transport thread applies with the result. */
enum job_kind {
    JOB_AUTH,    /* session_auth.c */
    JOB_REPLAY,  /* replay.c */
    JOB_ALERTS,  /* replay.c */
    JOB_OWNERS,  /* usage.c */
    JOB_USAGE,   /* usage.c */
    JOB_USERS,   /* recheck.c */
    JOB_EVENTS,  /* hub.c; from the listener, skips the worker */
    JOB_NOTICES, /* notices.c */

    /* chat.c */
    JOB_CHAT_SEND,
    JOB_CHAT_READ,
    JOB_CHAT_TYPING,
    JOB_CHAT_DELIVER,

    /* commands.c */
    JOB_COMMANDS,      /* commands changed, for users */
    JOB_DEVICE_CLAIM,  /* a device's deliverable commands */
    JOB_DEVICE_ANSWER, /* a device session's command_result */
    JOB_KINDS
};

/* A unit of work for the worker and, filled in, its result for the
 * transport thread. Owns every pointer it holds (job_free). */
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

    bool device;                  /* AUTH: a device_token */
    long long device_id;          /* DEVICE_CLAIM, DEVICE_ANSWER */
    bool by_event;                /* DEVICE_CLAIM: asked by a change, not the lock timer */
    struct command_list commands; /* COMMANDS, DEVICE_CLAIM */
    long long *transitions;       /* COMMANDS: EVENTS_COMMAND values, as notified */
    long long *muted;             /* COMMANDS: users who turned them off live */
    int nmuted;
    int ntransitions;
    long long command_id;         /* DEVICE_ANSWER */
    struct command_answer answer; /* its strings point into answer_result / answer_error */
    char *answer_result, *answer_error;
    struct command command;
    bool changed;
    /* CHAT_*: chat.c's (chat_job_free) */
    struct chat_job *chat;
    struct notice_list notices; /* NOTICES */
};

struct chat_job; /* chat.c */

struct job_queue {
    struct job *head, *tail;
};

struct jobs {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct job_queue queue; /* for the worker */
    bool stopping;
    bool running;
    pthread_t worker;

    pthread_mutex_t inbox_mutex;
    struct job_queue inbox; /* results and events for the transport thread */
};

/* ======================================================================== */
/* The hub                                                                   */
/* ======================================================================== */

struct usage_index {
    struct idmap devices; /* device id -> device_entry (usage.c) */
    long long *dirty;     /* device ids with dirty set */
    int ndirty, capdirty;
};

/* Sessions not yet authenticated, by client address (unauth.c). One entry
 * per address that has such a session, freed with its last one: there are
 * never more entries than sessions in the pool (max_sessions). */
struct unauth_index {
    struct idmap addrs;      /* seeded hash of the address -> unauth_entry chain */
    unsigned long long seed; /* random: a client cannot pick colliding addresses */
    int count;               /* such sessions, all addresses */
};

struct hub_counters {
    atomic_int open_sessions;
    atomic_ulong alerts_delivered;
    atomic_ulong usage_sent;
    atomic_ulong chat_sent;
    atomic_ulong messages_dropped;
    atomic_ulong closed[HUB_CLOSED_REASONS];
};

/* chat.c: typing waiting for the job in flight to finish, then announced in
 * one batch (one NOTIFY for all of them). */
struct chat_typing_batch {
    struct chat_typing *items;
    long long *session_ids; /* who to tell when an item is refused */
    int n, cap;
    bool in_flight; /* a typing job is queued or running */
};

struct hub {
    struct hub_limits limits;
    struct hub_store store;
    struct hub_transport transport;

    /* registry.c (transport thread only, never locked) */
    struct idmap sessions; /* id -> hub_session */
    struct idmap users;    /* user id -> user_entry */
    long long next_session_id;
    int nsessions; /* all of them */
    int nauthed;   /* authenticated: at most max_sessions */
    struct unauth_index unauth;

    struct usage_index usage; /* usage.c */
    struct idmap devices;     /* commands.c: device id -> device_entry */
    double last_device_scan;  /* commands.c */
    double last_scan;         /* session_auth.c */
    double last_user_check;   /* recheck.c */
    bool user_check_in_flight;

    struct jobs jobs;

    /* chat.c */
    long long instance_id;           /* random: tells this instance's sessions in announcements */
    struct chat_typing_batch typing; /* typing waiting for the next batch */
    struct idmap typing_seen; /* sender -> typing_seen: the same user typing on two instances is
                                 passed on once per HUB_TYPING_INTERVAL_S too */

    /* read by /metrics on other threads */
    struct hub_counters counters;
};

/* ---- registry.c ------------------------------------------------------------ */

/* A new session in SESSION_AUTH_WAIT, counted in addr's quota; NULL when
 * refused (*refusal says how, and the refusal is counted). */
struct hub_session *registry_open(struct hub *h, void *conn, const char *addr, double now,
                                  struct hub_refusal *refusal);
/* s authenticated: it leaves its address's count for the authenticated
 * total. False, with s unchanged, when that total is full. */
bool registry_promote(struct hub *h, struct hub_session *s);
/* Forgets s and frees it (the transport reported it gone). */
void registry_free(struct hub *h, struct hub_session *s, enum hub_close_reason reason);
/* Borrowed; NULL once the session is gone. */
struct hub_session *registry_session(struct hub *h, long long id);
struct user_entry *registry_user(struct hub *h, long long user_id);
/* Puts a session that just became READY in its user's list. */
bool registry_add_user(struct hub *h, struct hub_session *s);
int registry_user_session_count(struct hub *h, long long user_id);
/* Asks the transport to close s; nothing more is sent to it. */
void registry_close(struct hub *h, struct hub_session *s, int code, enum hub_close_reason reason,
                    const char *text);
void registry_close_for_memory(struct hub *h, struct hub_session *s);
/* A copy of v's sessions, so that a loop survives removals from v (a
 * session closed or unsubscribed on the way). Caller frees; NULL if empty. */
struct hub_session **registry_snapshot(const struct ptrvec *v, int *n);

/* ---- unauth.c -------------------------------------------------------------- */

enum unauth_verdict {
    UNAUTH_TAKEN,
    UNAUTH_ADDR_FULL, /* the address has max_unauth_per_addr sessions */
    UNAUTH_POOL_FULL, /* max_sessions unauthenticated sessions in all */
    UNAUTH_NO_MEMORY,
};

void unauth_init(struct unauth_index *u);
/* Counts s against addr (NULL, "" or too long: the unknown client). */
enum unauth_verdict unauth_take(struct hub *h, struct hub_session *s, const char *addr);
/* s authenticated or is gone: its address's count drops. No-op when s is
 * not counted. */
void unauth_release(struct hub *h, struct hub_session *s);
/* Frees the index (every session released first). */
void unauth_free(struct unauth_index *u);

/* ---- protocol.c ------------------------------------------------------------ */

/* Parses one message and routes it by the inbound table. */
void protocol_dispatch(struct hub *h, struct hub_session *s, const char *text, size_t len,
                       double now);
/* Token bucket: HUB_FLOOD_RATE per second, bursts of HUB_FLOOD_BURST. */
bool protocol_flood_allows(struct hub_session *s, double now);

typedef void (*inbound_fn)(struct hub *h, struct hub_session *s, json_t *msg, double now);

/* A row of the inbound table: a message type, the kinds of session that
 * may send it, and the function that parses and handles it. */
struct inbound_route {
    const char *type;
    unsigned kinds; /* KIND_BIT_* */
    inbound_fn handle;
};

/* The inbound table (for the tests), and its lookup: NULL for a type that
 * is unknown or that a session of kind may not send, which get one answer. */
const struct inbound_route *protocol_inbound_table(size_t *n);
const struct inbound_route *protocol_route(const char *type, enum session_kind kind);

/* Outbound messages: one typed body each, rendered by the row of its type. */
enum out_type {
    OUT_READY,
    OUT_ALERT,
    OUT_USAGE,
    OUT_ERROR,
    OUT_COMMAND,
    OUT_COMMAND_ACK,
    OUT_CHAT_SENT,
    OUT_CHAT_MESSAGE,
    OUT_CHAT_TYPING,
    OUT_CHAT_READ,
    OUT_FORECAST,
    OUT_DEVICE_STATUS,
    OUT_TYPES
};

struct out_ready {
    long long user_id;
    long long device_id; /* a device session's ready names its device instead */
};

struct out_command {
    const struct command *command; /* borrowed */
};

struct out_command_ack {
    long long id;
    enum command_status status;
};

struct out_alert {
    const struct alert *alert; /* borrowed */
};

struct out_usage {
    const struct device_usage *usage; /* borrowed */
};

/* A message rendered when its event was made (notification_events): the
 * stored JSON text, whose members other than "type" are sent. */
struct out_notice {
    const char *json; /* borrowed */
};

struct out_error {
    const char *code;
    const char *message;
    const char *field;   /* or NULL */
    long long device_id; /* or 0 */
    /* a refused chat.send's: its client_msg_id as JSON text, or NULL */
    const char *client_msg_id;
    long long conversation_id; /* or 0 */
    int retry_after;           /* rate_limited: seconds; or 0 */
};

struct out_chat_sent {
    const char *client_msg_id;          /* JSON text as the client sent it, or NULL: null */
    const struct chat_message *message; /* borrowed */
};

struct out_chat_message {
    const struct chat_message *message; /* borrowed */
};

struct out_chat_typing {
    long long conversation_id, user_id;
    const char *name; /* borrowed */
};

struct out_chat_read {
    long long conversation_id, reader_id, up_to_id, read_at;
};

struct out_message {
    enum out_type type;
    union {
        struct out_ready ready;
        struct out_alert alert;
        struct out_usage usage;
        struct out_error error;
        struct out_command command;
        struct out_command_ack ack;
        struct out_chat_sent chat_sent;
        struct out_chat_message chat_message;
        struct out_chat_typing chat_typing;
        struct out_chat_read chat_read;
        struct out_notice notice;
    } u;
};

/* The "type" member of each outbound type (for the tests). */
const char *protocol_out_name(enum out_type type);
/* Whether a session of kind may be sent a message of type. */
bool protocol_may_receive(enum session_kind kind, enum out_type type);
/* The message as compact JSON text (caller frees), or NULL. */
char *protocol_render(const struct out_message *m);
/* Queues text, rendered from a message of type, on s. False when not sent:
 * no text, s closing, a type s's kind may not get, or a full queue (then the
 * transport drops s itself, as a slow consumer). */
bool protocol_send_text(struct hub *h, struct hub_session *s, enum out_type type, const char *text);
bool protocol_send(struct hub *h, struct hub_session *s, const struct out_message *m);
void protocol_send_error(struct hub *h, struct hub_session *s, const char *code,
                         const char *message, const char *field, long long device_id);

/* ---- chat.c ---------------------------------------------------------------- */

/* A chat.send, as parsed (borrowed from the message). */
struct in_chat_send {
    long long conversation_id;
    const char *text;          /* checked: api/chat_text.h */
    const char *client_msg_id; /* JSON text of a string or integer, or NULL */
};

/* Stores the message on the worker; s gets chat.sent or an error. */
void chat_send(struct hub *h, struct hub_session *s, const struct in_chat_send *m);
/* Announces that s's user types, at most once per HUB_TYPING_INTERVAL_S per
 * user and conversation (more are dropped without an answer). At once when
 * no typing job is in flight; otherwise with the others that came meanwhile,
 * as one batch when it is done. */
void chat_typing(struct hub *h, struct hub_session *s, long long conversation_id, double now);
/* Marks the other side's messages up to up_to_id read. */
void chat_read(struct hub *h, struct hub_session *s, long long conversation_id, long long up_to_id);
/* Announcements from the listener: messages and typing names are read by
 * the worker, reads go out at once. */
void chat_on_events(struct hub *h, const struct listener_events *ev);
void chat_job_free(struct chat_job *c);
/* Frees typing not announced yet (the hub is going away). */
void chat_free(struct hub *h);
void chat_run_send(struct hub *h, struct job *j);
void chat_apply_send(struct hub *h, struct job *j, double now);
void chat_run_read(struct hub *h, struct job *j);
void chat_apply_read(struct hub *h, struct job *j, double now);
void chat_run_typing(struct hub *h, struct job *j);
void chat_apply_typing(struct hub *h, struct job *j, double now);
void chat_run_deliver(struct hub *h, struct job *j);
void chat_apply_deliver(struct hub *h, struct job *j, double now);

/* ---- session_auth.c -------------------------------------------------------- */

/* An auth message, as parsed. */
struct in_auth {
    const char *token; /* borrowed from the message */
    bool has_since;
    long long since_alert_id;
};

/* Starts checking a token: the first auth, or a fresh one for a READY session. */
void session_auth_begin(struct hub *h, struct hub_session *s, const struct in_auth *auth);
/* Starts checking a device token (the first auth only). */
void session_auth_begin_device(struct hub *h, struct hub_session *s, const char *device_token);
/* An auth message that cannot be valid: closes with 4401. */
void session_auth_reject(struct hub *h, struct hub_session *s);
/* Holds a message that came while the token is checked; false when full. */
bool session_auth_hold(struct hub_session *s, const char *text, size_t len);
/* Frees what s holds. */
void session_auth_forget(struct hub_session *s);
/* Closes sessions past their auth or token deadline. */
void session_auth_scan(struct hub *h, double now);
void session_auth_run(struct hub *h, struct job *j);
void session_auth_apply(struct hub *h, struct job *j, double now);

/* ---- replay.c -------------------------------------------------------------- */

/* Marks s to replay alerts after since_id before any live one. */
void replay_start(struct hub_session *s, long long since_id);
/* Asks the worker for s's next page. */
void replay_request_page(struct hub *h, struct hub_session *s);
/* s's queue ran empty: the next page of a paused replay. */
void replay_resume(struct hub *h, struct hub_session *s);
/* Alert ids committed somewhere: read them for the local users. */
void replay_on_alerts(struct hub *h, const long long *ids, int n);
void replay_run_page(struct hub *h, struct job *j);
void replay_apply_page(struct hub *h, struct job *j, double now);
void replay_run_alerts(struct hub *h, struct job *j);
void replay_apply_alerts(struct hub *h, struct job *j, double now);

/* ---- notices.c ------------------------------------------------------------- */

/* Event ids committed somewhere (db/events.h "notices"): read them for the
 * local users' sessions. */
void notices_on_events(struct hub *h, const long long *ids, int n);
void notices_run(struct hub *h, struct job *j);
void notices_apply(struct hub *h, struct job *j, double now);

/* ---- usage.c --------------------------------------------------------------- */

/* Subscribes s to device_id's usage (checked by the worker); answers errors. */
void usage_subscribe(struct hub *h, struct hub_session *s, long long device_id);
void usage_unsubscribe(struct hub *h, struct hub_session *s, long long device_id);
/* Drops every subscription of s. */
void usage_detach(struct hub *h, struct hub_session *s);
/* Re-reads the owners of s's devices; what s may no longer see is dropped. */
void usage_recheck_session(struct hub *h, struct hub_session *s);
/* Readings arrived for ids; devices_changed changed owner. */
void usage_on_events(struct hub *h, const struct listener_events *ev, double now);
/* Reads the dirty devices whose last read is a second old, in one job. */
void usage_flush(struct hub *h, double now);
void usage_free(struct hub *h);
void usage_run_owners(struct hub *h, struct job *j);
void usage_apply_owners(struct hub *h, struct job *j, double now);
void usage_run_read(struct hub *h, struct job *j);
void usage_apply_read(struct hub *h, struct job *j, double now);

/* ---- recheck.c ------------------------------------------------------------- */

/* A session's stored role changed (a demoted admin loses what it may not see). */
void recheck_set_role(struct hub *h, struct hub_session *s, enum role role);
/* The periodic re-read of every local user's role. */
void recheck_sweep(struct hub *h, double now);
/* users_changed: re-read those with a session here. */
void recheck_on_events(struct hub *h, const struct listener_events *ev);
void recheck_run(struct hub *h, struct job *j);
void recheck_apply(struct hub *h, struct job *j, double now);

/* ---- commands.c ------------------------------------------------------------ */

/* A device session became READY: it joins its device's list and gets the
 * deliverable commands at once. False when memory is short. */
bool commands_add_device(struct hub *h, struct hub_session *s);
/* s leaves its device's list (closing). */
void commands_detach(struct hub *h, struct hub_session *s);
/* Commands changed somewhere: users' status, devices' pushes. */
void commands_on_events(struct hub *h, const struct listener_events *ev);
/* Devices whose sent commands' locks have passed are claimed again. */
void commands_tick(struct hub *h, double now);
/* A device session's answer; takes result (malloc'd or NULL). */
void commands_answer_begin(struct hub *h, struct hub_session *s, long long id,
                           const struct command_answer *answer, char *result);
void commands_free(struct hub *h);
void commands_run_read(struct hub *h, struct job *j);
void commands_apply_read(struct hub *h, struct job *j, double now);
void commands_run_claim(struct hub *h, struct job *j);
void commands_apply_claim(struct hub *h, struct job *j, double now);
void commands_run_answer(struct hub *h, struct job *j);
void commands_apply_answer(struct hub *h, struct job *j, double now);

/* ---- jobs.c ---------------------------------------------------------------- */

void jobs_init(struct jobs *q);
bool jobs_start(struct hub *h);
void jobs_stop(struct hub *h);
/* Frees what is still queued; the worker must be stopped. */
void jobs_destroy(struct jobs *q);
/* A job of kind; NULL when out of memory. Caller owns it until job_submit. */
struct job *job_new(enum job_kind kind);
/* A job with a copy of ids; NULL when out of memory. */
struct job *job_with_ids(enum job_kind kind, const long long *ids, int n);
void job_free(struct job *j);
/* Hands a job to the worker (takes it; NULL is logged and dropped). */
void job_submit(struct hub *h, struct job *j);
/* Any thread: hands a result or events to the transport thread (takes it). */
void jobs_post_inbox(struct hub *h, struct job *j);
/* Applies every result and event handed over so far. */
void jobs_apply_inbox(struct hub *h, double now);
/* Runs one queued job on the calling thread; false when none was queued. */
bool jobs_work_once(struct hub *h);

/* ---- hub.c ----------------------------------------------------------------- */

/* Events from the listener: what this instance needs to read. */
void hub_apply_events(struct hub *h, struct job *j, double now);

#endif
