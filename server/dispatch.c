#include "dispatch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../api/app.h"
#include "../auth/jwt.h"
#include "../base/form.h"
#include "../base/metrics.h"
#include "static_files.h"

/* ---- credentials ------------------------------------------------------------ */

static enum authn_verdict authn_cached_adapter(void *ctx, enum route_access access,
                                               const char *token, struct caller *out)
{
    return access == ACCESS_DEVICE ? authn_device_cached(ctx, token, out)
                                   : authn_user_cached(ctx, token, out);
}

static enum status authn_full_adapter(void *ctx, enum route_access access, const char *token,
                                      struct caller *out)
{
    return access == ACCESS_DEVICE ? authn_device(ctx, token, out) : authn_user(ctx, token, out);
}

struct dispatch_authn dispatch_authn_for(struct authn *authn)
{
    return (struct dispatch_authn){authn_cached_adapter, authn_full_adapter, authn};
}

static void reply_bad_token(const struct route *route, struct response *res)
{
    response_problem(res, 401, "invalid_token", NULL,
                     route->access == ACCESS_DEVICE ? "invalid device token"
                                                    : "invalid or expired access token");
}

/* The route's access rule, once the caller is known: 403 for a non-admin on
 * an admin route. */
static bool role_or_reply(const struct route *route, const struct caller *caller,
                          struct response *res)
{
    if (route->access == ACCESS_ADMIN && caller->role != ROLE_ADMIN) {
        response_problem(res, 403, "forbidden", NULL, "this route is for admins");
        return false;
    }
    return true;
}

/* Finds the Bearer token in r->token, or puts the 401 in res. */
static bool bearer_or_reply(struct dispatch_request *r, struct response *res)
{
    const char *header = r->source.header(r->source.ctx, "Authorization");
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        response_problem(res, 401, "unauthorized", NULL, "a Bearer token is required");
        return false;
    }
    if (strlen(header) > JWT_HEADER_MAX) {
        response_problem(res, 401, "invalid_token", NULL, "the Authorization header is too long");
        return false;
    }
    r->token = header + 7;
    return true;
}

/* The full check, on a query worker: fills req.caller or puts 401/403/503 in res. */
static bool authenticate_or_reply(const struct dispatcher *d, struct dispatch_request *r,
                                  struct response *res)
{
    enum status st = d->authn.full(d->authn.ctx, r->route->access, r->token, &r->req.caller);
    if (st == STATUS_UNAVAILABLE || st == STATUS_INTERNAL) {
        response_status(res, st);
        return false;
    }
    if (st != STATUS_OK) {
        reply_bad_token(r->route, res);
        return false;
    }
    return role_or_reply(r->route, &r->req.caller, res);
}

/* ---- the body ----------------------------------------------------------------- */

/* The media type of a Content-Type header is `type` (parameters such as a
 * charset aside). */
static bool content_type_is(const char *ct, const char *type)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, "; \t");
    return n == strlen(type) && !strncasecmp(ct, type, n);
}

static bool content_type_is_json(const char *ct)
{
    return content_type_is(ct, "application/json");
}

/* Decodes the body of a BODY_FORM route into req.body (an object of
 * strings, base/form.h), or puts the problem in res. An empty body is an
 * empty form: which fields a handler needs is the handler's to say. */
static bool form_or_reply(struct dispatch_request *r, struct response *res)
{
    if (!content_type_is(r->content_type, "application/x-www-form-urlencoded")) {
        response_problem(res, 415, "unsupported_media_type", NULL,
                         "the body must be a form (Content-Type: "
                         "application/x-www-form-urlencoded)");
        return false;
    }
    const char *why = NULL;
    r->req.body = form_decode(r->body, r->body_len, &why);
    if (!r->req.body)
        response_problem(res, 400, "malformed_form", NULL, "malformed form body: %s", why);
    return r->req.body != NULL;
}

/* Parses the body of a BODY_JSON or BODY_FORM route into req.body, or puts
 * the problem in res. Other routes ignore any body. */
static bool body_or_reply(struct dispatch_request *r, struct response *res)
{
    if (r->route->body == BODY_NONE)
        return true;
    if (r->route->body == BODY_FORM)
        return form_or_reply(r, res);
    if (!content_type_is_json(r->content_type)) {
        response_problem(res, 415, "unsupported_media_type", NULL,
                         "the body must be JSON (Content-Type: application/json)");
        return false;
    }
    if (r->body_len == 0) {
        response_problem(res, 400, "malformed_json", NULL, "a JSON body is required");
        return false;
    }
    const char *shape = json_shape_problem(r->body, r->body_len);
    if (shape) {
        response_problem(res, 400, "malformed_json", NULL, "%s", shape);
        return false;
    }
    json_error_t error;
    r->req.body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
    if (!r->req.body)
        response_problem(res, 400, "malformed_json", NULL,
                         "malformed JSON at line %d column %d: %s", error.line, error.column,
                         error.text);
    return r->req.body != NULL;
}

