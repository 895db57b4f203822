/* config: settings from the environment, overridden by command-line flags.
 *
 * One table names every setting once: its variable, its flag (derived:
 * HTTP_PORT -> --http-port), its type and bounds. A bad value is reported as
 * one line in err and the caller exits with status 2.
 */
#ifndef WATTLINE_CONFIG_H
#define WATTLINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };
enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct config {
    char *database_url;
    char *database_owner_url; /* migrations; NULL: database_url */
    char *http_addr;
    int http_port;
    int ws_port;
    char *jwt_secret; /* raw bytes, NUL-terminated (from JWT_SECRET or the file) */
    size_t jwt_secret_len;
    char *jwt_secret_file;
    int access_token_ttl;
    char *tls_cert;
    char *tls_key;
    char *web_root;
    char *migrations_dir;
    char *openapi_file;
    char *public_ws_url;
    int log_level;  /* enum log_level */
    int log_format; /* enum log_format */
    int db_pool_size;
    int http_threads;
    int query_workers;
    int ws_max_sessions_per_user;
    int ws_max_sessions;
    int ws_max_unauth_per_addr;
    int max_body_bytes;
    int max_reading_age_days;
    int max_connections;
    int max_connections_per_ip;
    int connection_timeout;
    int send_timeout_s;
    int export_max_per_user;
    int export_max_total;
    int statement_timeout_ms;
    int db_timeout_s;
    int shutdown_timeout_s;
    int password_hash_slots;
    int device_rate_per_min; /* 0: no limit */
    int command_lock_s;      /* redelivery lock of a command, seconds */
    bool no_migrate;
    char *trusted_proxies; /* TRUSTED_PROXIES as given; parsed into trusted_proxy_set */
    char *metrics_allow;   /* METRICS_ALLOW as given; parsed into metrics_allow_set */
    struct netaddr_set trusted_proxy_set;
    struct netaddr_set metrics_allow_set;
    char *amqp_url; /* NULL: no broker */
    int amqp_prefetch;
    char *amqp_legacy_queues; /* NULL: none */
    char *broker_auth_allow;  /* BROKER_AUTH_ALLOW as given; parsed into broker_auth_allow_set */
    struct netaddr_set broker_auth_allow_set;
    bool webhook_allow_private; /* WEBHOOK_ALLOW_PRIVATE */
    int webhook_retry_divisor;  /* WEBHOOK_RETRY_DIVISOR: 1 in production */
    int webhook_fail_window_s;  /* WEBHOOK_FAIL_WINDOW_S */
    int raw_retention_days;     /* RAW_RETENTION_DAYS: 0 keeps raw readings */
    char *archive_dir;          /* ARCHIVE_DIR: NULL drops retired months unarchived */
    char *database_read_url;    /* DATABASE_READ_URL: a streaming replica; NULL: none */
    int database_read_max_lag_s;
    int db_read_pool_size;
};

typedef const char *(*config_getenv_fn)(const char *name, void *ctx);

/* Fills cfg from env (looked up through getenv_fn) and then argv[0..argc),
 * which holds only options ("--http-port=9000" or "--http-port 9000").
 * Returns false with a one-line message in err on any bad or unknown input.
 * cfg must be freed with config_free() either way. */
bool config_parse(struct config *cfg, config_getenv_fn getenv_fn, void *env_ctx, int argc,
                  char **argv, char *err, size_t errlen);

/* Checks what `serve` needs beyond the common settings (the JWT secret, TLS
 * pairs) and loads JWT_SECRET_FILE. Returns false with err set. */
bool config_check_serve(struct config *cfg, char *err, size_t errlen);

/* HTTP_THREADS, or four per core by default. */
int config_http_threads(const struct config *cfg);

/* QUERY_WORKERS, or two per core by default: the threads that run handlers
 * waiting on PostgreSQL, which does the work meanwhile on the same cores. */
int config_query_workers(const struct config *cfg);

/* DB_POOL_SIZE, or by default one connection for each thread that may query
 * at once (HTTP threads and query workers) plus two. */
int config_db_pool_size(const struct config *cfg);

/* DB_READ_POOL_SIZE, or by default one connection per query worker: the
 * only threads that read from the replica (handlers and export chunks). */
int config_db_read_pool_size(const struct config *cfg);

/* Prints the options table (for --help). */
void config_print_help(void);

void config_free(struct config *cfg);

#endif
