/* link over MQTT 3.1.1 (libmosquitto), QoS 1: the PUBACK confirms a message. */
#define _POSIX_C_SOURCE 200809L

#include "link.h"

#include "timeutil.h"

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_S    30
#define WAIT_SLICE_MS  200  /* how often a wait looks at the stop flag */
#define INBOX_MAX      1024 /* commands kept unanswered; more are left to redelivery */
#define SUBACK_REFUSED 128

static void on_connect(struct mosquitto *mq, void *obj, int rc)
{
    (void)mq;
    struct link *l = obj;
    l->connack = true;
    l->connack_rc = rc;
}

static void on_publish(struct mosquitto *mq, void *obj, int mid)
{
    (void)mq;
    struct link *l = obj;
    if (mid == l->mid)
        l->puback = true;
    for (size_t i = 0; i < l->outbox_count; i++) {
        if (l->outbox[i].mid == mid) {
            /* The broker has the answer: it is no longer ours to keep. */
            l->outbox[i] = l->outbox[--l->outbox_count];
            break;
        }
    }
}

static void on_subscribe(struct mosquitto *mq, void *obj, int mid, int qos_count,
                         const int *granted)
{
    (void)mq;
    struct link *l = obj;
    if (mid != l->sub_mid)
        return;
    l->suback = true;
    l->granted_qos = qos_count > 0 ? granted[0] : SUBACK_REFUSED;
}

static void on_message(struct mosquitto *mq, void *obj, const struct mosquitto_message *message)
{
    (void)mq;
    struct link *l = obj;
    if (message->topic == NULL || strcmp(message->topic, l->commands_topic) != 0)
        return;
    struct command_order order;
    if (command_parse_text(message->payload, (size_t)message->payloadlen, &order) != 0) {
        l->unreadable++;
        return;
    }
    if (l->inbox_count == l->inbox_cap) {
        size_t cap = l->inbox_cap ? l->inbox_cap * 2 : 8;
        struct command_order *bigger =
            cap <= INBOX_MAX ? realloc(l->inbox, cap * sizeof *bigger) : NULL;
        if (bigger == NULL)
            return; /* unanswered: the server delivers it again once its lock runs out */
        l->inbox = bigger;
        l->inbox_cap = cap;
    }
    l->inbox[l->inbox_count++] = order;
}

static void on_disconnect(struct mosquitto *mq, void *obj, int rc)
{
    (void)mq;
    (void)rc;
    struct link *l = obj;
    l->mq_lost = true;
}

