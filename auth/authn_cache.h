/* authn_cache: the bounded credential caches behind authn, with no database
 * and no clock of their own (every call is given "now", monotonic seconds),
 * so their rules are unit-tested directly.
 *
 * Positive entries (a user's role, a device token's device) are fresh for
 * AUTHN_CACHE_TTL_S counted from when their query *started*: a change
 * committed after that instant is at most that old here. Every look-up
 * takes a ticket before it queries; authn_cache_*_forget bump a generation,
 * and a result whose ticket predates a bump is not stored, so a rotation,
 * deletion or demotion made on this instance during a slow look-up is never
 * cached as fresh.
 *
 * Negative entries: SHA-256 hashes of device tokens that no device has,
 * kept AUTHN_BAD_TOKEN_TTL_S from when the look-up answered, so a flood of
 * one wrong token costs one query a minute. A token is only ever negative
 * if it was presented before it was issued: tokens are random secrets the
 * server makes and shows only after the COMMIT that stores them, so a token
 * issued on another instance cannot already be negative here unless it was
 * guessed. On this instance authn_cache_token_issued() drops the issued
 * token's hash all the same, and its generation bump keeps a negative
 * look-up in flight from storing it. */
#ifndef WATTLINE_AUTHN_CACHE_H
#define WATTLINE_AUTHN_CACHE_H

#include <stdbool.h>

#include "../base/crypto.h"
#include "caller.h"

/* Positive entries live this long; the contract allows 2 s, rotation 1 s. */
#define AUTHN_CACHE_TTL_S 1.0
/* Negative entries: the contract asks for at least 60 s. */
#define AUTHN_BAD_TOKEN_TTL_S 60.0

/* Users: direct-mapped by id (sequential ids rarely collide). */
#define AUTHN_USER_SLOTS 1024
/* Device tokens hash to random sets; four ways keep a thousand devices
 * from evicting each other. */
#define AUTHN_DEVICE_SETS 1024
#define AUTHN_DEVICE_WAYS 4
/* Wrong device tokens: as many again; an attacker with many distinct bad
 * tokens only evicts other bad tokens, never a good device. */
#define AUTHN_BAD_SETS 1024
#define AUTHN_BAD_WAYS 4

struct authn_cache;

/* NULL on allocation failure. free(NULL) is a no-op. */
struct authn_cache *authn_cache_create(void);
void authn_cache_free(struct authn_cache *c);

/* Taken before a look-up queries: when it started, and the generation it saw. */
struct authn_ticket {
    double started;
    unsigned long generation;
};

/* ---- users ---------------------------------------------------------------- */

/* True with *role (ROLE_NONE: the user does not exist) on a fresh entry. */
bool authn_cache_user_get(struct authn_cache *c, long long id, double now, enum role *role);
struct authn_ticket authn_cache_user_begin(struct authn_cache *c, double now);
/* Stores what a look-up begun with t found, unless a forget came since. */
void authn_cache_user_put(struct authn_cache *c, const struct authn_ticket *t, long long id,
                          enum role role);
/* After a delete or a role change here. */
void authn_cache_user_forget(struct authn_cache *c, long long id);

/* ---- devices -------------------------------------------------------------- */

enum authn_cache_hit {
    AUTHN_CACHE_MISS,   /* nothing known: look it up */
    AUTHN_CACHE_DEVICE, /* *device_id and *type are filled */
    AUTHN_CACHE_BAD,    /* a token no device had when last looked up */
};

/* hash: the token's SHA-256 in hex (CRYPTO_SHA256_HEX_LEN characters). */
enum authn_cache_hit authn_cache_device_get(struct authn_cache *c, const char *hash, double now,
                                            long long *device_id, enum reading_type *type);
struct authn_ticket authn_cache_device_begin(struct authn_cache *c, double now);
/* A look-up found the device: stored as of t->started, unless a forget or an
 * issued token came since. */
void authn_cache_device_put(struct authn_cache *c, const struct authn_ticket *t, const char *hash,
                            long long device_id, enum reading_type type);
/* A look-up found no device: kept until now + AUTHN_BAD_TOKEN_TTL_S, unless
 * a forget or an issued token came since t. */
void authn_cache_device_put_bad(struct authn_cache *c, const struct authn_ticket *t,
                                const char *hash, double now);
/* After a device's delete or token rotation here: its cached tokens go. */
void authn_cache_device_forget(struct authn_cache *c, long long device_id);
/* After a token was issued here (device created, token rotated): its hash
 * is no longer negative, at once. */
void authn_cache_token_issued(struct authn_cache *c, const char *hash);

#endif
