#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/refresh_tokens.h"
#include "../base/clock.h"
#include "../base/log.h"
#include "../auth/accounts.h"
#include "../auth/authn.h"
#include "../auth/login.h"
#include "../api/app.h"
#include "../api/audit.h"
#include "../api/reply.h"
#include "../api/resources.h"
#include "../auth/jwt.h"
#include "../base/crypto.h"
#include "../auth/throttle.h"
#include "../api/validate.h"

/* Refresh tokens we issue are 43 characters; anything longer than this is
 * not worth hashing. */
#define REFRESH_TOKEN_MAX 1024

/* ---- replies ------------------------------------------------------------- */

static int reply_invalid_credentials(struct response *res)
{
    return response_problem(res, 401, "invalid_credentials", NULL, "wrong email or password");
}

static int reply_invalid_refresh(struct response *res)
{
    return response_problem(res, 401, "invalid_refresh_token", NULL,
                            "the refresh token is unknown, expired, spent or revoked");
}

/* 200 {"access_token", "token_type", "expires_in", "refresh_token", "user"}. */
static int reply_session(struct response *res, struct app *app, const struct user *user,
                         const char *refresh_token)
{
    const struct config *cfg = app->config;
    char sub[24];
    char *access = NULL;
    snprintf(sub, sizeof sub, "%lld", user->id);
    if (!jwt_issue((const unsigned char *)cfg->jwt_secret, cfg->jwt_secret_len, JWT_ISSUER, sub,
                   role_name(user->role), (long long)time(NULL), cfg->access_token_ttl, &access,
                   NULL)) {
        log_error("auth: cannot issue an access token for user %lld", user->id);
        return response_status(res, STATUS_INTERNAL);
    }
    json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:o}", "access_token", access, "token_type",
                             "Bearer", "expires_in", cfg->access_token_ttl, "refresh_token",
                             refresh_token, "user", user_to_json(user));
    free(access);
    if (!body)
        return response_status(res, STATUS_INTERNAL);
    /* Tokens must not sit in any cache (RFC 6749, 5.1). */
    response_header(res, "Cache-Control", "no-store");
    return response_json(res, 200, body);
}

/* ---- login ----------------------------------------------------------------- */

/* What a login learned while it held a password-hashing slot. */
struct login {
    struct user user;
    bool found;
    bool busy;         /* no password-hashing slot freed up in time */
    double locked_for; /* > 0: the account is locked; nothing was checked */
    enum password_verdict verdict;
    char stored[PASSWORD_HASH_MAX];
    char upgraded[PASSWORD_HASH_MAX]; /* "" unless the stored hash was weak */
};

/* Counts the attempt and reads the account (one connection, released before
 * the slow hash so the pool is not held by scrypt). */
static enum status login_lookup(struct app *app, const char *email, double now, struct login *l)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return STATUS_UNAVAILABLE;
    enum status st = login_count_attempt(conn, email, now, &l->locked_for);
    if (st == STATUS_OK && l->locked_for <= 0) {
        st = db_users_find_login(conn, email, &l->user, l->stored, sizeof l->stored);
        l->found = st == STATUS_OK;
        if (st == STATUS_NOT_FOUND)
            st = STATUS_OK;
    }
    db_pool_release(app->pool, conn);
    return st;
}

/* The password check: the same scrypt work whether or not the email exists;
 * a hash with parameters weaker than today's is replaced by a new one. */
static void login_verify(const char *password, size_t len, struct login *l)
{
    l->verdict = password_verify(password, len, l->found ? l->stored : NULL, NULL);
    if (l->verdict == PASSWORD_BAD_HASH)
        log_error("auth: user %lld has an unreadable password hash", l->user.id);
    if (l->verdict == PASSWORD_MATCH_REHASH &&
        !password_hash(password, len, &PASSWORD_PARAMS_DEFAULT, l->upgraded))
        l->upgraded[0] = '\0'; /* keep the old hash; try again next time */
}

/* Under a slot of the password limiter: lookup and verification. */
static enum status login_check(struct app *app, const char *email, const char *password, double now,
                               struct login *l)
{
    if (!password_limiter_enter(app->password_limiter, ACCOUNTS_HASH_WAIT_MS)) {
        l->busy = true;
        return STATUS_UNAVAILABLE;
    }
    enum status st = login_lookup(app, email, now, l);
    if (st == STATUS_OK && l->locked_for <= 0)
        login_verify(password, strlen(password), l);
    password_limiter_leave(app->password_limiter);
    return st;
}

