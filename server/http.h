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

/* Shutdown, in this order. http_drain() stops accepting connections and
 * waits until the requests taken are answered or the deadline (monotonic
 * seconds, clock_mono_s()) passes; true when none is left. */
bool http_drain(struct http_server *srv, double deadline);

/* Resumes every request still suspended on work that did not come back (a
 * database that no longer answers) and closes its connection without an
 * answer: its outcome is unknown, so it is neither acknowledged nor 503.
 * Their memory stays with the threads that hold it. Returns how many. */
int http_abandon(struct http_server *srv);

/* Stops the daemon (after resuming anything still suspended) and, with
 * join_workers, the workers, and frees the server. Without it, workers stuck
 * in the database are not waited for and nothing is freed: for a process
 * about to exit. NULL is a no-op. */
void http_stop(struct http_server *srv, bool join_workers);

#endif
