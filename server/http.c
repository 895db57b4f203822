#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../api/app.h"
#include "../base/crypto.h"
#include "../base/metrics.h"
#include "../base/netaddr.h"
#include "../base/log.h"
#include "dispatch.h"
#include "routes.h"
#include "workers.h"
#include "../base/clock.h"

/* Once a chunked body is over its cap, this much more is read and dropped
 * (libmicrohttpd 0.9 takes an answer only on the headers or once the body
 * has ended), so that a client that stops soon gets its 413; past it the
 * connection is closed: an endless body is not read forever. */
#define HTTP_DRAIN_MAX (8u << 20)

/* libmicrohttpd's per-connection memory: the request line, headers and the
 * read buffer (a body reaches the handler in chunks of at most this). It
 * zeroes the whole pool between two requests of a keep-alive connection, so
 * a larger one costs every request: 64 KiB was 8% of the server's CPU in
 * single-reading ingestion (PERF-NOTES). 16 KiB still takes headers twice
 * nginx's default limit. */
#define HTTP_CONNECTION_POOL_BYTES (16 * 1024)

struct http_server {
    struct MHD_Daemon *daemon;
    struct app *app;
    struct dispatcher dispatcher;
    struct workers *queries; /* credential look-ups and THREAD_QUERY routes */
    struct workers *hashing; /* THREAD_HASHING routes */
    atomic_int in_flight;
    /* Request ids: a random key fixed at start, mixed with a counter, so that
     * ids are unique across instances without a call to the kernel's
     * randomness per request. */
    uint64_t request_id_key;
    atomic_uint_fast64_t request_count;
    /* Every suspended request, so that a shutdown can resume them all before
     * the daemon stops (libmicrohttpd aborts otherwise). */
    pthread_mutex_t suspended_mutex;
    struct http_ctx *suspended;
    char *tls_cert_pem;
    char *tls_key_pem;
};

/* Where a request is. The access handler is called on the headers, on each
 * chunk of the body and once more at its end; a suspension comes back as
 * another call (with no data when the body has not started). */
enum http_phase {
    PHASE_BODY = 0, /* reading the body (or waiting for the final call) */
    PHASE_LOOKUP,   /* suspended before the body: a query worker checks the credentials */
    PHASE_HANDLER,  /* suspended after it: a worker or the handler's deferral has it */
    PHASE_ANSWERED,
};

/* Per-request state: made on the first call of the access handler, freed in
 * exactly one place, request_completed(). */
struct http_ctx {
    char request_id[65];
    char method[16];
    char client_ip[NETADDR_TEXT_MAX]; /* or NETADDR_UNKNOWN */
    char *body;
    size_t body_len, body_cap;
    size_t body_seen; /* bytes received, kept or not */
    enum http_phase phase;
    struct response early; /* decided on the headers, sent on the next call */
    int status;
    struct MHD_Connection *conn;
    struct http_ctx *prev, *next;      /* in srv->suspended while suspended */
    bool is_suspended;                 /* under srv->suspended_mutex */
    atomic_bool abandoned;             /* resumed by the shutdown, its work still out */
    struct response_deferral deferral; /* owned while the request is deferred */
    struct deferred deferred;
    struct dispatch_request dr; /* outlives the dispatch: a worker may still read it */
    struct http_server *srv;
};

/* The dispatcher's hand-off to the workers (a request is suspended by then). */
static bool http_submit(void *cls, enum route_thread thread, void (*fn)(void *arg), void *arg)
{
    struct http_server *srv = cls;
    return workers_submit(thread == THREAD_HASHING ? srv->hashing : srv->queries, fn, arg);
}

static void suspended_unlink(struct http_server *srv, struct http_ctx *ctx)
{
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        srv->suspended = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    ctx->is_suspended = false;
}

/* deferred.resume: from any thread, once per suspension. A request the
 * shutdown already resumed (abandoned) is left alone. */
