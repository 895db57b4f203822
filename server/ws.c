#include "ws.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../live/hub.h"
#include "../base/log.h"
#include "../base/clock.h"
#include "../base/netaddr.h"

#define TICK_US           (100 * LWS_US_PER_MS)
#define CLOSE_GRACE_S     5   /* a closing peer that does not read is cut after this */
#define CLOSE_QUIET_S     0.2 /* a close waits until the peer paused sending this long */
#define CLOSE_WAIT_MAX_S  2.0 /* ... but not longer than this */
#define CLOSE_WAIT_STOP_S 0.3 /* ... or this, when the server stops (ws_stop's drain is short) */

/* One queued outgoing text frame, with the LWS_PRE head room lws_write needs. */
struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

/* Per-connection data, allocated and zeroed by lws. The hub's handle for a
 * session is a pointer to this (valid until LWS_CALLBACK_CLOSED). */
struct ws_conn {
    struct ws_server *srv;
    struct lws *wsi;
    struct hub_session *session;
    struct ws_conn *prev, *next; /* every open connection, for the shutdown */

    struct outmsg *head, *tail;
    size_t nqueued, queued_bytes;
    double progress_at; /* the last write, or when the queue last became non-empty */

    unsigned char *rx; /* the message being received, across fragments */
    size_t rx_len, rx_cap;

    double last_rx_at;
    bool closing;
    bool close_deferred; /* the close frame waits for the peer to pause */
    double closing_since;
    int close_code;
    char close_text[64];
    enum hub_close_reason reason; /* the transport's own reason, if any */
};

struct ws_server {
    struct hub *hub;
    const struct netaddr_set *trusted; /* TRUSTED_PROXIES (the config's) */
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t tick;
    double last_stall_scan;
    struct ws_conn *conns; /* service thread only */
    atomic_int nconns;     /* its length, for ws_stop() on the main thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;      /* the service loop ends */
    atomic_bool shutting_down; /* close every session with 1001 */
};

/* ---- outgoing queue ------------------------------------------------------ */

static void queue_clear(struct ws_conn *c)
{
    unsigned long dropped = 0;
    for (struct outmsg *m = c->head, *next; m; m = next) {
        next = m->next;
        free(m);
        dropped++;
    }
    c->head = c->tail = NULL;
    c->nqueued = c->queued_bytes = 0;
    if (dropped && c->srv)
        hub_count_dropped(c->srv->hub, dropped);
}

static size_t transport_queued(void *conn)
{
    const struct ws_conn *c = conn;
    return c->nqueued;
}

/* Drops a session: it is not reading, so a close frame would not get through. */
static void drop_slow(struct ws_conn *c)
{
    queue_clear(c);
    c->closing = true;
    c->reason = HUB_CLOSED_SLOW_CONSUMER;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* hub_transport.send: queues a frame; a full queue drops the session (its
 * client reconnects with since_alert_id and loses nothing). */
static bool transport_send(void *conn, const char *text, size_t len)
{
    struct ws_conn *c = conn;
    if (c->closing) {
        hub_count_dropped(c->srv->hub, 1);
        return false;
    }
    if (c->nqueued >= WS_QUEUE_MAX_MESSAGES || c->queued_bytes + len > WS_QUEUE_MAX_BYTES) {
        hub_count_dropped(c->srv->hub, 1);
        drop_slow(c);
        return false;
    }
    struct outmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) {
        hub_count_dropped(c->srv->hub, 1);
        return false;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    if (!c->head)
        c->progress_at = clock_wall_s();
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->nqueued++;
    c->queued_bytes += len;
    lws_callback_on_writable(c->wsi);
    return true;
}

/* Starts a close with a code. Closing a socket that still has unread input
 * makes the kernel send a reset, and a peer that is still sending (a flood,
 * the rest of an oversized message) would then lose our close frame: so
 * what it sends meanwhile is read and dropped, and the close frame goes out
 * once it pauses (or after CLOSE_WAIT_MAX_S). */
static void request_close(struct ws_conn *c, int code, const char *text,
                          enum hub_close_reason reason)
{
    if (c->closing)
        return;
    queue_clear(c);
    double now = clock_wall_s();
    c->closing = true;
    c->closing_since = now;
    c->close_code = code;
    if (!c->reason)
        c->reason = reason;
    snprintf(c->close_text, sizeof c->close_text, "%s", text ? text : "");
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_GRACE_S);
    c->close_deferred = now - c->last_rx_at < CLOSE_QUIET_S;
    if (!c->close_deferred)
        lws_callback_on_writable(c->wsi);
}

