#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "events.h"
#include "internal.h"
#include "refresh_tokens.h"

#define USER_COLUMNS "id, email, name, role, (extract(epoch FROM created_at) * 1000000)::bigint"

static const struct db_stmt CREATE = {
    "users_create", "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)"
                    " RETURNING " USER_COLUMNS};

static const struct db_stmt COUNT = {"users_count", "SELECT count(*) FROM users"};

static const struct db_stmt GET = {"users_get", "SELECT " USER_COLUMNS " FROM users WHERE id = $1"};

/* lower(email) is what the unique index covers, so this is an index lookup. */
static const struct db_stmt FIND_LOGIN = {
    "users_find_login",
    "SELECT " USER_COLUMNS ", password_hash FROM users WHERE lower(email) = lower($1)"};

static const struct db_stmt PASSWORD_HASH = {"users_password_hash",
                                             "SELECT password_hash FROM users WHERE id = $1"};

static const struct db_stmt REHASH = {
    "users_rehash", "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2"};

static const struct db_stmt UPDATE = {
    "users_update", "UPDATE users SET email = coalesce($2, email), name = coalesce($3, name),"
                    " role = coalesce($4, role), password_hash = coalesce($5, password_hash),"
                    " updated_at = now() WHERE id = $1 RETURNING " USER_COLUMNS};

static const struct db_stmt DELETE = {"users_delete", "DELETE FROM users WHERE id = $1"};

static const struct db_stmt LIST = {
    "users_list", "SELECT " USER_COLUMNS " FROM users WHERE id > $1 AND ($2::text IS NULL"
                  " OR email ILIKE $2 ESCAPE '\\' OR name ILIKE $2 ESCAPE '\\')"
                  " ORDER BY id LIMIT $3"};

static void read_user(const PGresult *res, int row, struct user *u)
{
    u->id = db_get_ll(res, row, 0);
    db_get_str(res, row, 1, u->email, sizeof u->email);
    db_get_str(res, row, 2, u->name, sizeof u->name);
    u->role = role_parse(PQgetvalue(res, row, 3));
    u->created_at = db_get_ll(res, row, 4);
}

/* Runs a statement expected to return at most one user row. */
static enum status one_user(struct db_conn *c, const struct db_stmt *stmt, int n,
                            const char *const *params, struct user *out)
{
    PGresult *res;
    enum status st = db_exec_row(c, stmt, n, params, &res);
    if (st == STATUS_OK)
        read_user(res, 0, out);
    PQclear(res);
    return st;
}

/* The entry of a change to user id, in its transaction. */
static enum status audit_user_in_tx(struct db_conn *c, const struct audit_ctx *audit,
                                    const char *action, long long id)
{
    return db_audit_add_in_tx(c, &(struct audit_entry){audit, action, "user", id});
}

struct create_tx {
    const char *params[4];
    const struct audit_ctx *audit;
    struct user *out;
};

static enum status create_in_tx(struct db_conn *c, void *ctx)
{
    const struct create_tx *t = ctx;
    enum status st = one_user(c, &CREATE, 4, t->params, t->out);
    return st == STATUS_OK ? audit_user_in_tx(c, t->audit, "user.create", t->out->id) : st;
}

enum status db_users_create(struct db_conn *c, const char *email, const char *name, enum role role,
                            const char *password_hash, const struct audit_ctx *audit,
                            struct user *out)
{
    struct create_tx t = {{email, name, role_name(role), password_hash}, audit, out};
    return db_transaction(c, create_in_tx, &t);
}

enum status db_users_count(struct db_conn *c, long long *count)
{
    PGresult *res = db_exec(c, &COUNT, 0, NULL);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK)
        *count = db_get_ll(res, 0, 0);
    PQclear(res);
    return st;
}

enum status db_users_get(struct db_conn *c, long long id, struct user *out)
{
    struct db_ll_text idt;
    const char *params[] = {db_ll(&idt, id)};
    return one_user(c, &GET, 1, params, out);
}

