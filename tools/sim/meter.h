/*
 * meter: one simulated device: its source, its spool and its HTTP client, and
 * the bookkeeping that ties them together (what is due, what is in flight,
 * when to retry). The event loop in run.c drives any number of them.
 */
#ifndef WATTLINE_SIM_METER_H
#define WATTLINE_SIM_METER_H

#include "client.h"
#include "command.h"
#include "commander.h"
#include "relay.h"
#include "schedule.h"
#include "source.h"
#include "spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings shared by every meter of a run (from the command line). */
struct meter_settings {
    enum reading_type type;
    int64_t interval_us;
    bool interval_given;
    int64_t start_us;
    bool start_given;
    bool backfill;
    int64_t from_us, to_us; /* backfill range */
    int64_t count;          /* INT64_MAX: no limit */
    double speed;
    size_t batch;
    bool commands;            /* --commands: obey the server's commands */
    const char *commands_url; /* poll this server for them (NULL: they come over MQTT) */
    struct client_config client;
};

struct meter_counters {
    uint64_t generated;       /* readings written to the spool */
    uint64_t sent;            /* readings transmitted, resends included */
    uint64_t acked;           /* readings the server confirmed */
    uint64_t duplicates;      /* of which it already had */
    uint64_t retries;         /* requests repeated after a transient failure */
    uint64_t commands_obeyed; /* commands answered succeeded (each id once) */
    uint64_t commands_failed; /* commands answered failed (each id once) */
};

struct meter {
    char name[64];
    struct source source;
    struct spool spool;
    struct client client;
    enum reading_type type;
    struct pacing pacing;
    int64_t next_seq;
    bool has_next; /* `next` is reading next_seq, not yet spooled */
    struct reading next;
    bool exhausted;        /* every reading of the source is spooled */
    size_t batch_limit;    /* readings per request */
    size_t in_flight;      /* readings in the request under way (0: idle) */
    unsigned attempt;      /* consecutive failures */
    int64_t retry_at_mono; /* no request before this monotonic time */
    bool failed;           /* stopped by a non-retryable answer */
    char failure[CLIENT_MESSAGE_MAX];
    struct meter_counters counters;
    struct relay relay;
    bool commands;                /* --commands */
    struct commander commander;   /* --commands over HTTP: the long-poll's own handle */
    struct command_memory obeyed; /* ids already obeyed, for redeliveries */
};

/* The first timestamp the settings ask for (the default depends on the source's length). */
int64_t meter_wanted_start(const struct source *source, const struct meter_settings *set);

/* Apply the settings' time line (from `start_us`) and bounds to a source. */
void meter_plan(struct source *source, const struct meter_settings *set, int64_t start_us);

/* The spool entry (value as sent) for reading `r` of `source`. */
struct spool_entry meter_entry_for(struct source *source, enum reading_type type,
                                   const struct reading *r);

/*
 * Set up `m` from an opened `source` (moved into the meter), the device token
 * and its spool file. Resumes the spool when it holds this run; refuses one
 * that holds another. Returns 0, or -1 with a message in `err`.
 */
int meter_open(struct meter *m, const char *name, struct source *source, const char *token,
               const char *spool_path, const struct meter_settings *set, char *err,
               size_t err_size);

/*
 * Spool the readings due at `now_wall_us` while fewer than `window` are
 * pending. Returns 0, or -1 when the spool cannot be written (errno).
 */
int meter_generate(struct meter *m, int64_t now_wall_us, size_t window);

/* Wall time when the next reading is due (INT64_MAX: none). */
int64_t meter_next_due(const struct meter *m);

/* True when a request may start now: idle, not failed, something pending, not backing off. */
bool meter_ready(const struct meter *m, int64_t now_mono_us);

/* Load the client with the oldest pending readings. 0 or -1 (out of memory). */
int meter_start_request(struct meter *m);

/*
 * Account for the finished request (`answer` judged by client_answer). For a
 * retry, `random_bits` draws the jitter. Returns 0, or -1 when the spool
 * cannot record an acknowledgement (not fatal: the readings are resent).
 */
int meter_finish_request(struct meter *m, const struct client_answer *answer, int64_t now_mono_us,
                         uint64_t random_bits);

/*
 * Obey a command (command_obey_fn, `ctx` the meter): switch the relay or
 * change the interval. `out->id` is set; the rest says how it went.
 */
void meter_obey(void *ctx, const struct command_order *order, struct command_outcome *out);

/*
 * The outcome for a command delivered to the meter: obeyed now, or the
 * remembered outcome of an id obeyed before (counted once).
 */
void meter_command(struct meter *m, const struct command_order *order, struct command_outcome *out);

/* True when nothing is left to do: failed, or all readings spooled and acknowledged. */
bool meter_done(const struct meter *m);

/* Release everything; safe on a zeroed struct. */
void meter_close(struct meter *m);

#endif
