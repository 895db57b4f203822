#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL, OPT_LOG_LEVEL, OPT_LOG_FORMAT };

struct option_spec {
    const char *env;
    enum opt_type type;
    size_t offset;
    const char *fallback; /* default as text, NULL for none */
    long min, max;        /* OPT_INT bounds */
    const char *help;
};

#define STR(field, env, def, help)                                                                 \
    {                                                                                              \
        env, OPT_STRING, offsetof(struct config, field), def, 0, 0, help                           \
    }
#define INT(field, env, def, lo, hi, help)                                                         \
    {                                                                                              \
        env, OPT_INT, offsetof(struct config, field), def, lo, hi, help                            \
    }

static const struct option_spec OPTIONS[] = {
    STR(database_url, "DATABASE_URL", NULL, "PostgreSQL connection URL (required)"),
    STR(database_owner_url, "DATABASE_OWNER_URL", NULL,
        "URL of the role that owns the schema, for migrations (default DATABASE_URL)"),
    STR(http_addr, "HTTP_ADDR", "127.0.0.1", "address to listen on (HTTP and WebSocket)"),
    INT(http_port, "HTTP_PORT", "8080", 1, 65535, "HTTP(S) port for the API and dashboard"),
    INT(ws_port, "WS_PORT", "8081", 1, 65535, "WebSocket port (path /ws)"),
    STR(jwt_secret, "JWT_SECRET", NULL, "HS256 secret, at least 32 bytes"),
    STR(jwt_secret_file, "JWT_SECRET_FILE", NULL, "file holding the JWT secret"),
    INT(access_token_ttl, "ACCESS_TOKEN_TTL", "900", 60, 86400, "access token lifetime, seconds"),
    STR(tls_cert, "TLS_CERT", NULL, "PEM certificate: serve HTTPS and WSS"),
    STR(tls_key, "TLS_KEY", NULL, "PEM private key for TLS_CERT"),
    STR(web_root, "WEB_ROOT", "web", "directory of the dashboard's static files"),
    STR(migrations_dir, "MIGRATIONS_DIR", "migrations", "directory of numbered SQL migrations"),
    STR(openapi_file, "OPENAPI_FILE", "docs/openapi.json", "the OpenAPI description to serve"),
    STR(public_ws_url, "PUBLIC_WS_URL", NULL,
        "WebSocket URL announced to clients (behind a proxy)"),
    {"LOG_LEVEL", OPT_LOG_LEVEL, offsetof(struct config, log_level), "info", 0, 0,
     "debug | info | warn | error"},
    {"LOG_FORMAT", OPT_LOG_FORMAT, offsetof(struct config, log_format), "text", 0, 0,
     "text | json"},
    INT(db_pool_size, "DB_POOL_SIZE", "0", 0, 256,
        "database connections (0: HTTP threads + query workers + 2)"),
    INT(http_threads, "HTTP_THREADS", "0", 0, 256, "HTTP worker threads (0: four per core)"),
    INT(query_workers, "QUERY_WORKERS", "0", 0, 256,
        "threads for handlers that wait on PostgreSQL (0: two per core)"),
    INT(ws_max_sessions_per_user, "WS_MAX_SESSIONS_PER_USER", "16", 1, 100000,
        "open WebSocket sessions per user"),
    INT(ws_max_sessions, "WS_MAX_SESSIONS", "20000", 1, 1000000,
        "authenticated WebSocket sessions in all"),
    INT(ws_max_unauth_per_addr, "WS_MAX_UNAUTH_PER_ADDR", "16", 1, 100000,
        "WebSocket sessions not yet authenticated, per client address"),
    INT(max_body_bytes, "MAX_BODY_BYTES", "1572864", 1024, 1 << 30,
        "largest request body, bytes (a 10,000-reading batch fits)"),
    INT(max_reading_age_days, "MAX_READING_AGE_DAYS", "1100", 1, 36500,
        "oldest reading taken, days before the server's time (bounds the hours one request "
        "writes)"),
    INT(max_connections, "MAX_CONNECTIONS", "4096", 1, 1000000, "open HTTP connections in all"),
    INT(max_connections_per_ip, "MAX_CONNECTIONS_PER_IP", "1024", 1, 1000000,
        "open HTTP connections per client address"),
    INT(connection_timeout, "CONNECTION_TIMEOUT", "60", 1, 3600,
        "idle HTTP connection timeout, seconds"),
    INT(send_timeout_s, "SEND_TIMEOUT_S", "60", 1, 3600,
        "drop a client whose streamed response (a CSV export) has not moved for this long, s"),
    INT(export_max_per_user, "EXPORT_MAX_PER_USER", "2", 1, 1000,
        "CSV exports one user may have in progress (one more is 429)"),
    INT(export_max_total, "EXPORT_MAX_TOTAL", "16", 1, 10000,
        "CSV exports in progress in all (one more is 503)"),
    INT(statement_timeout_ms, "STATEMENT_TIMEOUT_MS", "10000", 100, 3600000,
        "PostgreSQL statement_timeout, milliseconds (at most DB_TIMEOUT_S)"),
    INT(db_timeout_s, "DB_TIMEOUT_S", "10", 2, 3600,
        "a vanished database is noticed within this (TCP keepalives, user timeout), seconds"),
    INT(shutdown_timeout_s, "SHUTDOWN_TIMEOUT_S", "15", 1, 3600,
        "on SIGTERM, finish or fail the requests taken and exit within this, seconds"),
    INT(password_hash_slots, "PASSWORD_HASH_SLOTS", "4", 1, 64, "password hashes run at once"),
    INT(device_rate_per_min, "DEVICE_RATE_PER_MIN", "600", 0, 6000000,
        "ingestion requests per device a minute on this instance (0: no limit)"),
    INT(command_lock_s, "COMMAND_LOCK_S", "30", 1, 86400,
        "a command delivered and not answered is delivered again after this, seconds"),
    {"NO_MIGRATE", OPT_BOOL, offsetof(struct config, no_migrate), "false", 0, 0,
     "serve without applying migrations"},
    STR(trusted_proxies, "TRUSTED_PROXIES", NULL,
        "proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For is believed"),
    STR(metrics_allow, "METRICS_ALLOW", "127.0.0.0/8,::1",
        "client ranges that may read /metrics (others get 404)"),
    STR(amqp_url, "AMQP_URL", NULL,
        "RabbitMQ to consume readings from (amqp://user:pass@host:5672/vhost); off when unset"),
    INT(amqp_prefetch, "AMQP_PREFETCH", "512", 1, 65535,
        "unacknowledged broker messages this instance holds at most"),
    STR(amqp_legacy_queues, "AMQP_LEGACY_QUEUES", NULL,
        "existing queues (comma-separated) that legacy simulators publish to"),
    STR(broker_auth_allow, "BROKER_AUTH_ALLOW", "127.0.0.0/8,::1",
        "client ranges that may call /api/v1/broker/auth/* (others get 404)"),
    {"WEBHOOK_ALLOW_PRIVATE", OPT_BOOL, offsetof(struct config, webhook_allow_private), "false", 0,
     0, "let webhooks reach loopback, private and link-local addresses (tests, labs)"},
    INT(webhook_retry_divisor, "WEBHOOK_RETRY_DIVISOR", "1", 1, 100000,
        "divides the webhook retry schedule (10 s .. 6 h); only tests shorten it"),
    INT(webhook_fail_window_s, "WEBHOOK_FAIL_WINDOW_S", "86400", 1, 31536000,
        "a webhook failing for this long without a success turns inactive, seconds"),
    INT(raw_retention_days, "RAW_RETENTION_DAYS", "0", 0, 36500,
        "drop raw readings by whole months once all of a month is this old (0: keep)"),
    STR(archive_dir, "ARCHIVE_DIR", NULL,
        "write each month to <dir>/<yyyy-mm>/device-<id>.csv.gz before it is dropped"),
    STR(database_read_url, "DATABASE_READ_URL", NULL,
        "a streaming replica for charts, readings, exports and lists; off when unset"),
    INT(database_read_max_lag_s, "DATABASE_READ_MAX_LAG_S", "5", 1, 3600,
        "a replica further behind than this is not read from (the primary is), seconds"),
    INT(db_read_pool_size, "DB_READ_POOL_SIZE", "0", 0, 256,
        "connections to DATABASE_READ_URL (0: one per query worker)"),
};

