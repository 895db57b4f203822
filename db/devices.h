/* devices: the devices table (metadata, owner, token hash). */
#ifndef WATTLINE_DB_DEVICES_H
#define WATTLINE_DB_DEVICES_H

#include <stdbool.h>

#include "../base/device_name.h"
#include "audit.h"
#include "db.h"
#include "models.h"

/* Limits in bytes, checked by the handlers (the table's CHECKs count characters,
 * which are never more than bytes, so a value that passes here passes there). */
#define DEVICES_NAME_MAX        200
#define DEVICES_DESCRIPTION_MAX 2000
#define DEVICES_ADDRESS_MAX     500

struct device {
    long long id;
    char *name;        /* owned (device_clear frees) */
    char *description; /* owned */
    char *address;     /* owned */
    double max_hourly_kwh;
    enum reading_type reading_type;
    char *serial;           /* owned; NULL: none */
    long long owner_id;     /* 0: unassigned */
    long long created_at;   /* microseconds since the epoch */
    long long last_seen_at; /* 0: never seen */
    int offline_after_s;    /* 0: never reported offline */
    char status[8]; /* "online", "offline", or "" (null: never seen, or no offline_after_s) */
    char *over_limit_command; /* owned JSON text {"name","params"}; NULL: none */
};

/* Frees the strings and zeroes the record; a zeroed record is a no-op. */
void device_clear(struct device *d);

struct device_list {
    struct device *items; /* owned */
    int count;
};

void device_list_free(struct device_list *list);

/* What a new device starts with; description and address may be NULL ("").
 * serial NULL: none. owner_id 0 leaves it unassigned. */
struct device_new {
    const char *name;
    const char *description;
    const char *address;
    double max_hourly_kwh;
    enum reading_type reading_type;
    const char *serial;
    long long owner_id;
    int offline_after_s;            /* 0: none */
    const char *over_limit_command; /* JSON text {"name","params"}; NULL: none */
};

/* Inserts a device holding token_hash, with its device.create entry
 * (audit: who, from where, what was set) in the same transaction.
 * STATUS_INVALID when owner_id names no
 * user (the foreign key) or the serial is not one (the CHECK; the handlers
 * check it first); STATUS_CONFLICT when another device has the serial. */
enum status db_devices_create(struct db_conn *conn, const struct device_new *in,
                              const char *token_hash, const struct audit_ctx *audit,
                              struct device *out);

/* The device with this id, if owner_id is 0 or owns it; else STATUS_NOT_FOUND. */
enum status db_devices_get(struct db_conn *conn, long long id, long long owner_id,
                           struct device *out);

/* Devices with id > after_id in id order, at most limit of them, owned by
 * owner_id (0: any owner). */
enum status db_devices_list(struct db_conn *conn, long long owner_id, long long after_id, int limit,
                            struct device_list *out);

/* The members a PATCH may change; NULL / false leaves a column as it is. */
struct device_patch {
    const char *name;
    const char *description;
    const char *address;
    bool set_max_hourly_kwh;
    double max_hourly_kwh;
    bool set_serial;
    const char *serial; /* with set_serial, NULL clears it */
    bool set_owner;
    long long owner_id; /* 0: unassign */
    bool set_offline_after_s;
    int offline_after_s; /* with set_offline_after_s, 0 clears it */
    bool set_over_limit_command;
    const char *over_limit_command; /* with set_over_limit_command, NULL clears it */
};

/* Applies the patch to the device if owner_scope is 0 or owns it (else
 * STATUS_NOT_FOUND), in one transaction that also writes the device.update
 * audit entry and announces an owner change
 * (devices_changed event) so live sessions drop the device. STATUS_INVALID
 * when the new owner names no user; STATUS_CONFLICT when another device has
 * the new serial. */
enum status db_devices_update(struct db_conn *conn, long long id, long long owner_scope,
                              const struct device_patch *patch, const struct audit_ctx *audit,
                              struct device *out);

/* Replaces the token hash, writes the device.rotate_token entry and announces it (devices_changed:
 * sessions that authenticated with the old token close); STATUS_NOT_FOUND when the device is gone.
 */
enum status db_devices_set_token(struct db_conn *conn, long long id, const char *token_hash,
                                 const struct audit_ctx *audit);

/* Deletes the device (its readings, hours and alerts go by cascade), writes
 * the device.delete entry and announces it, in one transaction. STATUS_NOT_FOUND when it is gone.
 */
enum status db_devices_delete(struct db_conn *conn, long long id, const struct audit_ctx *audit);

/* ---- by the names of device_name.h: MQTT logins ---- */

/* Whether the device named by name (as above) holds the token whose
 * SHA-256 hex is token_hash: STATUS_OK when it does, STATUS_NOT_FOUND when
 * it does not (another device's token, no such device, a name that names
 * none alike). */
enum status db_devices_token_matches(struct db_conn *conn, const char *name,
                                     const char *token_hash);

#endif