/* ---- the handler, here or on a worker ----------------------------------------------- */

static void handler_run(const struct dispatcher *d, struct dispatch_request *r,
                        struct response *res)
{
    r->route->handler(&r->req, res, d->app);
    json_decref(r->req.body);
    r->req.body = NULL;
    if (res->status == 0 && !res->deferral.start)
        response_problem(res, 500, "internal", NULL, "internal error");
}

/* What a worker does for a request: the full credential check (before the
 * body is read), or the handler. Owned by the request's deferral. */
struct dispatch_job {
    const struct dispatcher *d;
    struct dispatch_request *r; /* lives until the request completes */
    bool lookup;                /* only check the credentials the caches could not */
    enum route_thread thread;   /* the worker it goes to */
    struct deferred *resume;
    struct response res;            /* the answer (status 0: the look-up passed) */
    struct response_deferral inner; /* or the handler's own deferral */
};

static void job_run(void *arg);

static void job_submit(struct dispatch_job *job)
{
    const struct dispatcher *d = job->d;
    if (d->submit(d->submit_ctx, job->thread, job_run, job))
        return;
    /* The hashing queue is short on purpose; the query queue holds a request
     * per connection and refuses only while shutting down. */
    if (job->thread == THREAD_HASHING)
        response_problem(&job->res, 503, "busy", NULL, "the server is busy; retry shortly");
    else
        response_status(&job->res, STATUS_UNAVAILABLE);
    deferred_resume(job->resume);
}

/* On a worker. Exactly one resume comes of it: here, or from the handler's
 * own deferral. */
static void job_run(void *arg)
{
    struct dispatch_job *job = arg;
    if (job->lookup) {
        authenticate_or_reply(job->d, job->r, &job->res);
        deferred_resume(job->resume);
        return;
    }
    handler_run(job->d, job->r, &job->res);
    if (job->res.deferral.start) {
        job->inner = job->res.deferral;
        memset(&job->res.deferral, 0, sizeof job->res.deferral);
        job->inner.start(job->inner.ctx, job->resume);
        return;
    }
    deferred_resume(job->resume);
}

static void job_start(void *ctx, struct deferred *resume)
{
    struct dispatch_job *job = ctx;
    job->resume = resume;
    job_submit(job);
}

static void job_finish(void *ctx, struct response *res)
{
    struct dispatch_job *job = ctx;
    if (job->inner.finish) {
        job->inner.finish(job->inner.ctx, res);
        return;
    }
    *res = job->res;
    memset(&job->res, 0, sizeof job->res);
}

static void job_free(void *ctx)
{
    struct dispatch_job *job = ctx;
    if (job->inner.free)
        job->inner.free(job->inner.ctx);
    response_clear(&job->res);
    free(job);
}

/* Hands the credential look-up, or the handler, to a worker through
 * res->deferral. */
static void defer_to_worker(const struct dispatcher *d, struct dispatch_request *r, bool lookup,
                            struct response *res)
{
    struct dispatch_job *job = calloc(1, sizeof *job);
    if (!job) {
        response_status(res, STATUS_INTERNAL);
        return;
    }
    *job = (struct dispatch_job){
        .d = d, .r = r, .lookup = lookup, .thread = lookup ? THREAD_QUERY : r->route->thread};
    res->deferral = (struct response_deferral){job_start, job_finish, job_free, job};
    // cppcheck-suppress memleak ; res->deferral owns job now
}

/* ---- the dispatcher ------------------------------------------------------------- */

void dispatch_request_init(struct dispatch_request *r)
{
    r->route_index = METRICS_UNMATCHED;
    r->route_label = "unmatched";
}

void dispatch_request_clear(struct dispatch_request *r)
{
    json_decref(r->req.body);
    r->req.body = NULL;
}

/* The route's cap, and whether a body is on its way (Content-Length > 0 or
 * a transfer coding): 413 at once when Content-Length is over the cap, in
 * place of any answer res held. */
