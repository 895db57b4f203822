/* events: what one instance tells every instance (and itself) through
 * PostgreSQL NOTIFY on one channel. Payloads carry ids only; listeners read
 * the rest from the database. Sent inside the transaction that made the
 * change, so a notification exists only if the change committed; the chat's
 * right after its COMMIT instead (db/chat.h), so that its short write
 * transactions do not hold the notification queue lock through their flush.
 *
 * Payload: a compact JSON object with any of these arrays of ids:
 *   "alerts"          alerts raised
 *   "usage"           devices that received readings (live usage)
 *   "devices_changed" devices whose owner changed, that were deleted, or whose
 *                     token was rotated
 *   "users_changed"   users deleted or whose role changed
 *   "commands"        commands created or whose status changed, each as
 *                     EVENTS_COMMAND(id, status): the status it changed to
 *                     travels with it (db/commands.h enum command_status), so
 *                     a reader that comes late still tells each transition
 *   "command_devices" the devices of those commands (wakes long-polls
 *                     without a read)
 * and the support chat's, flat arrays of fixed-size tuples of integers >= 0
 * (never split across payloads):
 *   "chat_messages"   message id, its conversation's client, origin instance,
 *                     origin session (0, 0: REST)
 *   "chat_typing"     conversation id, its client, sender id, sender's role
 *   "chat_reads"      conversation id, its client, reader id, reader's role,
 *                     the highest id newly read, read_at (microseconds)
 * (roles as enum role). Texts and names are never sent: receivers read them.
 *   "notices"         events for users' sessions (forecast, device_status),
 *                     sent by notification_enqueue() in SQL (db/notifications.h)
 * and one integer:
 *   "readings_horizon" raw readings before this instant (epoch seconds, a
 *                     month's start) were retired: sent by
 *                     readings_close_month() in SQL (db/retention.h)
 * e.g. {"alerts":[41,42],"usage":[7]}. Payloads over 7,000 bytes are split
 * into several notifications in the same transaction.
 */
#ifndef WATTLINE_DB_EVENTS_H
#define WATTLINE_DB_EVENTS_H

#include "db.h"

#define EVENTS_CHANNEL "wattline_events"

/* A command's transition as one positive integer, and back (status < 8). */
#define EVENTS_COMMAND(id, status)   ((id)*8 + (long long)(status))
#define EVENTS_COMMAND_ID(value)     ((value) / 8)
#define EVENTS_COMMAND_STATUS(value) ((int)((value) % 8))

/* Integers per tuple of the chat arrays. */
#define EVENTS_CHAT_MESSAGE_LEN 4
#define EVENTS_CHAT_TYPING_LEN  4
#define EVENTS_CHAT_READ_LEN    6

struct events {
    const long long *alerts;
    int nalerts;
    const long long *usage;
    int nusage;
    const long long *devices_changed;
    int ndevices_changed;
    const long long *users_changed;
    int nusers_changed;
    const long long *commands;
    int ncommands;
    const long long *command_devices;
    int ncommand_devices;
    /* the chat's: n* counts tuples, of EVENTS_CHAT_*_LEN integers each */
    const long long *chat_messages;
    int nchat_messages;
    const long long *chat_typing;
    int nchat_typing;
    const long long *chat_reads;
    int nchat_reads;
};

/* One statement that never commits by itself: called from an _in_tx step it
 * queues the notifications in that transaction (sent only if it commits);
 * outside one they go at once (ingestion's usage, announced after its
 * COMMIT). Nothing is sent when every list is empty. The payloads are
 * written with base/json_writer. */
enum status db_events_notify(struct db_conn *conn, const struct events *ev);

#endif
