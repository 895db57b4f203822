#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "events.h"
#include "internal.h"

/* A message's columns, as read_message() reads them (times in microseconds
 * since the epoch; NULL stays NULL), of the row named m and of the row named l. */
#define MESSAGE_COLUMNS                                                                            \
    "m.id, m.conversation_id, m.sender_id, m.sender_role, m.text,"                                 \
    " (extract(epoch FROM m.created_at) * 1000000)::bigint,"                                       \
    " (extract(epoch FROM m.read_at) * 1000000)::bigint"
#define LAST_MESSAGE_COLUMNS                                                                       \
    "l.id, l.conversation_id, l.sender_id, l.sender_role, l.text,"                                 \
    " (extract(epoch FROM l.created_at) * 1000000)::bigint,"                                       \
    " (extract(epoch FROM l.read_at) * 1000000)::bigint"
#define MESSAGE_NCOLUMNS 7

/* A conversation with its client, the caller's unread count ($3: the role
 * of the messages that count) and its newest message. */
#define CONVERSATION_SELECT                                                                        \
    "SELECT c.id, u.id, u.name, u.email, (extract(epoch FROM c.updated_at) * 1000000)::bigint,"    \
    " c.activity,"                                                                                 \
    " (SELECT count(*) FROM chat_messages x WHERE x.conversation_id = c.id"                        \
    "   AND x.sender_role = $3 AND x.read_at IS NULL), " LAST_MESSAGE_COLUMNS                      \
    " FROM conversations c JOIN users u ON u.id = c.user_id"                                       \
    " LEFT JOIN LATERAL (SELECT * FROM chat_messages m WHERE m.conversation_id = c.id"             \
    "   ORDER BY m.id DESC LIMIT 1) l ON true"

static const struct db_stmt CONVERSATION_ENSURE = {
    "chat_conversation_ensure",
    "INSERT INTO conversations (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING"};

/* By id ($1) and by client ($1), as a client ($2) or an admin ($2 = 0)
 * may see it: two statements, so that each is an index lookup whatever the
 * plan. */
static const struct db_stmt CONVERSATION_GET = {"chat_conversation_get", CONVERSATION_SELECT
                                                " WHERE c.id = $1 AND ($2 = 0 OR c.user_id = $2)"};

static const struct db_stmt CONVERSATION_OF_USER = {
    "chat_conversation_of_user",
    CONVERSATION_SELECT " WHERE c.user_id = $1 AND ($2 = 0 OR c.user_id = $2)"};

static const struct db_stmt CONVERSATIONS_LIST = {
    "chat_conversations_list",
    CONVERSATION_SELECT " WHERE ($1 = 0 OR c.activity < $1)"
                        " AND (NOT $4::boolean OR EXISTS (SELECT 1 FROM chat_messages x"
                        "   WHERE x.conversation_id = c.id AND x.sender_role = $3"
                        "   AND x.read_at IS NULL))"
                        " ORDER BY c.activity DESC LIMIT $2"};

static const struct db_stmt MESSAGES_LIST = {
    "chat_messages_list", "SELECT " MESSAGE_COLUMNS ", c.user_id FROM chat_messages m"
                          " JOIN conversations c ON c.id = m.conversation_id"
                          " WHERE m.conversation_id = $1 AND ($2 = 0 OR m.id < $2)"
                          " ORDER BY m.id DESC LIMIT $3"};

static const struct db_stmt MESSAGES_BY_IDS = {
    "chat_messages_by_ids", "SELECT " MESSAGE_COLUMNS ", c.user_id FROM chat_messages m"
                            " JOIN conversations c ON c.id = "
                            "m.conversation_id"
                            " WHERE m.id = ANY($1::bigint[])"
                            " ORDER BY m.id"};

/* The row lock every message of a conversation takes: it orders the rate
 * count and the insert of concurrent senders, wherever they run. */
static const struct db_stmt CONVERSATION_LOCK = {
    "chat_conversation_lock",
    "SELECT user_id FROM conversations WHERE id = $1 AND ($2 = 0 OR user_id = $2) FOR UPDATE"};