/* hub_transport.close: the hub's reason is the hub's to count. */
static void transport_close(void *conn, int code, const char *reason)
{
    request_close(conn, code, reason, HUB_CLOSED_NONE);
}

/* hub_transport.wake: the one lws call that is safe from other threads. */
static void transport_wake(void *ctx)
{
    struct ws_server *srv = ctx;
    lws_cancel_service(srv->ctx);
}

/* ---- callbacks ------------------------------------------------------------- */

/* Only GET /ws upgrades; anything else is refused before the handshake. */
static int filter_connection(struct lws *wsi)
{
    char uri[64];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    return n < 0 || strcmp(uri, WS_PATH) != 0;
}

/* The client's address as the hub counts it, settled as for HTTP
 * (base/netaddr.h): the peer, or, when the peer is one of TRUSTED_PROXIES,
 * the address its X-Forwarded-For names (lws joins repeated headers with
 * commas). An IPv4 client of a dual-stack socket is written as IPv4; "" when
 * unknown (the hub keys all of those together). */
static void client_address(const struct ws_server *srv, struct lws *wsi, char *out, size_t size)
{
    char text[HUB_ADDR_MAX], got[NETADDR_TEXT_MAX];
    struct netaddr peer;
    bool known =
        lws_get_peer_simple(wsi, text, sizeof text) && netaddr_parse(text, strlen(text), &peer);
    char *xff = NULL;
    int len = known && netaddr_set_contains(srv->trusted, &peer)
                  ? lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR)
                  : 0;
    if (len > 0 && (!(xff = malloc((size_t)len + 1)) ||
                    lws_hdr_copy(wsi, xff, len + 1, WSI_TOKEN_X_FORWARDED_FOR) < 0))
        known = false;
    const char *values[1] = {xff};
    netaddr_client_text(srv->trusted, known ? &peer : NULL, values, xff ? 1 : 0, got);
    free(xff);
    snprintf(out, size, "%s", strcmp(got, NETADDR_UNKNOWN) ? got : "");
}

