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
