/* consumption: GET /api/v1/devices/{id}/consumption, a device's energy per
 * hour of one local day, or per hour, day or month of a range, in an IANA
 * time zone. */
#ifndef WATTLINE_CONSUMPTION_H
#define WATTLINE_CONSUMPTION_H

#include <stdbool.h>

#include "../api/handler.h"

/* At most this many buckets in one answer (else 422 too_many_buckets). */
#define CONSUMPTION_MAX_BUCKETS 10000

/* Whether tz is shaped like an IANA zone name ("UTC", "Europe/Bucharest",
 * "America/Argentina/Buenos_Aires", "Etc/GMT+3"): 1..64 bytes of letters,
 * digits, '_', '-', '+' in '/'-separated parts that each start with a
 * letter. Whether the zone exists is PostgreSQL's to say. */
bool consumption_tz_plausible(const char *tz);

int consumption_get(const struct request *req, struct response *res, struct app *app);

#endif