static int on_established(struct ws_server *srv, struct lws *wsi, struct ws_conn *c)
{
    c->srv = srv;
    c->wsi = wsi;
    char addr[HUB_ADDR_MAX];
    client_address(srv, wsi, addr, sizeof addr);
    struct hub_refusal refused;
    c->session = hub_session_open(srv->hub, c, addr, clock_wall_s(), &refused);
    if (!c->session) {
        lws_close_reason(wsi, (enum lws_close_status)refused.code, (unsigned char *)refused.reason,
                         strlen(refused.reason));
        return -1;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    atomic_fetch_add(&srv->nconns, 1);
    return 0;
}

/* Gathers fragments; a complete message goes to the hub. */
static int on_receive(struct ws_server *srv, struct lws *wsi, struct ws_conn *c, const void *in,
                      size_t len)
{
    c->last_rx_at = clock_wall_s();
    if (c->closing || !c->session)
        return 0; /* dropped: see request_close() */
    if (c->rx_len + len > WS_MAX_MESSAGE) {
        c->rx_len = 0;
        request_close(c, HUB_CLOSE_CODE_TOO_BIG, "message too large", HUB_CLOSED_TOO_LARGE);
        return 0;
    }
    bool whole = lws_remaining_packet_payload(wsi) == 0 && lws_is_final_fragment(wsi);
    if (c->rx_len == 0 && whole) {
        /* The usual case, a message in one piece: no copy, no buffer kept. */
        hub_session_message(srv->hub, c->session, (const char *)in, len, clock_wall_s());
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 1024;
        while (cap < c->rx_len + len)
            cap *= 2;
        unsigned char *rx = realloc(c->rx, cap);
        if (!rx) {
            request_close(c, HUB_CLOSE_CODE_TRY_LATER, "server busy", HUB_CLOSED_UNAVAILABLE);
            return 0;
        }
        c->rx = rx;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!whole)
        return 0;
    hub_session_message(srv->hub, c->session, (const char *)c->rx, c->rx_len, clock_wall_s());
    /* Idle sessions are most of them: they keep no reassembly buffer. */
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    return 0;
}

/* One frame per callback, as lws requires. */
static int on_writeable(struct ws_server *srv, struct lws *wsi, struct ws_conn *c)
{
    if (c->closing) {
        if (c->close_deferred || !c->close_code)
            return 0; /* not yet; or a drop_slow() kill is under way */
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_text,
                         strlen(c->close_text));
        return -1;
    }
    struct outmsg *m = c->head;
    if (!m)
        return 0;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->nqueued--;
    c->queued_bytes -= m->len;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    bool ok = n >= 0 && (size_t)n >= m->len;
    free(m);
    if (!ok)
        return -1;
    c->progress_at = clock_wall_s();
    if (c->head)
        lws_callback_on_writable(wsi);
    else
        hub_session_drained(srv->hub, c->session);
    return 0;
}

static void on_closed(struct ws_server *srv, struct ws_conn *c)
{
    if (!c->session)
        return; /* refused in on_established */
    queue_clear(c);
    free(c->rx);
    c->rx = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&srv->nconns, 1);
    enum hub_close_reason reason = c->reason;
    if (!reason && atomic_load(&srv->shutting_down))
        reason = HUB_CLOSED_SHUTDOWN;
    hub_session_closed(srv->hub, c->session, reason);
    c->session = NULL;
}

static void close_all(struct ws_server *srv)
{
    for (struct ws_conn *c = srv->conns; c; c = c->next) {
        if (!c->reason)
            c->reason = HUB_CLOSED_SHUTDOWN;
        transport_close(c, HUB_CLOSE_CODE_GOING_AWAY, "server shutting down");
    }
}

/* Sends the close frames that waited for their peer to pause. When the
 * server stops, a client that never pauses gets its 1001 all the same
 * before ws_stop() gives up on it. */
static void release_deferred_closes(struct ws_server *srv, double now)
{
    double wait_max = atomic_load(&srv->shutting_down) ? CLOSE_WAIT_STOP_S : CLOSE_WAIT_MAX_S;
    for (struct ws_conn *c = srv->conns; c; c = c->next) {
        if (c->close_deferred &&
            (now - c->last_rx_at >= CLOSE_QUIET_S || now - c->closing_since >= wait_max)) {
            c->close_deferred = false;
            lws_callback_on_writable(c->wsi);
        }
    }
}

/* Drops sessions whose queue has not moved for WS_STALL_S. */
static void drop_stalled(struct ws_server *srv, double now)
{
    if (now - srv->last_stall_scan < 1.0)
        return;
    srv->last_stall_scan = now;
    for (struct ws_conn *c = srv->conns; c; c = c->next)
        if (!c->closing && c->nqueued > 0 && now - c->progress_at > WS_STALL_S)
            drop_slow(c);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct ws_server *srv = lws_container_of(sul, struct ws_server, tick);
    double now = clock_wall_s();
    release_deferred_closes(srv, now);
    drop_stalled(srv, now);
    hub_tick(srv->hub, now);
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
}

