#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../auth/accounts.h"
#include "../auth/authn.h"
#include "../auth/login.h"
#include "../api/app.h"
#include "../api/pooled.h"
#include "../api/audit.h"
#include "../api/cursor.h"
#include "../api/reply.h"
#include "../api/resources.h"
#include "../api/validate.h"

/* ?q= longer than this cannot be part of any email or name. */
#define QUERY_MAX (USER_NAME_MAX * 4)
/* Request strings are bounded before the field checks look at them, so a
 * 1 MiB "email" is refused without being scanned twice. */
#define MEMBER_MAX 4096

static int reply_user(struct response *res, int status, const struct user *u)
{
    json_t *body = user_to_json(u);
    if (!body)
        return response_status(res, STATUS_INTERNAL);
    return response_json(res, status, body);
}

static int reply_email_taken(struct response *res)
{
    return response_problem(res, 409, "email_taken", "email", "a user with this email exists");
}

/* The list cursor is api/cursor.h's with no kind prefix: the last id. */
#define USERS_ID_MAX 999999999999999999LL /* ids of up to 18 digits */

static bool cursor_id(const char *cursor, long long *id)
{
    long long v;
    if (!cursor_decode(cursor, "", &v) || v < 1 || v > USERS_ID_MAX)
        return false;
    *id = v;
    return true;
}

/* ---- reading user members ------------------------------------------------ */

/* A string member checked by one of the accounts_check_* functions. */
static bool field_or_reply(const json_t *body, const char *name, bool required,
                           const char *(*check)(const char *), const char **out,
                           struct response *res)
{
    if (!validate_string_or_reply(body, name, required, MEMBER_MAX, out, res))
        return false;
    const char *why = *out ? check(*out) : NULL;
    if (why) {
        response_problem(res, 422, "invalid_field", name, "%s", why);
        return false;
    }
    return true;
}

static bool password_or_reply(const json_t *body, const char *name, bool required, const char **out,
                              struct response *res)
{
    if (!validate_string_or_reply(body, name, required, PASSWORD_MAX, out, res))
        return false;
    const char *why = *out ? accounts_check_password(*out, strlen(*out)) : NULL;
    if (why) {
        response_problem(res, 422, "invalid_field", name, "%s", why);
        return false;
    }
    return true;
}

static bool role_or_reply(const json_t *body, bool required, enum role *out, struct response *res)
{
    const char *name;
    *out = ROLE_NONE;
    if (!validate_string_or_reply(body, "role", required, 16, &name, res))
        return false;
    if (name && (*out = role_parse(name)) == ROLE_NONE) {
        response_problem(res, 422, "invalid_field", "role", "role must be admin or client");
        return false;
    }
    return true;
}

/* A new password hashed into hash, or the 503/500 already in res. */
static bool hash_or_reply(struct app *app, const char *password, char hash[PASSWORD_HASH_MAX],
                          struct response *res)
{
    enum status st =
        accounts_hash_password(app->password_limiter, password, strlen(password), hash);
    if (st != STATUS_OK)
        reply_hash_failed(res, st);
    return st == STATUS_OK;
}

/* The user.update entry's changes: the body's members without secrets, and
 * that the password changed (never what to). NULL when out of memory. */
static json_t *update_changes(const json_t *body, const struct user_change *change)
{
    json_t *changes = audit_changes(body);
    if (changes && change->password_hash &&
        json_object_set_new(changes, "password_changed", json_true()) != 0) {
        json_decref(changes);
        changes = NULL;
    }
    return changes;
}

/* Applies change to user id (a new password also ends every login of the
 * user: db_users_update) with its audit entry; the authentication cache
 * forgets the user so that a new role counts at once. */
static int update_and_reply(const struct request *req, struct app *app, long long id,
                            const struct user_change *change, struct response *res)
{
    struct audit_note note;
    json_t *changes = update_changes(req->body, change);
    if (!changes || !audit_note_init(&note, req, changes))
        return response_status(res, STATUS_INTERNAL);
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn) {
        audit_note_free(&note);
        return response_status(res, STATUS_UNAVAILABLE);
    }
    struct user user;
    enum status st = db_users_update(conn, id, change, &note.ctx, &user);
    db_pool_release(app->pool, conn);
    audit_note_free(&note);
    authn_forget_user(app->authn, id);
    if (st == STATUS_CONFLICT)
        return reply_email_taken(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    return reply_user(res, 200, &user);
}

/* ---- /me ----------------------------------------------------------------- */

/* GET /api/v1/me — user — 200 the caller; 401 when the caller's account
 * was deleted a moment ago. */
int users_me_get(const struct request *req, struct response *res, struct app *app)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct user user;
    enum status st = db_users_get(conn, req->caller.user_id, &user);
    db_pool_release(app->pool, conn);
    if (st == STATUS_NOT_FOUND)
        return response_problem(res, 401, "invalid_token", NULL, "the user no longer exists");
    if (st != STATUS_OK)
        return response_status(res, st);
    return reply_user(res, 200, &user);
}

