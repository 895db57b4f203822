/* audit: what a change's audit entry (db/audit.h) says, built from the
 * request that made it: the caller, the client address, the request id, and
 * the fields set with their new values, never a secret. */
#ifndef WATTLINE_API_AUDIT_H
#define WATTLINE_API_AUDIT_H

#include <jansson.h>

#include "../db/audit.h"
#include "handler.h"

/* A copy of the object body (NULL: an empty object) without the members
 * that hold secrets (password, current_password, password_hash, token,
 * token_hash, secret) at any depth. Caller decrefs; NULL when out of memory. */
json_t *audit_changes(const json_t *body);

/* The context of an entry: ctx points into it and at req (which must
 * outlive it); changes (taken; NULL for {}) is rendered as text.
 * client_addr is NULL when the client is unknown. */
struct audit_note {
    struct audit_ctx ctx;
    char *changes_text; /* owned */
};

/* False (and nothing to free) when out of memory. */
bool audit_note_init(struct audit_note *note, const struct request *req, json_t *changes);
void audit_note_free(struct audit_note *note);

#endif
