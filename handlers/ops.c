#include "ops.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../api/app.h"
#include "../api/read_pool.h"
#include "../auth/authn.h"
#include "../live/hub.h"
#include "../broker/broker.h"
#include "../ingest/ingest.h"
#include "../base/metrics.h"
#include "../base/netaddr.h"
#include "../base/rate.h"

/* A READY older than this means the watcher's check hangs: PostgreSQL is not
 * answering in time, whatever it last said. */
#define READYZ_STALE_S (3 * DB_HEALTH_INTERVAL_S)

/* GET /healthz — anyone — 200 while the process runs; never touches the
 * database. */
int ops_healthz(const struct request *req, struct response *res, struct app *app)
{
    (void)req;
    (void)app;
    return response_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz — anyone — 200 when the database answers and every migration
 * is applied; 503 otherwise, and while shutting down. Reads what the pool's
 * watcher last found (at most about a second old; a closed connection is
 * seen at once), so it never queries or waits for a connection. */
int ops_readyz(const struct request *req, struct response *res, struct app *app)
{
    (void)req;
    if (atomic_load(&app->draining))
        return response_problem(res, 503, "shutting_down", NULL, "the server is shutting down");
    double age;
    enum db_health health = db_pool_health(app->pool, &age);
    if (health == DB_HEALTH_OUTDATED)
        return response_problem(res, 503, "schema_outdated", NULL,
                                "the database schema is not current; run wattline migrate");
    if (health != DB_HEALTH_READY || age > READYZ_STALE_S)
        return response_status(res, STATUS_UNAVAILABLE);
    return response_json(res, 200, json_pack("{s:s}", "status", "ready"));
}

/* GET /metrics — clients in METRICS_ALLOW — Prometheus text exposition.
 * Anyone else gets the 404 of a path that does not exist: the numbers are
 * for the operator's scraper, and an unknown client is in no range. */
int ops_metrics(const struct request *req, struct response *res, struct app *app)
{
    if (!netaddr_set_contains_text(&app->config->metrics_allow_set, req->client_ip))
        return response_problem(res, 404, "not_found", NULL, "no such resource");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    metrics_render_requests(app->metrics, &buf, &len, &cap);

    struct db_pool_stats ps;
    db_pool_stats(app->pool, &ps);
    metrics_printf(&buf, &len, &cap,
                   "# HELP wattline_db_pool_connections Database pool connections by state.\n"
                   "# TYPE wattline_db_pool_connections gauge\n"
                   "wattline_db_pool_connections{state=\"size\"} %d\n"
                   "wattline_db_pool_connections{state=\"in_use\"} %d\n"
                   "wattline_db_pool_connections{state=\"connected\"} %d\n"
                   "# HELP wattline_db_pool_acquire_timeouts_total Requests that found no free "
                   "connection in time.\n"
                   "# TYPE wattline_db_pool_acquire_timeouts_total counter\n"
                   "wattline_db_pool_acquire_timeouts_total %lu\n"
                   "# HELP wattline_db_connect_failures_total Failed connection attempts.\n"
                   "# TYPE wattline_db_connect_failures_total counter\n"
                   "wattline_db_connect_failures_total %lu\n"
                   "# HELP wattline_build_info Build information.\n"
                   "# TYPE wattline_build_info gauge\n"
                   "wattline_build_info{version=\"%s\"} 1\n",
                   ps.size, ps.in_use, ps.connected, ps.acquire_timeouts, ps.connect_failures,
                   WATTLINE_VERSION);
    struct ingest_stats is;
    ingest_stats(app->ingest, &is);
    metrics_printf(&buf, &len, &cap,
                   "# HELP wattline_readings_ingested_total Readings stored.\n"
                   "# TYPE wattline_readings_ingested_total counter\n"
                   "wattline_readings_ingested_total %llu\n"
                   "# HELP wattline_readings_duplicate_total Readings already stored.\n"
                   "# TYPE wattline_readings_duplicate_total counter\n"
                   "wattline_readings_duplicate_total %llu\n"
                   "# HELP wattline_ingest_transactions_total Ingestion transactions committed.\n"
                   "# TYPE wattline_ingest_transactions_total counter\n"
                   "wattline_ingest_transactions_total %llu\n"
                   "# HELP wattline_ingest_failures_total Ingestion transactions rolled back.\n"
                   "# TYPE wattline_ingest_failures_total counter\n"
                   "wattline_ingest_failures_total %llu\n"
                   "# HELP wattline_alerts_raised_total Alerts raised by this instance.\n"
                   "# TYPE wattline_alerts_raised_total counter\n"
                   "wattline_alerts_raised_total %llu\n",
                   is.readings, is.duplicates, is.transactions, is.failures, is.alerts);
    struct authn_stats as;
    authn_stats(app->authn, &as);
    metrics_printf(&buf, &len, &cap,
                   "# HELP wattline_authn_lookups_total Credential look-ups that went to the "
                   "database (cache misses).\n"
                   "# TYPE wattline_authn_lookups_total counter\n"
                   "wattline_authn_lookups_total{kind=\"user\"} %lu\n"
                   "wattline_authn_lookups_total{kind=\"device\"} %lu\n",
                   as.user_lookups, as.device_lookups);
    metrics_printf(&buf, &len, &cap,
                   "# HELP wattline_ingest_rate_limited_total Ingestion requests refused with "
                   "429 (DEVICE_RATE_PER_MIN).\n"
                   "# TYPE wattline_ingest_rate_limited_total counter\n"
                   "wattline_ingest_rate_limited_total %lu\n",
                   app->device_rate ? rate_table_refused(app->device_rate) : 0UL);
    if (app->broker) {
        struct broker_stats bs;
        broker_stats(app->broker, &bs);
        metrics_printf(&buf, &len, &cap,
                       "# HELP wattline_broker_connected 1 while the AMQP consumer is connected.\n"
                       "# TYPE wattline_broker_connected gauge\n"
                       "wattline_broker_connected %d\n"
                       "# HELP wattline_broker_messages_total Broker messages settled, by "
                       "outcome.\n"
                       "# TYPE wattline_broker_messages_total counter\n"
                       "wattline_broker_messages_total{result=\"stored\"} %llu\n"
                       "wattline_broker_messages_total{result=\"duplicate\"} %llu\n"
                       "wattline_broker_messages_total{result=\"dead\"} %llu\n",
                       bs.connected, bs.stored, bs.duplicate, bs.dead);
    }
    if (app->read_pool)
        read_pool_render_metrics(app->read_pool, &buf, &len, &cap);
    hub_render_metrics(app->hub, &buf, &len, &cap);
    return response_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

/* GET /api/v1/config — anyone — where the WebSocket is. */
int ops_config(const struct request *req, struct response *res, struct app *app)
{
    (void)req;
    return response_json(
        res, 200, json_pack("{s:s, s:s}", "ws_url", app->ws_url, "version", WATTLINE_VERSION));
}

/* GET /api/v1/openapi.json — anyone — the OpenAPI 3.1 description. */
int ops_openapi(const struct request *req, struct response *res, struct app *app)
{
    (void)req;
    int fd = open(app->config->openapi_file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return response_problem(res, 404, "not_found", NULL, "no OpenAPI description installed");
    }
    res->status = 200;
    res->has_file = true;
    res->file_fd = fd;
    res->file_size = (size_t)st.st_size;
    res->content_type = "application/json";
    return 200;
}
