/*
 * run: the event loop. It spools what is due, keeps at most `max_connections`
 * requests in flight over a libcurl multi handle (one request per meter at a
 * time, so each meter's readings are acknowledged in order), and handles the
 * answers, until every meter is done or `*stop` is set.
 */
#ifndef WATTLINE_SIM_RUN_H
#define WATTLINE_SIM_RUN_H

#include "meter.h"
#include "progress.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct run {
    struct meter *meters;
    size_t count;
    size_t max_connections;
    size_t window; /* pending readings per meter before it stops generating */
    struct progress *progress;
    volatile sig_atomic_t *stop;
    uint64_t rng;
};

enum run_result {
    RUN_DONE,    /* every meter finished (some may have been refused) */
    RUN_STOPPED, /* *stop was set */
    RUN_BROKEN,  /* a local failure (spool write, memory); message in err */
};

enum run_result run_loop(struct run *r, char *err, size_t err_size);

#endif
