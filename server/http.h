/* http: the libmicrohttpd transport.
 *
 * For every request, once: request id, client address, body accumulation
 * under a cap we count ourselves, then the dispatcher (dispatch.h: route,
 * credentials, body, handler, and which thread runs what), suspension while
 * a worker or a deferral has the request, then the response with the
 * headers every answer carries, one log line and metrics.
 */
#ifndef WATTLINE_HTTP_H
#define WATTLINE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct app;
struct http_server;

/* Starts listening; NULL with a one-line reason in err. */
struct http_server *http_start(struct app *app, char *err, size_t errlen);

/* Stops accepting connections, waits up to drain_ms for requests in flight,
 * then stops the threads and frees the server. NULL is a no-op. */
void http_stop(struct http_server *srv, int drain_ms);

#endif
