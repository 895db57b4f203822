/*
 * broker: the pure parts of publishing to RabbitMQ instead of POSTing: the
 * broker's URL (--amqp amqp://..., --mqtt mqtt://...), who the device is
 * (--device-id or --serial: unlike HTTP, where the token says it, a broker
 * message or an MQTT login must name the device), and the names and bodies
 * that go on the wire. The connections themselves are link.h's.
 */
#ifndef WATTLINE_SIM_BROKER_H
#define WATTLINE_SIM_BROKER_H

#include "spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_SERIAL_MAX   64
#define BROKER_EXCHANGE     "wattline"
#define BROKER_AMQP_PORT    5672
#define BROKER_MQTT_PORT    1883
#define BROKER_DEVICE_NAME  (BROKER_SERIAL_MAX + 1)
#define BROKER_ROUTING_SIZE (BROKER_DEVICE_NAME + 32)

enum broker_kind { BROKER_AMQP, BROKER_MQTT };

/* A parsed --amqp or --mqtt URL; the strings point into `buf`. */
struct broker_url {
    enum broker_kind kind;
    char *buf; /* owned */
    const char *host;
    int port;
    const char *user;     /* AMQP only (default guest) */
    const char *password; /* AMQP only (default guest) */
    const char *vhost;    /* AMQP only, percent-decoded (default "/") */
};

/* The device a message is about: its id, or (id 0) its serial. */
struct broker_device {
    int64_t id;
    char serial[BROKER_SERIAL_MAX + 1];
};

/*
 * Parse `text` as `kind` wants it: amqp://[user[:password]@]host[:port][/vhost]
 * (percent-encoded parts, "%2f" for the vhost "/"), or mqtt://host[:port][/]
 * (no credentials: an MQTT device logs in with its id or serial and its token).
 * Returns 0 (free with broker_url_free), or -1 with a message in `err`.
 */
int broker_url_parse(enum broker_kind kind, const char *text, struct broker_url *out, char *err,
                     size_t err_size);

void broker_url_free(struct broker_url *u);

/* A serial as the contract has it: 1-64 of A-Za-z0-9_-, not all digits. */
bool broker_serial_valid(const char *serial);

/* The device's name on the wire ("7" or the serial). Returns its length, or 0 if it did not fit. */
size_t broker_device_name(const struct broker_device *d, char *buf, size_t size);

/* "measurements.<name>" (AMQP routing key) or "devices/<name>/measurements" (MQTT topic). */
size_t broker_routing(enum broker_kind kind, const struct broker_device *d, char *buf, size_t size);

/*
 * The message body for `n` readings. AMQP: Wattline's own, the HTTP body with
 * the device first: {"device_id": 7, "ts": ..., "meter_kwh": ...} or
 * {"serial": "...", "measurements": [...]}. MQTT: the HTTP body as is (the
 * topic names the device). Caller frees; NULL when out of memory.
 */
char *broker_body(enum broker_kind kind, const struct broker_device *d,
                  const struct spool_entry *entries, size_t n, const char *member);

#endif
