#include "audit.h"

#include <stdlib.h>
#include <string.h>

#include "../base/netaddr.h"

static bool is_secret(const char *key)
{
    static const char *const secrets[] = {"password", "current_password", "password_hash",
                                          "token",    "token_hash",       "secret"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strcmp(key, secrets[i]) == 0)
            return true;
    return false;
}

/* Objects nested in a value (a command's params) are filtered too: a
 * secret is never stored, whatever shape the body has. */
static json_t *without_secrets(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)v, key, member)
        {
            if (!out || is_secret(key))
                continue;
            if (json_object_set_new(out, key, without_secrets(member)) != 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i,
                           item) if (out && json_array_append_new(out, without_secrets(item)) != 0)
        {
            json_decref(out);
            out = NULL;
        }
        return out;
    }
    return json_deep_copy(v);
}

json_t *audit_changes(const json_t *body)
{
    return body ? without_secrets(body) : json_object();
}

bool audit_note_init(struct audit_note *note, const struct request *req, json_t *changes)
{
    *note = (struct audit_note){0};
    note->changes_text = changes ? json_dumps(changes, JSON_DUMP_FLAGS) : NULL;
    bool ok = !changes || note->changes_text;
    json_decref(changes);
    if (!ok)
        return false;
    note->ctx = (struct audit_ctx){
        .actor_id = req->caller.kind == CALLER_USER ? req->caller.user_id : 0,
        /* The column is inet: an unknown client is NULL, not "unknown". */
        .client_addr =
            req->client_ip && strcmp(req->client_ip, NETADDR_UNKNOWN) != 0 ? req->client_ip : NULL,
        .request_id = req->request_id,
        .changes = note->changes_text,
    };
    return true;
}

void audit_note_free(struct audit_note *note)
{
    free(note->changes_text);
    *note = (struct audit_note){0};
}