#define NOPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

/* "HTTP_PORT" -> "http-port" */
static void flag_name(const char *env, char *out, size_t size)
{
    size_t i = 0;
    for (; env[i] && i + 1 < size; i++)
        out[i] = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
    out[i] = '\0';
}

static bool set_value(struct config *cfg, const struct option_spec *o, const char *value,
                      const char *source, char *err, size_t errlen)
{
    char *base = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        char **slot = (char **)base;
        free(*slot);
        *slot = strdup(value);
        if (!*slot) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        if (slot == &cfg->jwt_secret)
            cfg->jwt_secret_len = strlen(value);
        return true;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: invalid %s '%s' (an integer from %ld to %ld)", source,
                     o->env, value, o->min, o->max);
            return false;
        }
        *(int *)base = (int)v;
        return true;
    }
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(bool *)base = true;
        } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") ||
                   !*value) {
            *(bool *)base = false;
        } else {
            snprintf(err, errlen, "%s: invalid %s '%s' (true or false)", source, o->env, value);
            return false;
        }
        return true;
    case OPT_LOG_LEVEL: {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(value, levels[i])) {
                *(int *)base = i;
                return true;
            }
        snprintf(err, errlen, "%s: invalid %s '%s' (debug, info, warn or error)", source, o->env,
                 value);
        return false;
    }
    case OPT_LOG_FORMAT:
        if (!strcmp(value, "text") || !strcmp(value, "json")) {
            *(int *)base = !strcmp(value, "json") ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
            return true;
        }
        snprintf(err, errlen, "%s: invalid %s '%s' (text or json)", source, o->env, value);
        return false;
    }
    return false;
}

