/* workers: a few threads for handlers that wait (on PostgreSQL, or hashing a
 * password), so that the HTTP threads keep serving everyone else. */
#ifndef WATTLINE_WORKERS_H
#define WATTLINE_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

struct workers;

/* Starts n threads that take at most max_queued waiting tasks; NULL with a
 * reason in err. */
struct workers *workers_start(int n, int max_queued, char *err, size_t errlen);

/* Queues fn(arg) for a worker thread, in submission order. False when the
 * queue is full or memory is short: the caller answers 503 instead. */
bool workers_submit(struct workers *w, void (*fn)(void *arg), void *arg);

/* Refuses new tasks, runs what is queued, then joins the threads; w stays
 * valid (workers_submit() returns false) until workers_free(). NULL is a
 * no-op, and so is a second call. */
void workers_stop(struct workers *w);
void workers_free(struct workers *w);

#endif
