#include "refresh_tokens.h"

#include <stdio.h>

#include "audit.h"
#include "internal.h"

static const struct db_stmt START = {
    "refresh_start", "WITH f AS (INSERT INTO refresh_families (user_id) VALUES ($1) RETURNING id)"
                     " INSERT INTO refresh_tokens (token_hash, family_id, expires_at)"
                     " SELECT $2, id, now() + $3::bigint * interval '1 second' FROM f"};

/* The row lock taken by this UPDATE is what makes one of two concurrent
 * refreshes with the same token win: the other re-checks used_at after the
 * winner commits and matches nothing. */
static const struct db_stmt SPEND = {
    "refresh_spend", "UPDATE refresh_tokens t SET used_at = now() FROM refresh_families f"
                     " WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()"
                     " AND f.id = t.family_id AND f.revoked_at IS NULL"
                     " RETURNING t.family_id, f.user_id"};

static const struct db_stmt SUCCEED = {
    "refresh_succeed", "INSERT INTO refresh_tokens (token_hash, family_id, expires_at)"
                       " VALUES ($1, $2, now() + $3::bigint * interval '1 second')"};

static const struct db_stmt REVOKE_IF_SPENT = {
    "refresh_revoke_if_spent",
    "UPDATE refresh_families f SET revoked_at = now() FROM refresh_tokens t"
    " WHERE t.token_hash = $1 AND t.used_at IS NOT NULL AND f.id = t.family_id"
    " AND f.revoked_at IS NULL RETURNING f.user_id"};

static const struct db_stmt REVOKE_FAMILY = {
    "refresh_revoke_family",
    "UPDATE refresh_families f SET revoked_at = now() FROM refresh_tokens t"
    " WHERE t.token_hash = $1 AND f.id = t.family_id AND f.revoked_at IS NULL"};

static const struct db_stmt REVOKE_USER = {
    "refresh_revoke_user",
    "UPDATE refresh_families SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"};

static const struct db_stmt PRUNE_USER = {
    "refresh_prune_user",
    "DELETE FROM refresh_families f WHERE f.user_id = $1 AND (f.revoked_at IS NOT NULL"
    " OR NOT EXISTS (SELECT 1 FROM refresh_tokens t"
    " WHERE t.family_id = f.id AND t.expires_at > now()))"};

/* Runs a statement that returns no rows. */
static enum status run_command(struct db_conn *c, const struct db_stmt *stmt, int n,
                               const char *const *params)
{
    PGresult *res = db_exec(c, stmt, n, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

struct start_tx {
    long long user_id;
    const char *token_hash;
    long long ttl_s;
    const struct audit_ctx *audit;
};

static enum status start_in_tx(struct db_conn *c, void *ctx)
{
    const struct start_tx *t = ctx;
    char id[24], ttl[24];
    snprintf(id, sizeof id, "%lld", t->user_id);
    snprintf(ttl, sizeof ttl, "%lld", t->ttl_s);
    const char *params[] = {id, t->token_hash, ttl};
    enum status st = run_command(c, &START, 3, params);
    return st == STATUS_OK ? db_audit_add_in_tx(c, &(struct audit_entry){t->audit, "login.success",
                                                                         "user", t->user_id})
                           : st;
}

enum status db_refresh_start(struct db_conn *c, long long user_id, const char *token_hash,
                             long long ttl_s, const struct audit_ctx *audit)
{
    struct start_tx t = {user_id, token_hash, ttl_s, audit};
    return db_transaction(c, start_in_tx, &t);
}

/* The spending UPDATE: *family_id and *user_id of the spent token, or
 * STATUS_NOT_FOUND. */
static enum status spend(struct db_conn *c, const char *token_hash, long long *family_id,
                         long long *user_id)
{
    const char *params[] = {token_hash};
    PGresult *res;
    enum status st = db_exec_row(c, &SPEND, 1, params, &res);
    if (st == STATUS_OK) {
        *family_id = db_get_ll(res, 0, 0);
        *user_id = db_get_ll(res, 0, 1);
    }
    PQclear(res);
    return st;
}

struct rotate_tx {
    const char *token_hash, *next_hash;
    long long ttl_s;
    long long *user_id;
};

static enum status rotate_in_tx(struct db_conn *c, void *ctx)
{
    const struct rotate_tx *r = ctx;
    long long family_id = 0;
    enum status st = spend(c, r->token_hash, &family_id, r->user_id);
    if (st != STATUS_OK)
        return st;
    struct db_ll_text family, ttl;
    const char *params[] = {r->next_hash, db_ll(&family, family_id), db_ll(&ttl, r->ttl_s)};
    return run_command(c, &SUCCEED, 3, params);
}

enum status db_refresh_rotate(struct db_conn *c, const char *token_hash, const char *next_hash,
                              long long ttl_s, long long *user_id)
{
    struct rotate_tx r = {token_hash, next_hash, ttl_s, user_id};
    return db_transaction(c, rotate_in_tx, &r);
}

enum status db_refresh_revoke_if_spent(struct db_conn *c, const char *token_hash,
                                       long long *user_id)
{
    const char *params[] = {token_hash};
    PGresult *res;
    enum status st = db_exec_row(c, &REVOKE_IF_SPENT, 1, params, &res);
    if (st == STATUS_OK)
        *user_id = db_get_ll(res, 0, 0);
    PQclear(res);
    return st;
}

enum status db_refresh_revoke_family(struct db_conn *c, const char *token_hash)
{
    const char *params[] = {token_hash};
    return run_command(c, &REVOKE_FAMILY, 1, params);
}

enum status db_refresh_revoke_user_in_tx(struct db_conn *c, long long user_id)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", user_id);
    const char *params[] = {id};
    return run_command(c, &REVOKE_USER, 1, params);
}

enum status db_refresh_prune_user(struct db_conn *c, long long user_id)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", user_id);
    const char *params[] = {id};
    return run_command(c, &PRUNE_USER, 1, params);
}
