/* wattline: serve the API, dashboard and WebSocket; migrate; add users. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../api/app.h"
#include "../api/command_poll.h"
#include "../api/export_limit.h"
#include "../api/retention.h"
#include "../api/read_pool.h"
#include "../auth/authn.h"
#include "../auth/broker_login.h"
#include "../auth/password.h"
#include "../notify/sender.h"
#include "../live/hub.h"
#include "../broker/broker.h"
#include "../ingest/ingest.h"
#include "../base/metrics.h"
#include "../auth/throttle.h"
#include "../base/rate.h"
#include "cli.h"
#include "../base/config.h"
#include "http.h"
#include "../base/clock.h"
#include "../base/log.h"
#include "../db/migration_files.h"
#include "../db/retention.h"
#include "../base/month.h"
#include "routes.h"
#include "ws.h"

#define EXIT_CONFIG 2
/* Of SHUTDOWN_TIMEOUT_S, what the teardown after the drain may take. */
#define SHUTDOWN_TEARDOWN_S 1.5
/* Client addresses whose failed logins are remembered (about 100 bytes each). */
#define LOGIN_THROTTLE_SLOTS 4096
/* Sets of RATE_WAYS device buckets: 16,384 devices posting at once on one
 * instance before two share a set (ids are sequential). */
#define DEVICE_RATE_SETS 4096

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: wattline COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  serve                      serve the API, dashboard and WebSocket\n"
            "  migrate                    apply database migrations and exit\n"
            "  user add --email E --name N --role admin|client [--generate-password] "
            "[--if-none]\n"
            "                             add a user; the password is read as one line on\n"
            "                             standard input unless --generate-password prints one\n"
            "  archive --before YYYY-MM [--force]\n"
            "                             retire the raw readings of every month before that\n"
            "                             one (archived first when ARCHIVE_DIR is set)\n"
            "  --help, --version\n"
            "\n");
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Parses settings for a command; exits with status 2 on a bad one. */
static void load_config(struct config *cfg, int argc, char **argv, bool serving)
{
    char err[512];
    bool ok = config_parse(cfg, env_lookup, NULL, argc, argv, err, sizeof err) &&
              (!serving || config_check_serve(cfg, err, sizeof err));
    if (!ok) {
        fprintf(stderr, "wattline: %s\n", err);
        config_free(cfg);
        exit(EXIT_CONFIG);
    }
    log_setup(cfg->log_level, cfg->log_format);
}

/* Every connection notices a vanished server within DB_TIMEOUT_S, and no
 * statement outlives it either (a longer STATEMENT_TIMEOUT_MS is cut to it):
 * the caller gets a 503 rather than a hang. */
static struct db_pool_options pool_options(const struct config *cfg, int size)
{
    int db_timeout_ms = cfg->db_timeout_s * 1000;
    return (struct db_pool_options){
        .url = cfg->database_url,
        .size = size,
        .statement_timeout_ms =
            cfg->statement_timeout_ms < db_timeout_ms ? cfg->statement_timeout_ms : db_timeout_ms,
        .connect_timeout_s = 3,
        .application_name = "wattline",
        .timeout_s = cfg->db_timeout_s,
    };
}

/* Applies pending migrations, waiting up to wait_s for PostgreSQL to accept
 * connections (containers start together). Returns an exit status. They run
 * as the schema's owner (DATABASE_OWNER_URL) when it is set: the serving
 * role may not create anything. */
static int run_migrations(const struct config *cfg, const struct migration_set *set, int wait_s)
{
    char err[512];
    struct db_pool_options opts = pool_options(cfg, 1);
    if (cfg->database_owner_url)
        opts.url = cfg->database_owner_url;
    struct db_conn *conn = NULL;
    for (int i = 0; !(conn = db_connect(&opts, err, sizeof err)) && i < wait_s; i++)
        sleep(1);
    if (!conn) {
        fprintf(stderr, "wattline: %s\n", err);
        return 1;
    }
    int applied = 0;
    enum status st = db_migrate(conn, set->items, set->count, &applied, err, sizeof err);
    db_disconnect(conn);
    if (st != STATUS_OK) {
        fprintf(stderr, "wattline: %s\n", err);
        return 1;
    }
    log_info("migrate: schema current (%zu migrations, %d applied now)", set->count, applied);
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    struct config cfg;
    load_config(&cfg, argc, argv, false);
    struct migration_set set;
    char err[512];
    int rc = 1;
    if (!migrations_load(cfg.migrations_dir, &set, err, sizeof err))
        fprintf(stderr, "wattline: %s\n", err);
    else
        rc = run_migrations(&cfg, &set, 10);
    migrations_free(&set);
    config_free(&cfg);
    return rc;
}