static void http_resume(void *arg)
{
    struct http_ctx *ctx = arg;
    struct http_server *srv = ctx->srv;
    pthread_mutex_lock(&srv->suspended_mutex);
    bool mine = ctx->is_suspended;
    if (mine)
        suspended_unlink(srv, ctx);
    pthread_mutex_unlock(&srv->suspended_mutex);
    if (mine)
        MHD_resume_connection(ctx->conn); /* thread-safe by libmicrohttpd's contract */
}

/* ---- what the dispatcher reads of a request ------------------------------------ */

static const char *http_header(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

struct query_collector {
    struct query_arg *out;
    int n, max;
};

static enum MHD_Result query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct query_collector *c = cls;
    if (c->n == c->max)
        return MHD_NO;
    c->out[c->n++] = (struct query_arg){key, value ? value : ""};
    return MHD_YES;
}

static int http_query(void *conn, struct query_arg *out, int max)
{
    struct query_collector c = {out, 0, max};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_collect, &c);
    return c.n;
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
    /* splitmix64's finaliser: a bijection, so distinct counts give distinct
     * ids, and they do not read as a sequence. */
    uint64_t x = ctx->srv->request_id_key +
                 atomic_fetch_add(&ctx->srv->request_count, 1) * 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, x >>= 4)
        ctx->request_id[i] = hex[x & 0xf];
    ctx->request_id[16] = '\0';
}

/* Every X-Forwarded-For header, in the order they came: a proxy may add its
 * own header rather than extend the client's. More than this many is not
 * an honest request, and makes the client unknown. */
#define XFF_HEADERS_MAX 8

struct xff_collector {
    const char *values[XFF_HEADERS_MAX];
    size_t n;
    bool overflow;
};

static enum MHD_Result xff_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct xff_collector *c = cls;
    if (strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    if (c->n == XFF_HEADERS_MAX) {
        c->overflow = true;
        return MHD_NO;
    }
    c->values[c->n++] = value ? value : "";
    return MHD_YES;
}

/* The client's address: the peer, or what a trusted proxy says it is
 * (base/netaddr.h); "unknown" when that cannot be told. */
static void client_ip_init(struct http_ctx *ctx, struct MHD_Connection *conn)
{
    const struct netaddr_set *trusted = &ctx->srv->app->config->trusted_proxy_set;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct netaddr peer;
    bool known = info && netaddr_from_sockaddr(info->client_addr, &peer);
    struct xff_collector xff = {.n = 0};
    if (known && netaddr_set_contains(trusted, &peer))
        MHD_get_connection_values(conn, MHD_HEADER_KIND, xff_collect, &xff);
    if (xff.overflow)
        known = false;
    netaddr_client_text(trusted, known ? &peer : NULL, xff.values, xff.n, ctx->client_ip);
}

/* ---- turning a struct response into an MHD response ------------------------ */

/* A handler's stream as libmicrohttpd holds it, with what it takes to pause
 * the response while a query worker fills the stream (struct response_stream
 * in api/handler.h). */
struct http_stream {
    struct response_stream s;
    struct MHD_Connection *conn;
    struct http_server *srv;
    bool failed; /* no worker would fill it (shutting down): end with an error */
};

/* On a query worker. MHD_resume_connection() passes through the daemon's
 * mutex, which the HTTP thread takes before it calls the reader again: the
 * fill's writes are visible there. hs may be freed as soon as it returns. */
