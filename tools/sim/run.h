/*
 * run: the event loop. It spools what is due, keeps at most `max_connections`
 * requests in flight over a libcurl multi handle (one request per meter at a
 * time, so each meter's readings are acknowledged in order), and handles the
 * answers, until every meter is done or `*stop` is set. With --commands
 * each meter's commander (commander.h) has one request of its own in flight
 * besides, on a connection outside `max_connections`, and the loop runs
 * until `*stop` is set (or every commander was refused for good).
 */
#ifndef WATTLINE_SIM_RUN_H
#define WATTLINE_SIM_RUN_H

#include "meter.h"
#include "progress.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdbool.h>
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

/*
 * --commands over HTTP next to a broker's loop (--amqp with --url): the
 * meters' commanders on a multi handle of their own, driven without blocking.
 * run_commands_open returns NULL when no meter polls (or out of memory);
 * run_commands_step starts what is ready and handles what finished, false
 * (with err) when out of memory; run_commands_close takes NULL too.
 */
CURLM *run_commands_open(struct run *r);
bool run_commands_step(struct run *r, CURLM *multi, char *err, size_t err_size);
void run_commands_close(struct run *r, CURLM *multi);

/* Tell people how a command was answered (`again`: a redelivery, not obeyed twice). */
void run_report_command(struct run *r, const struct meter *m, const struct command_outcome *out,
                        bool again);

#endif