/* "ws://127.0.0.1:8081/ws" unless PUBLIC_WS_URL says otherwise. */
static void build_ws_url(const struct config *cfg, char *out, size_t size)
{
    if (cfg->public_ws_url)
        snprintf(out, size, "%s", cfg->public_ws_url);
    else
        snprintf(out, size, "%s://%s:%d/ws", cfg->tls_cert ? "wss" : "ws",
                 strcmp(cfg->http_addr, "0.0.0.0") ? cfg->http_addr : "127.0.0.1", cfg->ws_port);
}

static void build_csp(const char *ws_url, char *out, size_t size)
{
    /* connect-src must name the WebSocket origin: it is on its own port. */
    snprintf(out, size,
             "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self' %s; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
             ws_url);
}

/* The live side: the hub and its worker, the WebSocket server, and the
 * LISTEN connection that feeds them notifications from every instance. */
struct realtime {
    struct ws_server *ws;
    struct listener *listener;
};

/* The hub exists before HTTP starts (/metrics reads it); it is fed only
 * once realtime_start() has run. */
static struct hub *realtime_hub_create(struct app *app)
{
    const struct config *cfg = app->config;
    struct hub_limits limits = {.max_sessions = cfg->ws_max_sessions,
                                .max_sessions_per_user = cfg->ws_max_sessions_per_user,
                                .max_unauth_per_addr = cfg->ws_max_unauth_per_addr,
                                .command_lock_s = cfg->command_lock_s};
    struct hub_store store = hub_store_for_app(app);
    return hub_create(&limits, &store);
}

/* The listener's events (listener thread): the devices of changed commands
 * wake their long-polls here, and everything goes to the hub. */
static void realtime_on_events(void *ctx, struct listener_events *ev)
{
    struct app *app = ctx;
    if (ev->readings_horizon > 0) /* a month was retired, here or elsewhere */
        ingest_set_horizon(app->ingest, ev->readings_horizon * 1000000LL);
    command_poll_wake(app->command_poll, ev->command_devices, ev->ncommand_devices);
    broker_wake_commands(app->broker, ev->command_devices, ev->ncommand_devices);
    hub_post_events(app->hub, ev);
}

static bool realtime_start(struct app *app, struct realtime *rt, char *err, size_t errlen)
{
    const struct config *cfg = app->config;
    rt->ws = ws_start(cfg, app->hub, err, errlen);
    if (!rt->ws)
        return false;
    if (!hub_start(app->hub)) {
        snprintf(err, errlen, "cannot start the WebSocket worker");
        return false;
    }
    struct listener_options lo = {.url = cfg->database_url,
                                  .connect_timeout_s = 3,
                                  .timeout_s = cfg->db_timeout_s,
                                  .on_events = realtime_on_events,
                                  .ctx = app};
    rt->listener = listener_start(&lo);
    if (!rt->listener) {
        snprintf(err, errlen, "cannot start the LISTEN thread");
        return false;
    }
    return true;
}

/* In dependency order: nothing feeds the hub, then nothing wakes the lws
 * thread, then the sessions close, then the hub goes. */
static void realtime_stop(struct app *app, struct realtime *rt)
{
    listener_stop(rt->listener);
    hub_stop(app->hub);
    ws_stop(rt->ws, 1000);
    hub_free(app->hub);
    app->hub = NULL;
}

/* SIGTERM, within SHUTDOWN_TIMEOUT_S: stop accepting, close the WebSocket
 * sessions with 1001, let the requests taken finish (on a live database
 * every statement ends within DB_TIMEOUT_S, as 503 if it must). Ingestion
 * no committer has taken by the deadline is failed with 503: nothing of it
 * was stored. False when requests are still out after that (the database is
 * frozen): they were closed unanswered, and their threads cannot be joined. */
static bool shutdown_drain(struct app *app, struct http_server *http, struct realtime *rt)
{
    double start = clock_mono_s();
    double deadline = start + app->config->shutdown_timeout_s - SHUTDOWN_TEARDOWN_S;
    ws_close_sessions(rt->ws, 1000);
    command_poll_release_all(app->command_poll); /* long-polls answer now, empty */
    /* No new deliveries; the group in flight is stored and acked first. */
    broker_halt(app->broker); /* freed after the listener stops (it wakes the broker) */
    if (http_drain(http, deadline))
        return true;
    int failed = ingest_fail_queued(app->ingest);
    if (http_drain(http, clock_mono_s() + 0.3))
        return true;
    int closed = http_abandon(http);
    log_warn("shutdown: after %.1f s, %d queued reading submission(s) failed with 503 and %d "
             "request(s) still waiting on the database closed unanswered",
             clock_mono_s() - start, failed, closed);
    return false;
}

