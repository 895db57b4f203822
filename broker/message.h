/* message: a broker message becomes the device it names and its readings.
 * Pure: no AMQP, no database. The formats (API.md, "Message broker"):
 *
 *   own   the HTTP ingestion body plus who sent it: "device_id" (a number,
 *         or a string naming an id or a serial) and/or "serial"
 *   seed  the Online Energy Utility Platform's simulators:
 *         {"timestamp", "device_id", "measurement_value"}, timestamp in ms
 *         (a number, a string of digits, or RFC 3339), the value a number or
 *         a numeric string; bare or as the "data" of a NestJS envelope
 *         {"pattern", "data", "id"?}
 *   MQTT  either of those on the routing key devices.<it>.measurements of
 *         amq.topic, where <it> (an id or a serial) names the device
 *
 * Every name a message carries (topic, device_id, serial) must name the one
 * device; the caller resolves them (one query per batch) and then asks for
 * the readings with the device's type.
 */
#ifndef WATTLINE_BROKER_MESSAGE_H
#define WATTLINE_BROKER_MESSAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../base/device_name.h"
#include "../db/models.h"
#include "../db/status.h"
#include "../ingest/check.h"

/* The largest body taken (the contract's 1 MiB); larger is dead-lettered. */
#define BROKER_MESSAGE_MAX (1024 * 1024)

/* A device as a message names it: by id (> 0) or else by serial. */
struct broker_name {
    long long id;
    char serial[DEVICE_SERIAL_MAX + 1];
};

enum broker_format { BROKER_FORMAT_OWN, BROKER_FORMAT_SEED };

struct broker_message {
    struct broker_name names[3]; /* the topic's, device_id's, serial's */
    int nnames;                  /* >= 1 after a successful parse */
    enum broker_format format;
    json_t *body;    /* own: the ingestion body without device_id and serial (owned) */
    long long ts_us; /* seed */
    double value;    /* seed */
};

/* The device named by an MQTT routing key "devices.<it>.measurements";
 * false when key is not one. */
bool broker_topic_name(const char *key, size_t len, struct broker_name *out);
/* The same for "devices.<it><suffix>" (suffix ".command_results", say). */
bool broker_topic_device(const char *key, size_t len, const char *suffix, struct broker_name *out);

/* Parses a body of len bytes. topic_key is the routing key when the message
 * came through amq.topic (MQTT), else NULL. False with the reason in why
 * (the message is then dead-lettered); out is cleared either way and must be
 * released with broker_message_free(). */
bool broker_message_parse(const char *data, size_t len, const char *topic_key,
                          struct broker_message *out, char *why, size_t whylen);
void broker_message_free(struct broker_message *m);

/* The message's readings for a device of the given type, received at now_us,
 * each passing ingest_check(). STATUS_OK: *out malloc'd (the caller frees it)
 * with *n readings; STATUS_INVALID: why says which rule; STATUS_INTERNAL:
 * out of memory. */
enum status broker_message_readings(const struct broker_message *m, enum reading_type type,
                                    long long now_us, long long max_age_us,
                                    struct ingest_reading **out, int *n, char *why, size_t whylen);

#endif
