/* broker: what the message-broker consumer asks of the database. */
#ifndef WATTLINE_DB_BROKER_H
#define WATTLINE_DB_BROKER_H

#include <stddef.h>

#include "db.h"
#include "models.h"
#include "status.h"

/* A device as a broker message may name it: by id or by serial. */
struct db_broker_device {
    long long id;
    enum reading_type type;
    char serial[65]; /* "" when it has none */
};

/* Every device whose id is among ids or whose serial is among serials, in
 * one round trip. *out is malloc'd (the caller frees it whatever the
 * status), *n its length; names that match nothing are simply absent. */
enum status db_broker_devices(struct db_conn *conn, const long long *ids, int nids,
                              const char *const *serials, int nserials,
                              struct db_broker_device **out, int *n);

/* ---- commands to MQTT devices (broker/commands.c) ---- */

/* Devices with a deliverable command (queued for at least min_age_s, or
 * sent and its lock passed; not expired), at most limit, into ids (the
 * caller's array of limit); *n how many. */
enum status db_broker_command_devices(struct db_conn *conn, int min_age_s, int limit,
                                      long long *ids, int *n);

/* The ids of device_id's deliverable commands, oldest first, at most limit,
 * into ids; *n how many. Reads only: nothing is claimed. */
enum status db_broker_deliverable(struct db_conn *conn, long long device_id, int limit,
                                  long long *ids, int *n);

#endif
