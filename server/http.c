#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../api/app.h"
#include "../auth/authn.h"
#include "../base/crypto.h"
#include "../auth/jwt.h"
#include "../base/metrics.h"
#include "../base/log.h"
#include "routes.h"
#include "static_files.h"
#include "workers.h"
#include "../base/clock.h"

#define MAX_QUERY_ARGS 32
#define MAX_JSON_DEPTH 32

struct http_server {
    struct MHD_Daemon *daemon;
    struct app *app;
    struct workers *queries; /* for THREAD_QUERY routes */
    struct workers *hashing; /* for THREAD_HASHING routes */
    atomic_int in_flight;
    char *tls_cert_pem;
    char *tls_key_pem;
};

/* A request suspended until its deferred work is done. */
struct deferred {
    struct MHD_Connection *conn;
};

void deferred_resume(struct deferred *d)
{
    MHD_resume_connection(d->conn); /* thread-safe by libmicrohttpd's contract */
}

/* Per-request state: made on the first call of the access handler, freed in
 * exactly one place, request_completed(). */
struct http_ctx {
    double started;
    char request_id[65];
    char method[16];
    char client_ip[INET6_ADDRSTRLEN];
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool answered;
    int route_index; /* or METRICS_STATIC / METRICS_UNMATCHED */
    const char *route_label;
    int status;
    struct query_arg query[MAX_QUERY_ARGS];
    int nquery;
    struct response_deferral deferral; /* owned while the request is deferred */
    struct deferred deferred;
    struct route_match match; /* outlives dispatch(): a worker may still read it */
    struct request req;
    struct http_server *srv;
};

/* A THREAD_QUERY or THREAD_HASHING route's handler call, run off the HTTP
 * thread. */
struct worker_call {
    struct http_ctx *ctx; /* lives until the request completes, after the call */
    handler_fn handler;
    enum route_thread thread;
    struct response res;
    struct deferred *resume;
};

static void worker_call_run(void *arg)
{
    struct worker_call *call = arg;
    struct http_ctx *ctx = call->ctx;
    call->handler(&ctx->req, &call->res, ctx->srv->app);
    json_decref(ctx->req.body);
    ctx->req.body = NULL;
    deferred_resume(call->resume);
}

static void worker_call_start(void *arg, struct deferred *d)
{
    struct worker_call *call = arg;
    call->resume = d;
    struct http_server *srv = call->ctx->srv;
    bool hashing = call->thread == THREAD_HASHING;
    if (!workers_submit(hashing ? srv->hashing : srv->queries, worker_call_run, call)) {
        /* The hashing queue is short on purpose; the query queue holds a
         * request per connection and refuses only while shutting down. */
        if (hashing)
            response_problem(&call->res, 503, "busy", NULL, "the server is busy; retry shortly");
        else
            response_status(&call->res, STATUS_UNAVAILABLE);
        deferred_resume(d);
    }
}

static void worker_call_finish(void *arg, struct response *res)
{
    struct worker_call *call = arg;
    *res = call->res;
    memset(&call->res, 0, sizeof call->res);
}

static void worker_call_free(void *arg)
{
    struct worker_call *call = arg;
    response_clear(&call->res);
    free(call);
}

/* ---- request ids ---------------------------------------------------------- */

static bool request_id_acceptable(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= 64 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == n;
}

static void request_id_init(struct http_ctx *ctx, struct MHD_Connection *conn)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && request_id_acceptable(given)) {
        snprintf(ctx->request_id, sizeof ctx->request_id, "%s", given);
        return;
    }
    unsigned char raw[8] = {0};
    crypto_random(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(ctx->request_id + 2 * i, 3, "%02x", raw[i]);
}

static void client_ip_init(struct http_ctx *ctx, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(ctx->client_ip, sizeof ctx->client_ip, "-");
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  ctx->client_ip, sizeof ctx->client_ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  ctx->client_ip, sizeof ctx->client_ip);
}

/* ---- turning a struct response into an MHD response ------------------------ */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct response_stream *s = cls;
    ssize_t n = s->read(s->ctx, buf, max);
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    struct response_stream *s = cls;
    if (s->free)
        s->free(s->ctx);
    free(s);
}

