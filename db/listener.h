/* listener: one dedicated libpq connection per instance that LISTENs on
 * EVENTS_CHANNEL, in its own thread, and hands every notification over as
 * parsed id lists.
 *
 * If the connection drops, it reconnects with backoff, LISTENs again and
 * then catches up from the alerts table: every alert with an id above the
 * last one it handed over is handed over as if notified, so an alert
 * committed during the gap is not lost. (Duplicates are possible around a
 * reconnect; the receiver delivers each alert id at most once.) On the
 * first connection it only records the newest alert id: older alerts are
 * history, which clients fetch with since_alert_id.
 */
#ifndef WATTLINE_DB_LISTENER_H
#define WATTLINE_DB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#define LISTENER_APPLICATION_NAME "wattline-listener"

/* One notification's ids (see db/events.h). Arrays are malloc'd. */
struct listener_events {
    long long *alerts;
    int nalerts;
    long long *usage;
    int nusage;
    long long *devices_changed;
    int ndevices_changed;
    long long *users_changed;
    int nusers_changed;
    long long *commands;
    int ncommands;
    long long *command_devices;
    int ncommand_devices;
    /* the chat's tuples (db/events.h); n* counts tuples */
    long long *chat_messages;
    int nchat_messages;
    long long *chat_typing;
    int nchat_typing;
    long long *chat_reads;
    int nchat_reads;
    long long *notices; /* notification_events for sessions (db/notifications.h) */
    int nnotices;
    /* {"readings_horizon": s}: raw readings before s (epoch seconds, the
     * oldest month kept) were retired (db/retention.h); 0 when absent. The
     * listener also hands it over, read from the table, on every connection:
     * a NOTIFY missed while disconnected is not lost. */
    long long readings_horizon;
};

void listener_events_free(struct listener_events *ev);

/* Parses a NOTIFY payload; false (and *out empty) when it is not a JSON
 * object whose known members are arrays of positive integer ids. Unknown
 * members are ignored, so a newer sender does not break an older reader. */
bool listener_parse_payload(const char *payload, struct listener_events *out);

/* on_events takes ownership of *ev (its arrays); called on the listener
 * thread, it must only hand the ids over (e.g. to a locked queue). */
typedef void (*listener_events_fn)(void *ctx, struct listener_events *ev);

struct listener_options {
    const char *url;       /* libpq connection string or URL */
    int connect_timeout_s; /* per attempt */
    int timeout_s;         /* DB_TIMEOUT_S (db_connect_params_init) */
    listener_events_fn on_events;
    void *ctx;
};

struct listener;

/* Starts the thread (it connects by itself, retrying until stopped).
 * NULL when the thread cannot be started. */
struct listener *listener_start(const struct listener_options *opts);

/* Stops the thread, closes the connection, frees. NULL is a no-op. */
void listener_stop(struct listener *l);

/* Connections made after the first one, and whether it is connected now. */
struct listener_stats {
    unsigned long reconnects;
    bool connected;
    long long last_alert_id;
};
void listener_stats(struct listener *l, struct listener_stats *out);

#endif
