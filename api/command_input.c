#include "command_input.h"

#include <stdlib.h>
#include <string.h>

#include "handler.h"

bool command_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > COMMANDS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
                  ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool fault(struct command_fault *f, const char *field, const char *detail)
{
    *f = (struct command_fault){field, detail};
    return false;
}

static bool member_allowed(const char *key, const char *const *list)
{
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(key, list[i]))
            return true;
    return false;
}

/* An object of at most COMMANDS_PARAMS_MAX bytes as compact JSON; *text owned. */
static bool object_text(const json_t *v, const char *field, char **text, struct command_fault *f)
{
    if (!json_is_object(v))
        return fault(f, field, "must be a JSON object");
    *text = json_dumps(v, JSON_DUMP_FLAGS);
    if (!*text)
        return fault(f, field, "cannot be stored");
    if (strlen(*text) > COMMANDS_PARAMS_MAX) {
        free(*text);
        *text = NULL;
        return fault(f, field, "must be at most 8192 bytes as JSON");
    }
    return true;
}

bool command_spec_read(const json_t *obj, bool allow_ttl, const char **name, char **params,
                       int *ttl_s, bool *unknown, struct command_fault *f)
{
    *name = NULL;
    *params = NULL;
    *unknown = false;
    if (ttl_s)
        *ttl_s = COMMANDS_TTL_DEFAULT_S;
    if (!json_is_object(obj))
        return fault(f, NULL, "a command is an object {\"name\", \"params\"}");
    static const char *const WITH_TTL[] = {"name", "params", "ttl_s", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (!member_allowed(key, WITH_TTL) || (!allow_ttl && !strcmp(key, "ttl_s"))) {
            *unknown = true;
            return fault(f, key, "unknown member");
        }
    }
    const json_t *n = json_object_get(obj, "name");
    if (!json_is_string(n) || strlen(json_string_value(n)) != json_string_length(n) ||
        !command_name_valid(json_string_value(n)))
        return fault(f, "name", "name must be 1 to 64 of a-z, 0-9, _, . and -");
    *name = json_string_value(n);
    if (allow_ttl && (v = json_object_get(obj, "ttl_s")) != NULL) {
        json_int_t t = json_is_integer(v) ? json_integer_value(v) : 0;
        if (t < COMMANDS_TTL_MIN_S || t > COMMANDS_TTL_MAX_S)
            return fault(f, "ttl_s", "ttl_s must be a whole number from 10 to 172800");
        *ttl_s = (int)t;
    }
    v = json_object_get(obj, "params");
    if (!v) {
        *params = strdup("{}");
        return *params ? true : fault(f, "params", "cannot be stored");
    }
    return object_text(v, "params", params, f);
}

bool command_answer_read(const json_t *obj, const char *const *extra, struct command_answer *out,
                         char **result, struct command_fault *f)
{
    *out = (struct command_answer){0};
    *result = NULL;
    if (!json_is_object(obj))
        return fault(f, NULL, "an answer is an object {\"status\", \"result\"?, \"error\"?}");
    static const char *const MEMBERS[] = {"status", "result", "error", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (!member_allowed(key, MEMBERS) && !member_allowed(key, extra))
            return fault(f, key, "unknown member");
    }
    const char *st = json_string_value(json_object_get(obj, "status"));
    if (st && !strcmp(st, "succeeded"))
        out->status = COMMAND_SUCCEEDED;
    else if (st && !strcmp(st, "failed"))
        out->status = COMMAND_FAILED;
    else
        return fault(f, "status", "status must be \"succeeded\" or \"failed\"");
    v = json_object_get(obj, "error");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            json_string_length(v) > COMMANDS_ERROR_MAX)
            return fault(f, "error", "error must be a string of at most 1000 bytes");
        out->error = json_string_value(v);
    }
    v = json_object_get(obj, "result");
    if (v && !json_is_null(v)) {
        if (!object_text(v, "result", result, f))
            return false;
        out->result = *result;
    }
    return true;
}