/* After a correct password: forgive the attempt, store an upgraded hash,
 * drop dead sessions and start a new one. */
static enum status login_start_session(struct app *app, const char *email, const struct login *l,
                                       const char *refresh_hash, const struct audit_ctx *audit)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return STATUS_UNAVAILABLE;
    enum status st = login_forgive_account(conn, email);
    if (st == STATUS_OK && l->upgraded[0])
        st = db_users_rehash(conn, l->user.id, l->stored, l->upgraded);
    if (st == STATUS_OK)
        st = db_refresh_prune_user(conn, l->user.id);
    if (st == STATUS_OK)
        st = db_refresh_start(conn, l->user.id, refresh_hash, AUTH_REFRESH_TTL_S, audit);
    db_pool_release(app->pool, conn);
    return st;
}

/* A wrong password or an unknown email: the login.failure entry, with the
 * account when there is one. Its own transaction: the attempt itself was
 * counted before the password was checked (login_count_attempt). A failure
 * that cannot be recorded is answered 503, never a 401 that left no trace. */
static enum status login_record_failure(const struct request *req, struct app *app,
                                        const struct audit_note *note, const struct login *l)
{
    struct audit_entry e = {&note->ctx, "login.failure", "user", l->found ? l->user.id : 0};
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    enum status st = conn ? db_audit_add(conn, &e) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        log_error("auth: the failed login of request %s is not in the audit log", req->request_id);
    return st;
}

/* Failed logins slow down only the address they come from (THROTTLE_ADDRESS:
 * after a burst, one more try every lock_s seconds), so that they never make
 * a login from another address fail. Behind a proxy the address is the one
 * TRUSTED_PROXIES vouch for; every unknown client shares one key. */
int auth_login_admit(const struct request *req, struct response *res, struct app *app)
{
    /* The time now, not the request's start: it is checked again on the
     * worker, maybe long after. */
    double wait = throttle_table_wait(app->login_throttle, req->client_ip, clock_wall_s());
    return wait > 0 ? reply_throttled(res, wait) : 0;
}

/* POST /api/v1/auth/login — anyone — {"email", "password"}.
 * 200 {"access_token", "token_type": "Bearer", "expires_in", "refresh_token",
 * "user"}; 401 invalid_credentials for an unknown email and a wrong password
 * alike; 429 too_many_attempts (Retry-After) when the account is locked or
 * the client address is being slowed (checked first on the HTTP thread:
 * auth_login_admit); 422 bad members; 503 busy or database unavailable. */
int auth_login(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"email", "password", NULL};
    const char *email, *password;
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !validate_string_or_reply(req->body, "email", true, USER_EMAIL_MAX, &email, res) ||
        !validate_string_or_reply(req->body, "password", true, PASSWORD_MAX, &password, res))
        return res->status;

    /* Again: failures counted while this request waited for its worker. */
    if (auth_login_admit(req, res, app) != 0)
        return res->status;

    /* An attempt is a password that was checked: one refused by a throttle
     * before any check (the address's or the account's lock) is not. */
    struct audit_note note;
    if (!audit_note_init(&note, req, json_pack("{s:s}", "email", email)))
        return response_status(res, STATUS_INTERNAL);
    note.ctx.actor_id = 0; /* whoever sent a token along: a login's actor is who logged in */
    struct login *l = calloc(1, sizeof *l);
    if (!l) {
        audit_note_free(&note);
        return response_status(res, STATUS_INTERNAL);
    }
    enum status st = login_check(app, email, password, req->now, l);
    if (l->busy)
        reply_busy(res);
    else if (st != STATUS_OK)
        response_status(res, st);
    else if (l->locked_for > 0)
        reply_throttled(res, l->locked_for);
    else if (l->verdict != PASSWORD_MATCH && l->verdict != PASSWORD_MATCH_REHASH) {
        /* Stamped when it failed: a slow hash must not shorten the slowdown. */
        throttle_table_fail(app->login_throttle, req->client_ip, clock_wall_s());
        log_info("auth: failed login from %s", req->client_ip);
        st = login_record_failure(req, app, &note, l);
        if (st == STATUS_OK)
            reply_invalid_credentials(res);
        else
            response_status(res, st);
    } else {
        char token[CRYPTO_TOKEN_LEN + 1], hash[CRYPTO_SHA256_HEX_LEN + 1];
        st = crypto_token_new(token) ? STATUS_OK : STATUS_INTERNAL;
        crypto_sha256_hex(token, strlen(token), hash);
        note.ctx.actor_id = l->user.id;
        if (st == STATUS_OK)
            st = login_start_session(app, email, l, hash, &note.ctx);
        if (st == STATUS_OK)
            reply_session(res, app, &l->user, token);
        else
            response_status(res, st);
    }
    explicit_bzero(l, sizeof *l);
    free(l);
    audit_note_free(&note);
    return res->status;
}