static void stream_fill(void *arg)
{
    struct http_stream *hs = arg;
    hs->s.fill(hs->s.ctx);
    MHD_resume_connection(hs->conn);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_stream *hs = cls;
    ssize_t n = hs->failed ? -1 : hs->s.read(hs->s.ctx, buf, max);
    if (n == RESPONSE_STREAM_WAIT && !hs->s.fill)
        n = -1; /* nothing would ever fill it */
    if (n == RESPONSE_STREAM_WAIT) {
        /* Nothing ready. Returning 0 alone would make this thread spin;
         * suspended from its content reader, the connection waits off the
         * event loop until the worker resumes it, and the reader is called
         * again. Suspend first, so that the resume cannot come before it. */
        MHD_suspend_connection(hs->conn);
        if (!workers_submit(hs->srv->queries, stream_fill, hs)) {
            hs->failed = true;
            MHD_resume_connection(hs->conn);
        }
        return 0;
    }
    if (n == 0) {
        /* Sent: the connection's idle timeout is CONNECTION_TIMEOUT again. */
        MHD_set_connection_option(hs->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)hs->srv->app->config->connection_timeout);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    struct http_stream *hs = cls;
    if (hs->s.free)
        hs->s.free(hs->s.ctx);
    free(hs);
}

static struct MHD_Response *build_body(struct http_server *srv, struct MHD_Connection *conn,
                                       struct response *res, const char **content_type)
{
    if (res->stream.read) {
        struct http_stream *hs = malloc(sizeof *hs);
        if (!hs)
            return NULL;
        *hs = (struct http_stream){.s = res->stream, .conn = conn, .srv = srv};
        memset(&res->stream, 0, sizeof res->stream); /* ownership moves to MHD */
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                   stream_reader, hs, stream_free);
        if (!r) {
            stream_free(hs);
            return NULL;
        }
        /* A client that takes nothing for SEND_TIMEOUT_S is dropped, whatever
         * CONNECTION_TIMEOUT allows an idle connection between requests. */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)srv->app->config->send_timeout_s);
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
    struct MHD_Response *r = build_body(ctx->srv, conn, res, &content_type);
    if (!r) {
        response_clear(res);
        response_problem(res, 500, "internal", NULL, "internal error");
        r = build_body(ctx->srv, conn, res, &content_type);
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
    ctx->phase = PHASE_ANSWERED;
    return ret;
}

/* First call: the request's state. */
static struct http_ctx *request_begin(struct http_server *srv, struct MHD_Connection *conn,
                                      const char *url, const char *method)
{
    struct http_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->srv = srv;
    ctx->conn = conn;
    snprintf(ctx->method, sizeof ctx->method, "%s", method);
    request_id_init(ctx, conn);
    client_ip_init(ctx, conn);
    struct dispatch_request *r = &ctx->dr;
    dispatch_request_init(r);
    r->method = method;
    r->url = url;
    r->source = (struct dispatch_source){http_header, http_query, conn};
    r->request_id = ctx->request_id;
    r->client_ip = ctx->client_ip;
    r->started = clock_wall_s();
    atomic_fetch_add(&srv->in_flight, 1);
    return ctx;
}

/* Sends res (and clears it) from the access handler. */
static enum MHD_Result answer(struct MHD_Connection *conn, struct http_ctx *ctx,
                              struct response *res)
{
    enum MHD_Result ret = send_response(conn, ctx, res);
    response_clear(res);
    return ret;
}

/* Suspends the request and starts its deferral. Suspended first, so that a
 * resume from another thread can never come before the suspension it ends. */
static enum MHD_Result suspend(struct MHD_Connection *conn, struct http_ctx *ctx,
                               struct response *res, enum http_phase phase)
{
    ctx->deferral = res->deferral;
    memset(&res->deferral, 0, sizeof res->deferral);
    response_clear(res);
    ctx->phase = phase;
    ctx->deferred = (struct deferred){http_resume, ctx};
    struct http_server *srv = ctx->srv;
    pthread_mutex_lock(&srv->suspended_mutex);
    ctx->next = srv->suspended;
    if (srv->suspended)
        srv->suspended->prev = ctx;
    srv->suspended = ctx;
    ctx->is_suspended = true;
    MHD_suspend_connection(conn);
    pthread_mutex_unlock(&srv->suspended_mutex);
    ctx->deferral.start(ctx->deferral.ctx, &ctx->deferred);
    return MHD_YES;
}

