#include "resources.h"

#include "../base/timefmt.h"

json_t *resource_time_or_null(long long us)
{
    if (!us)
        return json_null();
    char buf[TIMEFMT_MAX];
    timefmt_format(us, buf);
    return json_string(buf);
}

json_t *alert_to_json(const struct alert *a)
{
    return json_pack("{s:I, s:I, s:s, s:o, s:o, s:f, s:f, s:o, s:o}", "id", (json_int_t)a->id,
                     "device_id", (json_int_t)a->device_id, "device_name", a->device_name,
                     "owner_id", a->owner_id ? json_integer(a->owner_id) : json_null(),
                     "hour_start", resource_time_or_null(a->hour_start), "hour_kwh", a->hour_kwh,
                     "max_hourly_kwh", a->max_hourly_kwh, "created_at",
                     resource_time_or_null(a->created_at), "acknowledged_at",
                     resource_time_or_null(a->acknowledged_at));
}

json_t *user_to_json(const struct user *u)
{
    char created[TIMEFMT_MAX];
    timefmt_format(u->created_at, created);
    return json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)u->id, "email", u->email,
                     "name", u->name, "role", role_name(u->role), "created_at", created);
}

/* Stored JSON text (params, result) back as a value; null when absent. */
static json_t *stored_json(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *id_or_null(long long id)
{
    return id ? json_integer(id) : json_null();
}

json_t *command_to_json(const struct command *c)
{
    return json_pack("{s:I, s:I, s:s, s:o, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)c->id, "device_id", (json_int_t)c->device_id, "name", c->name,
                     "params", stored_json(c->params), "status", command_status_name(c->status),
                     "attempts", c->attempts, "created_by", id_or_null(c->created_by), "alert_id",
                     id_or_null(c->alert_id), "created_at", resource_time_or_null(c->created_at),
                     "expires_at", resource_time_or_null(c->expires_at), "sent_at",
                     resource_time_or_null(c->sent_at), "completed_at",
                     resource_time_or_null(c->completed_at), "result", stored_json(c->result),
                     "error", c->error ? json_string(c->error) : json_null());
}

json_t *chat_message_to_json(const struct chat_message *m)
{
    return json_pack("{s:I, s:I, s:o, s:s, s:s, s:o, s:o}", "id", (json_int_t)m->id,
                     "conversation_id", (json_int_t)m->conversation_id, "sender_id",
                     m->sender_id ? json_integer(m->sender_id) : json_null(), "sender_role",
                     role_name(m->sender_role), "text", m->text ? m->text : "", "created_at",
                     resource_time_or_null(m->created_at), "read_at",
                     resource_time_or_null(m->read_at));
}

json_t *chat_conversation_to_json(const struct chat_conversation *c)
{
    json_t *last = c->has_last ? chat_message_to_json(&c->last) : json_null();
    if (!last)
        return NULL;
    return json_pack("{s:I, s:{s:I, s:s, s:s}, s:o, s:I, s:o}", "id", (json_int_t)c->id, "user",
                     "id", (json_int_t)c->user_id, "name", c->user_name, "email", c->user_email,
                     "last_message", last, "unread_count", (json_int_t)c->unread_count,
                     "updated_at", resource_time_or_null(c->updated_at));
}