static const char *loop_error(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

/* One pass of libmosquitto's network loop; false (message in msg) when the connection is gone. */
static bool pump(struct link *l, int ms, char *msg, size_t msg_size)
{
    int rc = mosquitto_loop(l->mq, ms, 1);
    if (rc != MOSQ_ERR_SUCCESS || l->mq_lost) {
        snprintf(msg, msg_size, "connection lost: %s",
                 rc != MOSQ_ERR_SUCCESS ? loop_error(rc) : "closed by the broker");
        return false;
    }
    return true;
}

int link_mqtt_publish_answer(struct link *l, struct link_answer *a)
{
    char *body = command_result_body(&a->outcome, true);
    int rc = body ? mosquitto_publish(l->mq, &a->mid, l->results_topic, (int)strlen(body), body, 1,
                                      false)
                  : MOSQ_ERR_NOMEM;
    free(body);
    if (rc != MOSQ_ERR_SUCCESS)
        a->mid = 0; /* published again after the next connect */
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* Subscribe to the device's commands and wait for the SUBACK; then resend unconfirmed answers. */
static enum link_status subscribe_commands(struct link *l, int timeout_ms, char *msg,
                                           size_t msg_size)
{
    l->suback = false;
    int rc = mosquitto_subscribe(l->mq, &l->sub_mid, l->commands_topic, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(msg, msg_size, "cannot subscribe to %s: %s", l->commands_topic, loop_error(rc));
        return LINK_LOST;
    }
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    while (!l->suback) {
        if (time_mono_us() >= deadline) {
            snprintf(msg, msg_size, "no SUBACK for %s within %d s", l->commands_topic,
                     timeout_ms / 1000);
            return LINK_LOST;
        }
        if (!pump(l, WAIT_SLICE_MS, msg, msg_size))
            return LINK_LOST;
    }
    if (l->granted_qos == SUBACK_REFUSED) {
        snprintf(msg, msg_size, "the broker refused the subscription to %s", l->commands_topic);
        return LINK_REFUSED;
    }
    for (size_t i = 0; i < l->outbox_count; i++)
        link_mqtt_publish_answer(l, &l->outbox[i]);
    return LINK_OK;
}

enum link_status link_mqtt_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    const struct broker_url *u = &l->target.url;
    char name[BROKER_DEVICE_NAME], client_id[BROKER_DEVICE_NAME + 16];
    broker_device_name(&l->target.device, name, sizeof name);
    /* One session per device: a second simulator of the same device takes it over. */
    snprintf(client_id, sizeof client_id, "wattline-sim-%s", name);
    l->connack = l->mq_lost = l->puback = false;
    /* A fresh client per connection: nothing queued in an old one is sent behind our back. */
    l->mq = mosquitto_new(client_id, true, l);
    if (l->mq == NULL) {
        snprintf(msg, msg_size, "out of memory opening an MQTT connection");
        return LINK_LOST;
    }
    mosquitto_int_option(l->mq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(l->mq, on_connect);
    mosquitto_publish_callback_set(l->mq, on_publish);
    mosquitto_disconnect_callback_set(l->mq, on_disconnect);
    mosquitto_subscribe_callback_set(l->mq, on_subscribe);
    mosquitto_message_callback_set(l->mq, on_message);
    int rc = mosquitto_username_pw_set(l->mq, name, l->target.token);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect(l->mq, u->host, u->port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(msg, msg_size, "cannot connect to %s:%d: %s", u->host, u->port, loop_error(rc));
        link_mqtt_disconnect(l, false);
        return LINK_LOST;
    }
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    while (!l->connack) {
        if (time_mono_us() >= deadline) {
            snprintf(msg, msg_size, "no CONNACK within %d s", timeout_ms / 1000);
            link_mqtt_disconnect(l, false);
            return LINK_LOST;
        }
        if (!pump(l, WAIT_SLICE_MS, msg, msg_size)) {
            /* The broker answers a refused login with a CONNACK and closes: read it first. */
            if (l->connack)
                break;
            link_mqtt_disconnect(l, false);
            return LINK_LOST;
        }
    }
    if (l->connack_rc != 0) {
        snprintf(msg, msg_size, "the broker refused the login: %s",
                 mosquitto_connack_string(l->connack_rc));
        link_mqtt_disconnect(l, false);
        return LINK_REFUSED;
    }
    if (l->commands_topic[0] != '\0') {
        enum link_status st = subscribe_commands(l, timeout_ms, msg, msg_size);
        if (st != LINK_OK) {
            link_mqtt_disconnect(l, false);
            return st;
        }
    }
    return LINK_OK;
}

enum link_status link_mqtt_send(struct link *l, const char *body, size_t len, int timeout_ms,
                                volatile sig_atomic_t *stop, char *msg, size_t msg_size)
{
    l->puback = false;
    int rc = mosquitto_publish(l->mq, &l->mid, l->routing, (int)len, body, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(msg, msg_size, "publish failed: %s", loop_error(rc));
        return rc == MOSQ_ERR_PAYLOAD_SIZE ? LINK_REJECTED : LINK_LOST;
    }
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    while (!l->puback && !*stop && time_mono_us() < deadline) {
        if (!pump(l, WAIT_SLICE_MS, msg, msg_size))
            return LINK_LOST;
    }
    if (l->puback)
        return LINK_OK;
    snprintf(msg, msg_size, *stop ? "stopped before the broker confirmed" : "no PUBACK within %d s",
             timeout_ms / 1000);
    return LINK_LOST;
}

enum link_status link_mqtt_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
    do {
        int64_t left_ms = (deadline - time_mono_us()) / 1000;
        /* The loop sends the keepalive pings. */
        if (!pump(l, left_ms > 0 ? (int)left_ms : 0, msg, msg_size))
            return LINK_LOST;
    } while (time_mono_us() < deadline);
    return LINK_OK;
}

void link_mqtt_disconnect(struct link *l, bool polite)
{
    if (l->mq == NULL)
        return;
    if (polite) {
        mosquitto_disconnect(l->mq);
        mosquitto_loop(l->mq, 100, 1); /* sends the DISCONNECT */
    }
    mosquitto_destroy(l->mq);
    l->mq = NULL;
    /* Their message ids died with the client: unconfirmed answers go out after a reconnect. */
    for (size_t i = 0; i < l->outbox_count; i++)
        l->outbox[i].mid = 0;
}
