/* server/dispatch: the per-request decisions, driven without a socket. The
 * credential checks and the workers are fakes that record what they were
 * asked; a test plays the worker by running what was submitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../api/app.h"
#include "../../auth/jwt.h"
#include "../../server/dispatch.h"

/* ---- handlers that count their calls ---- */

static int handler_calls;

static int answer_ok(const struct request *req, struct response *res, struct app *app)
{
    (void)app;
    handler_calls++;
    return response_json(res, 200, json_pack("{s:I}", "caller", req->caller.user_id));
}

/* A form handler: echoes the field "a" it was given. */
static int answer_form(const struct request *req, struct response *res, struct app *app)
{
    (void)app;
    handler_calls++;
    const char *a = json_string_value(json_object_get(req->body, "a"));
    return response_json(res, 200,
                         json_pack("{s:s, s:I}", "a", a ? a : "(none)", "fields",
                                   (json_int_t)json_object_size(req->body)));
}

/* A handler that answers later, as POST /api/v1/measurements does. */
static struct deferred *inner_resume;
static int inner_freed;

static void inner_start(void *ctx, struct deferred *d)
{
    (void)ctx;
    inner_resume = d;
}

static void inner_finish(void *ctx, struct response *res)
{
    (void)ctx;
    response_json(res, 200, json_pack("{s:s}", "committed", "yes"));
}

static void inner_free(void *ctx)
{
    (void)ctx;
    inner_freed++;
}

static int answer_later(const struct request *req, struct response *res, struct app *app)
{
    (void)req, (void)app;
    handler_calls++;
    res->deferral = (struct response_deferral){inner_start, inner_finish, inner_free, NULL};
    res->status = 202;
    return 202;
}

/* An admission check that refuses "/api/hash" for one client address. */
static int admit_calls;

static int admit_unless_slowed(const struct request *req, struct response *res, struct app *app)
{
    (void)app;
    admit_calls++;
    if (strcmp(req->client_ip, "192.0.2.66") != 0)
        return 0;
    response_header(res, "Retry-After", "30");
    return response_problem(res, 429, "too_many_attempts", NULL, "slow down");
}

static const struct route ROUTES[] = {
    {"GET", "/api/open", answer_ok, ACCESS_ANYONE, BODY_NONE, THREAD_HTTP, NULL, false},
    {"POST", "/api/json", answer_ok, ACCESS_USER, BODY_JSON, THREAD_HTTP, NULL, false},
    {"GET", "/api/admin", answer_ok, ACCESS_ADMIN, BODY_NONE, THREAD_HTTP, NULL, false},
    {"GET", "/api/query", answer_ok, ACCESS_USER, BODY_NONE, THREAD_QUERY, NULL, false},
    {"POST", "/api/hash", answer_ok, ACCESS_USER, BODY_JSON, THREAD_HASHING, NULL, false},
    {"POST", "/api/login", answer_ok, ACCESS_ANYONE, BODY_JSON, THREAD_HASHING, admit_unless_slowed,
     false},
    {"POST", "/api/ingest", answer_later, ACCESS_DEVICE, BODY_JSON_BULK, THREAD_HTTP, NULL, false},
    {"POST", "/api/form", answer_form, ACCESS_ANYONE, BODY_FORM, THREAD_HTTP, NULL, false},
};

/* ---- fake credentials: the token says what the caches and the database know ---- */

static int full_checks;

static enum authn_verdict fake_cached(void *ctx, enum route_access access, const char *token,
                                      struct caller *out)
{
    (void)ctx, (void)access;
    if (!strncmp(token, "miss-", 5))
        return AUTHN_NEEDS_LOOKUP;
    if (strcmp(token, "admin") && strcmp(token, "client"))
        return AUTHN_UNAUTHORIZED;
    *out = (struct caller){.kind = CALLER_USER,
                           .user_id = 7,
                           .role = strcmp(token, "admin") ? ROLE_CLIENT : ROLE_ADMIN};
    return AUTHN_OK;
}

static enum status fake_full(void *ctx, enum route_access access, const char *token,
                             struct caller *out)
{
    (void)ctx;
    full_checks++;
    if (!strcmp(token, "miss-down"))
        return STATUS_UNAVAILABLE;
    if (!strncmp(token, "miss-", 5) && fake_cached(NULL, access, token + 5, out) == AUTHN_OK)
        return STATUS_OK;
    return STATUS_UNAUTHORIZED;
}

