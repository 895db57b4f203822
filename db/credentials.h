/* credentials: the two lookups every authenticated request may make. */
#ifndef WATTLINE_DB_CREDENTIALS_H
#define WATTLINE_DB_CREDENTIALS_H

#include "db.h"
#include "models.h"

/* The stored role of a user; STATUS_NOT_FOUND when the user is gone. */
enum status db_credentials_user_role(struct db_conn *conn, long long user_id, enum role *role);

/* The devices holding n (at most DB_TOKENS_PER_QUERY) tokens, by their
 * SHA-256 hex, in one query:
 * device_ids[i] is 0 (and types[i] untouched) when no device holds hashes[i]. */
#define DB_TOKENS_PER_QUERY 10
enum status db_credentials_devices_by_tokens(struct db_conn *conn, const char *const *hashes, int n,
                                             long long *device_ids, enum reading_type *types);

#endif
