#include "commands.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "events.h"
#include "internal.h"

// clang-format off
/* A command past expires_at reads "expired" before the sweep stores it:
 * expiry is enforced when reading, whoever reads. */
#define LIVE_WHERE "c.status IN ('queued', 'sent') AND c.expires_at > now()"
#define EFFECTIVE_STATUS                                                                           \
    "CASE WHEN c.status IN ('queued', 'sent') AND c.expires_at <= now() THEN 'expired'"            \
    " ELSE c.status END"
#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* The columns read_command() expects, in order, of a row aliased c. */
#define COMMAND_COLUMNS                                                                            \
    "c.id, c.device_id, (SELECT d.owner_id FROM devices d WHERE d.id = c.device_id),"              \
    " c.name, c.params::text, " EFFECTIVE_STATUS ", c.attempts, c.created_by, c.alert_id,"         \
    " " US("c.created_at") ", " US("c.expires_at") ", " US("c.sent_at") ","                        \
    " " US("CASE WHEN c.status IN ('queued', 'sent') AND c.expires_at <= now()"                    \
           " THEN c.expires_at ELSE c.completed_at END") ","                                        \
    " c.result::text, c.error"
#define NCOLUMNS 15

#define OWNED_BY(scope) "(" scope "::bigint = 0 OR EXISTS (SELECT 1 FROM devices d"               \
    " WHERE d.id = c.device_id AND d.owner_id = " scope "))"

/* Locks the device row: creations for one device queue here, so that the
 * count below sees every earlier one committed (the cap holds). */
static const struct db_stmt LOCK_DEVICE = {
    "commands_lock_device",
    "SELECT id FROM devices WHERE id = $1 AND ($2::bigint = 0 OR owner_id = $2) FOR UPDATE"};

static const struct db_stmt CREATE = {
    "commands_create",
    "INSERT INTO commands AS c (device_id, name, params, created_by, expires_at)"
    " SELECT $1, $2, coalesce($3::jsonb, '{}'), $4::bigint, now() + make_interval(secs => $5::int)"
    " WHERE (SELECT count(*) FROM commands c WHERE c.device_id = $1 AND " LIVE_WHERE ") < $6"
    " RETURNING " COMMAND_COLUMNS};

static const struct db_stmt GET = {
    "commands_get",
    "SELECT " COMMAND_COLUMNS " FROM commands c WHERE c.id = $1 AND " OWNED_BY("$2")};

static const struct db_stmt LIST = {
    "commands_list",
    "SELECT " COMMAND_COLUMNS " FROM commands c WHERE c.device_id = $1"
    " AND ($2::bigint = 0 OR c.id < $2) AND ($3::text IS NULL OR " EFFECTIVE_STATUS " = $3)"
    " ORDER BY c.id DESC LIMIT $4"};

/* SKIP LOCKED: a row another delivery is claiming is left to it; a row it
 * has just claimed is re-checked on its new version and fails the lock
 * test. Either way two deliveries never share a lock period. */