static const struct option_spec *find_flag(const char *name, size_t len)
{
    char flag[64];
    for (size_t i = 0; i < NOPTIONS; i++) {
        flag_name(OPTIONS[i].env, flag, sizeof flag);
        if (strlen(flag) == len && !strncmp(flag, name, len))
            return &OPTIONS[i];
    }
    return NULL;
}

/* The address lists, parsed once here so that a typo stops the start. */
static bool address_sets_parse(struct config *cfg, char *err, size_t errlen)
{
    char why[160];
    if (!netaddr_set_parse(cfg->trusted_proxies, &cfg->trusted_proxy_set, why, sizeof why)) {
        snprintf(err, errlen, "invalid TRUSTED_PROXIES: %s", why);
        return false;
    }
    if (!netaddr_set_parse(cfg->metrics_allow, &cfg->metrics_allow_set, why, sizeof why)) {
        snprintf(err, errlen, "invalid METRICS_ALLOW: %s", why);
        return false;
    }
    if (!netaddr_set_parse(cfg->broker_auth_allow, &cfg->broker_auth_allow_set, why, sizeof why)) {
        snprintf(err, errlen, "invalid BROKER_AUTH_ALLOW: %s", why);
        return false;
    }
    return true;
}

bool config_parse(struct config *cfg, config_getenv_fn getenv_fn, void *env_ctx, int argc,
                  char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = getenv_fn(OPTIONS[i].env, env_ctx);
        if (v && !*v && OPTIONS[i].type == OPT_STRING)
            v = NULL; /* an empty variable means unset */
        if (!v)
            v = OPTIONS[i].fallback;
        if (v && !set_value(cfg, &OPTIONS[i], v, "environment", err, errlen))
            return false;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            return false;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_spec *o = find_flag(name, len);
        if (!o) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)len, name);
            return false;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type == OPT_BOOL)
            value = "true";
        if (!value && i + 1 < argc)
            value = argv[++i];
        if (!value) {
            snprintf(err, errlen, "option '--%.*s' needs a value", (int)len, name);
            return false;
        }
        if (!set_value(cfg, o, value, "command line", err, errlen))
            return false;
    }
    if (!address_sets_parse(cfg, err, errlen))
        return false;
    if (!cfg->database_url) {
        snprintf(err, errlen,
                 "DATABASE_URL is not set (e.g. postgresql://user@localhost/wattline)");
        return false;
    }
    return true;
}