/* ---- refresh and logout ------------------------------------------------------ */

/* The "refresh_token" member of a refresh or logout body, hashed. */
static bool refresh_hash_or_reply(const json_t *body, char hash[CRYPTO_SHA256_HEX_LEN + 1],
                                  struct response *res)
{
    static const char *const allowed[] = {"refresh_token", NULL};
    const char *token;
    if (!validate_object_or_reply(body, allowed, res) ||
        !validate_string_or_reply(body, "refresh_token", true, REFRESH_TOKEN_MAX, &token, res))
        return false;
    crypto_sha256_hex(token, strlen(token), hash);
    return true;
}

/* A token that is not live: when it is a spent one, someone is replaying
 * it (a thief, or the real client after a thief refreshed first), and the
 * whole login is revoked so that neither can go on. */
static void refresh_detect_reuse(struct db_conn *conn, const char *hash)
{
    long long user_id;
    if (db_refresh_revoke_if_spent(conn, hash, &user_id) == STATUS_OK)
        log_warn("auth: spent refresh token presented again; revoked that login of user %lld",
                 user_id);
}

/* Spends the token, stores next_hash, and reads the user as stored now. */
static enum status refresh_rotate(struct db_conn *conn, const char *hash, const char *next_hash,
                                  struct user *user)
{
    long long user_id;
    enum status st = db_refresh_rotate(conn, hash, next_hash, AUTH_REFRESH_TTL_S, &user_id);
    if (st == STATUS_NOT_FOUND) {
        refresh_detect_reuse(conn, hash);
        return STATUS_UNAUTHORIZED;
    }
    if (st == STATUS_OK)
        st = db_users_get(conn, user_id, user);
    return st == STATUS_NOT_FOUND ? STATUS_UNAUTHORIZED : st;
}

/* POST /api/v1/auth/refresh — anyone — {"refresh_token"}.
 * 200 a new access and refresh token pair and the user (same shape as
 * login); the presented token is spent. 401 invalid_refresh_token when it is
 * unknown, expired, spent or revoked; a spent one also revokes its login.
 * 422 bad members; 503 database unavailable. */
int auth_refresh(const struct request *req, struct response *res, struct app *app)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1], next[CRYPTO_TOKEN_LEN + 1],
        next_hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!refresh_hash_or_reply(req->body, hash, res))
        return res->status;
    if (!crypto_token_new(next))
        return response_status(res, STATUS_INTERNAL);
    crypto_sha256_hex(next, strlen(next), next_hash);

    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct user user;
    enum status st = refresh_rotate(conn, hash, next_hash, &user);
    db_pool_release(app->pool, conn);
    if (st == STATUS_UNAUTHORIZED)
        return reply_invalid_refresh(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    return reply_session(res, app, &user, next);
}

/* POST /api/v1/auth/logout — anyone — {"refresh_token"}.
 * 204: that login's refresh tokens stop working. Unknown, spent and revoked
 * tokens also get 204, so the answer says nothing about a token. 422 bad
 * members; 503 database unavailable. */
int auth_logout(const struct request *req, struct response *res, struct app *app)
{
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!refresh_hash_or_reply(req->body, hash, res))
        return res->status;
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    enum status st = db_refresh_revoke_family(conn, hash);
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        return response_status(res, st);
    return response_json(res, 204, NULL);
}
