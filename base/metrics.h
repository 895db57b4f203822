/* metrics: request counters and latency histograms, lock-free, rendered in
 * the Prometheus text format by the /metrics handler. */
#ifndef WATTLINE_METRICS_H
#define WATTLINE_METRICS_H

#include <stddef.h>

struct metrics;

/* labels[i] is "METHOD pattern" for route i; the extra slots are "static"
 * (dashboard files) and "unmatched". Strings are borrowed for the lifetime. */
struct metrics *metrics_create(const char *const *methods, const char *const *patterns,
                               size_t nroutes);
void metrics_free(struct metrics *m);

/* route is an index below nroutes, or METRICS_STATIC / METRICS_UNMATCHED. */
enum { METRICS_STATIC = -1, METRICS_UNMATCHED = -2 };
void metrics_observe(struct metrics *m, int route, int status, double seconds);

/* Appends the request families to a malloc'd text buffer (*buf, *len, *cap). */
void metrics_render_requests(struct metrics *m, char **buf, size_t *len, size_t *cap);

/* printf onto the same growing buffer. */
void metrics_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