/* Reads the caller's account and stored hash and counts the password
 * attempt against the account (see login_count_attempt). */
static enum status me_begin_check(struct app *app, long long user_id, double now, struct user *user,
                                  char stored[PASSWORD_HASH_MAX], double *wait)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return STATUS_UNAVAILABLE;
    enum status st = db_users_get(conn, user_id, user);
    if (st == STATUS_OK)
        st = db_users_password_hash(conn, user_id, stored, PASSWORD_HASH_MAX);
    if (st == STATUS_OK)
        st = login_count_attempt(conn, user->email, now, wait);
    db_pool_release(app->pool, conn);
    return st;
}

/* After a correct current password the attempt is forgiven. A failure here
 * only leaves one counted attempt behind, so it is logged, not answered. */
static void me_end_check(struct app *app, const struct user *user)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    enum status st = conn ? login_forgive_account(conn, user->email) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        log_warn("users: could not clear failed attempts of user %lld", user->id);
}

/* Checks current_password like a login does (counted against the account,
 * under a hashing slot) and hashes the new password into new_hash. False
 * with the answer in res: 403 invalid_current_password, 429, 503. */
static bool me_password_or_reply(const struct request *req, struct app *app, const char *current,
                                 const char *password, char new_hash[PASSWORD_HASH_MAX],
                                 struct response *res)
{
    struct user user;
    char stored[PASSWORD_HASH_MAX];
    double wait = 0;
    enum status st = me_begin_check(app, req->caller.user_id, req->now, &user, stored, &wait);
    if (st == STATUS_NOT_FOUND)
        response_problem(res, 401, "invalid_token", NULL, "the user no longer exists");
    else if (st != STATUS_OK)
        response_status(res, st);
    else if (wait > 0)
        reply_throttled(res, wait);
    else if (!password_limiter_enter(app->password_limiter, ACCOUNTS_HASH_WAIT_MS))
        reply_busy(res);
    else {
        enum password_verdict v = password_verify(current, strlen(current), stored, NULL);
        bool match = v == PASSWORD_MATCH || v == PASSWORD_MATCH_REHASH;
        bool hashed =
            match && password_hash(password, strlen(password), &PASSWORD_PARAMS_DEFAULT, new_hash);
        password_limiter_leave(app->password_limiter);
        if (!match)
            response_problem(res, 403, "invalid_current_password", "current_password",
                             "current_password is wrong");
        else if (!hashed)
            response_status(res, STATUS_INTERNAL);
        else
            me_end_check(app, &user);
    }
    explicit_bzero(stored, sizeof stored);
    return res->status == 0;
}

/* PATCH /api/v1/me — user — {"name"?, "password"?, "current_password"?}.
 * 200 the caller. A new password needs current_password (wrong: 403
 * invalid_current_password; too many wrong ones: 429) and ends every login
 * of the caller (all refresh tokens are revoked; access tokens run out).
 * "email" or "role": 403 forbidden_field. 422 unknown or invalid members. */
int users_me_patch(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"name",  "password", "current_password",
                                          "email", "role",     NULL};
    static const char *const forbidden[] = {"email", "role"};
    if (!validate_object_or_reply(req->body, allowed, res))
        return res->status;
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        if (json_object_get(req->body, forbidden[i]))
            return response_problem(res, 403, "forbidden_field", forbidden[i],
                                    "%s can only be changed by an admin", forbidden[i]);

    const char *name, *password, *current;
    if (!field_or_reply(req->body, "name", false, accounts_check_name, &name, res) ||
        !password_or_reply(req->body, "password", false, &password, res) ||
        !validate_string_or_reply(req->body, "current_password", password != NULL, PASSWORD_MAX,
                                  &current, res))
        return res->status;
    if (current && !password)
        return response_problem(res, 422, "invalid_field", "current_password",
                                "current_password goes with a new password");

    char hash[PASSWORD_HASH_MAX] = "";
    if (password && !me_password_or_reply(req, app, current, password, hash, res))
        return res->status;
    struct user_change change = {.name = name, .password_hash = password ? hash : NULL};
    update_and_reply(req, app, req->caller.user_id, &change, res);
    explicit_bzero(hash, sizeof hash);
    return res->status;
}

/* ---- /users (admins) ------------------------------------------------------- */

/* GET /api/v1/users?q=&limit=&cursor= — admin — 200 {"items", "next_cursor"},
 * by id; q keeps users whose email or name contains it (any case). 400 bad
 * limit, cursor or q. */