static int on_http(struct lws *wsi)
{
    /* Not a WebSocket handshake: this port serves nothing else. */
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE is deliberately not handled
 * (CVE-2025-11677 in the 4.1.6 we link against). */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct ws_server *srv = lws_context_user(lws_get_context(wsi));
    struct ws_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(srv, wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(srv, wsi, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c->session ? on_writeable(srv, wsi, c) : -1;
    case LWS_CALLBACK_CLOSED:
        on_closed(srv, c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (atomic_load(&srv->shutting_down))
            close_all(srv);
        hub_drain(srv->hub, clock_wall_s());
        return 0;
    default:
        return 0;
    }
}

/* ---- lifecycle ------------------------------------------------------------- */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        log_error("websocket: %.*s", (int)n, line);
    else
        log_warn("websocket: %.*s", (int)n, line);
}

static void *service_main(void *arg)
{
    struct ws_server *srv = arg;
    while (!atomic_load(&srv->stopping))
        if (lws_service(srv->ctx, 0) < 0)
            break;
    return NULL;
}

struct ws_server *ws_start(const struct config *cfg, struct hub *hub, char *err, size_t errlen)
{
    struct ws_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->hub = hub;
    srv->trusted = &cfg->trusted_proxy_set;
    srv->protocols[0] = (struct lws_protocols){
        .name = "wattline",
        .callback = callback,
        .per_session_data_size = sizeof(struct ws_conn),
        .rx_buffer_size = 1024, /* per session; bigger messages arrive in pieces */
    };
    srv->retry = (lws_retry_bo_t){
        .secs_since_valid_ping = WS_PING_AFTER_S,
        .secs_since_valid_hangup = WS_HANGUP_AFTER_S,
    };
    hub_set_transport(hub, &(struct hub_transport){.send = transport_send,
                                                   .queued = transport_queued,
                                                   .close = transport_close,
                                                   .wake = transport_wake,
                                                   .ctx = srv});

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    bool tls = cfg->tls_cert != NULL;
    struct lws_context_creation_info info = {
        .port = cfg->ws_port,
        .iface = cfg->http_addr,
        .protocols = srv->protocols,
        .user = srv,
        .gid = -1,
        .uid = -1,
        .retry_and_idle_policy = &srv->retry,
        .alpn = "http/1.1", /* WebSocket over h1 only */
        .options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
                   (strchr(cfg->http_addr, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6) |
                   (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0),
        .ssl_cert_filepath = tls ? cfg->tls_cert : NULL,
        .ssl_private_key_filepath = tls ? cfg->tls_key : NULL,
    };
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        snprintf(err, errlen, "cannot serve WebSocket on %s:%d", cfg->http_addr, cfg->ws_port);
        free(srv);
        return NULL;
    }
    /* Scheduled before the service thread exists, so no race on the timer list. */
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
    if (pthread_create(&srv->thread, NULL, service_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the WebSocket thread");
        lws_context_destroy(srv->ctx);
        free(srv);
        return NULL;
    }
    srv->thread_started = true;
    return srv;
}

void ws_close_sessions(struct ws_server *srv, int drain_ms)
{
    if (!srv)
        return;
    /* Ask the service thread to close every session and give the close
     * frames a moment. The conns list is the service thread's: read it only
     * through the loop. */
    atomic_store(&srv->shutting_down, true);
    lws_cancel_service(srv->ctx);
    for (int waited = 0; waited < drain_ms; waited += 20) {
        struct timespec ts = {.tv_nsec = 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        lws_cancel_service(srv->ctx);
        if (atomic_load(&srv->nconns) == 0)
            break;
    }
}

void ws_stop(struct ws_server *srv, int drain_ms)
{
    if (!srv)
        return;
    ws_close_sessions(srv, drain_ms);
    atomic_store(&srv->stopping, true);
    lws_cancel_service(srv->ctx);
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    lws_sul_cancel(&srv->tick);
    lws_context_destroy(srv->ctx); /* closes what is left: on_closed runs here */
    free(srv);
}