static void deferral_done(struct http_ctx *ctx, struct response *res)
{
    ctx->deferral.finish(ctx->deferral.ctx, res);
    if (ctx->deferral.free)
        ctx->deferral.free(ctx->deferral.ctx);
    memset(&ctx->deferral, 0, sizeof ctx->deferral);
}

/* Headers complete, nothing of the body read: route, cap, credentials. An
 * answer to a request with a body goes at once (libmicrohttpd then reads none
 * of it and closes); one without waits for the next call, which keeps the
 * connection alive. */
static enum MHD_Result request_headers(struct MHD_Connection *conn, struct http_ctx *ctx)
{
    struct response res = {0};
    switch (dispatch_headers(&ctx->srv->dispatcher, &ctx->dr, &res)) {
    case DISPATCH_LOOKUP:
        return suspend(conn, ctx, &res, PHASE_LOOKUP);
    case DISPATCH_BODY:
        return MHD_YES;
    case DISPATCH_ANSWER:
        break;
    }
    if (ctx->dr.body_announced)
        return answer(conn, ctx, &res);
    ctx->early = res;
    return MHD_YES;
}

/* A chunk of the body, kept (when the route reads it) under the route's cap.
 * Past the cap nothing more is kept, the 413 waits for the final call, and
 * a body that goes on past HTTP_DRAIN_MAX closes the connection. */
static enum MHD_Result body_chunk(struct http_ctx *ctx, const char *data, size_t n)
{
    struct dispatch_request *r = &ctx->dr;
    ctx->body_seen += n;
    if (ctx->body_seen > r->body_max) {
        r->body_too_large = true;
        return ctx->body_seen - r->body_max > HTTP_DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (!r->body_kept || ctx->early.status)
        return MHD_YES;
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
    memcpy(ctx->body + ctx->body_len, data, n);
    ctx->body_len += n;
    return MHD_YES;
}

/* The whole body is in: the answer decided on the headers, or the handler. */
static enum MHD_Result request_complete(struct MHD_Connection *conn, struct http_ctx *ctx)
{
    if (ctx->early.status)
        return answer(conn, ctx, &ctx->early);
    struct response res = {0};
    ctx->dr.body = ctx->body;
    ctx->dr.body_len = ctx->body_len;
    dispatch_request(&ctx->srv->dispatcher, &ctx->dr, &res);
    if (res.deferral.start)
        return suspend(conn, ctx, &res, PHASE_HANDLER);
    return answer(conn, ctx, &res);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_ctx *ctx = *con_cls;
    size_t n = *upload_data_size;
    *upload_data_size = 0; /* every byte offered is taken: kept, counted or dropped */