static struct MHD_Response *build_body(struct response *res, const char **content_type)
{
    if (res->stream.read) {
        struct response_stream *s = malloc(sizeof *s);
        if (!s)
            return NULL;
        *s = res->stream;
        memset(&res->stream, 0, sizeof res->stream); /* ownership moves to MHD */
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                   stream_reader, s, stream_free);
        if (!r)
            stream_free(s);
        *content_type = res->content_type;
        return r;
    }
    if (res->has_file) {
        struct MHD_Response *r =
            MHD_create_response_from_fd((uint64_t)res->file_size, res->file_fd);
        if (r)
            res->has_file = false; /* MHD closes it */
        *content_type = res->content_type;
        return r;
    }
    if (res->raw) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(res->raw_len, res->raw, MHD_RESPMEM_MUST_FREE);
        if (r)
            res->raw = NULL;
        *content_type = res->content_type;
        return r;
    }
    if (res->json && res->status != 204) {
        char *text = json_dumps(res->json, JSON_DUMP_FLAGS);
        if (!text)
            return NULL;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(text);
        *content_type = res->problem ? "application/problem+json" : "application/json";
        return r;
    }
    *content_type = NULL;
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_ctx *ctx,
                                     struct response *res)
{
    const char *content_type = NULL;
    struct MHD_Response *r = build_body(res, &content_type);
    if (!r) {
        response_clear(res);
        response_problem(res, 500, "internal", NULL, "internal error");
        r = build_body(res, &content_type);
        if (!r)
            return MHD_NO;
    }
    const struct app *app = ctx->srv->app;
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "X-Request-Id", ctx->request_id);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy", app->csp);
    if (app->config->tls_cert)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    ctx->status = res->status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    ctx->answered = true;
    return ret;
}

/* ---- the dispatcher --------------------------------------------------------- */

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct http_ctx *ctx = cls;
    if (ctx->nquery == MAX_QUERY_ARGS)
        return MHD_NO;
    ctx->query[ctx->nquery].name = key;
    ctx->query[ctx->nquery].value = value ? value : "";
    ctx->nquery++;
    return MHD_YES;
}

/* jansson has no depth option; a linear pre-scan keeps hostile nesting out. */
static bool json_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_JSON_DEPTH)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

static bool content_type_is_json(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && !strncasecmp(ct, "application/json", 16));
}

/* Parses the body for a BODY_JSON route. Returns the document, or NULL with
 * the problem already put in res. */
static json_t *parse_body_or_reply(struct MHD_Connection *conn, struct http_ctx *ctx,
                                   struct response *res)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (!content_type_is_json(ct)) {
        response_problem(res, 415, "unsupported_media_type", NULL,
                         "the body must be JSON (Content-Type: application/json)");
        return NULL;
    }
    if (ctx->body_len == 0) {
        response_problem(res, 400, "malformed_json", NULL, "a JSON body is required");
        return NULL;
    }
    if (!json_depth_ok(ctx->body, ctx->body_len)) {
        response_problem(res, 400, "malformed_json", NULL, "JSON nested deeper than %d levels",
                         MAX_JSON_DEPTH);
        return NULL;
    }
    json_error_t error;
    json_t *doc =
        json_loadb(ctx->body, ctx->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
    if (!doc)
        response_problem(res, 400, "malformed_json", NULL,
                         "malformed JSON at line %d column %d: %s", error.line, error.column,
                         error.text);
    return doc;
}

/* Fills req->caller for the route's access rule, or puts 401/403 in res. */
static bool authenticate_or_reply(struct app *app, struct MHD_Connection *conn,
                                  const struct route *route, struct request *req,
                                  struct response *res)
{
    if (route->access == ACCESS_ANYONE)
        return true;
    const char *header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        response_problem(res, 401, "unauthorized", NULL, "a Bearer token is required");
        return false;
    }
    if (strlen(header) > JWT_HEADER_MAX) {
        response_problem(res, 401, "invalid_token", NULL, "the Authorization header is too long");
        return false;
    }
    const char *token = header + 7;
    enum status st = route->access == ACCESS_DEVICE ? authn_device(app->authn, token, &req->caller)
                                                    : authn_user(app->authn, token, &req->caller);
    if (st == STATUS_UNAVAILABLE || st == STATUS_INTERNAL) {
        response_status(res, st);
        return false;
    }
    if (st != STATUS_OK) {
        response_problem(res, 401, "invalid_token", NULL,
                         route->access == ACCESS_DEVICE ? "invalid device token"
                                                        : "invalid or expired access token");
        return false;
    }
    if (route->access == ACCESS_ADMIN && req->caller.role != ROLE_ADMIN) {
        response_problem(res, 403, "forbidden", NULL, "this route is for admins");
        return false;
    }
    return true;
}

