/* readings_export: GET /api/v1/devices/{id}/measurements, a device's stored
 * readings as the device sent them: JSON pages, or with Accept: text/csv the
 * whole range as one CSV stream that never holds more than one database batch
 * in memory. */
#ifndef WATTLINE_READINGS_EXPORT_H
#define WATTLINE_READINGS_EXPORT_H

#include <stdbool.h>

#include "../api/handler.h"

/* Whether an Accept header asks for text/csv (listed, and not with q=0). */
bool readings_export_wants_csv(const char *accept);

int readings_export_get(const struct request *req, struct response *res, struct app *app);

#endif
