/* link over AMQP 0-9-1 (rabbitmq-c): publisher confirms on channel 1. */
#define _POSIX_C_SOURCE 200809L

#include "link.h"

#include "timeutil.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define CHANNEL       1
#define HEARTBEAT_S   30 /* the broker notices a vanished simulator, and we a vanished broker */
#define FRAME_MAX     131072
#define WAIT_SLICE_MS 200 /* how often a wait looks at the stop flag */

#define CONN(l) ((amqp_connection_state_t)(l)->amqp)

static struct timeval timeval_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static void copy_bytes(char *out, size_t size, const char *prefix, amqp_bytes_t b)
{
    snprintf(out, size, "%s%.*s", prefix, (int)(b.len < 300 ? b.len : 300), (const char *)b.bytes);
}

/* What an RPC's failure says, for people; true when the broker refused the login or vhost. */
static bool describe_reply(amqp_rpc_reply_t r, const char *what, char *msg, size_t msg_size)
{
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(msg, msg_size, "%s: %s", what, amqp_error_string2(r.library_error));
        return false;
    }
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) {
        snprintf(msg, msg_size, "%s failed", what);
        return false;
    }
    uint16_t code = 0;
    amqp_bytes_t text = {0, NULL};
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = r.reply.decoded;
        code = c->reply_code;
        text = c->reply_text;
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = r.reply.decoded;
        code = c->reply_code;
        text = c->reply_text;
    }
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s: the broker closed the connection: ", what);
    copy_bytes(msg, msg_size, prefix, text);
    /* 403 ACCESS_REFUSED (user or password), 530 NOT_ALLOWED (vhost). */
    return code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_ALLOWED;
}

enum link_status link_amqp_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    const struct broker_url *u = &l->target.url;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    if (sock == NULL) {
        snprintf(msg, msg_size, "out of memory opening an AMQP connection");
        if (conn)
            amqp_destroy_connection(conn);
        return LINK_LOST;
    }
    l->amqp = conn;
    struct timeval tv = timeval_ms(timeout_ms);
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    int rc = amqp_socket_open_noblock(sock, u->host, u->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(msg, msg_size, "cannot connect to %s:%d: %s", u->host, u->port,
                 amqp_error_string2(rc));
        link_amqp_disconnect(l, false);
        return LINK_LOST;
    }
    amqp_rpc_reply_t r = amqp_login(conn, u->vhost, 0, FRAME_MAX, HEARTBEAT_S,
                                    AMQP_SASL_METHOD_PLAIN, u->user, u->password);
    bool refused = false;
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        refused = describe_reply(r, "login", msg, msg_size);
    } else {
        amqp_channel_open(conn, CHANNEL);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            describe_reply(r, "channel.open", msg, msg_size);
        } else {
            amqp_confirm_select(conn, CHANNEL);
            r = amqp_get_rpc_reply(conn);
            if (r.reply_type == AMQP_RESPONSE_NORMAL) {
                l->next_tag = 1; /* confirm mode numbers a channel's publishes from 1 */
                return LINK_OK;
            }
            describe_reply(r, "confirm.select", msg, msg_size);
        }
    }
    link_amqp_disconnect(l, false);
    return refused ? LINK_REFUSED : LINK_LOST;
}

/* The body of a basic.return follows it as content frames: read and drop them. */
static bool skip_returned_content(amqp_connection_state_t conn, amqp_channel_t channel)
{
    amqp_message_t returned;
    amqp_rpc_reply_t r = amqp_read_message(conn, channel, &returned, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return false;
    amqp_destroy_message(&returned);
    return true;
}

/*
 * One frame, or none within `ms`. Returns 1 with the frame, 0 on timeout, -1
 * when the connection is broken or closed by the broker (message in msg).
 */
static int next_frame(amqp_connection_state_t conn, int ms, amqp_frame_t *frame, char *msg,
                      size_t msg_size)
{
    struct timeval tv = timeval_ms(ms);
    int rc = amqp_simple_wait_frame_noblock(conn, frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK) {
        snprintf(msg, msg_size, "connection lost: %s", amqp_error_string2(rc));
        return -1;
    }
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return 1;
    amqp_method_number_t id = frame->payload.method.id;
    if (id == AMQP_CONNECTION_CLOSE_METHOD || id == AMQP_CHANNEL_CLOSE_METHOD) {
        /* A channel error (no exchange `wattline` yet, say) ends the confirm channel:
         * the simplest sound recovery is a new connection. */
        amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                              .reply = frame->payload.method};
        describe_reply(r, "publish", msg, msg_size);
        return -1;
    }
    return 1;
}