static int users_list_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    int limit;
    long long after = 0;
    const char *q = request_query(req, "q");
    const char *cursor = request_query(req, "cursor");
    if (!validate_limit_or_reply(req, &limit, res))
        return res->status;
    if (cursor && cursor[0] && !cursor_id(cursor, &after))
        return response_problem(res, 400, "invalid_query", "cursor", "cursor is not valid");
    if (q && strlen(q) > QUERY_MAX)
        return response_problem(res, 400, "invalid_query", "q", "q must be at most %d bytes",
                                QUERY_MAX);
    if (q && !q[0])
        q = NULL;

    /* One more than asked tells whether there is a next page. */
    struct user *users = calloc((size_t)limit + 1, sizeof *users);
    if (!users)
        return response_status(res, STATUS_INTERNAL);
    int count = 0;
    enum status st = db_users_list(conn, q, after, limit + 1, users, &count);

    json_t *items = json_array();
    for (int i = 0; st == STATUS_OK && items && i < count && i < limit; i++)
        if (json_array_append_new(items, user_to_json(&users[i])) != 0)
            st = STATUS_INTERNAL;
    json_t *body =
        st == STATUS_OK && items
            ? cursor_page(json_incref(items), "", count > limit ? &users[limit - 1].id : NULL)
            : NULL;
    free(users);
    json_decref(items);
    if (st != STATUS_OK)
        return response_status(res, st);
    if (!body)
        return response_status(res, STATUS_INTERNAL);
    return response_json(res, 200, body);
}

int users_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, users_list_on);
}

/* POST /api/v1/users — admin — {"email", "name", "password", "role"}.
 * 201 the user, Location /api/v1/users/{id}; 409 email_taken; 422 missing,
 * unknown or invalid members (password 10..1024 bytes); 503 busy. */
int users_create(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"email", "name", "password", "role", NULL};
    const char *email, *name, *password;
    enum role role;
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !validate_string_or_reply(req->body, "email", true, MEMBER_MAX, &email, res) ||
        !validate_string_or_reply(req->body, "name", true, MEMBER_MAX, &name, res) ||
        !validate_string_or_reply(req->body, "password", true, PASSWORD_MAX, &password, res) ||
        !role_or_reply(req->body, true, &role, res))
        return res->status;

    struct audit_note note;
    if (!audit_note_init(&note, req, audit_changes(req->body)))
        return response_status(res, STATUS_INTERNAL);
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    struct user user;
    const char *field = NULL, *why = NULL;
    enum status st = conn
                         ? accounts_create(conn, app->password_limiter, email, name, role, password,
                                           strlen(password), &note.ctx, &user, &field, &why)
                         : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, conn);
    audit_note_free(&note);
    if (st == STATUS_INVALID && field)
        return response_problem(res, 422, "invalid_field", field, "%s", why);
    if (st == STATUS_CONFLICT)
        return reply_email_taken(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    char location[64];
    snprintf(location, sizeof location, "/api/v1/users/%lld", user.id);
    response_header(res, "Location", location);
    return reply_user(res, 201, &user);
}

/* GET /api/v1/users/{id} — admin — 200 the user; 404. */
int users_get(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    struct user user;
    enum status st = db_users_get(conn, id, &user);
    db_pool_release(app->pool, conn);
    if (st != STATUS_OK)
        return response_status(res, st);
    return reply_user(res, 200, &user);
}

/* PATCH /api/v1/users/{id} — admin — any of {"email", "name", "password",
 * "role"}. 200 the user. A new role applies to the user's current tokens
 * at once; a new password ends the user's logins. An admin may demote
 * itself (it then loses admin routes at once). 404; 409 email_taken; 422. */
int users_patch(const struct request *req, struct response *res, struct app *app)
{
    static const char *const allowed[] = {"email", "name", "password", "role", NULL};
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    struct user_change change = {0};
    const char *password;
    if (!validate_object_or_reply(req->body, allowed, res) ||
        !field_or_reply(req->body, "email", false, accounts_check_email, &change.email, res) ||
        !field_or_reply(req->body, "name", false, accounts_check_name, &change.name, res) ||
        !password_or_reply(req->body, "password", false, &password, res) ||
        !role_or_reply(req->body, false, &change.role, res))
        return res->status;

    char hash[PASSWORD_HASH_MAX] = "";
    if (password && !hash_or_reply(app, password, hash, res))
        return res->status;
    change.password_hash = password ? hash : NULL;
    update_and_reply(req, app, id, &change, res);
    explicit_bzero(hash, sizeof hash);
    return res->status;
}

/* DELETE /api/v1/users/{id} — admin — 204; the user's devices become
 * unassigned (ON DELETE SET NULL) and its logins end (ON DELETE CASCADE);
 * its access tokens stop working within a second. 404; 409
 * cannot_delete_self. */
int users_delete(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    if (id == req->caller.user_id)
        return response_problem(res, 409, "cannot_delete_self", NULL,
                                "an admin cannot delete its own account");
    struct audit_note note;
    if (!audit_note_init(&note, req, NULL))
        return response_status(res, STATUS_INTERNAL);
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    /* The user's WebSocket sessions on every instance close at once. */
    enum status st = conn ? db_users_delete(conn, id, &note.ctx) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, conn);
    audit_note_free(&note);
    authn_forget_user(app->authn, id);
    if (st != STATUS_OK)
        return response_status(res, st);
    log_info("users: user %lld deleted by user %lld", id, req->caller.user_id);
    return response_json(res, 204, NULL);
}
