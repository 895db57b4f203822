#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/audit.h"
#include "../api/access.h"
#include "../api/app.h"
#include "../api/command_input.h"
#include "../api/command_poll.h"
#include "../api/cursor.h"
#include "../api/pooled.h"
#include "../api/resources.h"
#include "../api/validate.h"
#include "../base/clock.h"

#define LIST_CURSOR_KIND "c"

static int reply_fault(struct response *res, bool unknown, const struct command_fault *f)
{
    if (!f->field)
        return response_problem(res, 422, "invalid_body", NULL, "the body must be a JSON object");
    const char *at = f->field, *sep = ": ";
    if (unknown)
        return response_problem(res, 422, "unknown_field", f->field, "%s%s%s", at, sep, f->detail);
    return response_problem(res, 422, "invalid_field", f->field, "%s%s%s", at, sep, f->detail);
}

static int reply_command(struct response *res, int status, struct command *c)
{
    json_t *body = command_to_json(c);
    command_clear(c);
    return body ? response_json(res, status, body) : response_status(res, STATUS_INTERNAL);
}

static int already_final(struct response *res, struct command *c)
{
    int st = response_problem(res, 409, "already_final", NULL, "the command is already %s",
                              command_status_name(c->status));
    command_clear(c);
    return st;
}

/* ---- owners and admins ------------------------------------------------------------ */

static int create_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    long long device_id;
    if (!request_param_id(req, 0, &device_id))
        return response_status(res, STATUS_NOT_FOUND);
    const char *name;
    char *params;
    int ttl_s;
    bool unknown;
    struct command_fault f;
    if (!command_spec_read(req->body, true, &name, &params, &ttl_s, &unknown, &f))
        return reply_fault(res, unknown, &f);
    const struct command_new in = {.device_id = device_id,
                                   .name = name,
                                   .params = params,
                                   .ttl_s = ttl_s,
                                   .created_by = req->caller.user_id};
    struct command c;
    struct audit_note note;
    enum status st =
        audit_note_init(&note, req, audit_changes(req->body))
            ? db_commands_create(conn, &in, access_owner_scope(&req->caller), &note.ctx, &c)
            : STATUS_INTERNAL;
    free(params);
    audit_note_free(&note);
    if (st == STATUS_CONFLICT)
        return response_problem(res, 409, "queue_full", NULL,
                                "the device has %d unfinished commands", COMMANDS_PER_DEVICE_MAX);
    if (st != STATUS_OK)
        return response_status(res, st);
    char location[64];
    snprintf(location, sizeof location, "/api/v1/commands/%lld", c.id);
    response_header(res, "Location", location);
    return reply_command(res, 201, &c);
}

/* POST /api/v1/devices/{id}/commands — owner, admin.
 * {"name", "params"?, "ttl_s"?} → 201 the command, Location; 404 a device
 * missing or not the caller's; 409 queue_full (50 unfinished); 422
 * invalid_field / unknown_field. Announced to every instance (live status,
 * long-polls, device sessions). */
int commands_create(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, create_on);
}

static bool status_filter_or_reply(const struct request *req, enum command_status *st, bool *has,
                                   struct response *res)
{
    const char *s = request_query(req, "status");
    *has = s != NULL;
    if (!s || command_status_parse(s, st))
        return true;
    response_problem(res, 400, "invalid_query", "status",
                     "status must be queued, sent, succeeded, failed, expired or canceled");
    return false;
}

static int list_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    int limit;
    enum command_status status;
    bool has_status;
    long long before = 0;
    const char *cursor = request_query(req, "cursor");
    if (!validate_limit_or_reply(req, &limit, res) ||
        !status_filter_or_reply(req, &status, &has_status, res))
        return res->status;
    if (cursor && !cursor_decode(cursor, LIST_CURSOR_KIND, &before))
        return response_problem(res, 400, "invalid_cursor", "cursor",
                                "cursor is not one this list gave");
    struct device d;
    if (!access_device_or_reply(req, conn, &d, res))
        return res->status;
    long long device_id = d.id;
    device_clear(&d);
    struct command_list list;
    enum status st =
        db_commands_list(conn, device_id, has_status ? &status : NULL, before, limit + 1, &list);
    if (st != STATUS_OK)
        return response_status(res, st);
    json_t *items = json_array();
    int shown = list.count > limit ? limit : list.count;
    for (int i = 0; items && i < shown; i++)
        json_array_append_new(items, command_to_json(&list.items[i]));
    json_t *page =
        cursor_page(items, LIST_CURSOR_KIND, list.count > limit ? &list.items[shown - 1].id : NULL);
    command_list_free(&list);
    return page ? response_json(res, 200, page) : response_status(res, STATUS_INTERNAL);
}

/* GET /api/v1/devices/{id}/commands?status=&limit=&cursor= — owner, admin.
 * 200 {"items", "next_cursor"}, newest first; 400 invalid_query /
 * invalid_cursor; 404 a device missing or not the caller's. */
int commands_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, list_on);
}

static int get_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    long long id;
    struct command c;
    enum status st = request_param_id(req, 0, &id)
                         ? db_commands_get(conn, id, access_owner_scope(&req->caller), &c)
                         : STATUS_NOT_FOUND;
    return st == STATUS_OK ? reply_command(res, 200, &c) : response_status(res, st);
}