enum link_status link_amqp_send(struct link *l, const char *body, size_t len, int timeout_ms,
                                volatile sig_atomic_t *stop, char *msg, size_t msg_size)
{
    amqp_connection_state_t conn = CONN(l);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode =
            AMQP_DELIVERY_PERSISTENT, /* survives a broker restart in a durable queue */
    };
    amqp_bytes_t payload = {.len = len, .bytes = (void *)body};
    /* mandatory: a message no queue takes comes back instead of being confirmed and lost. */
    int rc = amqp_basic_publish(conn, CHANNEL, amqp_cstring_bytes(BROKER_EXCHANGE),
                                amqp_cstring_bytes(l->routing), 1, 0, &props, payload);
    if (rc != AMQP_STATUS_OK) {
        snprintf(msg, msg_size, "publish failed: %s", amqp_error_string2(rc));
        return LINK_LOST;
    }
    uint64_t tag = l->next_tag++;
    bool returned = false;
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    while (!*stop) {
        int64_t left_ms = (deadline - time_mono_us()) / 1000;
        if (left_ms <= 0)
            break;
        amqp_frame_t frame;
        int got = next_frame(conn, left_ms < WAIT_SLICE_MS ? (int)left_ms : WAIT_SLICE_MS, &frame,
                             msg, msg_size);
        if (got < 0)
            return LINK_LOST;
        if (got == 0 || frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_number_t id = frame.payload.method.id;
        if (id == AMQP_BASIC_RETURN_METHOD) {
            const amqp_basic_return_t *ret = frame.payload.method.decoded;
            copy_bytes(msg, msg_size,
                       "the broker returned the message (no queue takes it): ", ret->reply_text);
            returned = true;
            if (!skip_returned_content(conn, frame.channel)) {
                snprintf(msg, msg_size, "connection lost reading a returned message");
                return LINK_LOST;
            }
        } else if (id == AMQP_BASIC_ACK_METHOD || id == AMQP_BASIC_NACK_METHOD) {
            /* ack and nack share their first two fields' layout but not their type. */
            uint64_t acked;
            bool multiple;
            if (id == AMQP_BASIC_ACK_METHOD) {
                const amqp_basic_ack_t *a = frame.payload.method.decoded;
                acked = a->delivery_tag;
                multiple = a->multiple;
            } else {
                const amqp_basic_nack_t *a = frame.payload.method.decoded;
                acked = a->delivery_tag;
                multiple = a->multiple;
            }
            amqp_maybe_release_buffers(conn);
            if (acked != tag && !(multiple && acked >= tag))
                continue; /* an earlier message's late answer */
            if (id == AMQP_BASIC_NACK_METHOD) {
                snprintf(msg, msg_size, "the broker refused the message (basic.nack)");
                return LINK_REJECTED;
            }
            return returned ? LINK_REJECTED : LINK_OK;
        }
        amqp_maybe_release_buffers(conn);
    }
    /* Unconfirmed: the connection is given up, and the readings go again on a new one. */
    snprintf(msg, msg_size,
             *stop ? "stopped before the broker confirmed" : "no confirmation within %d s",
             timeout_ms / 1000);
    return LINK_LOST;
}

enum link_status link_amqp_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    amqp_connection_state_t conn = CONN(l);
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left_ms = (deadline - time_mono_us()) / 1000;
        if (left_ms <= 0)
            return LINK_OK;
        amqp_frame_t frame;
        /* Waiting for frames is what sends and checks heartbeats. */
        if (next_frame(conn, (int)left_ms, &frame, msg, msg_size) < 0)
            return LINK_LOST;
        amqp_maybe_release_buffers(conn);
    }
}

void link_amqp_disconnect(struct link *l, bool polite)
{
    amqp_connection_state_t conn = CONN(l);
    if (conn == NULL)
        return;
    if (polite) {
        struct timeval tv = timeval_ms(2000); /* a goodbye is not worth a long wait */
        amqp_set_rpc_timeout(conn, &tv);
        amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    l->amqp = NULL;
}
