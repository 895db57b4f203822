/* fuzz_ingest: an ingestion body as a device sends it, through the
 * dispatcher's JSON body parsing (server/dispatch.c: Content-Type, the
 * nesting pre-scan, jansson with duplicates refused) into the real handler
 * of POST /api/v1/measurements, which decodes it (ingest/decode.c) and
 * checks every reading (ingest/check.c).
 *
 * Input: the first byte picks the device's reading type (bit 0) and how far
 * the receive time is from a fixed instant (the other bits, in hours); the
 * rest is the body.
 *
 * Properties (abort on violation):
 *  - what the dispatcher parses is nested at most DISPATCH_MAX_JSON_DEPTH
 *    deep, and a body jansson refuses is answered 400 malformed_json, with
 *    its problem document (the first finding: invalid UTF-8 lost it);
 *  - every reading ingest_decode gives passes ingest_check for the device's
 *    type at the receive time: the device's member, a ts at most
 *    INGEST_FUTURE_US ahead, a finite value >= 0; there are 1 to
 *    INGEST_BATCH_MAX of them, and one reading's value is the body's;
 *  - a refused body says why (and names the member at fault), and the handler
 *    answers it 422; an accepted one the handler takes on (a deferral, which
 *    is dropped here: the group commit is not the target's).
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../api/app.h"
#include "../../ingest/decode.h"
#include "../../server/dispatch.h"
#include "../../server/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE_S    1795255800LL /* 2026-11-21T10:10:00Z */
#define MAX_BODY  (1536 * 1024)
#define DEVICE_ID 7

static struct config config = {.max_body_bytes = MAX_BODY, .max_reading_age_days = 1100};
static struct app app = {.config = &config};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_ingest: %s\n", what);
        abort();
    }
}

static enum reading_type device_type;

static enum authn_verdict fake_cached(void *ctx, enum route_access access, const char *token,
                                      struct caller *out)
{
    (void)ctx;
    check(access == ACCESS_DEVICE && !strcmp(token, "device-token"), "the wrong credential check");
    *out =
        (struct caller){.kind = CALLER_DEVICE, .device_id = DEVICE_ID, .reading_type = device_type};
    return AUTHN_OK;
}

static enum status fake_full(void *ctx, enum route_access access, const char *token,
                             struct caller *out)
{
    (void)ctx, (void)access, (void)token, (void)out;
    check(0, "a cached credential was looked up again");
    return STATUS_INTERNAL;
}

static bool fake_submit(void *ctx, enum route_thread thread, void (*fn)(void *arg), void *arg)
{
    (void)ctx, (void)thread, (void)fn, (void)arg;
    check(0, "ingestion left the HTTP thread");
    return false;
}

static const char *header(void *ctx, const char *name)
{
    (void)ctx;
    if (!strcasecmp(name, "Authorization"))
        return "Bearer device-token";
    if (!strcasecmp(name, "Content-Type"))
        return "application/json; charset=utf-8";
    return NULL;
}

static const struct route *measurements_route(void)
{
    for (size_t i = 0; i < ROUTES_COUNT; i++)
        if (!strcmp(ROUTES[i].pattern, "/api/v1/measurements") && !strcmp(ROUTES[i].method, "POST"))
            return &ROUTES[i];
    check(0, "no POST /api/v1/measurements route");
    return NULL;
}

