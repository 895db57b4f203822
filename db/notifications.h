/* notifications: preferences, webhooks, the delivery outbox and its attempts,
 * and the offline sweep (migrations/0009_notifications.sql).
 *
 * The outbox: an event meant for a user is recorded, and queued for each of
 * the user's active webhooks that take it, by db_outbox_add_in_tx() in the
 * transaction that made the event, so that a delivery exists if and only if
 * the event committed. Senders (notify/sender.c, one thread per instance)
 * claim due deliveries with FOR UPDATE SKIP LOCKED and record each attempt.
 */
#ifndef WATTLINE_DB_NOTIFICATIONS_H
#define WATTLINE_DB_NOTIFICATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

/* The events a user may be told of, as bits of a mask. */
enum notify_event {
    NOTIFY_ALERT = 1 << 0,
    NOTIFY_FORECAST = 1 << 1,
    NOTIFY_COMMAND = 1 << 2,
    NOTIFY_DEVICE_STATUS = 1 << 3,
};
#define NOTIFY_EVENT_COUNT 4
#define NOTIFY_ALL_EVENTS  0xf

/* The contract's name of bit i (0..NOTIFY_EVENT_COUNT), e.g. "alert". */
const char *notify_event_name(int i);
/* The bit of a name; 0 when it names no event. */
int notify_event_bit(const char *name);

/* The channel each event reaches, as two masks. */
struct notify_prefs {
    int websocket;
    int webhook;
};
#define NOTIFY_PREFS_DEFAULT                                                                       \
    (struct notify_prefs)                                                                          \
    {                                                                                              \
        .websocket = NOTIFY_ALL_EVENTS, .webhook = NOTIFY_ALERT | NOTIFY_DEVICE_STATUS             \
    }

/* The stored preferences of user_id, the defaults when none are. */
enum status db_notify_prefs_get(struct db_conn *conn, long long user_id, struct notify_prefs *out);
/* Stores the whole shape. */
enum status db_notify_prefs_put(struct db_conn *conn, long long user_id,
                                const struct notify_prefs *in);

/* ---- webhooks ---- */

#define WEBHOOK_URL_MAX 2048

struct webhook {
    long long id;
    char url[WEBHOOK_URL_MAX + 1];
    int events; /* mask of enum notify_event */
    bool active;
    long long created_at; /* microseconds since the epoch */
};

struct webhook_list {
    struct webhook *items; /* malloc'd: webhook_list_free */
    int count;
};
void webhook_list_free(struct webhook_list *list);

/* Stores a webhook of user_id with its sealed secret (box[0..len), borrowed). */
enum status db_webhooks_create(struct db_conn *conn, long long user_id, const char *url, int events,
                               const unsigned char *box, size_t len, struct webhook *out);
/* user_id's webhooks with id > after_id, ascending, at most limit. */
enum status db_webhooks_list(struct db_conn *conn, long long user_id, long long after_id, int limit,
                             struct webhook_list *out);
/* user_id's webhook id; STATUS_NOT_FOUND when it is not there or not theirs. */
enum status db_webhooks_get(struct db_conn *conn, long long user_id, long long id,
                            struct webhook *out);
/* Deletes it (its deliveries go with it); STATUS_NOT_FOUND as above. */
enum status db_webhooks_delete(struct db_conn *conn, long long user_id, long long id);

/* One attempt of a delivery, as listed. */
struct webhook_attempt {
    long long id;
    long long event_id;
    char event[24];
    int attempt;
    int status_code; /* 0: no answer */
    char error[256]; /* "" when none */
    long long at;
};
struct webhook_attempt_list {
    struct webhook_attempt *items; /* malloc'd: webhook_attempt_list_free */
    int count;
};
void webhook_attempt_list_free(struct webhook_attempt_list *list);

/* The attempts of webhook id (user_id's, else STATUS_NOT_FOUND), newest
 * first, with id < before_id (0: no bound), at most limit. */
enum status db_webhooks_attempts(struct db_conn *conn, long long user_id, long long id,
                                 long long before_id, int limit, struct webhook_attempt_list *out);

/* ---- the outbox ---- */

/* Inside the caller's transaction: records an event for user_id (event is
 * "alert", "forecast", "command" or "device_status"; json the WebSocket
 * message {"type": event, ...} as text, exactly what webhooks receive),
 * queues it for the user's webhooks that take it (if the user's preferences
 * send that event to webhooks) and, when the user's preferences send it to
 * WebSocket sessions, announces it to the hub of every instance. Nothing is
 * sent unless the transaction commits. *event_id (may be NULL) is the
 * event's id, 0 when no channel took it. */
enum status db_outbox_add_in_tx(struct db_conn *conn, long long user_id, const char *event,
                                const char *json, long long *event_id);

/* A delivery claimed for one attempt. */
struct outbox_claim {
    long long delivery_id;
    long long webhook_id;
    long long event_id;
    int attempt;
    char *url;          /* owned */
    unsigned char *box; /* owned: the sealed secret */
    size_t box_len;
    char *payload; /* owned: the body */
};
struct outbox_claim_list {
    struct outbox_claim *items;
    int count;
};
void outbox_claim_list_free(struct outbox_claim_list *list);

/* Claims at most limit due deliveries of active webhooks for lease_s
 * seconds (no other sender takes them meanwhile), counting the attempt. */
enum status db_outbox_claim(struct db_conn *conn, int limit, int lease_s,
                            struct outbox_claim_list *out);

/* The outcome of one attempt. */
struct outbox_result {
    long long delivery_id;
    long long webhook_id;
    int attempt;
    int status_code;   /* 0: no HTTP answer */
    const char *error; /* NULL on success */
    bool delivered;
    long long retry_in_ms; /* < 0: give up */
    int fail_window_s;     /* failing this long without success: inactive */
};
/* Logs the attempt, reschedules or closes the delivery, and keeps the
 * webhook's failure window (inactive once it exceeds fail_window_s). */
enum status db_outbox_finish(struct db_conn *conn, const struct outbox_result *r);

/* Milliseconds until the next pending delivery is due (0 if one is due
 * now), or -1 when none is pending. */
enum status db_outbox_next_due(struct db_conn *conn, long long *ms);

/* The sender's own connection: LISTENs on the outbox channel, which
 * db_outbox_add_in_tx's transactions notify when they queue a delivery. */
#define OUTBOX_CHANNEL "wattline_outbox"
enum status db_outbox_listen(struct db_conn *conn);

/* Waits up to timeout_ms for a notification on conn or for wake_fd to turn
 * readable (the stop pipe), and drops what was notified (the wake-up is the
 * message). STATUS_UNAVAILABLE when the connection broke. */
enum status db_outbox_wait(struct db_conn *conn, int wake_fd, int timeout_ms);

/* An event for the WebSocket sessions of its user (notification_events). */
struct notice {
    long long id;
    long long user_id;
    char event[24];
    char *payload; /* owned: the message, as text */
};
struct notice_list {
    struct notice *items;
    int count;
};
void notice_list_free(struct notice_list *list);

/* The events with these ids that go to sessions, ascending id. */
enum status db_notices_by_ids(struct db_conn *conn, const long long *ids, int n,
                              struct notice_list *out);

/* ---- device status ---- */

/* Turns every device past its offline_after_s offline (a conditional UPDATE:
 * only one instance wins a device) and sends each owner its device_status
 * event; *count is how many turned offline. */
enum status db_devices_sweep_offline(struct db_conn *conn, int *count);

#endif
