#include "devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "events.h"
#include "internal.h"

/* The columns read_device() expects, in order. */
#define DEVICE_COLUMNS                                                                             \
    "id, name, description, address, max_hourly_kwh, reading_type, owner_id,"                      \
    " (extract(epoch FROM created_at) * 1000000)::bigint,"                                         \
    " (extract(epoch FROM last_seen_at) * 1000000)::bigint, serial,"                               \
    " offline_after_s, CASE WHEN offline_after_s IS NULL OR last_seen_at IS NULL THEN NULL"        \
    "  WHEN offline_since IS NOT NULL THEN 'offline' ELSE 'online' END, over_limit_command::text"
/* How many columns DEVICE_COLUMNS has: what a statement returns after them starts here. */
#define DEVICE_NCOLUMNS 13

static const struct db_stmt CREATE = {
    "devices_create",
    "INSERT INTO devices (name, description, address, max_hourly_kwh, reading_type, owner_id,"
    "  token_hash, serial, offline_after_s, over_limit_command)"
    " VALUES ($1, coalesce($2, ''), coalesce($3, ''), $4::float8, $5, $6::bigint, $7, $8, $9::int,"
    "  $10::jsonb)"
    " RETURNING " DEVICE_COLUMNS};

static const struct db_stmt GET = {
    "devices_get",
    "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = $1 AND ($2::bigint = 0 OR owner_id = $2)"};

/* Two statements rather than one with "$3 = 0 OR": each keeps its own index
 * (the primary key, or devices_owner_idx on (owner_id, id)) in a generic plan. */
static const struct db_stmt LIST_ALL = {"devices_list_all",
                                        "SELECT " DEVICE_COLUMNS
                                        " FROM devices WHERE id > $1 ORDER BY id LIMIT $2"};

static const struct db_stmt LIST_OWNED = {
    "devices_list_owned",
    "SELECT " DEVICE_COLUMNS " FROM devices WHERE owner_id = $3 AND id > $1 ORDER BY id LIMIT $2"};

/* The locked subquery gives the owner before the update, so one round trip
 * tells whether the owner changed. NULL parameters keep a column as it is. */
static const struct db_stmt UPDATE = {
    "devices_update",
    "UPDATE devices SET name = coalesce($3, name), description = coalesce($4, description),"
    "  address = coalesce($5, address), max_hourly_kwh = coalesce($6::float8, max_hourly_kwh),"
    "  owner_id = CASE WHEN $7::bool THEN $8::bigint ELSE owner_id END,"
    "  serial = CASE WHEN $9::bool THEN $10 ELSE serial END, updated_at = now(),"
    "  over_limit_command = CASE WHEN $13::bool THEN $14::jsonb ELSE over_limit_command END,"
    /* The sweep's deadline moves with the setting; no setting, no status. */
    "  offline_after_s = CASE WHEN $11::bool THEN $12::int ELSE offline_after_s END,"
    "  offline_due_at = CASE WHEN $11::bool THEN last_seen_at + $12::int * interval '1 second'"
    "   ELSE offline_due_at END,"
    "  offline_since = CASE WHEN $11::bool AND $12::int IS NULL THEN NULL ELSE offline_since END"
    " FROM (SELECT id AS old_id, owner_id AS old_owner FROM devices"
    "  WHERE id = $1 AND ($2::bigint = 0 OR owner_id = $2) FOR UPDATE) old"
    " WHERE id = old.old_id"
    " RETURNING " DEVICE_COLUMNS ", old.old_owner IS DISTINCT FROM owner_id"};

/* One of $2 (the id) and $3 (the serial) is NULL. The token's UNIQUE index
 * finds the row; the name only confirms it. */
static const struct db_stmt TOKEN_MATCHES = {
    "devices_token_matches",
    "SELECT 1 FROM devices WHERE token_hash = $1 AND (id = $2::bigint OR serial = $3)"};

static const struct db_stmt SET_TOKEN = {
    "devices_set_token", "UPDATE devices SET token_hash = $2, updated_at = now() WHERE id = $1"};

static const struct db_stmt DELETE = {"devices_delete",
                                      "DELETE FROM devices WHERE id = $1 RETURNING id"};

void device_clear(struct device *d)
{
    free(d->name);
    free(d->description);
    free(d->address);
    free(d->serial);
    free(d->over_limit_command);
    memset(d, 0, sizeof *d);
}

