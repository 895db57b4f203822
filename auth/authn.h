/* authn: who is calling. Verifies user access tokens and device tokens for
 * the dispatcher, with short-lived caches so that a deleted user, a demoted
 * admin, or a rotated device token loses access within a second, and a
 * negative cache so that a wrong device token costs one query a minute
 * (auth/authn_cache.h has the rules). */
#ifndef WATTLINE_AUTHN_H
#define WATTLINE_AUTHN_H

#include <stddef.h>

#include "../db/db.h"
#include "../db/status.h"
#include "authn_cache.h"
#include "caller.h"

struct authn;

/* The "iss" of every access token the server issues (auth.c) and accepts. */
#define JWT_ISSUER "wattline"

/* The caches, and what a cache miss needs: the pool to look up in and the
 * JWT secret (both borrowed; they outlive the authn). */
struct authn *authn_create(struct db_pool *pool, const char *jwt_secret, size_t jwt_secret_len);
void authn_free(struct authn *authn);

/* What the caches alone can say about a credential. */
enum authn_verdict {
    AUTHN_OK,           /* *out is filled */
    AUTHN_UNAUTHORIZED, /* a bad token (or one the caches know is no longer good) */
    AUTHN_NEEDS_LOOKUP, /* the caches do not know: ask authn_user()/authn_device() */
};

/* The checks that never wait: no database, no pooled connection, only CPU
 * (a JWT verification or a SHA-256) and the caches' mutex. For HTTP threads. */
enum authn_verdict authn_user_cached(struct authn *authn, const char *token, struct caller *out);
enum authn_verdict authn_device_cached(struct authn *authn, const char *token, struct caller *out);

/* The full checks: the cached one, then on a miss a look-up that waits up to
 * 2 s for a pooled connection. Never on an HTTP thread.
 * A user access token (JWT): verified, then the user's current role read
 * (cached). STATUS_UNAUTHORIZED for a bad token or a user that is gone. */
enum status authn_user(struct authn *authn, const char *token, struct caller *out);

/* A device token: hashed and looked up (cached, and a token no device has
 * is remembered as bad for AUTHN_BAD_TOKEN_TTL_S). */
enum status authn_device(struct authn *authn, const char *token, struct caller *out);

/* Forgets cached entries (after a delete, demotion or rotation here); a
 * look-up already under way then does not cache what it read. */
void authn_forget_user(struct authn *authn, long long user_id);
void authn_forget_device(struct authn *authn, long long device_id);

/* After a device token was stored here (a device created or its token
 * rotated): token_hash, its SHA-256 in hex, is no longer cached as bad. */
void authn_device_token_issued(struct authn *authn, const char *token_hash);

/* Credential look-ups that went to the database, for /metrics. */
struct authn_stats {
    unsigned long user_lookups;
    unsigned long device_lookups;
};
void authn_stats(struct authn *authn, struct authn_stats *out);

#endif