static const struct db_stmt CLAIM = {
    "commands_claim",
    "WITH picked AS (SELECT c.id FROM commands c WHERE c.device_id = $1 AND " LIVE_WHERE
    "   AND (c.locked_until IS NULL OR c.locked_until <= now())"
    "   ORDER BY c.id LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " done AS (UPDATE commands u SET status = 'sent', attempts = u.attempts + 1,"
    "   sent_at = coalesce(u.sent_at, now()), locked_until = now() + make_interval(secs => $2::int)"
    "   FROM picked WHERE u.id = picked.id RETURNING u.*)"
    " SELECT " COMMAND_COLUMNS " FROM done c ORDER BY c.id"};

static const struct db_stmt ANSWER = {
    "commands_answer",
    "UPDATE commands c SET status = $3, result = $4::jsonb, error = $5, completed_at = now(),"
    " locked_until = NULL"
    " WHERE c.id = $1 AND c.device_id = $2 AND " LIVE_WHERE " RETURNING " COMMAND_COLUMNS};

/* After an answer changed nothing: the command, and whether it already
 * holds this very answer (the device repeating itself). */
static const struct db_stmt ANSWERED = {
    "commands_answered",
    "SELECT " COMMAND_COLUMNS ", " EFFECTIVE_STATUS " = $3 AND c.result IS NOT DISTINCT FROM"
    " $4::jsonb AND c.error IS NOT DISTINCT FROM $5"
    " FROM commands c WHERE c.id = $1 AND c.device_id = $2"};

static const struct db_stmt CANCEL = {
    "commands_cancel",
    "UPDATE commands c SET status = 'canceled', completed_at = now(), locked_until = NULL"
    " WHERE c.id = $1 AND " LIVE_WHERE " AND " OWNED_BY("$2") " RETURNING " COMMAND_COLUMNS};

static const struct db_stmt EXPIRE = {
    "commands_expire",
    "UPDATE commands c SET status = 'expired', completed_at = c.expires_at, locked_until = NULL"
    " WHERE c.id IN (SELECT e.id FROM commands e WHERE e.status IN ('queued', 'sent')"
    "   AND e.expires_at <= now() ORDER BY e.expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " AND c.status IN ('queued', 'sent') RETURNING c.id, c.device_id"};

static const struct db_stmt BY_IDS = {
    "commands_by_ids",
    "SELECT " COMMAND_COLUMNS " FROM commands c WHERE c.id = ANY($1::bigint[]) ORDER BY c.id"};

/* Who hears of these commands live (their devices' owners, the admins) but
 * turned commands off for sessions (migrations/0009). */
static const struct db_stmt LIVE_MUTED = {
    "commands_live_muted",
    "SELECT u.id FROM users u"
    " WHERE (u.role = 'admin' OR u.id IN (SELECT d.owner_id FROM commands c"
    "   JOIN devices d ON d.id = c.device_id WHERE c.id = ANY($1::bigint[])))"
    " AND NOT notification_wanted(u.id, 'command', 'websocket') ORDER BY u.id"};
// clang-format on

static const char *const STATUS_NAMES[COMMAND_STATUSES] = {
    [COMMAND_QUEUED] = "queued", [COMMAND_SENT] = "sent",       [COMMAND_SUCCEEDED] = "succeeded",
    [COMMAND_FAILED] = "failed", [COMMAND_EXPIRED] = "expired", [COMMAND_CANCELED] = "canceled",
};

const char *command_status_name(enum command_status st)
{
    return st < COMMAND_STATUSES ? STATUS_NAMES[st] : "queued";
}

bool command_status_parse(const char *name, enum command_status *out)
{
    for (int i = 0; name && i < COMMAND_STATUSES; i++) {
        if (!strcmp(name, STATUS_NAMES[i])) {
            *out = (enum command_status)i;
            return true;
        }
    }
    return false;
}

bool command_status_final(enum command_status st)
{
    return st != COMMAND_QUEUED && st != COMMAND_SENT;
}

void command_clear(struct command *c)
{
    free(c->name);
    free(c->params);
    free(c->result);
    free(c->error);
    memset(c, 0, sizeof *c);
}

void command_list_free(struct command_list *list)
{
    for (int i = 0; i < list->count; i++)
        command_clear(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static char *dup_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

/* Fills c from a row of COMMAND_COLUMNS; STATUS_INTERNAL when out of memory. */
static enum status read_command(const PGresult *res, int row, struct command *c)
{
    *c = (struct command){
        .id = db_get_ll(res, row, 0),
        .device_id = db_get_ll(res, row, 1),
        .owner_id = db_get_ll(res, row, 2),
        .name = dup_or_null(res, row, 3),
        .params = dup_or_null(res, row, 4),
        .attempts = (int)db_get_ll(res, row, 6),
        .created_by = db_get_ll(res, row, 7),
        .alert_id = db_get_ll(res, row, 8),
        .created_at = db_get_ll(res, row, 9),
        .expires_at = db_get_ll(res, row, 10),
        .sent_at = db_get_ll(res, row, 11),
        .completed_at = db_get_ll(res, row, 12),
        .result = dup_or_null(res, row, 13),
        .error = dup_or_null(res, row, 14),
    };
    if (!command_status_parse(PQgetvalue(res, row, 5), &c->status))
        c->status = COMMAND_QUEUED; /* the table's CHECK allows nothing else */
    if (!c->name || !c->params || (!c->result && !PQgetisnull(res, row, 13)) ||
        (!c->error && !PQgetisnull(res, row, 14))) {
        command_clear(c);
        return STATUS_INTERNAL;
    }
    return STATUS_OK;
}

/* One row into *out: STATUS_NOT_FOUND for none. */
static enum status read_one(struct db_conn *conn, PGresult *res, struct command *out)
{
    enum status st = db_check(conn, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        st = PQntuples(res) == 1 ? read_command(res, 0, out) : STATUS_NOT_FOUND;
    return st;
}

static enum status read_list(struct db_conn *conn, PGresult *res, struct command_list *out)
{
    *out = (struct command_list){0};
    void *items;
    int n;
    enum status st = db_check_rows(conn, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n && st == STATUS_OK; i++) {
        st = read_command(res, i, &out->items[i]);
        if (st == STATUS_OK)
            out->count++;
    }
    if (st != STATUS_OK)
        command_list_free(out);
    return st;
}

/* Tells every instance (this one too) that these commands changed, inside
 * the change's transaction: the notification exists only if it committed. */
static enum status announce_in_tx(struct db_conn *conn, const struct command *items, int n)
{
    if (n == 0)
        return STATUS_OK;
    long long *ids = malloc((size_t)n * 2 * sizeof *ids);
    if (!ids)
        return STATUS_INTERNAL;
    for (int i = 0; i < n; i++) {
        ids[i] = EVENTS_COMMAND(items[i].id, items[i].status);
        ids[n + i] = items[i].device_id;
    }
    enum status st = db_events_notify(conn, &(struct events){.commands = ids,
                                                             .ncommands = n,
                                                             .command_devices = ids + n,
                                                             .ncommand_devices = n});
    free(ids);
    return st;
}

/* ---- create ------------------------------------------------------------------ */

struct create_tx {
    const struct command_new *in;
    long long owner_scope;
    const struct audit_ctx *audit;
    struct command *out;
};

/* The entry of a change to command id, in its transaction. */
static enum status audit_command_in_tx(struct db_conn *conn, const struct audit_ctx *audit,
                                       const char *action, long long id)
{
    return db_audit_add_in_tx(conn, &(struct audit_entry){audit, action, "command", id});
}

static enum status create_in_tx(struct db_conn *conn, void *ctx)
{
    struct create_tx *t = ctx;
    struct db_ll_text idt, scopet, byt, ttlt, maxt;
    const char *lock_params[] = {db_ll(&idt, t->in->device_id), db_ll(&scopet, t->owner_scope)};
    PGresult *res;
    enum status st = db_exec_row(conn, &LOCK_DEVICE, 2, lock_params, &res);
    PQclear(res);
    if (st != STATUS_OK)
        return st;
    const char *params[] = {idt.s,
                            t->in->name,
                            t->in->params,
                            t->in->created_by ? db_ll(&byt, t->in->created_by) : NULL,
                            db_ll(&ttlt, t->in->ttl_s),
                            db_ll(&maxt, COMMANDS_PER_DEVICE_MAX)};
    res = db_exec(conn, &CREATE, 6, params);
    st = read_one(conn, res, t->out);
    PQclear(res);
    if (st == STATUS_NOT_FOUND)
        return STATUS_CONFLICT; /* the device is there: its queue is full */
    if (st == STATUS_OK)
        st = audit_command_in_tx(conn, t->audit, "command.create", t->out->id);
    return st == STATUS_OK ? announce_in_tx(conn, t->out, 1) : st;
}

enum status db_commands_create(struct db_conn *conn, const struct command_new *in,
                               long long owner_scope, const struct audit_ctx *audit,
                               struct command *out)
{
    *out = (struct command){0};
    struct create_tx t = {in, owner_scope, audit, out};
    enum status st = db_transaction(conn, create_in_tx, &t);
    if (st != STATUS_OK)
        command_clear(out); /* read before a failed announcement or COMMIT */
    return st;
}

/* ---- reads ------------------------------------------------------------------- */

enum status db_commands_get(struct db_conn *conn, long long id, long long owner_scope,
                            struct command *out)
{
    *out = (struct command){0};
    struct db_ll_text idt, scopet;
    const char *params[] = {db_ll(&idt, id), db_ll(&scopet, owner_scope)};
    PGresult *res = db_exec(conn, &GET, 2, params);
    enum status st = read_one(conn, res, out);
    PQclear(res);
    return st;
}

enum status db_commands_list(struct db_conn *conn, long long device_id,
                             const enum command_status *status, long long before_id, int limit,
                             struct command_list *out)
{
    struct db_ll_text idt, beforet, limitt;
    const char *params[] = {db_ll(&idt, device_id), db_ll(&beforet, before_id),
                            status ? command_status_name(*status) : NULL, db_ll(&limitt, limit)};
    PGresult *res = db_exec(conn, &LIST, 4, params);
    enum status st = read_list(conn, res, out);
    PQclear(res);
    return st;
}

enum status db_commands_by_ids(struct db_conn *conn, const long long *ids, int n,
                               struct command_list *out)
{
    *out = (struct command_list){0};
    PGresult *res;
    enum status st = db_exec_ids(conn, &BY_IDS, ids, n, &res);
    if (st == STATUS_OK)
        st = read_list(conn, res, out);
    PQclear(res);
    return st;
}

enum status db_commands_live_muted(struct db_conn *conn, const long long *ids, int n,
                                   long long **users, int *count)
{
    *users = NULL;
    *count = 0;
    PGresult *res;
    enum status st = db_exec_ids(conn, &LIVE_MUTED, ids, n, &res);
    if (st == STATUS_OK)
        st = db_check_rows(conn, res, sizeof **users, (void **)users, count);
    for (int i = 0; st == STATUS_OK && i < *count; i++)
        (*users)[i] = db_get_ll(res, i, 0);
    PQclear(res);
    return st;
}

/* ---- transitions ---------------------------------------------------------------- */

struct claim_tx {
    long long device_id;
    int lock_s, limit;
    struct command_list *out;
};

static enum status claim_in_tx(struct db_conn *conn, void *ctx)
{
    struct claim_tx *t = ctx;
    struct db_ll_text idt, lockt, limitt;
    const char *params[] = {db_ll(&idt, t->device_id), db_ll(&lockt, t->lock_s),
                            db_ll(&limitt, t->limit)};
    PGresult *res = db_exec(conn, &CLAIM, 3, params);
    enum status st = read_list(conn, res, t->out);
    PQclear(res);
    return st == STATUS_OK ? announce_in_tx(conn, t->out->items, t->out->count) : st;
}

enum status db_commands_claim(struct db_conn *conn, long long device_id, int lock_s, int limit,
                              struct command_list *out)
{
    *out = (struct command_list){0};
    struct claim_tx t = {device_id, lock_s, limit, out};
    enum status st = db_transaction(conn, claim_in_tx, &t);
    if (st != STATUS_OK)
        command_list_free(out);
    return st;
}

struct answer_tx {
    long long device_id, id;
    const struct command_answer *answer;
    struct command *out;
    bool *changed;
};

static enum status answer_in_tx(struct db_conn *conn, void *ctx)
{
    struct answer_tx *t = ctx;
    struct db_ll_text idt, devt;
    const char *params[] = {db_ll(&idt, t->id), db_ll(&devt, t->device_id),
                            command_status_name(t->answer->status), t->answer->result,
                            t->answer->error};
    PGresult *res = db_exec(conn, &ANSWER, 5, params);
    enum status st = read_one(conn, res, t->out);
    PQclear(res);
    if (st == STATUS_OK) {
        *t->changed = true;
        return announce_in_tx(conn, t->out, 1);
    }
    if (st != STATUS_NOT_FOUND)
        return st;
    /* Final already, or not this device's. */
    res = db_exec(conn, &ANSWERED, 5, params);
    st = read_one(conn, res, t->out);
    if (st == STATUS_OK && !db_get_bool(res, 0, NCOLUMNS))
        st = STATUS_CONFLICT;
    PQclear(res);
    return st;
}

enum status db_commands_answer(struct db_conn *conn, long long device_id, long long id,
                               const struct command_answer *answer, struct command *out,
                               bool *changed)
{
    *out = (struct command){0};
    *changed = false;
    struct answer_tx t = {device_id, id, answer, out, changed};
    enum status st = db_transaction(conn, answer_in_tx, &t);
    if (st != STATUS_OK && st != STATUS_CONFLICT)
        command_clear(out);
    return st;
}

struct cancel_tx {
    long long id, owner_scope;
    const struct audit_ctx *audit;
    struct command *out;
};

static enum status cancel_in_tx(struct db_conn *conn, void *ctx)
{
    struct cancel_tx *t = ctx;
    struct db_ll_text idt, scopet;
    const char *params[] = {db_ll(&idt, t->id), db_ll(&scopet, t->owner_scope)};
    PGresult *res = db_exec(conn, &CANCEL, 2, params);
    enum status st = read_one(conn, res, t->out);
    PQclear(res);
    if (st == STATUS_OK)
        st = audit_command_in_tx(conn, t->audit, "command.cancel", t->id);
    if (st == STATUS_OK)
        return announce_in_tx(conn, t->out, 1);
    if (st != STATUS_NOT_FOUND)
        return st;
    res = db_exec(conn, &GET, 2, params);
    st = read_one(conn, res, t->out);
    PQclear(res);
    return st == STATUS_OK ? STATUS_CONFLICT : st;
}

enum status db_commands_cancel(struct db_conn *conn, long long id, long long owner_scope,
                               const struct audit_ctx *audit, struct command *out)
{
    *out = (struct command){0};
    struct cancel_tx t = {id, owner_scope, audit, out};
    enum status st = db_transaction(conn, cancel_in_tx, &t);
    if (st != STATUS_OK && st != STATUS_CONFLICT)
        command_clear(out);
    return st;
}

struct expire_tx {
    int limit;
    int *count;
};

static enum status expire_in_tx(struct db_conn *conn, void *ctx)
{
    struct expire_tx *t = ctx;
    struct db_ll_text limitt;
    const char *params[] = {db_ll(&limitt, t->limit)};
    PGresult *res = db_exec(conn, &EXPIRE, 1, params);
    enum status st = db_check(conn, res, PGRES_TUPLES_OK);
    int n = st == STATUS_OK ? PQntuples(res) : 0;
    long long *ids = n > 0 ? malloc((size_t)n * 2 * sizeof *ids) : NULL;
    if (n > 0 && !ids)
        st = STATUS_INTERNAL;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        ids[i] = EVENTS_COMMAND(db_get_ll(res, i, 0), COMMAND_EXPIRED);
        ids[n + i] = db_get_ll(res, i, 1);
    }
    PQclear(res);
    if (st == STATUS_OK && n > 0)
        st = db_events_notify(conn, &(struct events){.commands = ids,
                                                     .ncommands = n,
                                                     .command_devices = ids + n,
                                                     .ncommand_devices = n});
    free(ids);
    *t->count = st == STATUS_OK ? n : 0;
    return st;
}

enum status db_commands_expire(struct db_conn *conn, int limit, int *count)
{
    *count = 0;
    struct expire_tx t = {limit, count};
    return db_transaction(conn, expire_in_tx, &t);
}
