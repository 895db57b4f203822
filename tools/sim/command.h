/*
 * command: the pure parts of --commands. What a command from the server asks
 * (parsed and checked here, so a bad one is answered `failed` with a reason
 * instead of being half obeyed), the body of the answer, and the memory of
 * the ids already obeyed: delivery is at least once, so the same command may
 * come again (its answer was lost, or its lock ran out first) and must then
 * get the same answer without being obeyed twice.
 *
 * Known commands: `relay` {"state": "off" | "on"} and `interval`
 * {"seconds": N}, 1 <= N <= 86400. Any other name is answered
 * "unknown command".
 */
#ifndef WATTLINE_SIM_COMMAND_H
#define WATTLINE_SIM_COMMAND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMMAND_ERROR_MAX     200
#define COMMAND_MEMORY_MAX    128 /* the server keeps at most 50 unfinished per device */
#define COMMAND_INTERVAL_MIN  1
#define COMMAND_INTERVAL_MAX  86400
#define COMMAND_UNKNOWN_ERROR "unknown command"

enum command_action {
    COMMAND_REFUSE,   /* answer failed with `error` */
    COMMAND_RELAY,    /* switch the relay to `relay_on` */
    COMMAND_INTERVAL, /* report every `seconds` */
};

/* What a command asks, once checked. */
struct command_order {
    int64_t id;
    enum command_action action;
    bool relay_on;
    int64_t seconds;
    char error[COMMAND_ERROR_MAX]; /* COMMAND_REFUSE: why */
};

/* How a command ended, as the device answers it. */
struct command_outcome {
    int64_t id;
    bool succeeded;
    enum command_action action; /* what `result` says: the relay's state or the interval */
    bool relay_on;
    int64_t seconds;
    char error[COMMAND_ERROR_MAX]; /* when failed */
};

/* Ids already obeyed with their outcomes; the oldest are forgotten first. */
struct command_memory {
    struct command_outcome items[COMMAND_MEMORY_MAX];
    size_t count;
    size_t next; /* where the next one goes once full */
};

/*
 * Check one command: the object {"id", "name", "params", ...} or the
 * WebSocket's envelope {"type": "command", "command": {...}}. Returns 0 with
 * *out (COMMAND_REFUSE and an error for an unknown name or bad params), or -1
 * when it has no usable id and so cannot be answered at all.
 */
int command_parse(const json_t *doc, struct command_order *out);

/* command_parse on a JSON text (an MQTT message). */
int command_parse_text(const char *text, size_t len, struct command_order *out);

/*
 * The commands of a long-poll's answer {"items": [...]}: *out (caller frees;
 * NULL when none) holds *count orders; items without an id are skipped.
 * Returns 0, or -1 when the body is not such an object (or out of memory).
 */
int command_parse_poll(const char *body, size_t len, struct command_order **out, size_t *count);

/*
 * The answer's body: for HTTP {"status", "result"?, "error"?}, for MQTT
 * {"type": "command_result", "id", "status", ...}. Caller frees; NULL when out
 * of memory.
 */
char *command_result_body(const struct command_outcome *o, bool with_id);

/* The outcome remembered for `id`, or NULL. */
const struct command_outcome *command_recall(const struct command_memory *mem, int64_t id);

/* Remember an outcome (an id already there is updated in place). */
void command_remember(struct command_memory *mem, const struct command_outcome *o);

/* Obeys an order: fills *out (id already set) with how it went. */
typedef void command_obey_fn(void *ctx, const struct command_order *order,
                             struct command_outcome *out);

/*
 * The outcome for `order`: the remembered one when its id was obeyed before,
 * else what `obey` makes of it (remembered). True when obeyed now.
 */
bool command_handle(struct command_memory *mem, const struct command_order *order,
                    command_obey_fn *obey, void *ctx, struct command_outcome *out);

#endif
