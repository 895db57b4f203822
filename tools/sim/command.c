#define _POSIX_C_SOURCE 200809L

#include "command.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void refuse(struct command_order *out, const char *why)
{
    out->action = COMMAND_REFUSE;
    snprintf(out->error, sizeof out->error, "%s", why);
}

static void parse_relay(const json_t *params, struct command_order *out)
{
    const char *state = json_string_value(json_object_get(params, "state"));
    if (state == NULL || (strcmp(state, "on") != 0 && strcmp(state, "off") != 0) ||
        json_object_size(params) != 1) {
        refuse(out, "relay needs params {\"state\": \"on\" | \"off\"}");
        return;
    }
    out->action = COMMAND_RELAY;
    out->relay_on = strcmp(state, "on") == 0;
}

static void parse_interval(const json_t *params, struct command_order *out)
{
    const json_t *seconds = json_object_get(params, "seconds");
    /* 60.0 is a whole number too, as JSON sees it; 1.5 is not. */
    double v = json_is_integer(seconds) ? (double)json_integer_value(seconds)
               : json_is_real(seconds)  ? json_real_value(seconds)
                                        : NAN;
    if (!isfinite(v) || v != floor(v) || v < COMMAND_INTERVAL_MIN || v > COMMAND_INTERVAL_MAX ||
        json_object_size(params) != 1) {
        refuse(out, "interval needs params {\"seconds\": N}, N a whole number from 1 to 86400");
        return;
    }
    out->action = COMMAND_INTERVAL;
    out->seconds = (int64_t)v;
}

int command_parse(const json_t *doc, struct command_order *out)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (type != NULL && strcmp(type, "command") == 0 &&
        json_is_object(json_object_get(doc, "command")))
        doc = json_object_get(doc, "command");
    const json_t *id = json_object_get(doc, "id");
    if (!json_is_object(doc) || !json_is_integer(id) || json_integer_value(id) <= 0)
        return -1;
    out->id = (int64_t)json_integer_value(id);
    const char *name = json_string_value(json_object_get(doc, "name"));
    const json_t *params = json_object_get(doc, "params");
    if (params == NULL || json_is_null(params))
        params = NULL;
    if (name == NULL) {
        refuse(out, "the command has no name");
    } else if (params != NULL && !json_is_object(params)) {
        refuse(out, "params is not an object");
    } else if (strcmp(name, "relay") == 0 || strcmp(name, "interval") == 0) {
        json_t *empty = params ? NULL : json_object();
        const json_t *p = params ? params : empty;
        if (p == NULL)
            refuse(out, "out of memory");
        else if (name[0] == 'r')
            parse_relay(p, out);
        else
            parse_interval(p, out);
        json_decref(empty);
    } else {
        refuse(out, COMMAND_UNKNOWN_ERROR);
    }
    return 0;
}

int command_parse_text(const char *text, size_t len, struct command_order *out)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = doc != NULL ? command_parse(doc, out) : -1;
    json_decref(doc);
    return rc;
}

int command_parse_poll(const char *body, size_t len, struct command_order **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *items = json_object_get(doc, "items");
    int rc = -1;
    if (json_is_array(items)) {
        size_t n = json_array_size(items);
        struct command_order *list = n > 0 ? calloc(n, sizeof *list) : NULL;
        if (n == 0 || list != NULL) {
            size_t kept = 0;
            for (size_t i = 0; i < n; i++)
                if (command_parse(json_array_get(items, i), &list[kept]) == 0)
                    kept++;
            if (kept == 0) {
                free(list);
                list = NULL;
            }
            *out = list;
            *count = kept;
            rc = 0;
        }
    }
    json_decref(doc);
    return rc;
}

static json_t *result_of(const struct command_outcome *o)
{
    switch (o->action) {
    case COMMAND_RELAY:
        return json_pack("{s:s}", "state", o->relay_on ? "on" : "off");
    case COMMAND_INTERVAL:
        return json_pack("{s:I}", "seconds", (json_int_t)o->seconds);
    case COMMAND_REFUSE:
        break;
    }
    return NULL;
}

char *command_result_body(const struct command_outcome *o, bool with_id)
{
    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    bool ok = true;
    if (with_id)
        ok = json_object_set_new(doc, "type", json_string("command_result")) == 0 &&
             json_object_set_new(doc, "id", json_integer((json_int_t)o->id)) == 0;
    ok = ok && json_object_set_new(doc, "status",
                                   json_string(o->succeeded ? "succeeded" : "failed")) == 0;
    if (ok && o->succeeded) {
        json_t *result = result_of(o);
        ok = result == NULL || json_object_set_new(doc, "result", result) == 0;
    } else if (ok) {
        ok = json_object_set_new(doc, "error", json_string(o->error[0] ? o->error : "failed")) == 0;
    }
    char *body = ok ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return body;
}

const struct command_outcome *command_recall(const struct command_memory *mem, int64_t id)
{
    for (size_t i = 0; i < mem->count; i++)
        if (mem->items[i].id == id)
            return &mem->items[i];
    return NULL;
}

void command_remember(struct command_memory *mem, const struct command_outcome *o)
{
    for (size_t i = 0; i < mem->count; i++) {
        if (mem->items[i].id == o->id) {
            mem->items[i] = *o;
            return;
        }
    }
    if (mem->count < COMMAND_MEMORY_MAX) {
        mem->items[mem->count++] = *o;
        return;
    }
    /* Full: the slots are overwritten in turn, so the oldest goes first. */
    mem->items[mem->next] = *o;
    mem->next = (mem->next + 1) % COMMAND_MEMORY_MAX;
}

bool command_handle(struct command_memory *mem, const struct command_order *order,
                    command_obey_fn *obey, void *ctx, struct command_outcome *out)
{
    const struct command_outcome *known = command_recall(mem, order->id);
    if (known != NULL) {
        *out = *known;
        return false;
    }
    memset(out, 0, sizeof *out);
    out->id = order->id;
    obey(ctx, order, out);
    command_remember(mem, out);
    return true;
}