/* The client's messages in the window, and the seconds until the oldest of
 * them leaves it (at least 1). now() is the transaction's start, as is the
 * created_at the insert gives. */
static const struct db_stmt RATE_COUNT = {
    "chat_rate_count", "SELECT count(*), greatest(1, ceil(extract(epoch FROM"
                       "   min(created_at) + make_interval(secs => $2) - now())))::bigint"
                       " FROM chat_messages WHERE conversation_id = $1 AND sender_role = 'client'"
                       " AND created_at > now() - make_interval(secs => $2)"};

static const struct db_stmt MESSAGE_INSERT = {
    "chat_message_insert",
    "WITH m AS (INSERT INTO chat_messages (conversation_id, sender_id, sender_role, text)"
    "   VALUES ($1, $2, $3, $4) RETURNING *),"
    " c AS (UPDATE conversations SET activity = nextval('chat_activity_seq'), updated_at = now()"
    "   WHERE id = $1 RETURNING user_id)"
    " SELECT " MESSAGE_COLUMNS ", c.user_id FROM m, c"};

/* The first reader of a side sets read_at; a second one (another admin)
 * finds read_at set and marks nothing, so nothing is announced twice. No
 * row: the conversation is missing or not the reader's. */
static const struct db_stmt MARK_READ = {
    "chat_mark_read",
    "WITH c AS (SELECT id, user_id FROM conversations WHERE id = $1 AND ($2 = 0 OR user_id = $2)),"
    " r AS (UPDATE chat_messages m SET read_at = now() FROM c"
    "   WHERE m.conversation_id = c.id AND m.sender_role = $3 AND m.id <= $4"
    "   AND m.read_at IS NULL RETURNING m.id, m.read_at)"
    " SELECT c.user_id, (SELECT count(*) FROM r), (SELECT coalesce(max(id), 0) FROM r),"
    " (SELECT (extract(epoch FROM max(read_at)) * 1000000)::bigint FROM r) FROM c"};

/* Which of the (conversation, scope) pairs may be written in, by position. */
static const struct db_stmt TYPING_CHECK = {
    "chat_typing_check",
    "SELECT i.ord, c.user_id FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY"
    " AS i(conversation_id, scope, ord)"
    " JOIN conversations c ON c.id = i.conversation_id AND (i.scope = 0 OR c.user_id = i.scope)"};

static const struct db_stmt USER_NAMES = {
    "chat_user_names",
    "SELECT i.ord, u.name FROM unnest($1::bigint[]) WITH ORDINALITY AS i(id, ord)"
    " JOIN users u ON u.id = i.id"};

/* ---- records ----------------------------------------------------------------- */

void chat_message_clear(struct chat_message *m)
{
    free(m->text);
    memset(m, 0, sizeof *m);
}

