/* fuzz_query: a request target with a query string, split and decoded the
 * way libmicrohttpd does it ('&', '=', '+' as space, percent-escapes),
 * through the dispatcher (server/dispatch.c) over the real route table with
 * every handler replaced by a probe, and the query parsers the handlers use
 * that need no database: limit (api/validate.c), list cursors (api/cursor.c,
 * handlers/devices.c), tz (handlers/consumption.c), date and date-times
 * (base/timefmt.c).
 *
 * The admission checks are real: the login's throttle, and the broker auth
 * routes' (AMQP_URL set, the client inside BROKER_AUTH_ALLOW); those routes
 * get their fixed body as a form, the others as JSON.
 *
 * Input: the first byte picks the method (bits 0-2) and the credential
 * (bits 3-4: an admin's, a client's, one the caches must look up, none); the
 * rest is the target, "/api/v1/alerts?limit=5&cursor=MTA".
 *
 * Properties (abort on violation):
 *  - a request the route table and the credential allow reaches its handler
 *    exactly once, on the thread its route names (a worker runs what is
 *    submitted at once, and the request is resumed exactly once); one it
 *    does not allow never does, and gets 401, 403, 404 or 405;
 *  - the handler sees the path, the route's parameters and the query
 *    arguments in order, at most DISPATCH_MAX_QUERY_ARGS of them, and
 *    request_query gives the first of a repeated name;
 *  - limit is 50 when absent, 1..1000 when accepted, else 400 invalid_query;
 *  - a cursor is accepted only in the exact spelling its encoder gives;
 *  - a tz is accepted only in the shape the header describes.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../api/app.h"
#include "../../api/cursor.h"
#include "../../api/validate.h"
#include "../../auth/throttle.h"
#include "../../base/netaddr.h"
#include "../../base/timefmt.h"
#include "../../handlers/consumption.h"
#include "../../handlers/devices.h"
#include "../../server/dispatch.h"
#include "../../server/routes.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROUTES 64
#define MAX_ARGS   256

static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
static const char *const TOKENS[] = {"admin", "client", "miss-admin", NULL};

static struct route routes[MAX_ROUTES];
static size_t nroutes;
/* Paths outside /api/ are the static files': none here (fuzz_router has them). */
static char no_web_root[] = "/nonexistent/web-root";
static struct config config = {.max_body_bytes = 1024, .web_root = no_web_root};
static struct app app = {.config = &config};

/* What the input asked for, as the probe must see it. */
static struct query_arg args[MAX_ARGS];
static int nargs;
static const char *token;
static int probe_calls;
static const struct route *probe_route;
static enum route_thread probe_thread; /* where the probe ran */
static enum route_thread current_thread;
static int resumes;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_query: %s\n", what);
        abort();
    }
}

/* ---- the probe: a handler that checks what it was given --------------------- */

