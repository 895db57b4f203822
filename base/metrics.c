#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int CODES[] = {200, 201, 204, 304, 400, 401, 403, 404, 405,
                            406, 409, 413, 415, 422, 429, 500, 503};
#define NCODES (sizeof CODES / sizeof CODES[0])
#define OTHER  NCODES /* slot for any code not listed */
static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

struct route_metrics {
    atomic_ulong by_code[NCODES + 1];
    atomic_ulong buckets[NBUCKETS]; /* non-cumulative; summed when rendered */
    atomic_ulong count;
    atomic_ullong sum_us;
};

struct metrics {
    size_t nroutes;
    const char *const *methods;
    const char *const *patterns;
    struct route_metrics *routes; /* nroutes + 2: static, unmatched */
};

struct metrics *metrics_create(const char *const *methods, const char *const *patterns,
                               size_t nroutes)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->routes = calloc(nroutes + 2, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    m->nroutes = nroutes;
    m->methods = methods;
    m->patterns = patterns;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    free(m->routes);
    free(m);
}

static size_t slot_of(const struct metrics *m, int route)
{
    if (route == METRICS_STATIC)
        return m->nroutes;
    if (route < 0 || (size_t)route >= m->nroutes)
        return m->nroutes + 1;
    return (size_t)route;
}

void metrics_observe(struct metrics *m, int route, int status, double seconds)
{
    struct route_metrics *r = &m->routes[slot_of(m, route)];
    size_t code = OTHER;
    for (size_t i = 0; i < NCODES; i++)
        if (CODES[i] == status) {
            code = i;
            break;
        }
    atomic_fetch_add_explicit(&r->by_code[code], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKETS && seconds > BUCKETS[b])
        b++;
    if (b < NBUCKETS)
        atomic_fetch_add_explicit(&r->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
}

void metrics_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = *cap - *len;
        int n = *buf ? vsnprintf(*buf + *len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            *len += (size_t)n;
            return;
        }
        size_t ncap = *cap ? *cap * 2 : 16384;
        while (n >= 0 && ncap - *len <= (size_t)n)
            ncap *= 2;
        char *nbuf = realloc(*buf, ncap);
        if (!nbuf)
            return; /* the scrape comes out short; nothing else is at risk */
        *buf = nbuf;
        *cap = ncap;
    }
}

static void labels(const struct metrics *m, size_t slot, const char **method, const char **route)
{
    if (slot < m->nroutes) {
        *method = m->methods[slot];
        *route = m->patterns[slot];
    } else {
        *method = "GET";
        *route = slot == m->nroutes ? "static" : "unmatched";
    }
}

void metrics_render_requests(struct metrics *m, char **buf, size_t *len, size_t *cap)
{
    const char *method, *route;
    metrics_printf(buf, len, cap,
                   "# HELP wattline_http_requests_total HTTP requests answered.\n"
                   "# TYPE wattline_http_requests_total counter\n");
    for (size_t s = 0; s < m->nroutes + 2; s++) {
        labels(m, s, &method, &route);
        for (size_t c = 0; c <= NCODES; c++) {
            unsigned long n = atomic_load(&m->routes[s].by_code[c]);
            if (!n)
                continue;
            char code[8];
            if (c == OTHER)
                snprintf(code, sizeof code, "other");
            else
                snprintf(code, sizeof code, "%d", CODES[c]);
            metrics_printf(buf, len, cap,
                           "wattline_http_requests_total{route=\"%s\",method=\"%s\",code=\"%s\"} "
                           "%lu\n",
                           route, method, code, n);
        }
    }
    metrics_printf(buf, len, cap,
                   "# HELP wattline_http_request_duration_seconds Time to answer a request.\n"
                   "# TYPE wattline_http_request_duration_seconds histogram\n");
    for (size_t s = 0; s < m->nroutes + 2; s++) {
        struct route_metrics *r = &m->routes[s];
        unsigned long count = atomic_load(&r->count);
        if (!count)
            continue;
        labels(m, s, &method, &route);
        unsigned long cumulative = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cumulative += atomic_load(&r->buckets[b]);
            metrics_printf(
                buf, len, cap,
                "wattline_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                "le=\"%g\"} %lu\n",
                route, method, BUCKETS[b], cumulative);
        }
        metrics_printf(buf, len, cap,
                       "wattline_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                       "le=\"+Inf\"} %lu\n"
                       "wattline_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} "
                       "%.6f\n"
                       "wattline_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} "
                       "%lu\n",
                       route, method, count, route, method, (double)atomic_load(&r->sum_us) / 1e6,
                       route, method, count);
    }
}
