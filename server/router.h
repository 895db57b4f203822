/* router: one table of {method, pattern, handler, who may call}.
 *
 * Patterns are literal segments and "{name}" parameters, e.g.
 * "/api/v1/devices/{id}/token". Paths no route knows are the static files'.
 * Matching tells 404 (no pattern fits the path) from 405 (a pattern fits but
 * not with this method) and collects the Allow list for the latter.
 */
#ifndef WATTLINE_ROUTER_H
#define WATTLINE_ROUTER_H

#include <stddef.h>

#include "../api/handler.h"

enum route_access {
    ACCESS_ANYONE = 0,
    ACCESS_USER,   /* any user with a valid access token */
    ACCESS_ADMIN,  /* users whose stored role is admin */
    ACCESS_DEVICE, /* a device token */
};

/* What a route reads, which also sets its body cap (dispatch.h): 64 KiB
 * (DISPATCH_MAX_BODY) for every route but the bulk ones, MAX_BODY_BYTES there. */
enum route_body {
    BODY_NONE = 0,  /* any body is counted and dropped; no Content-Type needed */
    BODY_JSON,      /* a JSON body is required */
    BODY_JSON_BULK, /* the same, up to MAX_BODY_BYTES: ingestion batches */
    BODY_FORM,      /* application/x-www-form-urlencoded (RabbitMQ's HTTP auth backend),
                       handed to the handler as req.body, an object of strings */
};

/* Where a handler runs. The HTTP threads parse and send; a handler that
 * waits runs on a worker, the request suspended meanwhile, so a slow answer
 * never holds up the other connections an HTTP thread serves. */
enum route_thread {
    THREAD_HTTP = 0, /* answers at once, or suspends or streams by itself: the HTTP thread
                        (credentials the caches miss are looked up on a query worker
                        first, before the body is read) */
    THREAD_QUERY,    /* waits on PostgreSQL: a query worker, in arrival order */
    THREAD_HASHING,  /* hashes a password (~0.1 s of CPU): a hashing worker */
};

struct route {
    const char *method;
    const char *pattern;
    handler_fn handler;
    enum route_access access;
    enum route_body body;
    enum route_thread thread;
    /* NULL, or a cheap check on the HTTP thread before the credentials and
     * the body (it sees neither): 0 lets the request on, anything else is the
     * status of the answer it put in res. A refusal thus never waits for the
     * route's worker (login's per-address throttle). */
    handler_fn admit;
    /* The contract's charts, readings, exports and lists: may read from
     * DATABASE_READ_URL (api/read_pool.h). Never set on a route that writes
     * or on a single object's GET. */
    bool read_replica;
};

enum route_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_METHOD_NOT_ALLOWED };

#define ROUTE_PATH_MAX 1024

struct route_match {
    const struct route *route;
    int index; /* position of route in the table */
    const char *params[REQUEST_MAX_PARAMS];
    int nparams;
    char allow[96]; /* "GET, HEAD, POST" for ROUTE_METHOD_NOT_ALLOWED */
    char buf[ROUTE_PATH_MAX];
};

/* Matches method and path (decoded, no query) against table[0..n).
 * HEAD matches GET routes. params point into m->buf. */
enum route_result router_match(const struct route *table, size_t n, const char *method,
                               const char *path, struct route_match *m);

#endif