static void dispatch(struct http_ctx *ctx, struct MHD_Connection *conn, const char *url,
                     const char *method, struct response *res)
{
    struct app *app = ctx->srv->app;
    if (ctx->body_too_large) {
        response_problem(res, 413, "body_too_large", NULL, "the body is larger than %d bytes",
                         app->config->max_body_bytes);
        return;
    }
    struct route_match *m = &ctx->match;
    enum route_result found = router_match(ROUTES, ROUTES_COUNT, method, url, m);
    if (found == ROUTE_NOT_FOUND && strncmp(url, "/api/", 5) != 0) {
        ctx->route_index = METRICS_STATIC;
        ctx->route_label = "static";
        static_files_serve(app, method, url,
                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match"),
                           res);
        return;
    }
    if (found == ROUTE_NOT_FOUND) {
        response_problem(res, 404, "not_found", NULL, "no such resource");
        return;
    }
    if (found == ROUTE_METHOD_NOT_ALLOWED) {
        response_problem(res, 405, "method_not_allowed", NULL, "allowed: %s", m->allow);
        response_header(res, "Allow", m->allow);
        return;
    }
    const struct route *route = m->route;
    ctx->route_index = m->index;
    ctx->route_label = route->pattern;

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, ctx);
    struct request *req = &ctx->req;
    *req = (struct request){
        .method = method,
        .path = url,
        .route = route->pattern,
        .request_id = ctx->request_id,
        .client_ip = ctx->client_ip,
        .accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept"),
        .nparams = m->nparams,
        .query = ctx->query,
        .nquery = ctx->nquery,
        .now = ctx->started,
    };
    memcpy(req->params, m->params, sizeof req->params);

    if (!authenticate_or_reply(app, conn, route, req, res))
        return;
    if (route->body == BODY_JSON && !(req->body = parse_body_or_reply(conn, ctx, res)))
        return;
    if (route->thread != THREAD_HTTP) {
        struct worker_call *call = calloc(1, sizeof *call);
        if (call) {
            *call = (struct worker_call){
                .ctx = ctx, .handler = route->handler, .thread = route->thread};
            res->deferral = (struct response_deferral){worker_call_start, worker_call_finish,
                                                       worker_call_free, call};
            /* cppcheck-suppress memleak ; res->deferral owns call now */
            return; /* the worker decrefs the body */
        }
    }
    route->handler(req, res, app);
    json_decref(req->body);
    req->body = NULL;
    if (res->status == 0 && !res->deferral.start)
        response_problem(res, 500, "internal", NULL, "internal error");
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_ctx *ctx = *con_cls;

    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        ctx->srv = srv;
        ctx->started = clock_wall_s();
        ctx->route_index = METRICS_UNMATCHED;
        ctx->route_label = "unmatched";
        snprintf(ctx->method, sizeof ctx->method, "%s", method);
        request_id_init(ctx, conn);
        client_ip_init(ctx, conn);
        *con_cls = ctx;
        atomic_fetch_add(&srv->in_flight, 1);

        /* Refuse an announced oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)srv->app->config->max_body_bytes) {
            struct response res = {0};
            response_problem(&res, 413, "body_too_large", NULL, "the body is larger than %d bytes",
                             srv->app->config->max_body_bytes);
            enum MHD_Result ret = send_response(conn, ctx, &res);
            response_clear(&res);
            return ret;
        }
        return MHD_YES;
    }
    if (ctx->answered) {
        *upload_data_size = 0; /* the rest of a refused body is dropped */
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (ctx->body_too_large || ctx->body_len + n > (size_t)srv->app->config->max_body_bytes) {
            ctx->body_too_large = true; /* keep reading to answer on the final call */
            return MHD_YES;
        }
        if (ctx->body_len + n + 1 > ctx->body_cap) {
            size_t cap = ctx->body_cap ? ctx->body_cap : 4096;
            while (cap < ctx->body_len + n + 1)
                cap *= 2;
            char *body = realloc(ctx->body, cap);
            if (!body)
                return MHD_NO;
            ctx->body = body;
            ctx->body_cap = cap;
        }
        memcpy(ctx->body + ctx->body_len, upload_data, n);
        ctx->body_len += n;
        return MHD_YES;
    }

    struct response res = {0};
    if (ctx->deferral.finish) {
        /* Resumed: the deferred work is done. */
        ctx->deferral.finish(ctx->deferral.ctx, &res);
        if (res.status == 0)
            response_problem(&res, 500, "internal", NULL, "internal error");
    } else {
        dispatch(ctx, conn, url, method, &res);
        if (res.deferral.start) {
            /* Suspend first, so that a resume from another thread can never
             * come before the suspension it ends. */
            ctx->deferral = res.deferral;
            memset(&res.deferral, 0, sizeof res.deferral);
            response_clear(&res);
            ctx->deferred.conn = conn;
            MHD_suspend_connection(conn);
            ctx->deferral.start(ctx->deferral.ctx, &ctx->deferred);
            return MHD_YES;
        }
    }
    enum MHD_Result ret = send_response(conn, ctx, &res);
    response_clear(&res);
    return ret;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *srv = cls;
    struct http_ctx *ctx = *con_cls;
    if (!ctx)
        return;
    *con_cls = NULL;
    double elapsed = clock_wall_s() - ctx->started;
    metrics_observe(srv->app->metrics, ctx->route_index, ctx->status, elapsed);
    struct log_request line = {
        .method = ctx->method,
        .route = ctx->route_label,
        .status = ctx->status,
        .duration_ms = elapsed * 1000,
        .request_id = ctx->request_id,
        .client_ip = ctx->client_ip,
    };
    log_request(&line);
    if (ctx->deferral.free)
        ctx->deferral.free(ctx->deferral.ctx);
    json_decref(ctx->req.body);
    free(ctx->body);
    free(ctx);
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* ---- lifecycle ------------------------------------------------------------- */

