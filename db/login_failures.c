#include "login_failures.h"

#include <stdio.h>

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

enum status db_login_failures_lock(struct db_conn *c, const char *email, struct login_failure *out)
{
    enum status st = db_begin(c);
    if (st != STATUS_OK)
        return st;
    const char *params[] = {email};
    PGresult *res = db_exec(c, &LOCK, 1, params);
    st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(res) != 1)
        st = STATUS_INTERNAL;
    if (st == STATUS_OK) {
        out->failures = (int)db_get_ll(res, 0, 0);
        out->window_start = db_get_ll(res, 0, 1);
        out->locked_until = db_get_ll(res, 0, 2);
        out->expires_at = 0;
    }
    PQclear(res);
    if (st != STATUS_OK)
        db_rollback(c);
    return st;
}

enum status db_login_failures_store(struct db_conn *c, const char *email,
                                    const struct login_failure *state)
{
    char failures[16], window_start[24], locked_until[24], expires[24];
    snprintf(failures, sizeof failures, "%d", state->failures);
    snprintf(window_start, sizeof window_start, "%lld", state->window_start);
    snprintf(locked_until, sizeof locked_until, "%lld", state->locked_until);
    snprintf(expires, sizeof expires, "%lld", state->expires_at);
    const char *params[] = {email, failures, window_start, locked_until, expires};
    PGresult *res = db_exec(c, &STORE, 5, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    if (st == STATUS_OK)
        st = db_commit(c);
    if (st != STATUS_OK)
        db_rollback(c);
    return st;
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
    char before_s[24], limit_s[16];
    snprintf(before_s, sizeof before_s, "%lld", before);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *params[] = {before_s, limit_s};
    PGresult *res = db_exec(c, &PRUNE, 2, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}
