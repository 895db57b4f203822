/* measurements: POST /api/v1/measurements, readings from a device. */
#ifndef WATTLINE_MEASUREMENTS_H
#define WATTLINE_MEASUREMENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "../ingest/energy.h"
#include "../api/handler.h"

#define MEASUREMENTS_BATCH_MAX 10000
/* How far in the future a reading's ts may be (device clocks drift). */
#define MEASUREMENTS_FUTURE_US (5LL * 60 * 1000000)

/* Validates a request body for a device of the given type: one reading or
 * {"measurements": [...]}, all or nothing. Fills a malloc'd array (caller
 * frees) or returns false with the 422 already in res, the failing index in
 * its field ("measurements[17].kwh"). now_us is the receive time. */
bool measurements_parse_or_reply(const json_t *body, enum reading_type type, long long now_us,
                                 struct energy_reading **out, int *n, struct response *res);

int measurements_ingest(const struct request *req, struct response *res, struct app *app);

#endif
