/*
 * commander: one meter's side of --commands over HTTP. Its own easy handle
 * (in the run loop's multi handle, next to the readings' one, so a 25-second
 * long-poll never holds up a reading) alternates between
 *   GET  /api/v1/device/commands?wait=25       the long-poll, and
 *   POST /api/v1/device/commands/{id}/result   one answer at a time,
 * answers first: a command is answered before the next poll. One request is
 * in flight at a time. Errors are retried with retry.h's backoff; a poll the
 * server refuses for good (a revoked token, a server without commands) stops
 * the meter's commands, not its readings; an answer it refuses for good (409
 * already_final: canceled or expired first) is dropped.
 */
#ifndef WATTLINE_SIM_COMMANDER_H
#define WATTLINE_SIM_COMMANDER_H

#include "client.h"
#include "command.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMMANDER_WAIT_S       25
#define COMMANDER_RESPONSE_MAX (4 * 1024 * 1024) /* 50 commands of 8 KiB params, and room */
#define COMMANDER_EMPTY_GAP_US (1 * 1000000)     /* between polls that came back at once */

enum commander_state { COMMANDER_IDLE, COMMANDER_POLLING, COMMANDER_ANSWERING };

struct commander {
    struct client conn; /* conn.easy NULL: not set up */
    char *base;         /* the server's base URL, no trailing slash; owned */
    char *poll_url;     /* owned */
    char *result_url;   /* of the answer in flight; owned */
    enum commander_state state;
    struct command_outcome *answers; /* not yet taken by the server, oldest first; owned */
    size_t answers_count, answers_cap;
    unsigned attempt;      /* consecutive failures */
    int64_t retry_at_mono; /* no request before this */
    int64_t started_mono;  /* of the request in flight */
    bool stopped;          /* refused for good */
    char failure[CLIENT_MESSAGE_MAX + 64];
};

/* What a finished request came to, for people. */
enum commander_event {
    COMMANDER_QUIET,   /* nothing to say */
    COMMANDER_RETRY,   /* failed; retried after a backoff (message) */
    COMMANDER_BACK,    /* the server answers again after failures */
    COMMANDER_DROPPED, /* an answer the server refused for good (message) */
    COMMANDER_STOPPED, /* polls refused for good: no more commands (failure) */
};

/* Set up for `cfg` and `token`; `owner` becomes the handle's CURLOPT_PRIVATE. 0, or -1 with err. */
int commander_init(struct commander *c, const struct client_config *cfg, const char *token,
                   void *owner, char *err, size_t err_size);

/* True when a request may start now: set up, idle, not stopped, not backing off. */
bool commander_ready(const struct commander *c, int64_t now_mono_us);

/* Load the handle with the oldest answer, or else a poll. 0, or -1 (out of memory). */
int commander_start(struct commander *c, int64_t now_mono_us);

/*
 * Account for the finished request. Each command a poll brought goes through
 * `deliver` (with `ctx`), whose outcome is queued as an answer. A message for
 * people lands in `msg`.
 */
enum commander_event commander_finish(struct commander *c, CURLcode code, int64_t now_mono_us,
                                      uint64_t random_bits, command_obey_fn *deliver, void *ctx,
                                      char *msg, size_t msg_size);

/* Queue an answer. 0, or -1 (out of memory). */
int commander_queue(struct commander *c, const struct command_outcome *o);

/* The request in flight was taken off the multi handle unfinished. */
void commander_abandon(struct commander *c);

/* Release everything; safe on a zeroed struct. */
void commander_cleanup(struct commander *c);

#endif
