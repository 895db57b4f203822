/* usage: what the WebSocket hub reads: who owns devices now, their live
 * usage (newest reading, its UTC hour and that hour's energy), and the
 * stored roles of the users it has sessions for. */
#ifndef WATTLINE_DB_USAGE_H
#define WATTLINE_DB_USAGE_H

#include "db.h"
#include "models.h"

/* A device's current owner; exists is false when the device is gone. */
struct device_owner {
    long long device_id;
    bool exists;
    long long owner_id; /* 0 when unassigned */
};

/* Live usage of one device. Times are microseconds since the epoch. */
struct device_usage {
    long long device_id;
    long long owner_id;   /* 0 when unassigned */
    long long last_ts;    /* newest reading; 0 when the device has none */
    long long hour_start; /* the UTC hour containing last_ts */
    double hour_kwh;      /* device_hours.kwh of that hour; 0 when not rolled up */
};

/* Fills out[i] for ids[i] (n entries, caller's array), in the given order;
 * a device that does not exist gets exists = false. */
enum status db_usage_owners(struct db_conn *conn, const long long *ids, int n,
                            struct device_owner *out);

/* Live usage of the existing devices among ids, in one query. *out is
 * malloc'd (caller frees; NULL when *count is 0); devices without readings
 * are left out. */
enum status db_usage_read(struct db_conn *conn, const long long *ids, int n,
                          struct device_usage **out, int *count);

/* out[i] is the stored role of ids[i] (n entries, caller's array);
 * ROLE_NONE for a user that no longer exists. One query. */
enum status db_usage_user_roles(struct db_conn *conn, const long long *ids, int n, enum role *out);

#endif
