#include "broker_login.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../db/devices.h"

/* How long a miss waits for a pooled connection before answering 503. */
#define BROKER_LOGIN_DB_WAIT_MS 2000
/* Device tokens are 43 characters; anything far off is no token of ours
 * and is denied without a query (authn.c's bounds). */
#define TOKEN_MIN 16
#define TOKEN_MAX 256

struct login_slot {
    bool used;
    bool allow;
    double fresh_until;
    char username[DEVICE_SERIAL_MAX + 1];
    char token_hash[CRYPTO_SHA256_HEX_LEN + 1];
};

struct broker_login {
    struct db_pool *pool;
    pthread_mutex_t mutex;
    struct login_slot slots[BROKER_LOGIN_SLOTS];
};

struct broker_login *broker_login_create(struct db_pool *pool)
{
    struct broker_login *bl = calloc(1, sizeof *bl);
    if (!bl)
        return NULL;
    bl->pool = pool;
    pthread_mutex_init(&bl->mutex, NULL);
    return bl;
}

void broker_login_free(struct broker_login *bl)
{
    if (!bl)
        return;
    pthread_mutex_destroy(&bl->mutex);
    /* The slots hold token hashes: gone with the memory, not left in it. */
    explicit_bzero(bl->slots, sizeof bl->slots);
    free(bl);
}

/* FNV-1a over both keys: spreads them over the slots; a hit is confirmed
 * by comparing both in full. */
static struct login_slot *slot_for(struct broker_login *bl, const char *username,
                                   const char *token_hash)
{
    unsigned long long h = 14695981039346656037ULL;
    for (const char *p = username; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* a separator no name has */
    for (const char *p = token_hash; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &bl->slots[h % BROKER_LOGIN_SLOTS];
}

/* Keys that fit a slot: a device name, and a hash of the expected length. */
static bool keys_fit(const char *username, const char *token_hash)
{
    return strlen(username) <= DEVICE_SERIAL_MAX && strlen(token_hash) == CRYPTO_SHA256_HEX_LEN;
}

bool broker_login_cached(struct broker_login *bl, const char *username, const char *token_hash,
                         double now, bool *allow)
{
    if (!keys_fit(username, token_hash))
        return false;
    struct login_slot *s = slot_for(bl, username, token_hash);
    pthread_mutex_lock(&bl->mutex);
    bool hit = s->used && now < s->fresh_until && strcmp(s->username, username) == 0 &&
               crypto_equal(s->token_hash, token_hash, CRYPTO_SHA256_HEX_LEN);
    if (hit)
        *allow = s->allow;
    pthread_mutex_unlock(&bl->mutex);
    return hit;
}

void broker_login_remember(struct broker_login *bl, const char *username, const char *token_hash,
                           double started, bool allow)
{
    if (!keys_fit(username, token_hash))
        return;
    struct login_slot *s = slot_for(bl, username, token_hash);
    pthread_mutex_lock(&bl->mutex);
    s->used = true;
    s->allow = allow;
    s->fresh_until = started + BROKER_LOGIN_TTL_S;
    strcpy(s->username, username);
    memcpy(s->token_hash, token_hash, CRYPTO_SHA256_HEX_LEN + 1);
    pthread_mutex_unlock(&bl->mutex);
}

enum status broker_login_check(struct broker_login *bl, const char *username, const char *password,
                               bool *allow)
{
    *allow = false;
    long long id;
    size_t password_len = password ? strlen(password) : 0;
    if (!username || device_name_parse(username, &id) == DEVICE_NAME_INVALID ||
        password_len < TOKEN_MIN || password_len > TOKEN_MAX)
        return STATUS_OK;
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex(password, password_len, hash);
    if (hash[0] == '\0')
        return STATUS_INTERNAL;
    if (broker_login_cached(bl, username, hash, clock_mono_s(), allow))
        return STATUS_OK;

    struct db_conn *conn = db_pool_acquire(bl->pool, BROKER_LOGIN_DB_WAIT_MS);
    if (!conn)
        return STATUS_UNAVAILABLE;
    /* Taken before the query: what it reads is at least this new. */
    double started = clock_mono_s();
    enum status st = db_devices_token_matches(conn, username, hash);
    db_pool_release(bl->pool, conn);
    if (st != STATUS_OK && st != STATUS_NOT_FOUND)
        return st;
    *allow = st == STATUS_OK;
    broker_login_remember(bl, username, hash, started, *allow);
    return STATUS_OK;
}