static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

struct http_server *http_start(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->config;
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->app = app;
    /* As many hashing workers as hashing slots: calls wait in the queue, not
     * for a slot; a bounded queue turns a flood of logins into 503s. A
     * connection has at most one request in flight, so the query queue never
     * turns one away. */
    srv->hashing =
        workers_start(cfg->password_hash_slots, 32 * cfg->password_hash_slots, err, errlen);
    srv->queries = srv->hashing
                       ? workers_start(config_query_workers(cfg), cfg->max_connections, err, errlen)
                       : NULL;
    if (!srv->queries) {
        workers_free(srv->hashing);
        free(srv);
        return NULL;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->http_port)};
    if (inet_pton(AF_INET, cfg->http_addr, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "HTTP_ADDR '%s' is not an IPv4 address", cfg->http_addr);
        http_stop(srv, 0);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->tls_cert) {
        srv->tls_cert_pem = read_pem(cfg->tls_cert);
        srv->tls_key_pem = read_pem(cfg->tls_key);
        if (!srv->tls_cert_pem || !srv->tls_key_pem) {
            snprintf(err, errlen, "cannot read TLS_CERT or TLS_KEY");
            http_stop(srv, 0);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    int threads = config_http_threads(cfg);
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem},
        /* GnuTLS priority string: TLS 1.2 and 1.3 only, AEAD ciphers only
         * (the same policy as the nginx configuration). */
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:"
                 "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:%SERVER_PRECEDENCE"},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->http_port, NULL, NULL, access_handler, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_ARRAY,
        cfg->tls_cert ? tls_opts : &tls_opts[3], MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or TLS files invalid)",
                 cfg->http_addr, cfg->http_port);
        http_stop(srv, 0);
        return NULL;
    }
    return srv;
}

void http_stop(struct http_server *srv, int drain_ms)
{
    if (!srv)
        return;
    if (srv->daemon) {
        MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
        if (listen_fd != MHD_INVALID_SOCKET)
            close(listen_fd);
        for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < drain_ms; waited += 10)
            usleep(10 * 1000);
    }
    /* The workers finish what they hold first, each resuming a connection the
     * daemon still owns; a request that comes after is answered 503. Only
     * once the daemon's threads are gone can nothing submit any more. */
    workers_stop(srv->queries);
    workers_stop(srv->hashing);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    workers_free(srv->queries);
    workers_free(srv->hashing);
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    free(srv);
}
