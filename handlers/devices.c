#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/audit.h"
#include "../api/access.h"
#include "../api/app.h"
#include "../api/command_input.h"
#include "../api/cursor.h"
#include "../api/pooled.h"
#include "../api/resources.h"
#include "../auth/authn.h"
#include "../base/crypto.h"
#include "../base/timefmt.h"
#include "../api/validate.h"

/* ---- rendering --------------------------------------------------------------- */

/* The stored over_limit_command, or null. */
static json_t *over_limit_json(const struct device *d)
{
    json_t *v = d->over_limit_command ? json_loads(d->over_limit_command, 0, NULL) : NULL;
    return v ? v : json_null();
}

json_t *devices_to_json(const struct device *d)
{
    char created[TIMEFMT_MAX];
    timefmt_format(d->created_at, created);
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:s, s:f, s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)d->id,
        "name", d->name, "description", d->description, "address", d->address, "max_hourly_kwh",
        d->max_hourly_kwh, "reading_type", reading_type_name(d->reading_type), "serial",
        d->serial ? json_string(d->serial) : json_null(), "owner_id",
        d->owner_id ? json_integer(d->owner_id) : json_null(), "created_at", created,
        "last_seen_at", resource_time_or_null(d->last_seen_at), "offline_after_s",
        d->offline_after_s ? json_integer(d->offline_after_s) : json_null(), "status",
        d->status[0] ? json_string(d->status) : json_null());
    if (o && json_object_set_new(o, "over_limit_command", over_limit_json(d)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

bool devices_load_visible_or_reply(const struct request *req, struct db_conn *conn,
                                   struct device *out, struct response *res)
{
    return access_device_or_reply(req, conn, out, res);
}

/* ---- cursors ------------------------------------------------------------------ */

void devices_cursor_encode(char tag, long long value, char out[DEVICES_CURSOR_MAX])
{
    cursor_encode((const char[]){tag, '\0'}, value, out);
}

bool devices_cursor_decode(const char *cursor, char tag, long long *value)
{
    return cursor_decode(cursor, (const char[]){tag, '\0'}, value);
}

bool devices_cursor_or_reply(const struct request *req, char tag, long long *value,
                             struct response *res)
{
    const char *cursor = request_query(req, "cursor");
    if (!cursor || devices_cursor_decode(cursor, tag, value))
        return true;
    response_problem(res, 400, "invalid_cursor", "cursor", "cursor is not one this list gave");
    return false;
}

/* ---- request bodies ------------------------------------------------------------ */

static const char *const CREATE_MEMBERS[] = {
    "name",   "description", "address",         "max_hourly_kwh",     "reading_type",
    "serial", "owner_id",    "offline_after_s", "over_limit_command", NULL};
/* reading_type is known here only to be refused as immutable, not as unknown. */
static const char *const PATCH_MEMBERS[] = {
    "name",   "description", "address",         "max_hourly_kwh",     "reading_type",
    "serial", "owner_id",    "offline_after_s", "over_limit_command", NULL};

static bool has_control_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return true;
    return false;
}

static bool read_name_or_reply(const json_t *body, bool create, struct device_fields *f,
                               struct response *res)
{
    if (!validate_string_or_reply(body, "name", create, DEVICES_NAME_MAX, &f->name, res))
        return false;
    if (f->name && (!*f->name || has_control_chars(f->name))) {
        response_problem(res, 422, "invalid_field", "name",
                         "name must be 1 to %d bytes without control characters", DEVICES_NAME_MAX);
        return false;
    }
    return true;
}

static bool read_max_or_reply(const json_t *body, bool create, struct device_fields *f,
                              struct response *res)
{
    if (!validate_number_or_reply(body, "max_hourly_kwh", create, &f->max_hourly_kwh,
                                  &f->has_max_hourly_kwh, res))
        return false;
    if (f->has_max_hourly_kwh && !(f->max_hourly_kwh > 0)) {
        response_problem(res, 422, "invalid_field", "max_hourly_kwh",
                         "max_hourly_kwh must be a number > 0");
        return false;
    }
    return true;
}

static bool read_reading_type_or_reply(const json_t *body, bool create, struct device_fields *f,
                                       struct response *res)
{
    const json_t *v = json_object_get(body, "reading_type");
    f->has_reading_type = v != NULL;
    f->reading_type = READING_CUMULATIVE;
    if (!v)
        return true;
    if (!create) {
        response_problem(res, 422, "immutable_field", "reading_type",
                         "reading_type is set when a device is created");
        return false;
    }
    if (!json_is_string(v) || !reading_type_parse(json_string_value(v), &f->reading_type)) {
        response_problem(res, 422, "invalid_field", "reading_type",
                         "reading_type must be \"cumulative\" or \"interval\"");
        return false;
    }
    return true;
}

/* "serial": a serial (base/device_name.h) or null (none; on a PATCH, clear it). */
static bool read_serial_or_reply(const json_t *body, struct device_fields *f, struct response *res)
{
    const json_t *v = json_object_get(body, "serial");
    f->has_serial = v != NULL;
    f->serial = NULL;
    if (!v || json_is_null(v))
        return true;
    /* A NUL inside the string would hide the rest of it from the check. */
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
        device_serial_valid(json_string_value(v))) {
        f->serial = json_string_value(v);
        return true;
    }
    response_problem(res, 422, "invalid_field", "serial",
                     "serial must be null or 1 to %d of A-Z, a-z, 0-9, _ and -, not all digits",
                     DEVICE_SERIAL_MAX);
    return false;
}

