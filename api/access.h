/* access: "may this caller see this device", answered once for every route
 * under /api/v1/devices/{id} and for the lists scoped to a caller's devices:
 * an admin sees every device, a client only those it owns. */
#ifndef WATTLINE_ACCESS_H
#define WATTLINE_ACCESS_H

#include <stdbool.h>

#include "../db/devices.h"
#include "handler.h"

/* The owner a caller is limited to: 0 (any) for an admin, else its user id.
 * db/ calls take it as their owner scope. */
long long access_owner_scope(const struct caller *caller);

/* Loads the device named by path parameter 0 when the caller may see it into
 * *out (the caller device_clear()s it). Otherwise false with the problem in
 * res: 404 for a missing and a foreign device alike, 503 when the database
 * is away. */
bool access_device_or_reply(const struct request *req, struct db_conn *conn, struct device *out,
                            struct response *res);

#endif
