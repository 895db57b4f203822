/* command_input: the contract's checks of what clients send about commands,
 * shared by REST (a new command, a device's over_limit_command, a device's
 * answer) and the WebSocket (command_result), and later MQTT. Pure: no
 * database, no response; each check names the member at fault. */
#ifndef WATTLINE_COMMAND_INPUT_H
#define WATTLINE_COMMAND_INPUT_H

#include <jansson.h>
#include <stdbool.h>

#include "../db/commands.h"

/* 1-64 characters of a-z0-9_.- */
bool command_name_valid(const char *name);

/* What a check found wrong: the member and a sentence for the problem. */
struct command_fault {
    const char *field;
    const char *detail;
};

/* {"name", "params"?}: name as above, params an object of at most
 * COMMANDS_PARAMS_MAX bytes as compact JSON (default {}). *name is borrowed
 * from obj; *params is the compact text (caller frees). allow_ttl also
 * takes "ttl_s" (10-172800, default 3600) into *ttl_s; any other member is
 * a fault (unknown_field when *unknown). */
bool command_spec_read(const json_t *obj, bool allow_ttl, const char **name, char **params,
                       int *ttl_s, bool *unknown, struct command_fault *fault);

/* A device's answer {"status": "succeeded"|"failed", "result"?: object,
 * "error"?: string}; extra lists further members that may be there (the
 * WebSocket's "type" and "id"), NULL-terminated or NULL. Fills *out (its
 * strings: result is owned by the caller, error borrowed from obj). */
bool command_answer_read(const json_t *obj, const char *const *extra, struct command_answer *out,
                         char **result, struct command_fault *fault);

#endif