static bool read_secret_file(struct config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(cfg->jwt_secret_file, "rb");
    if (!f) {
        snprintf(err, errlen, "JWT_SECRET_FILE: cannot open '%s': %s", cfg->jwt_secret_file,
                 strerror(errno));
        return false;
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool too_long = !feof(f);
    fclose(f);
    if (too_long) {
        snprintf(err, errlen, "JWT_SECRET_FILE: '%s' is longer than 4096 bytes",
                 cfg->jwt_secret_file);
        return false;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--; /* editors and `echo` add a newline that is not part of the secret */
    buf[n] = '\0';
    free(cfg->jwt_secret);
    cfg->jwt_secret = malloc(n + 1);
    if (!cfg->jwt_secret) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(cfg->jwt_secret, buf, n + 1);
    cfg->jwt_secret_len = n;
    explicit_bzero(buf, sizeof buf);
    return true;
}

bool config_check_serve(struct config *cfg, char *err, size_t errlen)
{
    if (cfg->jwt_secret_file && !read_secret_file(cfg, err, errlen))
        return false;
    if (!cfg->jwt_secret) {
        snprintf(err, errlen, "JWT_SECRET or JWT_SECRET_FILE must be set (at least 32 bytes)");
        return false;
    }
    if (cfg->jwt_secret_len < 32) {
        snprintf(err, errlen, "the JWT secret is %zu bytes; at least 32 are required",
                 cfg->jwt_secret_len);
        return false;
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        snprintf(err, errlen, "TLS_CERT and TLS_KEY must be set together");
        return false;
    }
    const char *files[] = {cfg->tls_cert, cfg->tls_key};
    for (int i = 0; i < 2; i++)
        if (files[i] && access(files[i], R_OK) != 0) {
            snprintf(err, errlen, "%s: cannot read '%s': %s", i ? "TLS_KEY" : "TLS_CERT", files[i],
                     strerror(errno));
            return false;
        }
    return true;
}

static int per_core(int n)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return n * (cores > 0 && cores < 64 ? (int)cores : 2);
}

int config_http_threads(const struct config *cfg)
{
    return cfg->http_threads ? cfg->http_threads : per_core(4);
}

int config_query_workers(const struct config *cfg)
{
    return cfg->query_workers ? cfg->query_workers : per_core(2);
}

int config_db_pool_size(const struct config *cfg)
{
    return cfg->db_pool_size ? cfg->db_pool_size
                             : config_http_threads(cfg) + config_query_workers(cfg) + 2;
}

int config_db_read_pool_size(const struct config *cfg)
{
    return cfg->db_read_pool_size ? cfg->db_read_pool_size : config_query_workers(cfg);
}

void config_print_help(void)
{
    char flag[64];
    printf("Settings (environment variable, or the flag, which wins):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        flag_name(OPTIONS[i].env, flag, sizeof flag);
        printf("  --%-26s %-26s %s%s%s%s\n", flag, OPTIONS[i].env, OPTIONS[i].help,
               OPTIONS[i].fallback ? " [" : "", OPTIONS[i].fallback ? OPTIONS[i].fallback : "",
               OPTIONS[i].fallback ? "]" : "");
    }
}

void config_free(struct config *cfg)
{
    if (cfg->jwt_secret)
        explicit_bzero(cfg->jwt_secret, cfg->jwt_secret_len);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (OPTIONS[i].type == OPT_STRING) {
            char **slot = (char **)((char *)cfg + OPTIONS[i].offset);
            free(*slot);
            *slot = NULL;
        }
}