/* Ingestion refuses readings into retired months from the first request;
 * the listener keeps the horizon current from then on, and hands it over
 * again on every (re)connection. A database that is down or not migrated yet
 * does not stop the start (/healthz, /readyz must answer): the listener
 * brings the horizon when it connects, and until then a reading into a
 * retired month is refused by the database's own guard (migration 0012). */
static void load_horizon(struct app *app)
{
    struct db_conn *c = db_pool_acquire(app->pool, 1000);
    bool none = true;
    int month;
    enum status st = c ? db_retention_horizon(c, &none, &month) : STATUS_UNAVAILABLE;
    db_pool_release(app->pool, c);
    if (st != STATUS_OK)
        log_warn("retention: the horizon of raw readings is not known yet; the listener "
                 "will bring it");
    else if (!none)
        ingest_set_horizon(app->ingest, month_start(month) * 1000000LL);
}

static void retention_log(void *ctx, const char *text)
{
    (void)ctx;
    log_info("retention: %s", text);
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    load_config(&cfg, argc, argv, true);

    /* Signals are taken synchronously by this thread; every thread started
     * below inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512], ws_url[512], csp[1024];
    int rc = 1;
    struct migration_set migrations = {0};
    struct app app = {.config = &cfg};
    struct http_server *http = NULL;
    struct realtime realtime = {0};
    struct sender *sender = NULL;
    struct retention *retention = NULL;

    if (!migrations_load(cfg.migrations_dir, &migrations, err, sizeof err)) {
        fprintf(stderr, "wattline: %s\n", err);
        goto out;
    }
    if (!cfg.no_migrate && run_migrations(&cfg, &migrations, 30) != 0)
        goto out;

    build_ws_url(&cfg, ws_url, sizeof ws_url);
    build_csp(ws_url, csp, sizeof csp);
    app.ws_url = ws_url;
    app.csp = csp;
    app.migrations = &migrations;

    struct db_pool_options opts = pool_options(&cfg, config_db_pool_size(&cfg));
    const char *methods[64], *patterns[64];
    for (size_t i = 0; i < ROUTES_COUNT && i < 64; i++) {
        methods[i] = ROUTES[i].method;
        patterns[i] = ROUTES[i].pattern;
    }
    app.pool = db_pool_create(&opts);
    app.metrics = metrics_create(methods, patterns, ROUTES_COUNT);
    app.authn = authn_create(app.pool, cfg.jwt_secret, cfg.jwt_secret_len);
    app.password_limiter = password_limiter_create(cfg.password_hash_slots);
    app.login_throttle = throttle_table_create(&THROTTLE_ADDRESS, LOGIN_THROTTLE_SLOTS);
    /* A minute's allowance at once (a device back online), then the rate. */
    const struct rate_policy device_rate = {.per_s = cfg.device_rate_per_min / 60.0,
                                            .burst = cfg.device_rate_per_min};
    if (cfg.device_rate_per_min > 0)
        app.device_rate = rate_table_create(&device_rate, DEVICE_RATE_SETS);
    app.exports = export_limit_create(cfg.export_max_per_user, cfg.export_max_total);
    if (cfg.amqp_url)
        app.broker_login = broker_login_create(app.pool);
    app.command_poll = command_poll_start(app.pool, cfg.command_lock_s);
    if (!app.pool || !app.metrics || !app.authn || !app.password_limiter || !app.login_throttle ||
        (cfg.device_rate_per_min > 0 && !app.device_rate) || !app.exports ||
        (cfg.amqp_url && !app.broker_login) || !app.command_poll ||
        !db_pool_watch(app.pool, migrations.items, migrations.count)) {
        fprintf(stderr, "wattline: out of memory\n");
        goto out;
    }
    if (cfg.database_read_url) {
        /* The replica's pool: the same code, its own size, named so that
         * operators (and the tests) tell its sessions from the primary's. */
        struct db_pool_options ro = pool_options(&cfg, config_db_read_pool_size(&cfg));
        ro.url = cfg.database_read_url;
        ro.application_name = "wattline-read";
        app.read_db = db_pool_create(&ro);
        app.read_pool =
            app.read_db ? read_pool_create(app.read_db, cfg.database_read_max_lag_s) : NULL;
        if (!app.read_pool || !db_pool_watch_replica(app.read_db)) {
            fprintf(stderr, "wattline: out of memory\n");
            goto out;
        }
    }
    struct ingest_store ingest_store = ingest_store_pg(&opts); /* opts outlives the ingest */
    app.ingest =
        ingest_start(&ingest_store, cfg.max_reading_age_days * INGEST_DAY_US, err, sizeof err);
    if (!app.ingest) {
        fprintf(stderr, "wattline: %s\n", err);
        goto out;
    }
    load_horizon(&app);
    if (cfg.amqp_url) {
        struct broker_options bo = {.url = cfg.amqp_url,
                                    .prefetch = cfg.amqp_prefetch,
                                    .legacy_queues = cfg.amqp_legacy_queues,
                                    .ingest = app.ingest,
                                    .pool = app.pool,
                                    .max_age_us = cfg.max_reading_age_days * INGEST_DAY_US,
                                    .command_lock_s = cfg.command_lock_s};
        app.broker = broker_start(&bo, err, sizeof err);
        if (!app.broker) {
            fprintf(stderr, "wattline: %s\n", err);
            goto out;
        }
    }
    /* Webhooks: secrets sealed under a key of their own, derived from the JWT
     * secret (every instance shares it); one sender thread per instance. */
    if (!secretbox_derive_key(cfg.jwt_secret, cfg.jwt_secret_len, "wattline webhook secrets v1",
                              app.webhook_key) ||
        !sender_global_init()) {
        fprintf(stderr, "wattline: cannot set up webhooks (OpenSSL or libcurl)\n");
        goto out;
    }
    struct sender_options so = {.database_url = cfg.database_url,
                                .db_timeout_s = cfg.db_timeout_s,
                                .key = app.webhook_key,
                                .allow_private = cfg.webhook_allow_private,
                                .retry_divisor = cfg.webhook_retry_divisor,
                                .fail_window_s = cfg.webhook_fail_window_s};
    /* Retention at start, then hourly, on a thread of its own: a pass may
     * archive for minutes. */
    struct retention_options ro = {
        .db = &opts, .archive_dir = cfg.archive_dir, .report = {.line = retention_log}};
    if (cfg.raw_retention_days > 0 && !(retention = retention_start(&ro, cfg.raw_retention_days))) {
        fprintf(stderr, "wattline: cannot start the retention thread\n");
        goto out;
    }
    sender = sender_start(&so);
    if (!sender) {
        fprintf(stderr, "wattline: cannot start the webhook sender\n");
        goto out;
    }
    app.hub = realtime_hub_create(&app);
    if (!app.hub) {
        fprintf(stderr, "wattline: out of memory\n");
        goto out;
    }
    /* The WebSocket is up before HTTP answers: whoever sees /healthz can connect. */
    if (!realtime_start(&app, &realtime, err, sizeof err)) {
        fprintf(stderr, "wattline: %s\n", err);
        goto out;
    }
    http = http_start(&app, err, sizeof err);
    if (!http) {
        fprintf(stderr, "wattline: %s\n", err);
        goto out;
    }
    log_info("serving http%s://%s:%d/ (WebSocket %s)", cfg.tls_cert ? "s" : "", cfg.http_addr,
             cfg.http_port, ws_url);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("received %s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&app.draining, true);
    rc = 0;
    if (!shutdown_drain(&app, http, &realtime)) {
        /* Threads stuck in a database that no longer answers cannot be
         * joined: the process ends without them, having answered or closed
         * every connection. */
        http_stop(http, false);
        log_info("stopped");
        fflush(NULL);
        _exit(0);
    }

out:
    http_stop(http, true);
    realtime_stop(&app, &realtime);
    command_poll_stop(app.command_poll); /* after HTTP: no poll is left to register */
    retention_stop(retention);
    sender_stop(sender);
    if (sender)
        sender_global_cleanup();
    broker_stop(app.broker); /* before ingest: its submissions wait on the committers */
    ingest_stop(app.ingest); /* after HTTP: no submission is left waiting */
    password_limiter_free(app.password_limiter);
    throttle_table_free(app.login_throttle);
    rate_table_free(app.device_rate);
    export_limit_free(app.exports);
    broker_login_free(app.broker_login);
    authn_free(app.authn);
    metrics_free(app.metrics);
    read_pool_free(app.read_pool);
    db_pool_free(app.read_db);
    db_pool_free(app.pool);
    migrations_free(&migrations);
    config_free(&cfg);
    if (rc == 0)
        log_info("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_CONFIG;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        config_print_help();
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("wattline %s\n", WATTLINE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "migrate"))
        return cmd_migrate(argc - 2, argv + 2);
    if (!strcmp(cmd, "archive"))
        return cli_archive(argc - 2, argv + 2);
    if (!strcmp(cmd, "user") && argc >= 3 && !strcmp(argv[2], "add"))
        return cli_user_add(argc - 3, argv + 3);
    fprintf(stderr, "wattline: unknown command '%s' (see wattline --help)\n", cmd);
    return EXIT_CONFIG;
}
