/* decode: the JSON body of an ingestion (HTTP today, the same payloads from
 * a message broker tomorrow) becomes readings, all or nothing. Knows JSON,
 * not HTTP: a fault is reported as the member at fault and a message.
 *
 * A body is one reading {"ts"?, "meter_kwh"|"kwh"} or a batch
 * {"measurements": [reading, ...]} of 1 to INGEST_BATCH_MAX readings. A
 * reading without ts was taken at the receive time. Every reading passes
 * ingest_check() (check.h); unknown members are faults.
 */
#ifndef WATTLINE_INGEST_DECODE_H
#define WATTLINE_INGEST_DECODE_H

#include <jansson.h>

#include "../db/status.h"
#include "check.h"

#define INGEST_BATCH_MAX 10000

enum ingest_decode_fault {
    INGEST_DECODE_INVALID_FIELD, /* field names the member at fault */
    INGEST_DECODE_UNKNOWN_FIELD, /* a batch body with members besides measurements; no field */
};

struct ingest_decode_error {
    enum ingest_decode_fault fault;
    char field[64];   /* "measurements[17].kwh", "ts", "measurements", "body"; "" when none */
    char detail[192]; /* the whole message, e.g. "measurements[17].kwh: missing" */
};

/* Decodes body for a device of the given type, received at now_us.
 * STATUS_OK: *out is a malloc'd array of *n readings (caller frees).
 * STATUS_INVALID: *err says why (the first fault in reading order).
 * STATUS_INTERNAL: out of memory. *out is NULL unless STATUS_OK. */
enum status ingest_decode(const json_t *body, enum reading_type type, long long now_us,
                          struct ingest_reading **out, int *n, struct ingest_decode_error *err);

#endif