/* "over_limit_command": null or a command without ttl_s, checked as a new
 * command is (api/command_input.h). */
static bool read_over_limit_or_reply(const json_t *body, struct device_fields *f,
                                     struct response *res)
{
    const json_t *v = json_object_get(body, "over_limit_command");
    f->has_over_limit_command = v != NULL;
    f->over_limit_command = NULL;
    if (!v || json_is_null(v))
        return true;
    const char *name;
    char *params;
    bool unknown;
    struct command_fault fault;
    bool ok = command_spec_read(v, false, &name, &params, NULL, &unknown, &fault);
    free(params);
    if (ok) {
        f->over_limit_command = v;
        return true;
    }
    response_problem(res, 422, "invalid_field", "over_limit_command",
                     "over_limit_command must be null or {\"name\", \"params\"?}: %s%s%s",
                     fault.field ? fault.field : "", fault.field ? ": " : "", fault.detail);
    return false;
}

char *devices_over_limit_text(const struct device_fields *f)
{
    if (!f->over_limit_command)
        return NULL;
    const json_t *params = json_object_get(f->over_limit_command, "params");
    json_t *o = json_pack("{s:O, s:o}", "name", json_object_get(f->over_limit_command, "name"),
                          "params", params ? json_incref((json_t *)params) : json_object());
    char *text = o ? json_dumps(o, JSON_DUMP_FLAGS) : NULL;
    json_decref(o);
    return text;
}

/* "offline_after_s": null (never reported offline) or whole seconds, 60 to 604,800. */
static bool read_offline_after_or_reply(const json_t *body, struct device_fields *f,
                                        struct response *res)
{
    const json_t *v = json_object_get(body, "offline_after_s");
    f->has_offline_after_s = v != NULL;
    f->offline_after_s = 0;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v) && json_integer_value(v) >= 60 && json_integer_value(v) <= 604800) {
        f->offline_after_s = (int)json_integer_value(v);
        return true;
    }
    response_problem(res, 422, "invalid_field", "offline_after_s",
                     "offline_after_s must be null or an integer from 60 to 604800");
    return false;
}

bool devices_read_fields_or_reply(const json_t *body, bool create, struct device_fields *f,
                                  struct response *res)
{
    *f = (struct device_fields){0};
    bool owner_null = false;
    return validate_object_or_reply(body, create ? CREATE_MEMBERS : PATCH_MEMBERS, res) &&
           read_name_or_reply(body, create, f, res) &&
           validate_string_or_reply(body, "description", false, DEVICES_DESCRIPTION_MAX,
                                    &f->description, res) &&
           validate_string_or_reply(body, "address", false, DEVICES_ADDRESS_MAX, &f->address,
                                    res) &&
           read_max_or_reply(body, create, f, res) &&
           read_reading_type_or_reply(body, create, f, res) && read_serial_or_reply(body, f, res) &&
           validate_id_or_reply(body, "owner_id", true, &f->owner_id, &f->has_owner, &owner_null,
                                res) &&
           read_over_limit_or_reply(body, f, res) &&

           read_offline_after_or_reply(body, f, res);
}

/* ---- handlers --------------------------------------------------------------------- */

/* Optional query parameter "owner_id": a positive id, else 400. */
static bool owner_filter_or_reply(const struct request *req, long long *owner_id,
                                  struct response *res)
{
    const char *s = request_query(req, "owner_id");
    *owner_id = 0;
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s < '1' || *s > '9' || *end || errno) {
        response_problem(res, 400, "invalid_query", "owner_id", "owner_id must be a user id");
        return false;
    }
    *owner_id = v;
    return true;
}

/* The page as {"items", "next_cursor"}; list holds up to limit + 1 devices,
 * the extra one only saying that there is a next page. */
static json_t *page_json(const struct device_list *list, int limit)
{
    json_t *items = json_array();
    int shown = list->count > limit ? limit : list->count;
    for (int i = 0; i < shown; i++)
        json_array_append_new(items, devices_to_json(&list->items[i]));
    return cursor_page(items, "d", list->count > limit ? &list->items[shown - 1].id : NULL);
}

