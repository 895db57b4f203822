/* chat: the support chat's tables (migrations/0007_chat.sql): one
 * conversation per client with the support side (every admin), its messages,
 * and read state kept on each message (read_at: when the first reader of the
 * other side read it).
 *
 * Sides. A message's sender_role is its side. A side's unread messages are
 * the other side's messages with read_at NULL, so several admins read as one.
 *
 * Announcements. Every call that changes something a live session shows
 * (a message, a newly read message, typing) NOTIFYs after its COMMIT (ids
 * only, db/events.h), never inside the write transaction: NOTIFY holds the
 * notification queue lock through the commit (PERF-NOTES). A failed NOTIFY
 * is logged; the change stands.
 */
#ifndef WATTLINE_DB_CHAT_H
#define WATTLINE_DB_CHAT_H

#include <stdbool.h>

#include "db.h"
#include "models.h"
#include "users.h"

#define CHAT_TEXT_MAX_CHARS 4000
#define CHAT_RATE_MAX       30 /* client messages ... */
#define CHAT_RATE_WINDOW_S  60 /* ... in any sliding window this long */

struct chat_message {
    long long id;
    long long conversation_id;
    long long sender_id; /* 0: the sender (an admin) was deleted since */
    enum role sender_role;
    char *text; /* owned (chat_message_clear frees) */
    long long created_at;
    long long read_at;   /* 0: unread */
    long long client_id; /* the conversation's client: who the message concerns */
};

void chat_message_clear(struct chat_message *m);

struct chat_message_list {
    struct chat_message *items; /* owned */
    int count;
};

void chat_message_list_free(struct chat_message_list *list);

struct chat_conversation {
    long long id;
    long long user_id; /* the client */
    char user_name[USER_NAME_MAX * 4 + 1];
    char user_email[USER_EMAIL_MAX + 1];
    long long unread_count; /* for the side that asked */
    long long updated_at;   /* its creation or its newest message */
    long long activity;     /* the list's order and cursor: larger is more recent */
    bool has_last;
    struct chat_message last; /* when has_last */
};

void chat_conversation_clear(struct chat_conversation *c);

struct chat_conversation_list {
    struct chat_conversation *items; /* owned */
    int count;
};

void chat_conversation_list_free(struct chat_conversation_list *list);

/* The side whose unread messages are counted: the caller's side (the other
 * side's messages count). */
enum role chat_other_side(enum role side);

/* The conversation of client user_id, created when it has none. */
enum status db_chat_conversation_mine(struct db_conn *conn, long long user_id,
                                      struct chat_conversation *out);

/* Conversation id as seen by side; owner_scope 0 (an admin) or the client it
 * must belong to, else STATUS_NOT_FOUND. */
enum status db_chat_conversation_get(struct db_conn *conn, long long id, long long owner_scope,
                                     enum role side, struct chat_conversation *out);

/* Every conversation, most recently active first, as the support side sees
 * it: activity below before_activity (0: from the top), only those with
 * unread client messages when unread_only; at most limit. */
enum status db_chat_conversations_list(struct db_conn *conn, long long before_activity,
                                       bool unread_only, int limit,
                                       struct chat_conversation_list *out);

/* Messages of a conversation, newest first, id below before_id (0: from the
 * newest); at most limit. The caller has checked the conversation's scope. */
enum status db_chat_messages_list(struct db_conn *conn, long long conversation_id,
                                  long long before_id, int limit, struct chat_message_list *out);

/* The messages with these ids that still exist, ascending id. */
enum status db_chat_messages_by_ids(struct db_conn *conn, const long long *ids, int n,
                                    struct chat_message_list *out);

/* Who sends a message, and which socket it came from (0, 0 for REST): the
 * announcement carries it so that the sending session, answered with
 * chat.sent, is not sent chat.message too. */
struct chat_post {
    long long conversation_id;
    long long owner_scope; /* 0 for an admin; a client: its own conversation only */
    long long sender_id;
    enum role sender_role;
    const char *text; /* checked: 1..CHAT_TEXT_MAX_CHARS characters, no NUL */
    long long origin_instance;
    long long origin_session;
};

/* Stores a message (a client's only while it sent fewer than CHAT_RATE_MAX
 * in the last CHAT_RATE_WINDOW_S, counted under the conversation's row lock
 * so that concurrent sends on any instance cannot pass it together) and
 * announces it after the commit. *retry_after_s > 0 (seconds until the
 * window has room) with STATUS_OK and nothing stored when rate limited.
 * STATUS_NOT_FOUND for a conversation that is missing or not the client's. */
enum status db_chat_post(struct db_conn *conn, const struct chat_post *in, struct chat_message *out,
                         int *retry_after_s);

struct chat_read {
    long long conversation_id;
    long long owner_scope; /* as chat_post */
    long long reader_id;
    enum role reader_side;
    long long up_to_id;
};

struct chat_read_result {
    long long client_id;
    int newly_read;     /* messages this call marked read (0: nothing announced) */
    long long up_to_id; /* the highest of them */
    long long read_at;
};

/* Marks the other side's unread messages up to in->up_to_id read now, and
 * announces it when it marked any. STATUS_NOT_FOUND as db_chat_post. */
enum status db_chat_mark_read(struct db_conn *conn, const struct chat_read *in,
                              struct chat_read_result *out);

/* Someone typing in a conversation (owner_scope as chat_post). */
struct chat_typing {
    long long conversation_id;
    long long owner_scope;
    long long sender_id;
    enum role sender_side;
};

/* Checks that each sender may write in its conversation (out[i]: STATUS_OK
 * or STATUS_NOT_FOUND, n entries, caller's array) and announces those that
 * may, all in one statement and one NOTIFY: typing is the chattiest thing
 * the channel carries, and NOTIFY transactions serialise commits
 * (PERF-NOTES), so the hub hands them over in batches. Nothing is stored. */
enum status db_chat_typing(struct db_conn *conn, const struct chat_typing *in, int n,
                           enum status *out);

/* out[i] gets the name of ids[i] (n entries, caller's array; "" for a user
 * that no longer exists). */
enum status db_chat_user_names(struct db_conn *conn, const long long *ids, int n,
                               char (*out)[USER_NAME_MAX * 4 + 1]);

#endif