    if (!ctx) {
        ctx = request_begin(srv, conn, url, method);
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
        return request_headers(conn, ctx);
    }
    if (atomic_load(&ctx->abandoned))
        return MHD_NO; /* its outcome is unknown: closed without an answer */
    struct response res = {0};
    switch (ctx->phase) {
    case PHASE_ANSWERED:
        return n ? MHD_NO : MHD_YES; /* no body is read after an answer on the headers */
    case PHASE_HANDLER:
        /* Resumed: the deferred work is done. */
        deferral_done(ctx, &res);
        if (res.status == 0)
            response_problem(&res, 500, "internal", NULL, "internal error");
        return answer(conn, ctx, &res);
    case PHASE_LOOKUP:
        /* Resumed from the credential look-up, the body still unread. */
        deferral_done(ctx, &res);
        if (res.status != 0)
            return answer(conn, ctx, &res);
        ctx->phase = PHASE_BODY;
        if (!n)
            return MHD_YES; /* the body (if any) and the final call come next */
        break;
    case PHASE_BODY:
        break;
    }
    return n ? body_chunk(ctx, upload_data, n) : request_complete(conn, ctx);
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
    double elapsed = clock_wall_s() - ctx->dr.started;
    metrics_observe(srv->app->metrics, ctx->dr.route_index, ctx->status, elapsed);
    struct log_request line = {
        .method = ctx->method,
        .route = ctx->dr.route_label,
        .status = ctx->status,
        .duration_ms = elapsed * 1000,
        .request_id = ctx->request_id,
        .client_ip = ctx->client_ip,
    };
    log_request(&line);
    if (atomic_load(&ctx->abandoned)) {
        /* A worker or committer still holds its deferral and may yet write
         * to it: left as it is, the process exits without waiting for them. */
        atomic_fetch_sub(&srv->in_flight, 1);
        return;
    }
    if (ctx->deferral.free)
        ctx->deferral.free(ctx->deferral.ctx);
    response_clear(&ctx->early);
    dispatch_request_clear(&ctx->dr);
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
    if (!crypto_random((unsigned char *)&srv->request_id_key, sizeof srv->request_id_key)) {
        snprintf(err, errlen, "no randomness for request ids");
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->suspended_mutex, NULL);
    srv->dispatcher = (struct dispatcher){.routes = ROUTES,
                                          .nroutes = ROUTES_COUNT,
                                          .app = app,
                                          .authn = dispatch_authn_for(app->authn),
                                          .submit = http_submit,
                                          .submit_ctx = srv};
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
        http_stop(srv, true);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->tls_cert) {
        srv->tls_cert_pem = read_pem(cfg->tls_cert);
        srv->tls_key_pem = read_pem(cfg->tls_key);
        if (!srv->tls_cert_pem || !srv->tls_key_pem) {
            snprintf(err, errlen, "cannot read TLS_CERT or TLS_KEY");
            http_stop(srv, true);
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
        (unsigned)cfg->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONNECTION_POOL_BYTES, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
        MHD_OPTION_ARRAY, cfg->tls_cert ? tls_opts : &tls_opts[3], MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or TLS files invalid)",
                 cfg->http_addr, cfg->http_port);
        http_stop(srv, true);
        return NULL;
    }
    return srv;
}

static void wait_in_flight(struct http_server *srv, double deadline)
{
    while (atomic_load(&srv->in_flight) > 0 && clock_mono_s() < deadline)
        usleep(10 * 1000);
}

bool http_drain(struct http_server *srv, double deadline)
{
    if (!srv || !srv->daemon)
        return true;
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    wait_in_flight(srv, deadline);
    return atomic_load(&srv->in_flight) == 0;
}

int http_abandon(struct http_server *srv)
{
    if (!srv)
        return 0;
    int n = 0;
    pthread_mutex_lock(&srv->suspended_mutex);
    while (srv->suspended) {
        struct http_ctx *ctx = srv->suspended;
        suspended_unlink(srv, ctx);
        atomic_store(&ctx->abandoned, true);
        MHD_resume_connection(ctx->conn);
        n++;
    }
    pthread_mutex_unlock(&srv->suspended_mutex);
    /* The daemon's threads close them on their next turn. */
    wait_in_flight(srv, clock_mono_s() + 1.0);
    return n;
}

void http_stop(struct http_server *srv, bool join_workers)
{
    if (!srv)
        return;
    /* The workers finish what they hold first, each resuming a connection the
     * daemon still owns; a request that comes after is answered 503. Only
     * once the daemon's threads are gone can nothing submit any more. */
    if (join_workers) {
        workers_stop(srv->queries);
        workers_stop(srv->hashing);
    }
    if (srv->daemon) {
        http_abandon(srv); /* none is left after a drain; MHD aborts on one */
        MHD_stop_daemon(srv->daemon);
    }
    if (!join_workers)
        return; /* they may still hold requests: the process is exiting */
    workers_free(srv->queries);
    workers_free(srv->hashing);
    pthread_mutex_destroy(&srv->suspended_mutex);
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    free(srv);
}
