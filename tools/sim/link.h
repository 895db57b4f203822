/*
 * link: one connection to RabbitMQ that publishes a device's readings and
 * learns when the broker has taken them: AMQP 0-9-1 with publisher confirms
 * (rabbitmq-c, link_amqp.c) or MQTT 3.1.1 at QoS 1 (libmosquitto,
 * link_mqtt.c). One message is in flight at a time, so "confirmed" always
 * means the oldest readings of the spool, and nothing is acknowledged out of
 * order.
 *
 * AMQP: persistent messages (delivery mode 2, application/json) to the
 * exchange `wattline` with routing key measurements.<id or serial>, mandatory,
 * so a message no queue takes comes back (basic.return) instead of being
 * confirmed and dropped. MQTT: topic devices/<id or serial>/measurements,
 * username the id or serial, password the device token, clean session; the
 * PUBACK is the confirmation.
 */
#ifndef WATTLINE_SIM_LINK_H
#define WATTLINE_SIM_LINK_H

#include "broker.h"
#include "spool.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_MESSAGE_MAX 512

enum link_status {
    LINK_OK,       /* connected, or the message is confirmed */
    LINK_REJECTED, /* the broker did not take this message (nack, unroutable); still connected */
    LINK_LOST,     /* no connection (or a broken one, now closed): reconnect later */
    LINK_REFUSED,  /* the broker refused the login (credentials, vhost) */
};

struct link_target {
    struct broker_url url; /* borrowed */
    struct broker_device device;
    const char *token; /* MQTT password; borrowed */
};

struct link {
    struct link_target target;
    char routing[BROKER_ROUTING_SIZE]; /* routing key or topic */
    bool connected;
    void *amqp;           /* amqp_connection_state_t */
    uint64_t next_tag;    /* delivery tag of the next publish (confirm mode) */
    struct mosquitto *mq; /* one per connection */
    int mid;              /* the MQTT message awaiting its PUBACK */
    bool puback, connack, mq_lost;
    int connack_rc;
};

/* Set up (no connection yet). 0, or -1 with a message in `err`. */
int link_open(struct link *l, const struct link_target *t, char *err, size_t err_size);

/* Connect and log in within `timeout_ms`. LINK_OK, LINK_LOST or LINK_REFUSED (message in msg). */
enum link_status link_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size);

/*
 * Publish `n` readings as one message and wait up to `timeout_ms` for the
 * broker's confirmation (or until *stop is set). LINK_OK when confirmed; on
 * LINK_LOST the connection is closed.
 */
enum link_status link_send(struct link *l, const struct spool_entry *entries, size_t n,
                           const char *member, int timeout_ms, volatile sig_atomic_t *stop,
                           char *msg, size_t msg_size);

/* Keep the connection alive (heartbeats, pings) for `timeout_ms`. LINK_OK or LINK_LOST (closed). */
enum link_status link_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size);

/* Close the connection, politely when it still works. */
void link_disconnect(struct link *l);

/* Disconnect and release everything; safe on a zeroed struct. */
void link_close(struct link *l);

/* The transports; link.c picks one by the URL's kind. */
enum link_status link_amqp_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size);
enum link_status link_amqp_send(struct link *l, const char *body, size_t len, int timeout_ms,
                                volatile sig_atomic_t *stop, char *msg, size_t msg_size);
enum link_status link_amqp_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size);
void link_amqp_disconnect(struct link *l, bool polite);
enum link_status link_mqtt_connect(struct link *l, int timeout_ms, char *msg, size_t msg_size);
enum link_status link_mqtt_send(struct link *l, const char *body, size_t len, int timeout_ms,
                                volatile sig_atomic_t *stop, char *msg, size_t msg_size);
enum link_status link_mqtt_idle(struct link *l, int timeout_ms, char *msg, size_t msg_size);
void link_mqtt_disconnect(struct link *l, bool polite);

#endif
