/* broker_login: a device's MQTT login, as RabbitMQ asks it through its HTTP
 * auth backend (POST /api/v1/broker/auth/user): the user name is the
 * device's id in digits or its serial (base/device_name.h), the password
 * its device token. Allowed when the token's SHA-256 is the stored hash of
 * exactly the device so named: one indexed query (db_devices_token_matches),
 * never scrypt, since device tokens are random 256-bit secrets.
 *
 * RabbitMQ asks on every connection, so the answer, allow or deny, is
 * cached per (user name, token hash) for BROKER_LOGIN_TTL_S, counted from
 * before its query began: a token rotated or a serial changed on any
 * instance is refused for new connections within that time. The cache
 * holds hashes, never tokens. */
#ifndef WATTLINE_BROKER_LOGIN_H
#define WATTLINE_BROKER_LOGIN_H

#include <stdbool.h>

#include "../base/crypto.h"
#include "../base/device_name.h"
#include "../db/db.h"
#include "../db/status.h"

/* The contract: "cache a device's answer for at most 1 s". */
#define BROKER_LOGIN_TTL_S 1.0
/* Direct-mapped by a hash of (user name, token hash); a collision only
 * costs a query. */
#define BROKER_LOGIN_SLOTS 1024

struct broker_login;

/* pool is borrowed and outlives it (NULL for the cache's unit tests). NULL
 * on allocation failure; free(NULL) is a no-op. */
struct broker_login *broker_login_create(struct db_pool *pool);
void broker_login_free(struct broker_login *bl);

/* The whole check: *allow on STATUS_OK; STATUS_UNAVAILABLE when the
 * database cannot answer (nothing is cached then). A miss waits up to 2 s
 * for a pooled connection: query workers only, never an HTTP thread. */
enum status broker_login_check(struct broker_login *bl, const char *username, const char *password,
                               bool *allow);

/* ---- the cache, clock-free for its unit tests ---------------------------- */

/* True with *allow when (username, token_hash) was answered within
 * BROKER_LOGIN_TTL_S before now (monotonic seconds). */
bool broker_login_cached(struct broker_login *bl, const char *username, const char *token_hash,
                         double now, bool *allow);
/* Remembers an answer whose query began at started. */
void broker_login_remember(struct broker_login *bl, const char *username, const char *token_hash,
                           double started, bool allow);

#endif