static int depth(const json_t *j)
{
    int deepest = 0;
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v)
        {
            int d = depth(v);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            int d = depth(v);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

/* A problem document with that status and code (a problem always has its
 * document: a 400 or 422 without one tells the client nothing). */
static bool is_problem(const struct response *res, int status, const char *code)
{
    const char *got = json_string_value(json_object_get(res->json, "code"));
    return res->status == status && res->problem && got && !strcmp(got, code) &&
           json_is_string(json_object_get(res->json, "detail"));
}

/* The decoder's own verdict on the body the dispatcher parsed. */
static void check_decode(const json_t *body, long long now_us, const struct response *res)
{
    struct ingest_reading *readings;
    int n;
    struct ingest_decode_error err;
    long long max_age_us = config.max_reading_age_days * INGEST_DAY_US;
    enum status st = ingest_decode(body, device_type, now_us, max_age_us, &readings, &n, &err);
    check(st == STATUS_OK || st == STATUS_INVALID, "neither decoded nor refused");
    if (st == STATUS_INVALID) {
        check(!readings && n == 0, "a refused body left readings");
        check(memchr(err.field, '\0', sizeof err.field) &&
                  memchr(err.detail, '\0', sizeof err.detail),
              "an unterminated fault");
        /* field may be "": a member named "" is at fault ({"": 1}). */
        check(err.detail[0] != '\0', "a fault without a message");
        const char *code = err.fault == INGEST_DECODE_UNKNOWN_FIELD ? "unknown_field"
                           : err.fault == INGEST_DECODE_TOO_OLD     ? "too_old"
                                                                    : "invalid_field";
        check(is_problem(res, 422, code) && !res->deferral.start,
              "a refused body not answered with its 422 problem");
        return;
    }
    check(readings && n >= 1 && n <= INGEST_BATCH_MAX, "a reading count out of range");
    for (int i = 0; i < n; i++) {
        const struct ingest_reading *r = &readings[i];
        check(ingest_check(r, device_type, now_us, max_age_us) == INGEST_CHECK_OK,
              "a decoded reading fails ingest_check");
        check(r->kind == device_type, "a reading of the other type");
        check(isfinite(r->value) && r->value >= 0, "a value that is not finite and >= 0");
        check(r->ts >= now_us - max_age_us && r->ts <= now_us + INGEST_FUTURE_US,
              "a ts out of range");
    }
    json_t *value = json_object_get(body, ingest_member_name(device_type));
    if (n == 1 && value)
        check(readings[0].value == json_number_value(value), "the value changed");
    free(readings);
    check(res->deferral.start != NULL, "an accepted body not taken on");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > MAX_BODY)
        return 0;
    device_type = data[0] & 1 ? READING_INTERVAL : READING_CUMULATIVE;
    long long now_s = BASE_S + (long long)(data[0] >> 1) * 3600;
    const char *body = (const char *)data + 1;
    size_t body_len = size - 1;

    const struct route *route = measurements_route();
    struct dispatcher d = {.routes = route,
                           .nroutes = 1,
                           .app = &app,
                           .authn = {fake_cached, fake_full, NULL},
                           .submit = fake_submit};
    struct dispatch_request r = {.method = "POST",
                                 .url = "/api/v1/measurements",
                                 .source = {header, NULL, NULL},
                                 .body = body_len ? body : NULL,
                                 .body_len = body_len,
                                 .request_id = "fuzz",
                                 .client_ip = "127.0.0.1",
                                 .started = (double)now_s};
    dispatch_request_init(&r);
    struct response res = {0};
    /* As the transport does: the headers (a cached device token), then the body. */
    check(dispatch_headers(&d, &r, &res) == DISPATCH_BODY, "a cached device not let in");
    dispatch_request(&d, &r, &res);

    json_t *doc = json_loadb(body, body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!doc || depth(doc) > DISPATCH_MAX_JSON_DEPTH) {
        check(is_problem(&res, 400, "malformed_json"), "a body jansson refuses is not 400");
    } else {
        /* The handler ran on what the dispatcher parsed; decode it again here. */
        /* Past the parse budget (values per byte) a body jansson takes is 400 too. */
        if (res.status == 400) {
            check(is_problem(&res, 400, "malformed_json"), "a 400 that is not malformed_json");
            json_decref(doc);
            response_clear(&res);
            dispatch_request_clear(&r);
            return 0;
        }
        check_decode(doc, now_s * 1000000LL, &res);
    }
    json_decref(doc);
    response_clear(&res); /* drops a deferral unstarted: nothing was enqueued */
    dispatch_request_clear(&r);
    return 0;
}