/* GET /api/v1/devices?owner_id=&limit=&cursor= — user.
 * A client sees its own devices (an owner_id of someone else gives an empty
 * page); an admin sees all, optionally one owner's. 200 {"items",
 * "next_cursor"}; 400 invalid_query / invalid_cursor. */
static int devices_list_on(const struct request *req, struct response *res, struct db_conn *c)
{
    int limit;
    long long owner_id, after_id = 0;
    if (!validate_limit_or_reply(req, &limit, res) || !owner_filter_or_reply(req, &owner_id, res) ||
        !devices_cursor_or_reply(req, 'd', &after_id, res))
        return res->status;
    long long scope = access_owner_scope(&req->caller);
    if (scope && owner_id && owner_id != scope)
        return response_json(res, 200, page_json(&(struct device_list){0}, limit));
    if (scope)
        owner_id = scope;

    struct device_list list;
    enum status st = db_devices_list(c, owner_id, after_id, limit + 1, &list);
    if (st != STATUS_OK)
        return response_status(res, st);
    response_json(res, 200, page_json(&list, limit));
    device_list_free(&list);
    return res->status;
}

int devices_list(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, devices_list_on);
}

/* A fresh token and its hash; false with a 500 in res when the system
 * cannot make randomness. */
static bool new_token_or_reply(char token[CRYPTO_TOKEN_LEN + 1],
                               char hash[CRYPTO_SHA256_HEX_LEN + 1], struct response *res)
{
    bool ok = crypto_token_new(token);
    if (ok) {
        crypto_sha256_hex(token, strlen(token), hash);
        ok = hash[0] != '\0';
    }
    if (!ok)
        response_status(res, STATUS_INTERNAL);
    return ok;
}

static int owner_problem(struct response *res)
{
    return response_problem(res, 422, "invalid_field", "owner_id", "owner_id names no user");
}

/* The one unique member a create or a PATCH can collide on. */
static int serial_taken_problem(struct response *res)
{
    return response_problem(res, 409, "serial_taken", "serial",
                            "another device already has this serial");
}

/* POST /api/v1/devices — admin.
 * {"name", "description"?, "address"?, "max_hourly_kwh", "reading_type"?,
 *  "serial"?, "owner_id"?, "offline_after_s"?} → 201 the device plus "token" (shown this once),
 * Location; 409 serial_taken; 422 invalid/unknown member or an owner_id that
 * names no user. */
int devices_create(const struct request *req, struct response *res, struct app *app)
{
    struct device_fields f;
    if (!devices_read_fields_or_reply(req->body, true, &f, res))
        return res->status;
    char token[CRYPTO_TOKEN_LEN + 1], hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!new_token_or_reply(token, hash, res))
        return res->status;

    char *over_limit = devices_over_limit_text(&f);
    struct audit_note note;
    if ((f.over_limit_command && !over_limit) ||
        !audit_note_init(&note, req, audit_changes(req->body))) {
        free(over_limit);
        return response_status(res, STATUS_INTERNAL);
    }
    struct db_conn *c = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!c) {
        free(over_limit);
        audit_note_free(&note);
        return response_status(res, STATUS_UNAVAILABLE);
    }
    const struct device_new in = {
        .name = f.name,
        .description = f.description,
        .address = f.address,
        .max_hourly_kwh = f.max_hourly_kwh,
        .reading_type = f.reading_type,
        .serial = f.serial,
        .owner_id = f.owner_id,
        .over_limit_command = over_limit,
        .offline_after_s = f.offline_after_s,
    };
    struct device d;
    enum status st = db_devices_create(c, &in, hash, &note.ctx, &d);
    db_pool_release(app->pool, c);
    free(over_limit);
    audit_note_free(&note);
    if (st == STATUS_INVALID)
        return owner_problem(res);
    if (st == STATUS_CONFLICT)
        return serial_taken_problem(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    authn_device_token_issued(app->authn, hash);

    json_t *body = devices_to_json(&d);
    json_object_set_new(body, "token", json_string(token));
    char location[64];
    snprintf(location, sizeof location, "/api/v1/devices/%lld", d.id);
    response_header(res, "Location", location);
    device_clear(&d);
    return response_json(res, 201, body);
}

static int get_device(const struct request *req, struct response *res, struct db_conn *c)
{
    struct device d;
    if (!access_device_or_reply(req, c, &d, res))
        return res->status;
    response_json(res, 200, devices_to_json(&d));
    device_clear(&d);
    return res->status;
}

/* GET /api/v1/devices/{id} — owner, admin. 200 the device; 404 missing or not
 * the caller's. */
int devices_get(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, get_device);
}

/* A client may change only its device's name, description and limit. The
 * serial is an admin's, like the address: it is how the broker knows the
 * device, and a client could otherwise take a name another meter sends. */