enum status db_users_find_login(struct db_conn *c, const char *email, struct user *out, char *hash,
                                size_t hash_size)
{
    const char *params[] = {email};
    PGresult *res;
    enum status st = db_exec_row(c, &FIND_LOGIN, 1, params, &res);
    if (st == STATUS_OK) {
        read_user(res, 0, out);
        db_get_str(res, 0, 5, hash, hash_size);
    }
    PQclear(res);
    return st;
}

enum status db_users_password_hash(struct db_conn *c, long long id, char *hash, size_t hash_size)
{
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%lld", id);
    const char *params[] = {id_s};
    PGresult *res;
    enum status st = db_exec_row(c, &PASSWORD_HASH, 1, params, &res);
    if (st == STATUS_OK)
        db_get_str(res, 0, 0, hash, hash_size);
    PQclear(res);
    return st;
}

enum status db_users_rehash(struct db_conn *c, long long id, const char *old_hash,
                            const char *new_hash)
{
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%lld", id);
    const char *params[] = {id_s, old_hash, new_hash};
    PGresult *res = db_exec(c, &REHASH, 3, params);
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

/* Tells live sessions on every instance that the user's role changed or
 * that the user is gone, inside the change's transaction. */
static enum status announce_user_in_tx(struct db_conn *c, long long id)
{
    return db_events_notify(c, &(struct events){.users_changed = &id, .nusers_changed = 1});
}

struct update_tx {
    long long id;
    const struct user_change *change;
    const struct audit_ctx *audit;
    struct user *out;
};

static enum status update_in_tx(struct db_conn *c, void *ctx)
{
    const struct update_tx *u = ctx;
    struct db_ll_text idt;
    const char *role = u->change->role == ROLE_NONE ? NULL : role_name(u->change->role);
    const char *params[] = {db_ll(&idt, u->id), u->change->email, u->change->name, role,
                            u->change->password_hash};
    enum status st = one_user(c, &UPDATE, 5, params, u->out);
    if (st == STATUS_OK)
        st = audit_user_in_tx(c, u->audit, "user.update", u->id);
    if (st == STATUS_OK && u->change->password_hash)
        st = db_refresh_revoke_user_in_tx(c, u->id);
    if (st == STATUS_OK && u->change->role != ROLE_NONE)
        st = announce_user_in_tx(c, u->id);
    return st;
}

enum status db_users_update(struct db_conn *c, long long id, const struct user_change *change,
                            const struct audit_ctx *audit, struct user *out)
{
    struct update_tx u = {id, change, audit, out};
    return db_transaction(c, update_in_tx, &u);
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
    enum status st = db_check(c, res, PGRES_COMMAND_OK);
    if (st == STATUS_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STATUS_NOT_FOUND;
    PQclear(res);
    if (st == STATUS_OK)
        st = audit_user_in_tx(c, t->audit, "user.delete", t->id);
    return st == STATUS_OK ? announce_user_in_tx(c, t->id) : st;
}

enum status db_users_delete(struct db_conn *c, long long id, const struct audit_ctx *audit)
{
    struct delete_tx t = {id, audit};
    return db_transaction(c, delete_in_tx, &t);
}

/* "%q%" with \, % and _ in q escaped, for ILIKE ... ESCAPE '\'. Caller frees. */
static char *contains_pattern(const char *q)
{
    size_t len = strlen(q);
    char *out = malloc(2 * len + 3);
    if (!out)
        return NULL;
    char *p = out;
    *p++ = '%';
    for (const char *s = q; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

enum status db_users_list(struct db_conn *c, const char *q, long long after_id, int limit,
                          struct user *out, int *count)
{
    char after[24], limit_s[16];
    *count = 0;
    char *pattern = q ? contains_pattern(q) : NULL;
    if (q && !pattern)
        return STATUS_INTERNAL;
    snprintf(after, sizeof after, "%lld", after_id);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *params[] = {after, pattern, limit_s};
    PGresult *res = db_exec(c, &LIST, 3, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    if (st == STATUS_OK) {
        int n = PQntuples(res);
        for (int i = 0; i < n && i < limit; i++)
            read_user(res, i, &out[i]);
        *count = n < limit ? n : limit;
    }
    PQclear(res);
    free(pattern);
    return st;
}
