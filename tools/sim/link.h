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
 *
 * With --commands over MQTT the link also subscribes (QoS 1) to
 * devices/<id or serial>/commands on each connection and keeps what arrives
 * for link_take_command; answers go QoS 1 to .../command_results and are
 * kept until their PUBACK, published again after a reconnect (the server
 * takes the same answer twice harmlessly).
 */
#ifndef WATTLINE_SIM_LINK_H
#define WATTLINE_SIM_LINK_H

#include "broker.h"
#include "command.h"
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
    bool commands;     /* MQTT: subscribe to the device's commands */
};

/* An answer published, awaiting its PUBACK (mid 0: not published on this connection). */
struct link_answer {
    int mid;
    struct command_outcome outcome;
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
    char commands_topic[BROKER_ROUTING_SIZE];
    char results_topic[BROKER_ROUTING_SIZE];
    int sub_mid;                 /* the SUBSCRIBE awaiting its SUBACK */
    bool suback;                 /* it came */
    int granted_qos;             /* what it granted (128: refused) */
    struct command_order *inbox; /* commands arrived, not yet taken; owned */
    size_t inbox_count, inbox_cap;
    struct link_answer *outbox; /* answers not yet confirmed; owned */
    size_t outbox_count, outbox_cap;
    uint64_t unreadable; /* command messages without a usable id */
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

/* The oldest command arrived (MQTT with --commands): true and *out, or false. */
bool link_take_command(struct link *l, struct command_order *out);

/*
 * Publish an answer (QoS 1) and keep it until the broker confirms it; when not
 * connected it waits for the next connection. 0, or -1 (out of memory).
 */
int link_answer(struct link *l, const struct command_outcome *o);

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
int link_mqtt_publish_answer(struct link *l, struct link_answer *a);

#endif