static bool client_fields_or_reply(const struct request *req, struct response *res)
{
    if (req->caller.role == ROLE_ADMIN)
        return true;
    static const char *const ADMIN_ONLY[] = {"address", "serial", "owner_id"};
    for (size_t i = 0; i < sizeof ADMIN_ONLY / sizeof ADMIN_ONLY[0]; i++) {
        if (json_object_get(req->body, ADMIN_ONLY[i])) {
            response_problem(res, 403, "forbidden_field", ADMIN_ONLY[i],
                             "only an admin may change %s", ADMIN_ONLY[i]);
            return false;
        }
    }
    return true;
}

/* Runs the checks and the update on a borrowed connection. */
static int update_device(const struct request *req, struct response *res, struct db_conn *c)
{
    struct device d;
    if (!access_device_or_reply(req, c, &d, res))
        return res->status;
    long long id = d.id;
    device_clear(&d);

    struct device_fields f;
    if (!client_fields_or_reply(req, res) ||
        !devices_read_fields_or_reply(req->body, false, &f, res))
        return res->status;
    const struct device_patch patch = {
        .name = f.name,
        .description = f.description,
        .address = f.address,
        .set_max_hourly_kwh = f.has_max_hourly_kwh,
        .max_hourly_kwh = f.max_hourly_kwh,
        .set_serial = f.has_serial,
        .serial = f.serial,
        .set_owner = f.has_owner,
        .owner_id = f.owner_id,
        .set_over_limit_command = f.has_over_limit_command,
        .over_limit_command = devices_over_limit_text(&f),
        .set_offline_after_s = f.has_offline_after_s,
        .offline_after_s = f.offline_after_s,
    };
    struct audit_note note;
    if ((f.over_limit_command && !patch.over_limit_command) ||
        !audit_note_init(&note, req, audit_changes(req->body))) {
        free((char *)patch.over_limit_command);
        return response_status(res, STATUS_INTERNAL);
    }
    /* Scoped again: a client's device may have been reassigned meanwhile. */
    enum status st =
        db_devices_update(c, id, access_owner_scope(&req->caller), &patch, &note.ctx, &d);
    free((char *)patch.over_limit_command);
    audit_note_free(&note);
    if (st == STATUS_INVALID)
        return owner_problem(res);
    if (st == STATUS_CONFLICT)
        return serial_taken_problem(res);
    if (st != STATUS_OK)
        return response_status(res, st);
    response_json(res, 200, devices_to_json(&d));
    device_clear(&d);
    return res->status;
}

/* PATCH /api/v1/devices/{id} — owner, admin.
 * Any of "name", "description", "max_hourly_kwh", "offline_after_s"; an admin also "address",
 * "serial" (null clears it) and "owner_id" (a user id, or null to unassign).
 * 200 the device; 404 missing or not the caller's; 403 forbidden_field for a
 * client's address/serial/owner_id; 409 serial_taken; 422 invalid/unknown
 * member, immutable_field for reading_type, an owner_id that names no user. */
int devices_update(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, update_device);
}

/* DELETE /api/v1/devices/{id} — admin. 204; its readings, hours and alerts go
 * with it, its token stops working, live sessions drop it. 404 missing. */
int devices_delete(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    struct audit_note note;
    if (!audit_note_init(&note, req, NULL))
        return response_status(res, STATUS_INTERNAL);
    struct db_conn *c = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    enum status st = c ? db_devices_delete(c, id, &note.ctx) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, c);
    audit_note_free(&note);
    if (st != STATUS_OK)
        return response_status(res, st);
    /* Other instances' caches expire within AUTHN_CACHE_TTL_S. */
    authn_forget_device(app->authn, id);
    return response_json(res, 204, NULL);
}

/* POST /api/v1/devices/{id}/token — admin, no body. 200 {"token"}: the old
 * token stops working at once here, within a second elsewhere. 404 missing. */
int devices_rotate_token(const struct request *req, struct response *res, struct app *app)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    char token[CRYPTO_TOKEN_LEN + 1], hash[CRYPTO_SHA256_HEX_LEN + 1];
    if (!new_token_or_reply(token, hash, res))
        return res->status;
    struct audit_note note;
    if (!audit_note_init(&note, req, NULL))
        return response_status(res, STATUS_INTERNAL);
    struct db_conn *c = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    /* The entry says a token was issued, never which. */
    enum status st = c ? db_devices_set_token(c, id, hash, &note.ctx) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, c);
    audit_note_free(&note);
    if (st != STATUS_OK)
        return response_status(res, st);
    authn_forget_device(app->authn, id);
    authn_device_token_issued(app->authn, hash);
    return response_json(res, 200, json_pack("{s:s}", "token", token));
}
