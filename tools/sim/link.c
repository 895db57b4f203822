#define _POSIX_C_SOURCE 200809L

#include "link.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int link_open(struct link *l, const struct link_target *t, char *err, size_t err_size)
{
    memset(l, 0, sizeof *l);
    l->target = *t;
    if (broker_routing(t->url.kind, &t->device, l->routing, sizeof l->routing) == 0) {
        snprintf(err, err_size, "the device's id or serial is missing or too long");
        return -1;
    }
    if (t->commands) {
        char name[BROKER_DEVICE_NAME];
        broker_device_name(&t->device, name, sizeof name);
        snprintf(l->commands_topic, sizeof l->commands_topic, "devices/%s/commands", name);
        snprintf(l->results_topic, sizeof l->results_topic, "devices/%s/command_results", name);
    }
    if (t->url.kind == BROKER_MQTT && mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        snprintf(err, err_size, "cannot initialise libmosquitto");
        return -1;
    }
    return 0;
}

enum link_status link_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (l->connected)
        return LINK_OK;
    enum link_status st = l->target.url.kind == BROKER_AMQP
                              ? link_amqp_connect(l, timeout_ms, msg, msg_size)
                              : link_mqtt_connect(l, timeout_ms, msg, msg_size);
    l->connected = st == LINK_OK;
    return st;
}

enum link_status link_send(struct link *l, const struct spool_entry *entries, size_t n,
                           const char *member, int timeout_ms, volatile sig_atomic_t *stop,
                           char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (!l->connected) {
        snprintf(msg, msg_size, "not connected");
        return LINK_LOST;
    }
    char *body = broker_body(l->target.url.kind, &l->target.device, entries, n, member);
    if (body == NULL) {
        snprintf(msg, msg_size, "out of memory building a message");
        return LINK_REJECTED;
    }
    enum link_status st =
        l->target.url.kind == BROKER_AMQP
            ? link_amqp_send(l, body, strlen(body), timeout_ms, stop, msg, msg_size)
            : link_mqtt_send(l, body, strlen(body), timeout_ms, stop, msg, msg_size);
    free(body);
    if (st == LINK_LOST) {
        l->connected = false; /* broken: closed without a goodbye */
        link_disconnect(l);
    }
    return st;
}

enum link_status link_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (!l->connected)
        return LINK_LOST;
    enum link_status st = l->target.url.kind == BROKER_AMQP
                              ? link_amqp_idle(l, timeout_ms, msg, msg_size)
                              : link_mqtt_idle(l, timeout_ms, msg, msg_size);
    if (st == LINK_LOST) {
        l->connected = false;
        link_disconnect(l);
    }
    return st;
}

bool link_take_command(struct link *l, struct command_order *out)
{
    if (l->inbox_count == 0)
        return false;
    *out = l->inbox[0];
    memmove(&l->inbox[0], &l->inbox[1], (l->inbox_count - 1) * sizeof *l->inbox);
    l->inbox_count--;
    return true;
}

int link_answer(struct link *l, const struct command_outcome *o)
{
    if (l->outbox_count == l->outbox_cap) {
        size_t cap = l->outbox_cap ? l->outbox_cap * 2 : 8;
        struct link_answer *bigger = realloc(l->outbox, cap * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        l->outbox = bigger;
        l->outbox_cap = cap;
    }
    struct link_answer *a = &l->outbox[l->outbox_count++];
    a->mid = 0;
    a->outcome = *o;
    /* Not connected, or the publish failed: it goes out after the next connect. */
    if (l->connected && l->target.url.kind == BROKER_MQTT)
        link_mqtt_publish_answer(l, a);
    return 0;
}

void link_disconnect(struct link *l)
{
    /* After a failure nothing more is said on the connection: it is only closed. */
    bool polite = l->connected;
    if (l->target.url.kind == BROKER_AMQP)
        link_amqp_disconnect(l, polite);
    else
        link_mqtt_disconnect(l, polite);
    l->connected = false;
}

void link_close(struct link *l)
{
    if (l->routing[0] == '\0')
        return; /* never opened */
    link_disconnect(l);
    if (l->target.url.kind == BROKER_MQTT)
        mosquitto_lib_cleanup();
    free(l->inbox);
    free(l->outbox);
    memset(l, 0, sizeof *l);
}