/* ---- a fake worker pool: one task held at a time ---- */

static struct {
    int submitted;
    enum route_thread thread;
    void (*fn)(void *arg);
    void *arg;
    bool refuse;
} worker;

static bool fake_submit(void *ctx, enum route_thread thread, void (*fn)(void *arg), void *arg)
{
    (void)ctx;
    if (worker.refuse)
        return false;
    worker.submitted++;
    worker.thread = thread;
    worker.fn = fn;
    worker.arg = arg;
    return true;
}

/* Runs what was submitted, as the worker thread would. */
static void worker_run(void)
{
    assert_non_null(worker.fn);
    void (*fn)(void *) = worker.fn;
    worker.fn = NULL;
    fn(worker.arg);
}

static int resumes;

static void count_resume(void *ctx)
{
    (void)ctx;
    resumes++;
}

/* ---- requests ---- */

struct header {
    const char *name, *value;
};

static const char *header_lookup(void *ctx, const char *name)
{
    for (const struct header *h = ctx; h && h->name; h++)
        if (!strcasecmp(h->name, name))
            return h->value;
    return NULL;
}

static struct config config = {.max_body_bytes = 1024};
static struct app app = {.config = &config};
static struct dispatcher dispatcher;
static struct dispatch_request request;

static int setup(void **state)
{
    (void)state;
    dispatcher = (struct dispatcher){.routes = ROUTES,
                                     .nroutes = sizeof ROUTES / sizeof ROUTES[0],
                                     .app = &app,
                                     .authn = {fake_cached, fake_full, NULL},
                                     .submit = fake_submit};
    handler_calls = full_checks = resumes = inner_freed = admit_calls = 0;
    inner_resume = NULL;
    memset(&worker, 0, sizeof worker);
    return 0;
}

/* The headers of a request are in (h terminated by {NULL}): what next. */
static enum dispatch_step headers_in(const char *method, const char *url, struct header *h,
                                     struct response *res)
{
    request = (struct dispatch_request){.method = method,
                                        .url = url,
                                        .source = {header_lookup, NULL, h},
                                        .request_id = "test",
                                        .client_ip = "127.0.0.1"};
    dispatch_request_init(&request);
    *res = (struct response){0};
    return dispatch_headers(&dispatcher, &request, res);
}

/* Its body is in. */
static void body_in(const char *body, struct response *res)
{
    request.body = body;
    request.body_len = body ? strlen(body) : 0;
    *res = (struct response){0};
    dispatch_request(&dispatcher, &request, res);
}

/* Dispatches one request as the transport does: the body is given only when
 * the headers let it be read; a look-up leaves its deferral in res. */
static enum dispatch_step dispatch(const char *method, const char *url, struct header *h,
                                   const char *body, struct response *res)
{
    enum dispatch_step step = headers_in(method, url, h, res);
    if (step == DISPATCH_BODY)
        body_in(body, res);
    return step;
}

/* Plays the transport after a deferral: suspend, start, (worker), finish. */
static struct deferred suspended = {count_resume, NULL};

static void transport_start(struct response *res, struct response_deferral *held)
{
    assert_non_null(res->deferral.start);
    *held = res->deferral;
    memset(&res->deferral, 0, sizeof res->deferral);
    response_clear(res);
    held->start(held->ctx, &suspended);
}

static void transport_finish(struct response_deferral *held, struct response *res)
{
    held->finish(held->ctx, res);
}

static void transport_complete(struct response_deferral *held, struct response *res)
{
    response_clear(res);
    if (held->free)
        held->free(held->ctx);
    dispatch_request_clear(&request);
}

/* A look-up's outcome, as the transport takes it on the resumed call: an
 * answer, or status 0 to go on reading the body. */
static void lookup_done(struct response_deferral *held, struct response *res)
{
    held->finish(held->ctx, res);
    held->free(held->ctx);
    memset(held, 0, sizeof *held);
}

static const char *problem_code(const struct response *res)
{
    return json_string_value(json_object_get(res->json, "code"));
}

