/* dispatch: every decision the server takes about a request before and
 * around its handler, once for all routes, with no socket in sight (the
 * transport, http.c, hands it a header look-up; tests hand it a table).
 *
 * In two steps, so that nothing is buffered for a caller who may not send it.
 * Headers complete (dispatch_headers()): the route (404; 405 with Allow;
 * paths outside /api/ are the static files'); the route's admission check,
 * if any (the login's per-address throttle); the route's body cap (413 when
 * Content-Length announces more); credentials (401, 403). Only then is the
 * body read, under that cap (counted, for a chunked body). Body complete
 * (dispatch_request()): Content-Type (415) and JSON within a nesting and size
 * budget, or a form body (400); then the handler, on the thread its route
 * names.
 *
 * Threads. An HTTP thread does everything above that needs no database,
 * including the cached credential check that the hot path (a device posting
 * readings) passes. A credential the caches cannot answer is looked up on a
 * query worker while the request is suspended, before any of its body is
 * read. THREAD_QUERY and THREAD_HASHING routes go to their worker. Either way
 * the dispatcher answers with a deferral the transport starts once the
 * request is suspended; a handler's own deferral, when it runs on a worker,
 * is started from there and finished through it.
 */
#ifndef WATTLINE_DISPATCH_H
#define WATTLINE_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "../api/handler.h"
#include "../base/json_shape.h"
#include "../auth/authn.h"
#include "router.h"

#define DISPATCH_MAX_QUERY_ARGS 32
#define DISPATCH_MAX_JSON_DEPTH JSON_SHAPE_MAX_DEPTH
/* The body cap of every route but BODY_JSON_BULK ones (MAX_BODY_BYTES). */
#define DISPATCH_MAX_BODY (64 * 1024)

/* Who checks credentials. cached() must never wait (it runs on an HTTP
 * thread); full() may wait on the database and runs on a query worker only.
 * dispatch_authn_for() makes the real one from the authn caches. */
struct dispatch_authn {
    enum authn_verdict (*cached)(void *ctx, enum route_access access, const char *token,
                                 struct caller *out);
    enum status (*full)(void *ctx, enum route_access access, const char *token, struct caller *out);
    void *ctx;
};

struct dispatch_authn dispatch_authn_for(struct authn *authn);

/* Runs fn(arg) on a worker of that kind (THREAD_QUERY or THREAD_HASHING);
 * false when the worker refuses it (queue full, shutting down). */
typedef bool (*dispatch_submit_fn)(void *ctx, enum route_thread thread, void (*fn)(void *arg),
                                   void *arg);

/* Made once by the transport; everything borrowed, outliving the requests. */
struct dispatcher {
    const struct route *routes;
    size_t nroutes;
    struct app *app; /* for handlers; its config gives max_body_bytes */
    struct dispatch_authn authn;
    dispatch_submit_fn submit;
    void *submit_ctx;
};

/* The transport's view of a request: headers by name (NULL when absent) and
 * the query string's arguments (up to max into out; returns the count). The
 * strings must stay valid until the request completes: workers read them. */
struct dispatch_source {
    const char *(*header)(void *ctx, const char *name);
    int (*query)(void *ctx, struct query_arg *out, int max);
    void *ctx;
};

/* One request's state, owned by the transport from its first call to its
 * completion (a worker may still read it until the request is resumed).
 * Fields above the line are the transport's to set before dispatching. */
struct dispatch_request {
    const char *method;
    const char *url;
    struct dispatch_source source;
    const char *body; /* the bytes read, not terminated (NULL when none) */
    size_t body_len;
    bool body_too_large; /* more than body_max came (a chunked body) */
    const char *request_id;
    const char *client_ip;
    double started;
    int route_index;         /* METRICS_UNMATCHED until the route is known */
    const char *route_label; /* "unmatched" until then */
    /* ---- dispatch's own ---- */
    size_t body_max;     /* the route's cap, known once the headers are in */
    bool body_announced; /* Content-Length > 0 or Transfer-Encoding: a body follows */
    bool body_kept;      /* the route reads its body; other bodies are counted, not kept */
    const struct route *route;
    const char *token;        /* the Bearer token, when the route asks for one */
    const char *content_type; /* read on the HTTP thread for a worker */
    struct query_arg query[DISPATCH_MAX_QUERY_ARGS];
    struct route_match match; /* the request's params point into it */
    struct request req;
};

/* Fills in what every request starts with (route "unmatched"). */
void dispatch_request_init(struct dispatch_request *r);
/* Frees what dispatching left in r (a body a refused worker never parsed). */
void dispatch_request_clear(struct dispatch_request *r);

/* What the transport does after dispatch_headers(). */
enum dispatch_step {
    DISPATCH_ANSWER, /* res holds the answer; none of the body is to be read */
    DISPATCH_LOOKUP, /* res->deferral looks the credentials up on a query worker;
                        its finish() gives the 401/403/503, or status 0: go on */
    DISPATCH_BODY,   /* read the body (up to r->body_max), then dispatch_request() */
};

/* Headers complete, before any body byte is read: the route, its body cap
 * (r->body_max; 413 when Content-Length is over it) and the credentials. */
enum dispatch_step dispatch_headers(const struct dispatcher *d, struct dispatch_request *r,
                                    struct response *res);

/* The answer to a body that grew over r->body_max while being read. */
void dispatch_body_too_large(const struct dispatch_request *r, struct response *res);

/* The whole request is in (after DISPATCH_BODY, and the look-up if there was
 * one): fills res with the answer, or gives it a deferral (res->deferral)
 * the transport starts once it has suspended the request and finishes once
 * it is resumed; the deferral's free() runs at completion. */
void dispatch_request(const struct dispatcher *d, struct dispatch_request *r, struct response *res);

#endif
