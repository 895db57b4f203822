#include "measurements.h"

#include <stdlib.h>

#include "../api/app.h"
#include "../api/reply.h"
#include "../base/clock.h"
#include "../base/rate.h"
#include "../ingest/decode.h"
#include "../ingest/ingest.h"

/* One ingestion in flight: the HTTP request waits, suspended, for the group
 * commit that stores its readings. */
struct ingest_call {
    struct ingest_request req;
    struct ingest_reading *readings; /* owned: decoded from the body */
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
    free(call->readings); /* the request borrowed them */
    free(call);
}

/* The 422 naming the member at fault, as the decoder reported it. */
static int reply_decode_failure(struct response *res, enum status st,
                                const struct ingest_decode_error *err)
{
    if (st != STATUS_INVALID)
        return response_status(res, st);
    if (err->fault == INGEST_DECODE_UNKNOWN_FIELD)
        return response_problem(res, 422, "unknown_field", NULL, "%s", err->detail);
    if (err->fault == INGEST_DECODE_TOO_OLD)
        return response_problem(res, 422, "too_old", err->field, "%s", err->detail);
    return response_problem(res, 422, "invalid_field", err->field[0] ? err->field : NULL, "%s",
                            err->detail);
}

/* POST /api/v1/measurements — device token
 * Body: one reading {"ts"?, "meter_kwh"|"kwh"} or {"measurements": [...]}.
 * 200 {"accepted","duplicates"} after COMMIT; 422 naming the bad reading
 * (too_old for a ts before MAX_READING_AGE_DAYS or in a retired month,
 * invalid_field otherwise);
 * 429 rate_limited with Retry-After past DEVICE_RATE_PER_MIN (nothing of
 * the request decoded or stored); 401 when the device is gone; 503 when
 * the database is. The request is suspended (its thread free for others)
 * while its group commits. */
int measurements_ingest(const struct request *req, struct response *res, struct app *app)
{
    if (app->device_rate) {
        double wait = rate_table_take(app->device_rate, req->caller.device_id, clock_mono_s());
        if (wait > 0)
            return reply_rate_limited(res, wait);
    }
    long long now_us = (long long)(req->now * 1e6);
    long long max_age_us = ingest_max_age_us(app->ingest, now_us, /* retired months too */
                                             app->config->max_reading_age_days * INGEST_DAY_US);
    struct ingest_reading *readings;
    int n;
    struct ingest_decode_error err;
    enum status st =
        ingest_decode(req->body, req->caller.reading_type, now_us, max_age_us, &readings, &n, &err);
    if (st != STATUS_OK)
        return reply_decode_failure(res, st, &err);
    struct ingest_call *call = calloc(1, sizeof *call);
    if (!call) {
        free(readings);
        return response_status(res, STATUS_INTERNAL);
    }
    *call = (struct ingest_call){
        .req = {.in = {.device_id = req->caller.device_id,
                       .type = req->caller.reading_type,
                       .readings = readings,
                       .n = n,
                       .received_at = now_us},
                .done = call_done,
                .user = call},
        .readings = readings,
        .ingest = app->ingest,
    };
    res->deferral = (struct response_deferral){call_start, call_finish, call_free, call};
    res->status = 202; /* replaced by call_finish */
    return res->status;
}
