/* commands: the commands table, a state machine persisted in PostgreSQL.
 *
 *   queued -> sent (delivered, locked until now + lock_s; attempts + 1)
 *   sent   -> sent again (only once the lock has passed)
 *   queued | sent -> succeeded | failed (the device's answer)
 *                  -> canceled (an owner or admin)
 *                  -> expired (expires_at passed: the sweep stores it)
 *
 * Every transition is one UPDATE guarded by the current status (and by
 * expires_at), committed together with its NOTIFY (db/events.h "commands"
 * and "command_devices"), so every instance hears of it. A command whose
 * expires_at has passed reads "expired" everywhere even before the sweep
 * stores it, and no transition but the sweep's applies to it.
 *
 * Every transport (HTTP long-poll, WebSocket, MQTT) delivers with
 * db_commands_claim() and records answers with db_commands_answer(): one
 * logic, at least once.
 *
 * Every function here runs (and commits) its own transaction; the struct
 * command it fills is the caller's to command_clear().
 */
#ifndef WATTLINE_DB_COMMANDS_H
#define WATTLINE_DB_COMMANDS_H

#include <stdbool.h>

#include "audit.h"
#include "db.h"

#define COMMANDS_NAME_MAX       64
#define COMMANDS_PARAMS_MAX     8192 /* bytes of params as compact JSON */
#define COMMANDS_PER_DEVICE_MAX 50   /* unfinished (queued or sent) per device */
#define COMMANDS_TTL_DEFAULT_S  3600
#define COMMANDS_TTL_MIN_S      10
#define COMMANDS_TTL_MAX_S      172800
#define COMMANDS_CLAIM_MAX      50 /* commands one delivery hands over at most */
#define COMMANDS_ERROR_MAX      1000

enum command_status {
    COMMAND_QUEUED = 0,
    COMMAND_SENT,
    COMMAND_SUCCEEDED,
    COMMAND_FAILED,
    COMMAND_EXPIRED,
    COMMAND_CANCELED,
    COMMAND_STATUSES
};

/* "queued", ...; and back (false for an unknown name). */
const char *command_status_name(enum command_status st);
bool command_status_parse(const char *name, enum command_status *out);
/* succeeded, failed, expired, canceled */
bool command_status_final(enum command_status st);

struct command {
    long long id;
    long long device_id;
    long long owner_id; /* the device's owner now; 0: unassigned */
    char *name;         /* owned */
    char *params;       /* owned: a JSON object as text */
    enum command_status status;
    int attempts;
    long long created_by; /* 0: automation */
    long long alert_id;   /* 0: none */
    long long created_at, expires_at;
    long long sent_at, completed_at; /* microseconds; 0: not yet */
    char *result;                    /* owned JSON object text, or NULL */
    char *error;                     /* owned, or NULL */
};

/* Frees the strings and zeroes the record; a zeroed record is a no-op. */
void command_clear(struct command *c);

struct command_list {
    struct command *items; /* owned */
    int count;
};

void command_list_free(struct command_list *list);

struct command_new {
    long long device_id;
    const char *name;   /* checked by the caller: 1-64 of a-z0-9_.- */
    const char *params; /* a JSON object as text (NULL: {}) */
    int ttl_s;
    long long created_by; /* 0: none */
};

/* Queues a command, locking the device row so that the per-device cap holds
 * under concurrent creations. STATUS_NOT_FOUND when the device is gone or
 * owner_scope (0: any) does not own it; STATUS_CONFLICT when the device has
 * COMMANDS_PER_DEVICE_MAX unfinished commands. The command.create audit
 * entry (audit: who, from where, what) commits with it. */
enum status db_commands_create(struct db_conn *conn, const struct command_new *in,
                               long long owner_scope, const struct audit_ctx *audit,
                               struct command *out);

/* The command, if owner_scope is 0 or owns its device; else STATUS_NOT_FOUND. */
enum status db_commands_get(struct db_conn *conn, long long id, long long owner_scope,
                            struct command *out);

/* device_id's commands, newest first, with id < before_id (0: from the
 * newest), only those whose status is *status when status is not NULL; at
 * most limit. The device's access is the caller's to check. */
enum status db_commands_list(struct db_conn *conn, long long device_id,
                             const enum command_status *status, long long before_id, int limit,
                             struct command_list *out);

/* Deliver: hands over device_id's deliverable commands (queued, or sent
 * with the lock passed; not expired), oldest first, at most limit; each
 * becomes sent, attempts + 1, locked for lock_s. Rows another instance is
 * claiming at the same moment are skipped (FOR UPDATE SKIP LOCKED): two
 * deliveries never share a lock period. An empty list is STATUS_OK. */
enum status db_commands_claim(struct db_conn *conn, long long device_id, int lock_s, int limit,
                              struct command_list *out);

/* A device's answer. */
struct command_answer {
    enum command_status status; /* COMMAND_SUCCEEDED or COMMAND_FAILED */
    const char *result;         /* JSON object text or NULL */
    const char *error;          /* or NULL */
};

/* Record: stores device_id's answer to command id. STATUS_OK with the
 * command (*changed says whether this call stored it: the same answer again
 * changes nothing); STATUS_NOT_FOUND for a command that is not device_id's;
 * STATUS_CONFLICT (with the command in *out) for another answer to a final
 * command, an expired or canceled one included. */
enum status db_commands_answer(struct db_conn *conn, long long device_id, long long id,
                               const struct command_answer *answer, struct command *out,
                               bool *changed);

/* Cancels an unfinished command of a device owner_scope (0: any) owns.
 * STATUS_NOT_FOUND; STATUS_CONFLICT (with the command in *out) when final.
 * The command.cancel audit entry commits with the change. */
enum status db_commands_cancel(struct db_conn *conn, long long id, long long owner_scope,
                               const struct audit_ctx *audit, struct command *out);

/* The sweep: stores "expired" for up to limit commands whose expires_at has
 * passed and announces them. *count: how many. */
enum status db_commands_expire(struct db_conn *conn, int limit, int *count);

/* The commands with these ids (for the live channel), ascending; missing
 * ones are left out. */
enum status db_commands_by_ids(struct db_conn *conn, const long long *ids, int n,
                               struct command_list *out);

/* The users who would hear of these commands live (their devices' owners and
 * every admin) but turned commands off for sessions, ascending: *users
 * (the caller frees it whatever the status) and *count. */
enum status db_commands_live_muted(struct db_conn *conn, const long long *ids, int n,
                                   long long **users, int *count);

#endif