void device_list_free(struct device_list *list)
{
    for (int i = 0; i < list->count; i++)
        device_clear(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static char *dup_column(const PGresult *res, int row, int col)
{
    return strdup(PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* Fills d from a row of DEVICE_COLUMNS; STATUS_INTERNAL when out of memory. */
static enum status read_device(const PGresult *res, int row, struct device *d)
{
    *d = (struct device){
        .id = db_get_ll(res, row, 0),
        .name = dup_column(res, row, 1),
        .description = dup_column(res, row, 2),
        .address = dup_column(res, row, 3),
        .max_hourly_kwh = db_get_double(res, row, 4),
        .owner_id = db_get_ll(res, row, 6),
        .created_at = db_get_ll(res, row, 7),
        .last_seen_at = db_get_ll(res, row, 8),
        .serial = PQgetisnull(res, row, 9) ? NULL : strdup(PQgetvalue(res, row, 9)),
        .offline_after_s = (int)db_get_ll(res, row, 10),
        .over_limit_command = PQgetisnull(res, row, 12) ? NULL : strdup(PQgetvalue(res, row, 12)),
    };
    db_get_str(res, row, 11, d->status, sizeof d->status);
    if (!reading_type_parse(PQgetvalue(res, row, 5), &d->reading_type))
        d->reading_type = READING_CUMULATIVE; /* the table's CHECK allows nothing else */
    if (!d->name || !d->description || !d->address || (!d->serial && !PQgetisnull(res, row, 9)) ||
        (!d->over_limit_command && !PQgetisnull(res, row, 12))) {
        device_clear(d);
        return STATUS_INTERNAL;
    }
    return STATUS_OK;
}

/* A double parameter, exactly. */
struct double_text {
    char s[32];
};

static const char *double_text(struct double_text *buf, double v)
{
    snprintf(buf->s, sizeof buf->s, "%.17g", v); /* exact round trip */
    return buf->s;
}

/* The entry of a change to device id, in its transaction. */
static enum status audit_device_in_tx(struct db_conn *c, const struct audit_ctx *audit,
                                      const char *action, long long id)
{
    return db_audit_add_in_tx(c, &(struct audit_entry){audit, action, "device", id});
}

struct create_tx {
    const struct device_new *in;
    const char *token_hash;
    const struct audit_ctx *audit;
    struct device *out;
};

static enum status create_in_tx(struct db_conn *c, void *ctx)
{
    const struct create_tx *t = ctx;
    const struct device_new *in = t->in;
    struct double_text max;
    struct db_ll_text owner, offline;
    const char *params[] = {in->name,
                            in->description,
                            in->address,
                            double_text(&max, in->max_hourly_kwh),
                            reading_type_name(in->reading_type),
                            in->owner_id ? db_ll(&owner, in->owner_id) : NULL,
                            t->token_hash,
                            in->serial,
                            in->offline_after_s ? db_ll(&offline, in->offline_after_s) : NULL,
                            in->over_limit_command};
    PGresult *res = db_exec(c, &CREATE, 10, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        st = read_device(res, 0, t->out);
    PQclear(res);
    return st == STATUS_OK ? audit_device_in_tx(c, t->audit, "device.create", t->out->id) : st;
}

enum status db_devices_create(struct db_conn *c, const struct device_new *in,
                              const char *token_hash, const struct audit_ctx *audit,
                              struct device *out)
{
    *out = (struct device){0};
    struct create_tx t = {in, token_hash, audit, out};
    enum status st = db_transaction(c, create_in_tx, &t);
    if (st != STATUS_OK)
        device_clear(out); /* read before a failed entry or COMMIT */
    return st;
}

enum status db_devices_get(struct db_conn *c, long long id, long long owner_id, struct device *out)
{
    struct db_ll_text idt, ownert;
    const char *params[] = {db_ll(&idt, id), db_ll(&ownert, owner_id)};
    PGresult *res = db_exec(c, &GET, 2, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        st = PQntuples(res) == 1 ? read_device(res, 0, out) : STATUS_NOT_FOUND;
    PQclear(res);
    return st;
}

enum status db_devices_list(struct db_conn *c, long long owner_id, long long after_id, int limit,
                            struct device_list *out)
{
    *out = (struct device_list){0};
    struct db_ll_text aftert, limitt, ownert;
    const char *params[] = {db_ll(&aftert, after_id), db_ll(&limitt, limit),
                            db_ll(&ownert, owner_id)};
    PGresult *res =
        owner_id ? db_exec(c, &LIST_OWNED, 3, params) : db_exec(c, &LIST_ALL, 2, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n && st == STATUS_OK; i++) {
        st = read_device(res, i, &out->items[i]);
        if (st == STATUS_OK)
            out->count++;
    }
    PQclear(res);
    if (st != STATUS_OK)
        device_list_free(out);
    return st;
}

/* Runs UPDATE; *owner_changed tells whether the owner moved. */
static enum status run_update(struct db_conn *c, long long id, long long owner_scope,
                              const struct device_patch *p, struct device *out, bool *owner_changed)
{
    struct db_ll_text idt, scopet, ownert, offlinet;
    struct double_text maxt;
    const char *params[] = {
        db_ll(&idt, id),
        db_ll(&scopet, owner_scope),
        p->name,
        p->description,
        p->address,
        p->set_max_hourly_kwh ? double_text(&maxt, p->max_hourly_kwh) : NULL,
        p->set_owner ? "true" : "false",
        p->set_owner && p->owner_id ? db_ll(&ownert, p->owner_id) : NULL,
        p->set_serial ? "true" : "false",
        p->set_serial ? p->serial : NULL,
        p->set_offline_after_s ? "true" : "false",
        p->offline_after_s ? db_ll(&offlinet, p->offline_after_s) : NULL,
        p->set_over_limit_command ? "true" : "false",
        p->set_over_limit_command ? p->over_limit_command : NULL,
    };
    PGresult *res = db_exec(c, &UPDATE, 14, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) != 1)
        st = STATUS_NOT_FOUND;
    if (st == STATUS_OK) {
        *owner_changed = db_get_bool(res, 0, DEVICE_NCOLUMNS);
        st = read_device(res, 0, out);
    }
    PQclear(res);
    return st;
}

/* Tells every instance the device changed hands or went, inside the change's
 * transaction: the notification exists only if the change committed. */
static enum status announce_device_in_tx(struct db_conn *c, long long id)
{
    return db_events_notify(c, &(struct events){.devices_changed = &id, .ndevices_changed = 1});
}

struct update_tx {
    long long id, owner_scope;
    const struct device_patch *patch;
    const struct audit_ctx *audit;
    struct device *out;
};

static enum status update_in_tx(struct db_conn *c, void *ctx)
{
    struct update_tx *u = ctx;
    bool owner_changed = false;
    enum status st = run_update(c, u->id, u->owner_scope, u->patch, u->out, &owner_changed);
    if (st == STATUS_OK)
        st = audit_device_in_tx(c, u->audit, "device.update", u->id);
    return st == STATUS_OK && owner_changed ? announce_device_in_tx(c, u->id) : st;
}

enum status db_devices_update(struct db_conn *c, long long id, long long owner_scope,
                              const struct device_patch *patch, const struct audit_ctx *audit,
                              struct device *out)
{
    *out = (struct device){0};
    /* The audit entry commits with the change, hence the transaction. */
    struct update_tx u = {id, owner_scope, patch, audit, out};
    enum status st = db_transaction(c, update_in_tx, &u);
    if (st != STATUS_OK)
        device_clear(out); /* read before a failed announcement or COMMIT */
    return st;
}

struct set_token_tx {
    long long id;
    const char *token_hash;
    const struct audit_ctx *audit;
};

/* The announcement closes the device's WebSocket sessions on every instance
 * (they authenticated with the old token). */
static enum status set_token_in_tx(struct db_conn *c, void *ctx)
{
    const struct set_token_tx *t = ctx;
    struct db_ll_text idt;
    const char *params[] = {db_ll(&idt, t->id), t->token_hash};
    PGresult *res = db_exec(c, &SET_TOKEN, 2, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    if (st == STATUS_OK && strcmp(PQcmdTuples(res), "1") != 0)
        st = STATUS_NOT_FOUND;
    PQclear(res);
    if (st == STATUS_OK)
        st = audit_device_in_tx(c, t->audit, "device.rotate_token", t->id);
    return st == STATUS_OK ? announce_device_in_tx(c, t->id) : st;
}

enum status db_devices_set_token(struct db_conn *c, long long id, const char *token_hash,
                                 const struct audit_ctx *audit)
{
    struct set_token_tx t = {id, token_hash, audit};
    return db_transaction(c, set_token_in_tx, &t);
}

struct delete_tx {
    long long id;
    const struct audit_ctx *audit;
};

static enum status delete_in_tx(struct db_conn *c, void *ctx)
{
    const struct delete_tx *t = ctx;
    struct db_ll_text idt;
    const char *params[] = {db_ll(&idt, t->id)};
    PGresult *res = db_exec(c, &DELETE, 1, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) != 1)
        st = STATUS_NOT_FOUND;
    PQclear(res);
    if (st == STATUS_OK)
        st = audit_device_in_tx(c, t->audit, "device.delete", t->id);
    return st == STATUS_OK ? announce_device_in_tx(c, t->id) : st;
}

enum status db_devices_delete(struct db_conn *c, long long id, const struct audit_ctx *audit)
{
    struct delete_tx t = {id, audit};
    return db_transaction(c, delete_in_tx, &t);
}

/* ---- by name ------------------------------------------------------------------ */

enum status db_devices_token_matches(struct db_conn *c, const char *name, const char *token_hash)
{
    long long id = 0;
    enum device_name_kind kind = device_name_parse(name, &id);
    if (kind == DEVICE_NAME_INVALID)
        return STATUS_NOT_FOUND;
    struct db_ll_text idt;
    const char *params[] = {token_hash, kind == DEVICE_NAME_ID ? db_ll(&idt, id) : NULL,
                            kind == DEVICE_NAME_SERIAL ? name : NULL};
    PGresult *res;
    enum status st = db_exec_row(c, &TOKEN_MATCHES, 3, params, &res);
    PQclear(res);
    return st;
}