static bool tz_shaped(const char *tz)
{
    size_t n = strlen(tz);
    if (n == 0 || n > 64 || tz[n - 1] == '/')
        return false;
    for (const char *part = tz; *part; part += strcspn(part, "/"), part += *part == '/') {
        char c = *part;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return strspn(tz, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/") == n;
}

static void check_cursor(const char *c)
{
    static const char *const KINDS[] = {"", "d", "r", "u"};
    for (size_t i = 0; i < sizeof KINDS / sizeof *KINDS; i++) {
        long long v;
        char again[CURSOR_MAX];
        if (cursor_decode(c, KINDS[i], &v)) {
            cursor_encode(KINDS[i], v, again);
            check(!strcmp(again, c), "a cursor accepted in another spelling");
        }
        if (KINDS[i][0] && devices_cursor_decode(c, KINDS[i][0], &v)) {
            devices_cursor_encode(KINDS[i][0], v, again);
            check(!strcmp(again, c), "a device cursor accepted in another spelling");
        }
    }
}

static void check_query_values(const struct request *req)
{
    struct response res = {0};
    int limit = -1;
    const char *s = request_query(req, "limit");
    if (validate_limit_or_reply(req, &limit, &res))
        check(s ? limit >= 1 && limit <= 1000 && limit == atoi(s) : limit == 50,
              "limit accepted out of range");
    else
        check(s && res.status == 400, "limit refused without 400");
    response_clear(&res);

    if ((s = request_query(req, "cursor")))
        check_cursor(s);
    if ((s = request_query(req, "tz")))
        check(consumption_tz_plausible(s) == tz_shaped(s), "tz shape");
    int y, m, d;
    if ((s = request_query(req, "date")) && timefmt_parse_date(s, &y, &m, &d))
        check(strlen(s) == 10, "a date of another length");
    long long from, to;
    if ((s = request_query(req, "from")) && timefmt_parse(s, &from) &&
        (s = request_query(req, "to")) && timefmt_parse(s, &to))
        check(from >= 0 && to >= 0, "a negative instant");
}

static int probe(const struct request *req, struct response *res, struct app *a)
{
    check(a == &app, "another app");
    probe_calls++;
    probe_thread = current_thread;
    check(!strcmp(req->route, probe_route->pattern), "the handler of another route");
    int want = nargs < DISPATCH_MAX_QUERY_ARGS ? nargs : DISPATCH_MAX_QUERY_ARGS;
    check(req->nquery == want, "query arguments lost or invented");
    for (int i = 0; i < req->nquery; i++)
        check(!strcmp(req->query[i].name, args[i].name) &&
                  !strcmp(req->query[i].value, args[i].value),
              "a query argument changed");
    for (int i = 0; i < req->nquery; i++) {
        const char *first = NULL;
        for (int k = 0; k < req->nquery && !first; k++)
            if (!strcmp(req->query[k].name, req->query[i].name))
                first = req->query[k].value;
        check(request_query(req, req->query[i].name) == first, "request_query not the first");
    }
    for (int i = 0; i < req->nparams; i++)
        check(req->params[i][0] && !strchr(req->params[i], '/'), "a bad path parameter");
    check(req->route && (req->body != NULL) == (probe_route->body != BODY_NONE),
          "the body of a route that takes none, or none for one that does");
    check_query_values(req);
    return response_json(res, 200, json_object());
}

/* ---- fakes: credentials, workers, the transport -------------------------------- */

static enum authn_verdict fake_cached(void *ctx, enum route_access access, const char *tok,
                                      struct caller *out)
{
    (void)ctx;
    if (!strncmp(tok, "miss-", 5))
        return AUTHN_NEEDS_LOOKUP;
    if (access == ACCESS_DEVICE)
        *out = (struct caller){.kind = CALLER_DEVICE, .device_id = 7};
    else
        *out = (struct caller){.kind = CALLER_USER,
                               .user_id = 1,
                               .role = strcmp(tok, "admin") ? ROLE_CLIENT : ROLE_ADMIN};
    return AUTHN_OK;
}

static enum status fake_full(void *ctx, enum route_access access, const char *tok,
                             struct caller *out)
{
    check(current_thread == THREAD_QUERY, "a full credential check off a query worker");
    check(!strncmp(tok, "miss-", 5), "a cached credential looked up");
    return fake_cached(ctx, access, tok + 5, out) == AUTHN_OK ? STATUS_OK : STATUS_UNAUTHORIZED;
}

static bool fake_submit(void *ctx, enum route_thread thread, void (*fn)(void *arg), void *arg)
{
    (void)ctx;
    check(thread == THREAD_QUERY || thread == THREAD_HASHING, "submitted to no worker");
    enum route_thread was = current_thread;
    current_thread = thread;
    fn(arg);
    current_thread = was;
    return true;
}

static void count_resume(void *ctx)
{
    (void)ctx;
    resumes++;
}

static const char *header(void *ctx, const char *name)
{
    (void)ctx;
    if (!strcasecmp(name, "Authorization") && token) {
        static char bearer[64];
        snprintf(bearer, sizeof bearer, "Bearer %s", token);
        return bearer;
    }
    /* What each route reads: the fixed body "{}" is a form of one field for
     * the broker auth routes, JSON for the rest. */
    if (!strcasecmp(name, "Content-Type"))
        return probe_route && probe_route->body == BODY_FORM ? "application/x-www-form-urlencoded"
                                                             : "application/json";
    return NULL;
}

static int query(void *ctx, struct query_arg *out, int max)
{
    (void)ctx;
    int n = nargs < max ? nargs : max;
    memcpy(out, args, (size_t)n * sizeof *out);
    return n;
}

/* ---- libmicrohttpd's split of a query string ----------------------------------- */

static void plus_to_space(char *s)
{
    for (; *s; s++)
        if (*s == '+')
            *s = ' ';
}

/* Splits q in place into args (keys without '=' get ""). */
static void split_query(char *q)
{
    nargs = 0;
    for (char *p = q; p && *p && nargs < MAX_ARGS;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        plus_to_space(p);
        MHD_http_unescape(p);
        const char *v = "";
        if (eq) {
            plus_to_space(eq + 1);
            MHD_http_unescape(eq + 1);
            v = eq + 1;
        }
        args[nargs++] = (struct query_arg){p, v};
        p = amp ? amp + 1 : NULL;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check(ROUTES_COUNT <= MAX_ROUTES, "more routes than the probe table holds");
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        routes[i] = ROUTES[i];
        routes[i].handler = probe;
    }
    nroutes = ROUTES_COUNT;
    /* A route's admission check (the login's per-address throttle) is real. */
    app.login_throttle = throttle_table_create(&THROTTLE_ADDRESS, 64);
    check(app.login_throttle != NULL, "no throttle table");
    /* So is the broker auth routes': AMQP_URL set, the client (127.0.0.1)
     * inside BROKER_AUTH_ALLOW, so that they are allowed as ACCESS_ANYONE says. */
    static char amqp_url[] = "amqp://u:p@127.0.0.1:5672/%2f";
    config.amqp_url = amqp_url;
    char why[128];
    check(netaddr_set_parse("127.0.0.0/8", &config.broker_auth_allow_set, why, sizeof why),
          "BROKER_AUTH_ALLOW does not parse");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    const char *method = METHODS[(data[0] & 7) % (sizeof METHODS / sizeof *METHODS)];
    token = TOKENS[(data[0] >> 3) & 3];
    char *target = malloc(size);
    if (!target)
        abort();
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0';
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    MHD_http_unescape(target);
    split_query(q);

    struct route_match m;
    enum route_result found = router_match(routes, nroutes, method, target, &m);
    probe_route = found == ROUTE_FOUND ? m.route : NULL;
    probe_calls = resumes = 0;
    current_thread = THREAD_HTTP;

    struct dispatcher d = {.routes = routes,
                           .nroutes = nroutes,
                           .app = &app,
                           .authn = {fake_cached, fake_full, NULL},
                           .submit = fake_submit};
    static const char body[] = "{}";
    struct dispatch_request r = {.method = method,
                                 .url = target,
                                 .source = {header, query, NULL},
                                 .body = body,
                                 .body_len = sizeof body - 1,
                                 .request_id = "fuzz",
                                 .client_ip = "127.0.0.1",
                                 .started = 1795255800.0};
    dispatch_request_init(&r);
    struct response res = {0};
    /* As the transport does: the headers first (a look-up runs on a worker at
     * once and either answers or lets the body in), then the body. */
    enum dispatch_step step = dispatch_headers(&d, &r, &res);
    if (step == DISPATCH_LOOKUP) {
        struct response_deferral held = res.deferral;
        memset(&res.deferral, 0, sizeof res.deferral);
        response_clear(&res);
        struct deferred suspended = {count_resume, NULL};
        held.start(held.ctx, &suspended);
        check(resumes == 1, "a look-up not resumed exactly once");
        held.finish(held.ctx, &res);
        held.free(held.ctx);
        resumes = 0;
        step = res.status == 0 ? DISPATCH_BODY : DISPATCH_ANSWER;
    }
    if (step == DISPATCH_BODY)
        dispatch_request(&d, &r, &res);
    if (res.deferral.start) {
        /* The transport: suspend, start (the worker runs at once), finish. */
        struct response_deferral held = res.deferral;
        memset(&res.deferral, 0, sizeof res.deferral);
        response_clear(&res);
        struct deferred suspended = {count_resume, NULL};
        held.start(held.ctx, &suspended);
        check(resumes == 1, "a deferred request not resumed exactly once");
        held.finish(held.ctx, &res);
        held.free(held.ctx);
    }

    bool allowed = found == ROUTE_FOUND &&
                   (probe_route->access == ACCESS_ANYONE ||
                    (token && (probe_route->access != ACCESS_ADMIN || strstr(token, "admin"))));
    check(probe_calls == (allowed ? 1 : 0), "the handler ran for a refused request, or not once");
    if (allowed) {
        check(res.status == 200, "an allowed request not answered by its handler");
        check(probe_thread == probe_route->thread, "the handler ran on another thread");
    } else if (found != ROUTE_NOT_FOUND || !strncmp(target, "/api/", 5)) {
        check(res.status == 401 || res.status == 403 || res.status == 404 || res.status == 405,
              "a refusal that is not 401, 403, 404 or 405");
        check(res.problem && json_is_string(json_object_get(res.json, "code")),
              "a refusal without its problem document");
    }
    response_clear(&res);
    dispatch_request_clear(&r);
    free(target);
    return 0;
}