static bool body_cap_or_reply(const struct dispatcher *d, struct dispatch_request *r,
                              struct response *res)
{
    r->body_max = r->route && r->route->body == BODY_JSON_BULK
                      ? (size_t)d->app->config->max_body_bytes
                      : DISPATCH_MAX_BODY;
    r->body_kept = r->route && r->route->body != BODY_NONE;
    const char *cl = r->source.header(r->source.ctx, "Content-Length");
    const char *te = r->source.header(r->source.ctx, "Transfer-Encoding");
    unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    r->body_announced = announced > 0 || te != NULL;
    if (announced <= r->body_max)
        return true;
    response_clear(res);
    dispatch_body_too_large(r, res);
    return false;
}

void dispatch_body_too_large(const struct dispatch_request *r, struct response *res)
{
    response_problem(res, 413, "body_too_large", NULL, "the body is larger than %zu bytes",
                     r->body_max);
}

/* Finds the route, or answers: a static file, 404, or 405 with Allow. */
static bool route_or_reply(const struct dispatcher *d, struct dispatch_request *r,
                           struct response *res)
{
    struct route_match *m = &r->match;
    enum route_result found = router_match(d->routes, d->nroutes, r->method, r->url, m);
    if (found == ROUTE_NOT_FOUND && strncmp(r->url, "/api/", 5) != 0) {
        r->route_index = METRICS_STATIC;
        r->route_label = "static";
        static_files_serve(d->app, r->method, r->url,
                           r->source.header(r->source.ctx, "If-None-Match"), res);
        return false;
    }
    if (found == ROUTE_NOT_FOUND) {
        response_problem(res, 404, "not_found", NULL, "no such resource");
        return false;
    }
    if (found == ROUTE_METHOD_NOT_ALLOWED) {
        response_problem(res, 405, "method_not_allowed", NULL, "allowed: %s", m->allow);
        response_header(res, "Allow", m->allow);
        return false;
    }
    r->route = m->route;
    r->route_index = m->index;
    r->route_label = m->route->pattern;
    return true;
}

static void request_fill(struct dispatch_request *r)
{
    const struct route_match *m = &r->match;
    int nquery =
        r->source.query ? r->source.query(r->source.ctx, r->query, DISPATCH_MAX_QUERY_ARGS) : 0;
    r->req = (struct request){
        .method = r->method,
        .path = r->url,
        .route = r->route->pattern,
        .request_id = r->request_id,
        .client_ip = r->client_ip,
        .accept = r->source.header(r->source.ctx, "Accept"),
        .nparams = m->nparams,
        .query = r->query,
        .nquery = nquery,
        .now = r->started,
        .read_replica = r->route->read_replica,
    };
    memcpy(r->req.params, m->params, sizeof r->req.params);
    if (r->route->body != BODY_NONE)
        r->content_type = r->source.header(r->source.ctx, "Content-Type");
}

enum dispatch_step dispatch_headers(const struct dispatcher *d, struct dispatch_request *r,
                                    struct response *res)
{
    bool routed = route_or_reply(d, r, res);
    if (!body_cap_or_reply(d, r, res))
        return DISPATCH_ANSWER;
    if (!routed)
        return DISPATCH_ANSWER;
    request_fill(r);
    if (r->route->admit && r->route->admit(&r->req, res, d->app) != 0)
        return DISPATCH_ANSWER;
    if (r->route->access == ACCESS_ANYONE)
        return DISPATCH_BODY;
    if (!bearer_or_reply(r, res))
        return DISPATCH_ANSWER;
    switch (d->authn.cached(d->authn.ctx, r->route->access, r->token, &r->req.caller)) {
    case AUTHN_UNAUTHORIZED:
        reply_bad_token(r->route, res);
        return DISPATCH_ANSWER;
    case AUTHN_NEEDS_LOOKUP:
        defer_to_worker(d, r, true, res); /* no database on an HTTP thread */
        return res->deferral.start ? DISPATCH_LOOKUP : DISPATCH_ANSWER;
    case AUTHN_OK:
        break;
    }
    return role_or_reply(r->route, &r->req.caller, res) ? DISPATCH_BODY : DISPATCH_ANSWER;
}

void dispatch_request(const struct dispatcher *d, struct dispatch_request *r, struct response *res)
{
    if (r->body_too_large) {
        dispatch_body_too_large(r, res);
        return;
    }
    if (!body_or_reply(r, res))
        return;
    if (r->route->thread != THREAD_HTTP)
        defer_to_worker(d, r, false, res);
    else
        handler_run(d, r, res);
}