void chat_message_list_free(struct chat_message_list *list)
{
    for (int i = 0; i < list->count; i++)
        chat_message_clear(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

void chat_conversation_clear(struct chat_conversation *c)
{
    chat_message_clear(&c->last);
    memset(c, 0, sizeof *c);
}

void chat_conversation_list_free(struct chat_conversation_list *list)
{
    for (int i = 0; i < list->count; i++)
        chat_conversation_clear(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

enum role chat_other_side(enum role side)
{
    return side == ROLE_ADMIN ? ROLE_CLIENT : ROLE_ADMIN;
}

/* Reads MESSAGE_NCOLUMNS columns from col on; false when out of memory. */
static bool read_message(const PGresult *res, int row, int col, struct chat_message *m)
{
    m->id = db_get_ll(res, row, col);
    m->conversation_id = db_get_ll(res, row, col + 1);
    m->sender_id = db_get_ll(res, row, col + 2);
    m->sender_role = role_parse(PQgetvalue(res, row, col + 3));
    m->text = strdup(PQgetvalue(res, row, col + 4));
    m->created_at = db_get_ll(res, row, col + 5);
    m->read_at = db_get_ll(res, row, col + 6);
    return m->text != NULL;
}

static enum status read_messages(struct db_conn *c, PGresult *res, struct chat_message_list *out)
{
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    out->count = 0;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        if (!read_message(res, i, 0, &out->items[i]))
            st = STATUS_INTERNAL;
        out->items[i].client_id = db_get_ll(res, i, MESSAGE_NCOLUMNS);
        out->count = i + 1; /* freed by the caller, read or half-read */
    }
    PQclear(res);
    if (st != STATUS_OK)
        chat_message_list_free(out);
    return st;
}

static bool read_conversation(const PGresult *res, int row, struct chat_conversation *c)
{
    c->id = db_get_ll(res, row, 0);
    c->user_id = db_get_ll(res, row, 1);
    db_get_str(res, row, 2, c->user_name, sizeof c->user_name);
    db_get_str(res, row, 3, c->user_email, sizeof c->user_email);
    c->updated_at = db_get_ll(res, row, 4);
    c->activity = db_get_ll(res, row, 5);
    c->unread_count = db_get_ll(res, row, 6);
    c->has_last = !db_is_null(res, row, 7);
    if (!c->has_last)
        return true;
    c->last.client_id = c->user_id;
    return read_message(res, row, 7, &c->last);
}

/* Announces what happened, after the commit; a failure only costs the live
 * copy (the stored state stands and is what REST answers), so it is logged. */
static void announce(struct db_conn *c, const struct events *ev)
{
    if (db_events_notify(c, ev) != STATUS_OK)
        log_warn("chat: a live notification could not be sent");
}

/* ---- conversations ------------------------------------------------------------ */

/* One conversation row of stmt, whose parameters are $1, $2 and the role
 * of the messages that count as unread ($3). */
static enum status conversation_row(struct db_conn *c, const struct db_stmt *stmt, long long p1,
                                    long long p2, enum role side, struct chat_conversation *out)
{
    memset(out, 0, sizeof *out);
    struct db_ll_text s1, s2;
    const char *params[] = {db_ll(&s1, p1), db_ll(&s2, p2), role_name(chat_other_side(side))};
    PGresult *res;
    enum status st = db_exec_row(c, stmt, 3, params, &res);
    if (st == STATUS_OK && !read_conversation(res, 0, out))
        st = STATUS_INTERNAL;
    PQclear(res);
    if (st != STATUS_OK)
        chat_conversation_clear(out);
    return st;
}

enum status db_chat_conversation_get(struct db_conn *c, long long id, long long owner_scope,
                                     enum role side, struct chat_conversation *out)
{
    return conversation_row(c, &CONVERSATION_GET, id, owner_scope, side, out);
}

enum status db_chat_conversation_mine(struct db_conn *c, long long user_id,
                                      struct chat_conversation *out)
{
    struct db_ll_text suser;
    const char *params[] = {db_ll(&suser, user_id)};
    PGresult *res = db_exec(c, &CONVERSATION_ENSURE, 1, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    if (st != STATUS_OK) {
        memset(out, 0, sizeof *out);
        return st == STATUS_INVALID ? STATUS_NOT_FOUND : st; /* the user was deleted */
    }
    return conversation_row(c, &CONVERSATION_OF_USER, user_id, user_id, ROLE_CLIENT, out);
}

enum status db_chat_conversations_list(struct db_conn *c, long long before_activity,
                                       bool unread_only, int limit,
                                       struct chat_conversation_list *out)
{
    struct db_ll_text sbefore, slimit;
    const char *params[] = {db_ll(&sbefore, before_activity), db_ll(&slimit, limit),
                            role_name(ROLE_CLIENT), unread_only ? "true" : "false"};
    PGresult *res = db_exec(c, &CONVERSATIONS_LIST, 4, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    out->count = 0;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        if (!read_conversation(res, i, &out->items[i]))
            st = STATUS_INTERNAL;
        out->count = i + 1;
    }
    PQclear(res);
    if (st != STATUS_OK)
        chat_conversation_list_free(out);
    return st;
}

/* ---- messages ------------------------------------------------------------------ */

enum status db_chat_messages_list(struct db_conn *c, long long conversation_id, long long before_id,
                                  int limit, struct chat_message_list *out)
{
    struct db_ll_text sconv, sbefore, slimit;
    const char *params[] = {db_ll(&sconv, conversation_id), db_ll(&sbefore, before_id),
                            db_ll(&slimit, limit)};
    return read_messages(c, db_exec(c, &MESSAGES_LIST, 3, params), out);
}

enum status db_chat_messages_by_ids(struct db_conn *c, const long long *ids, int n,
                                    struct chat_message_list *out)
{
    *out = (struct chat_message_list){0};
    PGresult *res;
    enum status st = db_exec_ids(c, &MESSAGES_BY_IDS, ids, n, &res);
    return st == STATUS_OK ? read_messages(c, res, out) : st;
}

struct post_tx {
    const struct chat_post *in;
    struct chat_message *out;
    int *retry_after_s;
};

/* Lock, count (a client's), insert: one transaction. The count is its own
 * statement after the lock on purpose: under READ COMMITTED each statement
 * takes a fresh snapshot, so a sender that waited for the lock counts the
 * message of the one it waited for (a count in the locking statement would
 * use the snapshot taken before the wait, and two senders could both see 29). */
static enum status post_body(struct db_conn *c, void *ctx)
{
    struct post_tx *tx = ctx;
    const struct chat_post *in = tx->in;
    struct db_ll_text sconv, sowner, ssender, swindow;
    const char *lock_params[] = {db_ll(&sconv, in->conversation_id),
                                 db_ll(&sowner, in->owner_scope)};
    PGresult *res;
    enum status st = db_exec_row(c, &CONVERSATION_LOCK, 2, lock_params, &res);
    PQclear(res);
    if (st != STATUS_OK)
        return st;
    if (in->sender_role == ROLE_CLIENT) {
        const char *rate_params[] = {sconv.s, db_ll(&swindow, CHAT_RATE_WINDOW_S)};
        st = db_exec_row(c, &RATE_COUNT, 2, rate_params, &res);
        if (st == STATUS_OK && db_get_ll(res, 0, 0) >= CHAT_RATE_MAX)
            *tx->retry_after_s = (int)db_get_ll(res, 0, 1);
        PQclear(res);
        if (st != STATUS_OK || *tx->retry_after_s > 0)
            return st;
    }
    const char *insert_params[] = {sconv.s, db_ll(&ssender, in->sender_id),
                                   role_name(in->sender_role), in->text};
    st = db_exec_row(c, &MESSAGE_INSERT, 4, insert_params, &res);
    if (st == STATUS_OK) {
        if (!read_message(res, 0, 0, tx->out))
            st = STATUS_INTERNAL;
        tx->out->client_id = db_get_ll(res, 0, MESSAGE_NCOLUMNS);
    }
    PQclear(res);
    return st;
}

enum status db_chat_post(struct db_conn *c, const struct chat_post *in, struct chat_message *out,
                         int *retry_after_s)
{
    memset(out, 0, sizeof *out);
    *retry_after_s = 0;
    struct post_tx tx = {.in = in, .out = out, .retry_after_s = retry_after_s};
    enum status st = db_transaction(c, post_body, &tx);
    if (st != STATUS_OK || *retry_after_s > 0) {
        chat_message_clear(out);
        return st;
    }
    const long long tuple[EVENTS_CHAT_MESSAGE_LEN] = {out->id, out->client_id, in->origin_instance,
                                                      in->origin_session};
    announce(c, &(struct events){.chat_messages = tuple, .nchat_messages = 1});
    return STATUS_OK;
}

enum status db_chat_mark_read(struct db_conn *c, const struct chat_read *in,
                              struct chat_read_result *out)
{
    memset(out, 0, sizeof *out);
    struct db_ll_text sconv, sowner, sup;
    const char *params[] = {db_ll(&sconv, in->conversation_id), db_ll(&sowner, in->owner_scope),
                            role_name(chat_other_side(in->reader_side)), db_ll(&sup, in->up_to_id)};
    PGresult *res;
    enum status st = db_exec_row(c, &MARK_READ, 4, params, &res);
    if (st == STATUS_OK) {
        out->client_id = db_get_ll(res, 0, 0);
        out->newly_read = (int)db_get_ll(res, 0, 1);
        out->up_to_id = db_get_ll(res, 0, 2);
        out->read_at = db_get_ll(res, 0, 3);
    }
    PQclear(res);
    if (st != STATUS_OK || out->newly_read == 0)
        return st;
    const long long tuple[EVENTS_CHAT_READ_LEN] = {in->conversation_id, out->client_id,
                                                   in->reader_id,       in->reader_side,
                                                   out->up_to_id,       out->read_at};
    announce(c, &(struct events){.chat_reads = tuple, .nchat_reads = 1});
    return STATUS_OK;
}

enum status db_chat_typing(struct db_conn *c, const struct chat_typing *in, int n, enum status *out)
{
    long long *conv = malloc((size_t)(n > 0 ? n : 1) * sizeof *conv);
    long long *scope = malloc((size_t)(n > 0 ? n : 1) * sizeof *scope);
    long long *tuples = malloc((size_t)(n > 0 ? n : 1) * EVENTS_CHAT_TYPING_LEN * sizeof *tuples);
    struct db_array aconv, ascope;
    db_array_init(&aconv);
    db_array_init(&ascope);
    enum status st = conv && scope && tuples ? STATUS_OK : STATUS_INTERNAL;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        conv[i] = in[i].conversation_id;
        scope[i] = in[i].owner_scope;
        out[i] = STATUS_NOT_FOUND;
    }
    const char *params[] = {st == STATUS_OK ? db_array_of_ll(&aconv, conv, n) : NULL,
                            st == STATUS_OK ? db_array_of_ll(&ascope, scope, n) : NULL};
    if (st == STATUS_OK && (!params[0] || !params[1]))
        st = STATUS_INTERNAL;
    PGresult *res = st == STATUS_OK ? db_exec(c, &TYPING_CHECK, 2, params) : NULL;
    if (res)
        st = db_check(c, res, PGRES_TUPLES_OK);
    int ntuples = 0;
    for (int r = 0; st == STATUS_OK && r < PQntuples(res); r++) {
        long long ord = db_get_ll(res, r, 0);
        if (ord < 1 || ord > n)
            continue;
        const struct chat_typing *t = &in[ord - 1];
        out[ord - 1] = STATUS_OK;
        long long *tuple = &tuples[ntuples++ * EVENTS_CHAT_TYPING_LEN];
        tuple[0] = t->conversation_id;
        tuple[1] = db_get_ll(res, r, 1);
        tuple[2] = t->sender_id;
        tuple[3] = t->sender_side;
    }
    PQclear(res);
    /* Typing is the announcement itself: here a failure is the answer. */
    if (st == STATUS_OK && ntuples > 0)
        st = db_events_notify(c, &(struct events){.chat_typing = tuples, .nchat_typing = ntuples});
    db_array_free(&aconv);
    db_array_free(&ascope);
    free(conv);
    free(scope);
    free(tuples);
    return st;
}

enum status db_chat_user_names(struct db_conn *c, const long long *ids, int n,
                               char (*out)[USER_NAME_MAX * 4 + 1])
{
    for (int i = 0; i < n; i++)
        out[i][0] = '\0';
    PGresult *res;
    enum status st = db_exec_ids(c, &USER_NAMES, ids, n, &res);
    if (st != STATUS_OK)
        return st;
    st = db_check(c, res, PGRES_TUPLES_OK);
    for (int r = 0; st == STATUS_OK && r < PQntuples(res); r++) {
        long long ord = db_get_ll(res, r, 0);
        if (ord >= 1 && ord <= n)
            db_get_str(res, r, 1, out[ord - 1], sizeof out[ord - 1]);
    }
    PQclear(res);
    return st;
}
