/* measurements: POST /api/v1/measurements, readings from a device. */
#ifndef WATTLINE_MEASUREMENTS_H
#define WATTLINE_MEASUREMENTS_H

#include "../api/handler.h"

int measurements_ingest(const struct request *req, struct response *res, struct app *app);

#endif
