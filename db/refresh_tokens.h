/* refresh_tokens: login sessions as families of single-use refresh tokens.
 *
 * Tokens are identified by the SHA-256 hex of the secret (the secret itself
 * is never stored). A login starts a family; a refresh spends the presented
 * token and stores its successor in the same family; revocation (logout,
 * reuse of a spent token, a password change) is per family, and a token is
 * live only while unspent, unexpired and in a family that is not revoked. */
#ifndef WATTLINE_DB_REFRESH_TOKENS_H
#define WATTLINE_DB_REFRESH_TOKENS_H

#include "audit.h"
#include "db.h"

/* Starts a family for user_id with its first token, live for ttl_s seconds:
 * a login, so its login.success audit entry commits with it. */
enum status db_refresh_start(struct db_conn *conn, long long user_id, const char *token_hash,
                             long long ttl_s, const struct audit_ctx *audit);

/* Spends a live token and stores next_hash (live for ttl_s) in its family,
 * in one transaction. Of two concurrent calls with the same token at most one
 * succeeds: the spending UPDATE takes the row lock and the other then finds
 * the token spent. *user_id is the family's user. STATUS_NOT_FOUND when the
 * token is unknown, spent, expired or revoked. */
enum status db_refresh_rotate(struct db_conn *conn, const char *token_hash, const char *next_hash,
                              long long ttl_s, long long *user_id);

/* Reuse detection: when token_hash is a spent token of a family not yet
 * revoked, revokes that family and gives its user (STATUS_OK);
 * STATUS_NOT_FOUND otherwise. */
enum status db_refresh_revoke_if_spent(struct db_conn *conn, const char *token_hash,
                                       long long *user_id);

/* Logout: revokes the family of token_hash, whatever the token's state.
 * Unknown tokens are not an error. */
enum status db_refresh_revoke_family(struct db_conn *conn, const char *token_hash);

/* Revokes every family of the user, inside the caller's open transaction
 * (db_users_update's, which changes the password). */
enum status db_refresh_revoke_user_in_tx(struct db_conn *conn, long long user_id);

/* Deletes the user's families that can no longer be used: revoked ones and
 * those whose every token has expired. */
enum status db_refresh_prune_user(struct db_conn *conn, long long user_id);

#endif