/* GET /api/v1/commands/{id} — owner, admin. 200 the command; 404 missing or
 * not the caller's. */
int commands_get(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, get_on);
}

static int cancel_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    long long id;
    struct command c;
    struct audit_note note;
    if (!audit_note_init(&note, req, json_pack("{s:s}", "status", "canceled")))
        return response_status(res, STATUS_INTERNAL);
    enum status st =
        request_param_id(req, 0, &id)
            ? db_commands_cancel(conn, id, access_owner_scope(&req->caller), &note.ctx, &c)
            : STATUS_NOT_FOUND;
    audit_note_free(&note);
    if (st == STATUS_CONFLICT)
        return already_final(res, &c);
    return st == STATUS_OK ? reply_command(res, 200, &c) : response_status(res, st);
}

/* POST /api/v1/commands/{id}/cancel — owner, admin, no body. 200 the
 * command, canceled; 409 already_final (answered, expired or canceled);
 * 404 missing or not the caller's. */
int commands_cancel(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, cancel_on);
}

/* ---- the device ------------------------------------------------------------------ */

/* One long-poll: the request waits, suspended, in the instance's
 * command_poll until it claimed commands or its wait is over. */
struct poll_call {
    struct command_wait wait;
    struct command_poll *poll;
};

static void poll_start(void *ctx, struct deferred *d)
{
    struct poll_call *call = ctx;
    call->wait.resume = d;
    command_poll_add(call->poll, &call->wait);
}

static void poll_finish(void *ctx, struct response *res)
{
    struct poll_call *call = ctx;
    if (call->wait.status != STATUS_OK) {
        response_status(res, call->wait.status);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; items && i < call->wait.claimed.count; i++)
        json_array_append_new(items, command_to_json(&call->wait.claimed.items[i]));
    json_t *body = items ? json_pack("{s:o}", "items", items) : NULL;
    if (body)
        response_json(res, 200, body);
    else
        response_status(res, STATUS_INTERNAL);
}

static void poll_free(void *ctx)
{
    struct poll_call *call = ctx;
    command_poll_remove(call->poll, &call->wait);
    command_list_free(&call->wait.claimed);
    free(call);
}

/* "wait": a whole number of seconds >= 0 (above 60 counts as 60). */
static bool wait_or_reply(const struct request *req, int *wait_s, struct response *res)
{
    const char *s = request_query(req, "wait");
    *wait_s = 0;
    if (!s)
        return true;
    bool digits = *s != '\0';
    for (const char *p = s; *p; p++)
        digits &= *p >= '0' && *p <= '9';
    if (!digits) {
        response_problem(res, 400, "invalid_query", "wait",
                         "wait must be a whole number of seconds (0 to 60)");
        return false;
    }
    *wait_s = strlen(s) > 3 ? COMMAND_POLL_WAIT_MAX_S : atoi(s);
    if (*wait_s > COMMAND_POLL_WAIT_MAX_S)
        *wait_s = COMMAND_POLL_WAIT_MAX_S;
    return true;
}

/* GET /api/v1/device/commands?wait= — device token.
 * 200 {"items"}: the device's deliverable commands, oldest first, each now
 * sent (locked for COMMAND_LOCK_S), as soon as there is one or after wait
 * seconds with none. 400 invalid_query for a wait that is not a whole
 * number; 503 when the database is away. The request is suspended (no
 * thread held) while it waits. */
int commands_poll(const struct request *req, struct response *res, struct app *app)
{
    int wait_s;
    if (!wait_or_reply(req, &wait_s, res))
        return res->status;
    /* HEAD answers what GET would, without a body: handing commands over to
     * it would mark them sent for nobody, so it hands over none. */
    if (!strcmp(req->method, "HEAD"))
        return response_json(res, 200, json_pack("{s:[]}", "items"));
    struct poll_call *call = calloc(1, sizeof *call);
    if (!call)
        return response_status(res, STATUS_INTERNAL);
    call->poll = app->command_poll;
    call->wait.device_id = req->caller.device_id;
    call->wait.deadline = clock_mono_s() + wait_s;
    res->deferral = (struct response_deferral){poll_start, poll_finish, poll_free, call};
    res->status = 202; /* replaced by poll_finish */
    // cppcheck-suppress memleak ; res->deferral owns call now
    return res->status;
}

static int result_on(const struct request *req, struct response *res, struct db_conn *conn)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    struct command_answer answer;
    char *result;
    struct command_fault f;
    if (!command_answer_read(req->body, NULL, &answer, &result, &f))
        return reply_fault(res,
                           f.field && strcmp(f.field, "status") && strcmp(f.field, "result") &&
                               strcmp(f.field, "error"),
                           &f);
    struct command c;
    bool changed;
    enum status st = db_commands_answer(conn, req->caller.device_id, id, &answer, &c, &changed);
    free(result);
    if (st == STATUS_CONFLICT)
        return already_final(res, &c);
    return st == STATUS_OK ? reply_command(res, 200, &c) : response_status(res, st);
}

/* POST /api/v1/device/commands/{id}/result — device token.
 * {"status": "succeeded"|"failed", "result"?: object, "error"?: string} →
 * 200 the command; the same answer again is 200 and changes nothing; 409
 * already_final for another answer to a final command; 404 another
 * device's command; 422 invalid_field / unknown_field. */
int commands_result(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, result_on);
}
