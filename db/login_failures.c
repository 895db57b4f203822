#include "login_failures.h"

#include "internal.h"

/* The upsert takes the row lock whether the row is new or not, and returns
 * the stored state: one statement, no window between "create" and "lock". */
static const struct db_stmt LOCK = {
    "login_failures_lock",
    "INSERT INTO login_failures (email_key, failures, window_start, expires_at)"
    " VALUES (lower($1), 0, timestamptz 'epoch', now())"
    " ON CONFLICT (email_key) DO UPDATE SET failures = login_failures.failures"
    " RETURNING failures, (extract(epoch FROM window_start) * 1000000)::bigint,"
    " coalesce((extract(epoch FROM locked_until) * 1000000)::bigint, 0)"};

static const struct db_stmt STORE = {
    "login_failures_store",
    "UPDATE login_failures SET failures = $2,"
    " window_start = timestamptz 'epoch' + $3::bigint * interval '1 microsecond',"
    " locked_until = CASE WHEN $4::bigint = 0 THEN NULL"
    "   ELSE timestamptz 'epoch' + $4::bigint * interval '1 microsecond' END,"
    " expires_at = timestamptz 'epoch' + $5::bigint * interval '1 microsecond'"
    " WHERE email_key = lower($1)"};

static const struct db_stmt CLEAR = {"login_failures_clear",
                                     "DELETE FROM login_failures WHERE email_key = lower($1)"};

/* SKIP LOCKED: a row some login is working on right now is left alone. */
static const struct db_stmt PRUNE = {
    "login_failures_prune",
    "DELETE FROM login_failures WHERE email_key IN (SELECT email_key FROM login_failures"
    " WHERE expires_at < timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
    " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)"};

static enum status lock_in_tx(struct db_conn *c, const char *email, struct login_failure *out)
{
    const char *params[] = {email};
    PGresult *res;
    enum status st = db_exec_row(c, &LOCK, 1, params, &res);
    if (st == STATUS_OK) {
        out->failures = (int)db_get_ll(res, 0, 0);
        out->window_start = db_get_ll(res, 0, 1);
        out->locked_until = db_get_ll(res, 0, 2);
        out->expires_at = 0;
    }
    PQclear(res);
    return st == STATUS_NOT_FOUND ? STATUS_INTERNAL : st; /* the upsert always returns its row */
}

static enum status store_in_tx(struct db_conn *c, const char *email,
                               const struct login_failure *state)
{
    struct db_ll_text failures, window_start, locked_until, expires;
    const char *params[] = {
        email, db_ll(&failures, state->failures), db_ll(&window_start, state->window_start),
        db_ll(&locked_until, state->locked_until), db_ll(&expires, state->expires_at)};
    PGresult *res = db_exec(c, &STORE, 5, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

struct update_tx {
    const char *email;
    db_login_failures_decide_fn decide;
    void *ctx;
};

static enum status update_in_tx(struct db_conn *c, void *ctx)
{
    const struct update_tx *u = ctx;
    struct login_failure state;
    enum status st = lock_in_tx(c, u->email, &state);
    if (st == STATUS_OK && u->decide(&state, u->ctx))
        st = store_in_tx(c, u->email, &state);
    return st;
}

enum status db_login_failures_update(struct db_conn *c, const char *email,
                                     db_login_failures_decide_fn decide, void *ctx)
{
    struct update_tx u = {email, decide, ctx};
    return db_transaction(c, update_in_tx, &u);
}

enum status db_login_failures_clear(struct db_conn *c, const char *email)
{
    const char *params[] = {email};
    PGresult *res = db_exec(c, &CLEAR, 1, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

enum status db_login_failures_prune(struct db_conn *c, long long before, int limit)
{
    struct db_ll_text before_s, limit_s;
    const char *params[] = {db_ll(&before_s, before), db_ll(&limit_s, limit)};
    PGresult *res = db_exec(c, &PRUNE, 2, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}
