/* models: the records db/ reads and writes, in plain C types. Timestamps are
 * microseconds since the Unix epoch (UTC), ids are PostgreSQL bigints. */
#ifndef WATTLINE_MODELS_H
#define WATTLINE_MODELS_H

#include <stdbool.h>
#include <stddef.h>

enum role { ROLE_NONE = 0, ROLE_CLIENT, ROLE_ADMIN };

enum reading_type { READING_CUMULATIVE = 0, READING_INTERVAL };

/* "admin" / "client" and back; ROLE_NONE for anything else. */
const char *role_name(enum role role);
enum role role_parse(const char *name);

const char *reading_type_name(enum reading_type type);
/* false for an unknown name */
bool reading_type_parse(const char *name, enum reading_type *out);

/* A device serial: 1 to DEVICE_SERIAL_MAX of A-Za-z0-9_-, not all digits (so
 * it is never mistaken for an id; '.', '/' and ':' mean something in MQTT
 * topics and RabbitMQ user names). The same rule as the schema's CHECK. */
#define DEVICE_SERIAL_MAX 64
bool device_serial_valid(const char *s, size_t len);

#endif
