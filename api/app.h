/* app: the process-wide objects, made once in main and passed to every
 * handler, the HTTP server and the WebSocket hub. Nothing else is global. */
#ifndef WATTLINE_APP_H
#define WATTLINE_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "../db/db.h"
#include "../base/config.h"
#include "../base/secretbox.h"

struct metrics;
struct migration_set;
struct password_limiter;
struct authn;
struct ingest;
struct broker;
struct hub;
struct throttle_table;
struct rate_table;
struct export_limit;
struct broker_login;
struct command_poll;
struct read_pool;

struct app {
    const struct config *config;
    struct db_pool *pool;
    struct db_pool *read_db;     /* DATABASE_READ_URL's pool; NULL without one */
    struct read_pool *read_pool; /* routes reads to read_db or the primary; NULL without one */
    struct metrics *metrics;
    const struct migration_set *migrations;
    struct password_limiter *password_limiter;
    struct authn *authn;                   /* user and device credential caches */
    struct throttle_table *login_throttle; /* failed logins per client address */
    struct rate_table *device_rate;        /* DEVICE_RATE_PER_MIN; NULL: no limit */
    struct export_limit *exports;          /* CSV exports in progress, per user and in all */
    struct broker_login *broker_login;     /* MQTT device logins; NULL without AMQP_URL */
    struct ingest *ingest;                 /* the one entry point for readings, any source */
    struct broker *broker;                 /* RabbitMQ consumer; NULL without AMQP_URL */
    struct hub *hub;                       /* WebSocket sessions; NULL when not serving WS */
    struct command_poll *command_poll;     /* devices' long-polls, the commands' expiry sweep */
    const char *ws_url;                    /* what /api/v1/config announces */
    const char *csp;                       /* Content-Security-Policy sent with every response */
    atomic_bool draining;                  /* shutting down: readyz answers 503 */
    /* Seals webhook secrets at rest: derived from the JWT secret, so every
     * instance sharing it opens what another sealed. */
    unsigned char webhook_key[SECRETBOX_KEY_LEN];
};

/* How long a request waits for a pooled connection before answering 503. */
#define APP_DB_WAIT_MS 2000

#define WATTLINE_VERSION "0.1.0"

#endif
