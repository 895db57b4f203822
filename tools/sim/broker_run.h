/*
 * broker_run: the event loop of --amqp and --mqtt, for one meter. It spools
 * what is due, publishes the oldest pending readings as one message and
 * acknowledges them in the spool only once the broker confirmed that message;
 * a rejected message, a lost connection or a broker that cannot be reached
 * keeps them pending, and the next attempt (a reconnect if need be) waits for
 * the same backoff as an HTTP retry. A login the broker refuses before it
 * ever accepted one stops the run (a wrong id, serial, token or URL); once
 * connected, a refused reconnect is retried, because the broker may be
 * unable to ask Wattline while Wattline restarts.
 */
#ifndef WATTLINE_SIM_BROKER_RUN_H
#define WATTLINE_SIM_BROKER_RUN_H

#include "link.h"
#include "run.h"

#include <stddef.h>

/* As run_loop, over `link` (opened, not yet connected) for r->meters[0]. */
enum run_result broker_run_loop(struct run *r, struct link *link, char *err, size_t err_size);

#endif
