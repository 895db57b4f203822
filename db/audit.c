#include "audit.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* nullif(.., 0): the C side says "none" with 0, the table with NULL. */
static const struct db_stmt ADD = {
    "audit_add", "INSERT INTO audit_log (actor_id, action, target_type, target_id, changes,"
                 " client_addr, request_id) VALUES (nullif($1::bigint, 0), $2, $3,"
                 " nullif($4::bigint, 0), coalesce($5::jsonb, '{}'), $6::inet, $7)"};

/* Every filter a parameter that may be NULL or 0 (off); microsecond bounds
 * go through to_timestamp so no text is parsed twice. */
static const struct db_stmt LIST = {
    "audit_list",
    "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, actor_id, action, target_type,"
    " target_id, changes::text, host(client_addr), request_id FROM audit_log"
    " WHERE ($1::bigint = 0 OR actor_id = $1) AND ($2::text IS NULL OR action = $2)"
    " AND ($3::text IS NULL OR target_type = $3) AND ($4::bigint = 0 OR target_id = $4)"
    " AND ($5::bigint = 0 OR at >= to_timestamp($5::bigint / 1e6))"
    " AND ($6::bigint = 0 OR at < to_timestamp($6::bigint / 1e6))"
    " AND ($7::bigint = 0 OR id < $7) ORDER BY id DESC LIMIT $8"};

enum status db_audit_add_in_tx(struct db_conn *c, const struct audit_entry *e)
{
    static const struct audit_ctx none = {0};
    const struct audit_ctx *ctx = e->ctx ? e->ctx : &none;
    struct db_ll_text actor, target;
    const char *params[] = {db_ll(&actor, ctx->actor_id),
                            e->action,
                            e->target_type,
                            db_ll(&target, e->target_id),
                            ctx->changes,
                            ctx->client_addr,
                            ctx->request_id};
    PGresult *res = db_exec(c, &ADD, 7, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

static enum status add_in_tx(struct db_conn *c, void *ctx)
{
    return db_audit_add_in_tx(c, ctx);
}

enum status db_audit_add(struct db_conn *c, const struct audit_entry *e)
{
    return db_transaction(c, add_in_tx, (void *)e);
}

void audit_list_free(struct audit_list *list)
{
    for (int i = 0; list->items && i < list->count; i++)
        free(list->items[i].changes);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static bool read_row(const PGresult *res, int row, struct audit_row *a)
{
    a->id = db_get_ll(res, row, 0);
    a->at = db_get_ll(res, row, 1);
    a->actor_id = db_get_ll(res, row, 2);
    db_get_str(res, row, 3, a->action, sizeof a->action);
    db_get_str(res, row, 4, a->target_type, sizeof a->target_type);
    a->target_id = db_get_ll(res, row, 5);
    a->changes = strdup(PQgetvalue(res, row, 6));
    db_get_str(res, row, 7, a->client_addr, sizeof a->client_addr);
    db_get_str(res, row, 8, a->request_id, sizeof a->request_id);
    return a->changes != NULL;
}

enum status db_audit_list(struct db_conn *c, const struct audit_query *q, struct audit_list *out)
{
    struct db_ll_text actor, target, from, to, before, limit;
    const char *params[] = {db_ll(&actor, q->actor_id),
                            q->action,
                            q->target_type,
                            db_ll(&target, q->target_id),
                            db_ll(&from, q->from),
                            db_ll(&to, q->to),
                            db_ll(&before, q->before_id),
                            db_ll(&limit, q->limit)};
    PGresult *res = db_exec(c, &LIST, 8, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    out->count = n; /* a row whose changes could not be copied holds NULL */
    for (int i = 0; st == STATUS_OK && i < n; i++)
        if (!read_row(res, i, &out->items[i]))
            st = STATUS_INTERNAL;
    PQclear(res);
    return st;
}
