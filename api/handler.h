/* handler: what the dispatcher hands a handler and what it gets back.
 *
 * Handlers never see libmicrohttpd: they read a struct request (borrowed,
 * valid for the call) and fill a struct response (which owns what it is
 * given). Domain code returns an enum status; status_http() maps it once.
 */
#ifndef WATTLINE_HANDLER_H
#define WATTLINE_HANDLER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../auth/caller.h"
#include "../db/models.h"
#include "../db/status.h"

struct app;

/* The HTTP status for a domain status (OK is 200). */
int status_http(enum status st);

#define REQUEST_MAX_PARAMS 4

struct query_arg {
    const char *name;
    const char *value;
};

struct request {
    const char *method;
    const char *path;  /* decoded path, without the query string */
    const char *route; /* the matched pattern, e.g. "/api/v1/devices/{id}" */
    const char *request_id;
    const char *client_ip;
    const char *accept;                     /* Accept header or NULL */
    const char *params[REQUEST_MAX_PARAMS]; /* path parameters, in pattern order */
    int nparams;
    const struct query_arg *query;
    int nquery;
    json_t *body; /* parsed JSON body (borrowed) or NULL */
    struct caller caller;
    double now; /* request start, unix seconds */
    /* The route reads from the replica when there is a usable one
     * (api/read_pool.h); pooled_run() and the export honour it. */
    bool read_replica;
};

/* Streaming body. read() runs on an HTTP thread and never waits: it copies up
 * to max bytes of what is ready into buf and returns the count, 0 at the end,
 * -1 on error (the connection is then cut), or RESPONSE_STREAM_WAIT when
 * nothing is ready yet. Then, and only then, the server pauses the response
 * (holding no thread), runs fill(ctx) on a query worker, where it may wait on
 * the database, and calls read() again once fill() has returned; everything
 * fill() wrote is visible to that read(). fill() and read() never run at the
 * same time. free() runs once, when the response is done or abandoned, never
 * while fill() runs. The server drops a client that takes no bytes for
 * SEND_TIMEOUT_S. */
#define RESPONSE_STREAM_WAIT (-2)

struct response_stream {
    ssize_t (*read)(void *ctx, char *buf, size_t max);
    void (*fill)(void *ctx); /* needed only by a read() that can answer RESPONSE_STREAM_WAIT */
    void (*free)(void *ctx);
    void *ctx;
};

/* A suspended request, as the server hands it to deferred work: resume(ctx)
 * wakes it and is safe from any thread. The server fills it in, so that
 * handlers (and this layer) never link against the transport. */
struct deferred {
    void (*resume)(void *ctx);
    void *ctx;
};

/* Deferred answer, for work that waits on another thread (a group commit):
 * the server suspends the request without holding its thread, calls start()
 * (which must see that deferred_resume() is called once, from any thread,
 * when the work is done), then finish() on an HTTP thread to fill the
 * response. free() runs once at the end, whatever happened. start() may run
 * on an HTTP thread or on a worker. */
struct response;
struct response_deferral {
    void (*start)(void *ctx, struct deferred *d);
    void (*finish)(void *ctx, struct response *res);
    void (*free)(void *ctx);
    void *ctx;
};

/* Thread-safe: wakes the suspended request (d->resume, set by the server). */
void deferred_resume(struct deferred *d);

#define RESPONSE_MAX_HEADERS 6

struct response_header {
    char *name;
    char *value;
};

struct response {
    int status;
    json_t *json; /* owned; rendered as application/json */
    bool problem; /* json is a problem document */
    char *raw;    /* owned raw body (with content_type) */
    size_t raw_len;
    const char *content_type; /* static string */
    struct response_stream stream;
    struct response_deferral deferral; /* set by a handler that answers later */
    bool has_file;                     /* file_fd is an open file to send (closed by the sender) */
    int file_fd;
    size_t file_size;
    struct response_header headers[RESPONSE_MAX_HEADERS];
    int nheaders;
};

typedef int (*handler_fn)(const struct request *req, struct response *res, struct app *app);

/* ---- building responses (all return the HTTP status they set) ---- */

/* Takes ownership of body (may be NULL for 204). */
int response_json(struct response *res, int status, json_t *body);
/* Takes ownership of body (len bytes, malloc'd; NULL answers 500), sent as
 * content_type (a static string). */
int response_body(struct response *res, int status, const char *content_type, char *body,
                  size_t len);
/* Copies the value. */
void response_header(struct response *res, const char *name, const char *value);
/* A problem document (RFC 9457): code is the stable machine string, field is
 * the input member at fault or NULL, detail is printf-formatted. */
int response_problem(struct response *res, int status, const char *code, const char *field,
                     const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));
/* The problem for a domain status that carries no more specific detail. */
int response_status(struct response *res, enum status st);
void response_clear(struct response *res);

/* How every JSON document leaves the server: compact, reals with jansson's
 * 17 significant digits, so that every double reads back exactly (0.1 may
 * print as 0.10000000000000001: the same double to any JSON parser). */
#define JSON_DUMP_FLAGS JSON_COMPACT

/* The shortest decimal that reads back as exactly v (at most 17 digits), for
 * raw values such as a CSV export of readings. */
void format_double_exact(double v, char *out, size_t size);

/* ---- reading requests ---- */

const char *request_query(const struct request *req, const char *name);
/* Parses path parameter i as a positive id; false when it is not one. */
bool request_param_id(const struct request *req, int i, long long *id);

#endif
