/* device_name: how a device is named where the REST paths do not reach (an
 * MQTT login, a topic, a broker message): its id in decimal digits, or its
 * serial, the meter's own identifier. A serial is never all digits, so the
 * two can never be mistaken for each other. Pure text, no allocation. */
#ifndef WATTLINE_DEVICE_NAME_H
#define WATTLINE_DEVICE_NAME_H

#include <stdbool.h>

/* The longest serial, in characters (all ASCII, so also in bytes). */
#define DEVICE_SERIAL_MAX 64

/* 1 to DEVICE_SERIAL_MAX characters of A-Za-z0-9_-, not all digits: the
 * CHECK of migrations/0006_device_serial.sql. '.', '/' and ':' are out
 * because MQTT topics and RabbitMQ user names give them meaning. */
bool device_serial_valid(const char *s);

enum device_name_kind {
    DEVICE_NAME_INVALID = 0, /* neither: names no device */
    DEVICE_NAME_ID,          /* decimal digits of a positive id, no leading zero */
    DEVICE_NAME_SERIAL,      /* device_serial_valid() */
};

/* What name is; *id is set for DEVICE_NAME_ID (untouched otherwise). A
 * leading zero ("07") is invalid rather than id 7, so that a device has one
 * name by id and a topic one spelling. */
enum device_name_kind device_name_parse(const char *name, long long *id);

#endif
