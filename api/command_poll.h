/* command_poll: devices' long-polls for commands, and the expiry sweep.
 *
 * One thread per instance, not one per waiting device: a long-poll is a
 * suspended request (api/handler.h struct deferred) registered here with
 * its device and deadline. The listener hands over the devices of every
 * command created or changed on any instance (command_poll_wake); their
 * polls are marked, and the thread claims for each (db_commands_claim) and
 * resumes it when it got commands or its wait is over. A poll whose
 * command another poll took keeps waiting. The same thread stores
 * "expired" for commands past expires_at every COMMAND_POLL_SWEEP_S
 * (db_commands_expire), which announces them.
 */
#ifndef WATTLINE_COMMAND_POLL_H
#define WATTLINE_COMMAND_POLL_H

#include <stdbool.h>

#include "../db/commands.h"
#include "handler.h"

#define COMMAND_POLL_SWEEP_S    2.0 /* the contract asks for at least every 5 s */
#define COMMAND_POLL_WAIT_MAX_S 60

struct command_poll;

/* One waiting request; owned by its handler, registered from its start()
 * until resumed or removed. */
struct command_wait {
    long long device_id;
    double deadline; /* clock_mono_s() */
    struct deferred *resume;
    /* the outcome, read once resumed: commands claimed (maybe none) */
    enum status status;
    struct command_list claimed;
    /* the poll's own: list links and state, under its mutex */
    struct command_wait *next;
    bool dirty, busy, listed;
};

/* Starts the thread. pool is borrowed. NULL when it cannot start. */
struct command_poll *command_poll_start(struct db_pool *pool, int lock_s);
/* Answers every poll (empty), stops the thread, frees. NULL is a no-op. */
void command_poll_stop(struct command_poll *p);
/* Shutting down: every poll waiting is answered now, and new ones at once. */
void command_poll_release_all(struct command_poll *p);

/* Registers w (device_id, deadline and resume set); it claims at once. */
void command_poll_add(struct command_poll *p, struct command_wait *w);
/* Unregisters w if it still is (waits while the thread is claiming for it). */
void command_poll_remove(struct command_poll *p, struct command_wait *w);
/* Any thread: commands of these devices were created or changed. */
void command_poll_wake(struct command_poll *p, const long long *device_ids, int n);

#endif
