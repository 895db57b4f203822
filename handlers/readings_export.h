/* readings_export: GET /api/v1/devices/{id}/measurements, a device's stored
 * readings as the device sent them: JSON pages, or with Accept: text/csv the
 * whole range as one CSV stream, fetched a chunk at a time, that never holds
 * more than one chunk in memory nor a database connection while its client
 * reads (the design is above the stream in readings_export.c). */
#ifndef WATTLINE_READINGS_EXPORT_H
#define WATTLINE_READINGS_EXPORT_H

#include <stdbool.h>

#include "../api/handler.h"

/* Whether an Accept header asks for text/csv (listed, and not with q=0). */
bool readings_export_wants_csv(const char *accept);

int readings_export_get(const struct request *req, struct response *res, struct app *app);

#endif
