#include "link.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CONNECT_TIMEOUT_S 5
#define FRAME_MAX         131072

bool link_ok(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return true;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: no reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *c = r.reply.decoded;
            snprintf(err, errlen, "%s: connection closed by the broker: %u %.*s", what,
                     c->reply_code, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *c = r.reply.decoded;
            snprintf(err, errlen, "%s: channel closed by the broker: %u %.*s", what, c->reply_code,
                     (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: broker error (method 0x%08x)", what, r.reply.id);
        }
        break;
    }
    return false;
}

bool link_url_vhost(const char *url, char *out, size_t size)
{
    char *copy = strdup(url);
    struct amqp_connection_info info;
    bool ok = copy && amqp_parse_url(copy, &info) == AMQP_STATUS_OK;
    if (ok)
        snprintf(out, size, "%s", info.vhost);
    free(copy);
    return ok;
}

static bool open_channel(struct link *l, bool confirms, char *err, size_t errlen)
{
    amqp_channel_open(l->conn, 1);
    if (!link_ok(amqp_get_rpc_reply(l->conn), "channel.open", err, errlen))
        return false;
    if (!confirms)
        return true;
    amqp_confirm_select_t select = {0};
    amqp_simple_rpc_decoded(l->conn, 1, AMQP_CONFIRM_SELECT_METHOD, AMQP_CONFIRM_SELECT_OK_METHOD,
                            &select);
    return link_ok(amqp_get_rpc_reply(l->conn), "confirm.select", err, errlen);
}

bool link_open(struct link *l, const char *url, bool confirms, char *err, size_t errlen)
{
    l->conn = NULL;
    char *copy = strdup(url); /* amqp_parse_url() cuts it into the fields */
    struct amqp_connection_info info;
    if (!copy || amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "AMQP_URL is not an amqp:// URL");
        free(copy);
        return false;
    }
    bool ok = false;
    l->conn = amqp_new_connection();
    amqp_socket_t *sock = l->conn ? amqp_tcp_socket_new(l->conn) : NULL;
    struct timeval timeout = {.tv_sec = CONNECT_TIMEOUT_S};
    int rc;
    if (!sock) {
        snprintf(err, errlen, "out of memory");
    } else if ((rc = amqp_socket_open_noblock(sock, info.host, info.port, &timeout)) !=
               AMQP_STATUS_OK) {
        snprintf(err, errlen, "connect to %s:%d: %s", info.host, info.port, amqp_error_string2(rc));
    } else {
        amqp_set_handshake_timeout(l->conn, &timeout);
        amqp_set_rpc_timeout(l->conn, &timeout);
        ok = link_ok(amqp_login(l->conn, info.vhost, 0, FRAME_MAX, LINK_HEARTBEAT_S,
                                AMQP_SASL_METHOD_PLAIN, info.user, info.password),
                     "login", err, errlen) &&
             open_channel(l, confirms, err, errlen);
    }
    explicit_bzero(copy, strlen(url));
    free(copy);
    if (!ok) {
        if (l->conn)
            amqp_destroy_connection(l->conn);
        l->conn = NULL;
    }
    return ok;
}

void link_close(struct link *l)
{
    if (!l->conn)
        return;
    if (amqp_get_socket(l->conn) && amqp_get_sockfd(l->conn) >= 0)
        amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(l->conn);
    l->conn = NULL;
}

bool link_publish_confirmed(struct link *l, const char *exchange, amqp_bytes_t routing_key,
                            const amqp_basic_properties_t *props, amqp_bytes_t body, bool *returned,
                            int timeout_ms, char *err, size_t errlen)
{
    if (returned)
        *returned = false;
    int rc = amqp_basic_publish(l->conn, 1, amqp_cstring_bytes(exchange), routing_key,
                                returned != NULL, 0, props, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "publish: %s", amqp_error_string2(rc));
        return false;
    }
    struct timeval timeout = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    for (;;) {
        amqp_frame_t frame;
        amqp_maybe_release_buffers(l->conn);
        rc = amqp_simple_wait_frame_noblock(l->conn, &frame, &timeout);
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "publish confirm: %s", amqp_error_string2(rc));
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD || frame.channel != 1)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD:
            return true;
        case AMQP_BASIC_RETURN_METHOD: {
            /* Unroutable: its header and body follow, then the ack. */
            amqp_message_t message;
            amqp_rpc_reply_t r = amqp_read_message(l->conn, 1, &message, 0);
            if (!link_ok(r, "read a returned message", err, errlen))
                return false;
            amqp_destroy_message(&message);
            if (returned)
                *returned = true;
            continue;
        }
        case AMQP_BASIC_NACK_METHOD:
            snprintf(err, errlen, "publish: the broker refused it");
            return false;
        default:
            snprintf(err, errlen, "publish: the channel closed");
            return false;
        }
    }
}
