#include "measurements.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/app.h"
#include "../ingest/ingest.h"
#include "../base/timefmt.h"

/* Checks one reading; on error writes its field path into field. */
static bool parse_reading(const json_t *r, enum reading_type type, long long now_us,
                          struct energy_reading *out, const char *prefix, char *field, size_t fsize,
                          const char **why)
{
    const char *value_key = type == READING_INTERVAL ? "kwh" : "meter_kwh";
    const char *other_key = type == READING_INTERVAL ? "meter_kwh" : "kwh";
    if (!json_is_object(r)) {
        snprintf(field, fsize, "%s", *prefix ? prefix : "body");
        *why = "a reading must be an object";
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)r, key, v)
    {
        if (strcmp(key, "ts") != 0 && strcmp(key, value_key) != 0) {
            snprintf(field, fsize, "%s%s%s", prefix, *prefix ? "." : "", key);
            *why = !strcmp(key, other_key)
                       ? (type == READING_INTERVAL ? "this device reports interval energy: use kwh"
                                                   : "this device reports a meter register: use "
                                                     "meter_kwh")
                       : "unknown member";
            return false;
        }
    }
    json_t *ts = json_object_get(r, "ts");
    out->ts = now_us;
    if (ts && (!json_is_string(ts) || !timefmt_parse(json_string_value(ts), &out->ts))) {
        snprintf(field, fsize, "%s%sts", prefix, *prefix ? "." : "");
        *why = "ts must be an RFC 3339 date-time such as 2026-11-21T10:10:00Z";
        return false;
    }
    if (out->ts > now_us + MEASUREMENTS_FUTURE_US) {
        snprintf(field, fsize, "%s%sts", prefix, *prefix ? "." : "");
        *why = "ts is more than 5 minutes in the future";
        return false;
    }
    json_t *value = json_object_get(r, value_key);
    snprintf(field, fsize, "%s%s%s", prefix, *prefix ? "." : "", value_key);
    if (!value) {
        *why = "missing";
        return false;
    }
    if (!json_is_number(value) || !isfinite(json_number_value(value)) ||
        json_number_value(value) < 0) {
        *why = "must be a finite number >= 0";
        return false;
    }
    out->value = json_number_value(value);
    return true;
}

bool measurements_parse_or_reply(const json_t *body, enum reading_type type, long long now_us,
                                 struct energy_reading **out, int *n, struct response *res)
{
    char field[64];
    const char *why = NULL;
    *out = NULL;
    *n = 0;
    json_t *batch = json_is_object(body) ? json_object_get(body, "measurements") : NULL;
    if (!batch) {
        struct energy_reading *one = malloc(sizeof *one);
        if (!one) {
            response_status(res, STATUS_INTERNAL);
            return false;
        }
        if (!parse_reading(body, type, now_us, one, "", field, sizeof field, &why)) {
            free(one);
            response_problem(res, 422, "invalid_field", field, "%s: %s", field, why);
            return false;
        }
        *out = one;
        *n = 1;
        return true;
    }
    if (json_object_size(body) != 1) {
        response_problem(res, 422, "unknown_field", NULL,
                         "a batch body has only the member measurements");
        return false;
    }
    size_t count = json_is_array(batch) ? json_array_size(batch) : 0;
    if (!json_is_array(batch) || count == 0 || count > MEASUREMENTS_BATCH_MAX) {
        response_problem(res, 422, "invalid_field", "measurements",
                         "measurements must be an array of 1 to %d readings",
                         MEASUREMENTS_BATCH_MAX);
        return false;
    }
    struct energy_reading *readings = malloc(count * sizeof *readings);
    if (!readings) {
        response_status(res, STATUS_INTERNAL);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "measurements[%zu]", i);
        if (!parse_reading(json_array_get(batch, i), type, now_us, &readings[i], prefix, field,
                           sizeof field, &why)) {
            free(readings);
            response_problem(res, 422, "invalid_field", field, "%s: %s", field, why);
            return false;
        }
    }
    *out = readings;
    *n = (int)count;
    return true;
}

/* One ingestion in flight: the HTTP request waits, suspended, for the group
 * commit that stores its readings. */
struct ingest_call {
    struct ingest_request req;
    struct energy_reading *readings;
    struct ingest *ingest;
    struct deferred *resume;
};

static void call_done(struct ingest_request *req)
{
    struct ingest_call *call = req->user;
    deferred_resume(call->resume);
}

static void call_start(void *ctx, struct deferred *d)
{
    struct ingest_call *call = ctx;
    call->resume = d;
    ingest_enqueue(call->ingest, &call->req);
}

static void call_finish(void *ctx, struct response *res)
{
    struct ingest_call *call = ctx;
    if (call->req.status == STATUS_NOT_FOUND)
        response_problem(res, 401, "invalid_token", NULL, "invalid device token");
    else if (call->req.status != STATUS_OK)
        response_status(res, call->req.status);
    else
        response_json(res, 200,
                      json_pack("{s:i, s:i}", "accepted", call->req.result.accepted, "duplicates",
                                call->req.result.duplicates));
}

static void call_free(void *ctx)
{
    struct ingest_call *call = ctx;
    free(call->readings);
    free(call);
}

/* POST /api/v1/measurements — device token
 * Body: one reading {"ts"?, "meter_kwh"|"kwh"} or {"measurements": [...]}.
 * 200 {"accepted","duplicates"} after COMMIT; 422 naming the bad reading;
 * 401 when the device is gone; 503 when the database is. The request is
 * suspended (its thread free for others) while its group commits. */
int measurements_ingest(const struct request *req, struct response *res, struct app *app)
{
    long long now_us = (long long)(req->now * 1e6);
    struct energy_reading *readings;
    int n;
    if (!measurements_parse_or_reply(req->body, req->caller.reading_type, now_us, &readings, &n,
                                     res))
        return res->status;
    struct ingest_call *call = calloc(1, sizeof *call);
    if (!call) {
        free(readings);
        return response_status(res, STATUS_INTERNAL);
    }
    *call = (struct ingest_call){
        .req = {.device_id = req->caller.device_id,
                .readings = readings,
                .n = n,
                .received_at = now_us,
                .done = call_done,
                .user = call},
        .readings = readings,
        .ingest = app->ingest,
    };
    res->deferral = (struct response_deferral){call_start, call_finish, call_free, call};
    res->status = 202; /* replaced by call_finish */
    return res->status;
}