static const char *header_of(const struct response *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (!strcmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

/* ---- the tests ---- */

static void unknown_paths_are_404_and_wrong_methods_405_with_allow(void **state)
{
    (void)state;
    struct response res;
    dispatch("GET", "/api/nope", NULL, NULL, &res);
    assert_int_equal(res.status, 404);
    assert_string_equal(problem_code(&res), "not_found");
    response_clear(&res);

    dispatch("DELETE", "/api/admin", NULL, NULL, &res);
    assert_int_equal(res.status, 405);
    assert_string_equal(header_of(&res, "Allow"), "GET, HEAD");
    assert_int_equal(handler_calls, 0);
    response_clear(&res);
}

static void bodies_over_the_route_cap_are_413_before_any_byte_is_read(void **state)
{
    (void)state;
    struct response res;
    /* 64 KiB on an ordinary route, whatever MAX_BODY_BYTES says. */
    struct header big[] = {{"Authorization", "Bearer client"},
                           {"Content-Type", "application/json"},
                           {"Content-Length", "65537"},
                           {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", big, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 413);
    assert_string_equal(problem_code(&res), "body_too_large");
    response_clear(&res);
    struct header fits[] = {{"Authorization", "Bearer client"},
                            {"Content-Type", "application/json"},
                            {"Content-Length", "65536"},
                            {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", fits, &res), DISPATCH_BODY);
    assert_int_equal(request.body_max, DISPATCH_MAX_BODY);
    assert_true(request.body_announced);

    /* MAX_BODY_BYTES (1024 here) on ingestion. */
    struct header bulk[] = {{"Authorization", "Bearer client"},
                            {"Content-Type", "application/json"},
                            {"Content-Length", "1025"},
                            {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/ingest", bulk, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 413);
    response_clear(&res);
    bulk[2].value = "1024";
    assert_int_equal(headers_in("POST", "/api/ingest", bulk, &res), DISPATCH_BODY);
    assert_int_equal(request.body_max, 1024);

    /* Before the credentials: a look-up is not spent on a body refused anyway. */
    struct header miss[] = {
        {"Authorization", "Bearer miss-client"}, {"Content-Length", "70000"}, {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", miss, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 413);
    response_clear(&res);
    assert_int_equal(worker.submitted, 0);
    assert_int_equal(handler_calls, 0);
}

/* Chunked: no length to refuse on the headers; the transport counts what
 * comes against the cap the headers gave it, and stops at the first byte over. */
static void a_chunked_body_over_the_cap_is_413(void **state)
{
    (void)state;
    struct response res;
    struct header chunked[] = {{"Authorization", "Bearer client"},
                               {"Content-Type", "application/json"},
                               {"Transfer-Encoding", "chunked"},
                               {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", chunked, &res), DISPATCH_BODY);
    assert_true(request.body_announced);
    assert_int_equal(request.body_max, DISPATCH_MAX_BODY);
    request.body_too_large = true; /* the transport counted past body_max */
    dispatch_request(&dispatcher, &request, &res);
    assert_int_equal(res.status, 413);
    assert_string_equal(problem_code(&res), "body_too_large");
    response_clear(&res);

    dispatch_body_too_large(&request, &res); /* what the transport sends mid-body */
    assert_int_equal(res.status, 413);
    response_clear(&res);
    assert_int_equal(handler_calls, 0);

    /* A route without a body keeps none of one it is sent. */
    struct header none[] = {{"Authorization", "Bearer client"}, {NULL, NULL}};
    assert_int_equal(headers_in("GET", "/api/admin", none, &res), DISPATCH_ANSWER);
    response_clear(&res);
    assert_int_equal(headers_in("GET", "/api/open", chunked, &res), DISPATCH_BODY);
    assert_false(request.body_kept);
}

/* The credentials are decided on the headers alone: a caller without them
 * never has a byte of its body read, whatever it announces. */
static void a_bad_token_is_401_before_any_body_byte(void **state)
{
    (void)state;
    struct response res;
    struct header forged[] = {{"Authorization", "Bearer forged"},
                              {"Content-Type", "application/json"},
                              {"Content-Length", "1000"},
                              {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/ingest", forged, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 401);
    response_clear(&res);
    struct header none[] = {{"Content-Length", "1000"}, {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", none, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 401);
    response_clear(&res);

    /* A cache miss: looked up before the body, which is read only if it passes. */
    struct response_deferral held;
    struct header miss[] = {{"Authorization", "Bearer miss-forged"},
                            {"Content-Type", "application/json"},
                            {"Content-Length", "1000"},
                            {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/ingest", miss, &res), DISPATCH_LOOKUP);
    transport_start(&res, &held);
    worker_run();
    assert_int_equal(resumes, 1);
    lookup_done(&held, &res);
    assert_int_equal(res.status, 401);
    response_clear(&res);
    assert_null(request.body);
    assert_int_equal(handler_calls, 0);
}

static void credentials_are_checked_before_the_handler_and_the_body(void **state)
{
    (void)state;
    struct response res;
    struct header none[] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    dispatch("POST", "/api/json", none, "{not json", &res);
    assert_int_equal(res.status, 401);
    assert_string_equal(problem_code(&res), "unauthorized");
    assert_string_equal(header_of(&res, "WWW-Authenticate"), "Bearer");
    response_clear(&res);

    struct header bad[] = {
        {"Authorization", "Bearer forged"}, {"Content-Type", "text/plain"}, {NULL, NULL}};
    dispatch("POST", "/api/json", bad, "{not json", &res);
    assert_int_equal(res.status, 401);
    assert_string_equal(problem_code(&res), "invalid_token");
    response_clear(&res);

    struct header client[] = {{"Authorization", "Bearer client"}, {NULL, NULL}};
    dispatch("GET", "/api/admin", client, NULL, &res);
    assert_int_equal(res.status, 403);
    assert_string_equal(problem_code(&res), "forbidden");
    response_clear(&res);

    assert_int_equal(handler_calls, 0);
    assert_int_equal(full_checks, 0);
    assert_int_equal(worker.submitted, 0);
}

static void json_bodies_need_the_type_and_must_parse(void **state)
{
    (void)state;
    struct response res;
    struct header text[] = {
        {"Authorization", "Bearer client"}, {"Content-Type", "text/plain"}, {NULL, NULL}};
    dispatch("POST", "/api/json", text, "{}", &res);
    assert_int_equal(res.status, 415);
    assert_string_equal(problem_code(&res), "unsupported_media_type");
    response_clear(&res);

    struct header json[] = {{"Authorization", "Bearer client"},
                            {"Content-Type", "application/json; charset=utf-8"},
                            {NULL, NULL}};
    char deep[81] = {0};
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    const char *bad[] = {"{\"a\":", "{\"a\":1,\"a\":2}", "", deep};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dispatch("POST", "/api/json", json, bad[i], &res);
        assert_int_equal(res.status, 400);
        assert_string_equal(problem_code(&res), "malformed_json");
        response_clear(&res);
    }
    assert_int_equal(handler_calls, 0);

    /* Parse memory in proportion to the body: 1,000 empty arrays (3 bytes
     * each) or 2,000 one-digit numbers are over the budget, the same count
     * of readings is not. */
    size_t n = 1000;
    char *arrays = malloc(3 * n + 2), *numbers = malloc(4 * n + 2);
    char *readings = malloc(48 * n + 20);
    assert_true(arrays && numbers && readings);
    size_t a = 0, b = 0, c = 0;
    arrays[a++] = numbers[b++] = '[';
    c += (size_t)sprintf(readings, "{\"measurements\":[");
    for (size_t i = 0; i < n; i++) {
        a += (size_t)sprintf(arrays + a, "%s[]", i ? "," : "");
        b += (size_t)sprintf(numbers + b, "%s1,1", i ? "," : "");
        c += (size_t)sprintf(readings + c, "%s{\"ts\":\"2026-09-02T00:00:00Z\",\"kwh\":1}",
                             i ? "," : "");
    }
    arrays[a++] = numbers[b++] = ']';
    arrays[a] = numbers[b] = '\0';
    sprintf(readings + c, "]}");
    const char *costly[] = {arrays, numbers};
    for (size_t i = 0; i < 2; i++) {
        dispatch("POST", "/api/json", json, costly[i], &res);
        assert_int_equal(res.status, 400);
        assert_non_null(strstr(json_string_value(json_object_get(res.json, "detail")), "values"));
        response_clear(&res);
    }
    dispatch("POST", "/api/json", json, readings, &res);
    assert_int_equal(res.status, 200);
    response_clear(&res);
    handler_calls = 0;
    free(arrays);
    free(numbers);
    free(readings);

    dispatch("POST", "/api/json", json, "{\"a\":1}", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(handler_calls, 1);
    assert_null(request.req.body); /* released after the handler */
    response_clear(&res);
}

/* RabbitMQ's HTTP auth backend posts forms: the type is required (415), a
 * malformed form is 400, and the handler reads the fields as req.body. */
static void form_bodies_need_the_type_and_are_decoded(void **state)
{
    (void)state;
    struct response res;
    struct header json[] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    dispatch("POST", "/api/form", json, "{\"a\":\"1\"}", &res);
    assert_int_equal(res.status, 415);
    assert_string_equal(problem_code(&res), "unsupported_media_type");
    response_clear(&res);
    dispatch("POST", "/api/form", NULL, "a=1", &res);
    assert_int_equal(res.status, 415);
    response_clear(&res);

    struct header form[] = {{"Content-Type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8"},
                            {"Content-Length", "65537"},
                            {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/form", form, &res), DISPATCH_ANSWER);
    assert_int_equal(res.status, 413); /* the 64 KiB of every ordinary route */
    response_clear(&res);
    form[1] = (struct header){NULL, NULL};
    const char *bad[] = {"a=%zz", "a=1&a=2", "a=%00", "a=%ff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dispatch("POST", "/api/form", form, bad[i], &res);
        assert_int_equal(res.status, 400);
        assert_string_equal(problem_code(&res), "malformed_form");
        response_clear(&res);
    }
    assert_int_equal(handler_calls, 0);

    dispatch("POST", "/api/form", form, "a=x+y%2Fz&b=", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(json_object_get(res.json, "a")), "x y/z");
    assert_int_equal(json_integer_value(json_object_get(res.json, "fields")), 2);
    assert_null(request.req.body); /* released after the handler */
    response_clear(&res);
    /* No body at all is an empty form: the handler says what it lacks. */
    dispatch("POST", "/api/form", form, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(json_integer_value(json_object_get(res.json, "fields")), 0);
    assert_int_equal(handler_calls, 2);
    response_clear(&res);
}

static void a_cache_hit_runs_an_http_route_at_once(void **state)
{
    (void)state;
    struct response res;
    dispatch("GET", "/api/open", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    response_clear(&res);
    struct header json[] = {
        {"Authorization", "Bearer client"}, {"Content-Type", "application/json"}, {NULL, NULL}};
    dispatch("POST", "/api/json", json, "{}", &res);
    assert_int_equal(res.status, 200);
    assert_null(res.deferral.start);
    assert_int_equal(handler_calls, 2);
    assert_int_equal(worker.submitted, 0);
    response_clear(&res);
}

static void a_query_route_runs_on_a_query_worker(void **state)
{
    (void)state;
    struct response res;
    struct response_deferral held;
    struct header client[] = {{"Authorization", "Bearer client"}, {NULL, NULL}};
    dispatch("GET", "/api/query", client, NULL, &res);
    assert_int_equal(handler_calls, 0);
    transport_start(&res, &held);
    assert_int_equal(worker.thread, THREAD_QUERY);
    worker_run();
    assert_int_equal(handler_calls, 1);
    assert_int_equal(full_checks, 0); /* the cache answered */
    assert_int_equal(resumes, 1);
    transport_finish(&held, &res);
    assert_int_equal(res.status, 200);
    transport_complete(&held, &res);
}

static void a_cache_miss_is_looked_up_on_a_query_worker_before_the_body(void **state)
{
    (void)state;
    struct response res;
    struct response_deferral held;
    struct header json[] = {{"Authorization", "Bearer miss-client"},
                            {"Content-Type", "application/json"},
                            {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/json", json, &res), DISPATCH_LOOKUP);
    assert_int_equal(full_checks, 0); /* nothing waited on this thread */
    transport_start(&res, &held);
    assert_int_equal(worker.submitted, 1);
    assert_int_equal(worker.thread, THREAD_QUERY);
    assert_int_equal(resumes, 0);
    worker_run();
    assert_int_equal(full_checks, 1);
    assert_int_equal(handler_calls, 0);
    assert_int_equal(resumes, 1);
    lookup_done(&held, &res);
    assert_int_equal(res.status, 0); /* go on: read the body */
    body_in("{\"a\":1}", &res);
    assert_int_equal(handler_calls, 1); /* an HTTP route runs on the HTTP thread */
    assert_int_equal(res.status, 200);
    assert_int_equal(json_integer_value(json_object_get(res.json, "caller")), 7);
    response_clear(&res);
    dispatch_request_clear(&request);
}

static void a_cache_miss_answers_401_403_or_503_from_the_worker(void **state)
{
    (void)state;
    const struct {
        const char *auth, *url;
        int status;
    } cases[] = {
        {"Bearer miss-forged", "/api/query", 401},
        {"Bearer miss-client", "/api/admin", 403},
        {"Bearer miss-down", "/api/query", 503},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct response res;
        struct response_deferral held;
        struct header h[] = {{"Authorization", cases[i].auth}, {NULL, NULL}};
        resumes = 0;
        assert_int_equal(headers_in("GET", cases[i].url, h, &res), DISPATCH_LOOKUP);
        transport_start(&res, &held);
        worker_run();
        assert_int_equal(resumes, 1);
        lookup_done(&held, &res);
        assert_int_equal(res.status, cases[i].status);
        response_clear(&res);
    }
    assert_int_equal(handler_calls, 0);
}

static void a_cache_miss_then_a_deferring_handler_chains(void **state)
{
    (void)state;
    struct response res;
    struct response_deferral held;
    struct header h[] = {{"Authorization", "Bearer miss-client"},
                         {"Content-Type", "application/json"},
                         {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/ingest", h, &res), DISPATCH_LOOKUP);
    transport_start(&res, &held);
    worker_run(); /* authenticates */
    lookup_done(&held, &res);
    assert_int_equal(res.status, 0);
    body_in("{\"meter_kwh\":1}", &res);
    assert_int_equal(handler_calls, 1);
    transport_start(&res, &held);               /* the handler's deferral */
    assert_ptr_equal(inner_resume, &suspended); /* the handler's work resumes the request */
    assert_int_equal(resumes, 1);
    deferred_resume(inner_resume); /* the group commit is done */
    assert_int_equal(resumes, 2);
    transport_finish(&held, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(json_object_get(res.json, "committed")), "yes");
    transport_complete(&held, &res);
    assert_int_equal(inner_freed, 1);
}

static void a_cache_miss_on_a_hashing_route_hashes_on_a_hashing_worker(void **state)
{
    (void)state;
    struct response res;
    struct response_deferral held;
    struct header h[] = {{"Authorization", "Bearer miss-client"},
                         {"Content-Type", "application/json"},
                         {NULL, NULL}};
    assert_int_equal(headers_in("POST", "/api/hash", h, &res), DISPATCH_LOOKUP);
    transport_start(&res, &held);
    assert_int_equal(worker.thread, THREAD_QUERY);
    worker_run();
    lookup_done(&held, &res);
    assert_int_equal(res.status, 0);
    assert_int_equal(handler_calls, 0);
    body_in("{}", &res);
    transport_start(&res, &held);
    assert_int_equal(worker.thread, THREAD_HASHING);
    worker_run();
    assert_int_equal(handler_calls, 1);
    assert_int_equal(resumes, 2);
    transport_finish(&held, &res);
    assert_int_equal(res.status, 200);
    transport_complete(&held, &res);

    /* A full hashing queue is 503 at once. */
    worker.refuse = true;
    struct header hit[] = {
        {"Authorization", "Bearer client"}, {"Content-Type", "application/json"}, {NULL, NULL}};
    dispatch("POST", "/api/hash", hit, "{}", &res);
    transport_start(&res, &held);
    assert_int_equal(resumes, 3);
    transport_finish(&held, &res);
    assert_int_equal(res.status, 503);
    assert_string_equal(problem_code(&res), "busy");
    transport_complete(&held, &res);
}

/* A refused admission answers on the HTTP thread, on the headers: no worker,
 * no body read. */
static void an_admission_check_refuses_before_the_worker(void **state)
{
    (void)state;
    struct response res;
    struct header json[] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    dispatch("POST", "/api/login", json, "{}", &res);
    assert_int_equal(admit_calls, 1);
    assert_non_null(res.deferral.start); /* admitted: on to the hashing worker */
    struct response_deferral held;
    transport_start(&res, &held);
    assert_int_equal(worker.thread, THREAD_HASHING);
    worker_run();
    transport_finish(&held, &res);
    assert_int_equal(res.status, 200);
    transport_complete(&held, &res);

    /* A slowed address is answered on its headers: no body read, no worker. */
    memset(&worker, 0, sizeof worker);
    request = (struct dispatch_request){.method = "POST",
                                        .url = "/api/login",
                                        .source = {header_lookup, NULL, json},
                                        .request_id = "test",
                                        .client_ip = "192.0.2.66"};
    dispatch_request_init(&request);
    res = (struct response){0};
    assert_int_equal(dispatch_headers(&dispatcher, &request, &res), DISPATCH_ANSWER);
    assert_int_equal(admit_calls, 2);
    assert_int_equal(res.status, 429);
    assert_null(res.deferral.start);
    assert_null(worker.fn);
    assert_string_equal(header_of(&res, "Retry-After"), "30");
    assert_null(request.req.body);
    assert_int_equal(handler_calls, 1);
    response_clear(&res);
}

/* The real caches: with nothing cached they answer without a pool at all. */
static void the_cached_checks_never_need_the_database(void **state)
{
    (void)state;
    static const char secret[] = "0123456789abcdef0123456789abcdef";
    struct authn *authn = authn_create(NULL, secret, sizeof secret - 1);
    assert_non_null(authn);
    struct dispatch_authn real = dispatch_authn_for(authn);
    struct caller caller;
    char *token = NULL;
    assert_true(jwt_issue((const unsigned char *)secret, sizeof secret - 1, JWT_ISSUER, "7",
                          "client", (long long)time(NULL), 60, &token, NULL));
    assert_int_equal(real.cached(real.ctx, ACCESS_USER, token, &caller), AUTHN_NEEDS_LOOKUP);
    token[strlen(token) - 2] ^= 1; /* a signature that no longer matches */
    assert_int_equal(real.cached(real.ctx, ACCESS_USER, token, &caller), AUTHN_UNAUTHORIZED);
    assert_int_equal(real.cached(real.ctx, ACCESS_DEVICE, "short", &caller), AUTHN_UNAUTHORIZED);
    assert_int_equal(real.cached(real.ctx, ACCESS_DEVICE, "a-device-token-of-some-length", &caller),
                     AUTHN_NEEDS_LOOKUP);
    free(token);
    authn_free(authn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(unknown_paths_are_404_and_wrong_methods_405_with_allow, setup),
        cmocka_unit_test_setup(bodies_over_the_route_cap_are_413_before_any_byte_is_read, setup),
        cmocka_unit_test_setup(a_chunked_body_over_the_cap_is_413, setup),
        cmocka_unit_test_setup(a_bad_token_is_401_before_any_body_byte, setup),
        cmocka_unit_test_setup(credentials_are_checked_before_the_handler_and_the_body, setup),
        cmocka_unit_test_setup(json_bodies_need_the_type_and_must_parse, setup),
        cmocka_unit_test_setup(form_bodies_need_the_type_and_are_decoded, setup),
        cmocka_unit_test_setup(a_cache_hit_runs_an_http_route_at_once, setup),
        cmocka_unit_test_setup(a_query_route_runs_on_a_query_worker, setup),
        cmocka_unit_test_setup(a_cache_miss_is_looked_up_on_a_query_worker_before_the_body, setup),
        cmocka_unit_test_setup(a_cache_miss_answers_401_403_or_503_from_the_worker, setup),
        cmocka_unit_test_setup(a_cache_miss_then_a_deferring_handler_chains, setup),
        cmocka_unit_test_setup(a_cache_miss_on_a_hashing_route_hashes_on_a_hashing_worker, setup),
        cmocka_unit_test_setup(an_admission_check_refuses_before_the_worker, setup),
        cmocka_unit_test_setup(the_cached_checks_never_need_the_database, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
