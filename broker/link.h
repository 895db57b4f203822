/* link: one AMQP connection (rabbitmq-c), opened from an amqp:// URL with
 * channel 1 ready, and the words for what went wrong. A link belongs to one
 * thread: rabbitmq-c's connections are not shared. */
#ifndef WATTLINE_BROKER_LINK_H
#define WATTLINE_BROKER_LINK_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

/* Seconds between heartbeats: a broker that vanished without closing the
 * socket is noticed within two of them. */
#define LINK_HEARTBEAT_S 10

struct link {
    amqp_connection_state_t conn; /* NULL when closed */
};

/* Connects, logs in and opens channel 1; with confirms, puts the channel in
 * publisher-confirm mode. False with err set (never the password). */
bool link_open(struct link *l, const char *url, bool confirms, char *err, size_t errlen);
/* Closes politely when the connection still works, and frees it. */
void link_close(struct link *l);

/* True when r is a normal reply; otherwise describes it, after what, in err. */
bool link_ok(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen);

/* The vhost named by url ("/" when it names none), into out. False when url
 * is not an amqp:// URL. */
bool link_url_vhost(const char *url, char *out, size_t size);

/* Publishes body on channel 1 of a confirming link and waits up to
 * timeout_ms for the broker's ack. With mandatory, a message no queue takes
 * comes back before the ack: *returned says so (NULL when not mandatory).
 * False on a nack, a timeout or a lost connection (err says which; the
 * caller then closes the link). */
bool link_publish_confirmed(struct link *l, const char *exchange, amqp_bytes_t routing_key,
                            const amqp_basic_properties_t *props, amqp_bytes_t body, bool *returned,
                            int timeout_ms, char *err, size_t errlen);

#endif
