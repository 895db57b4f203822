/* check: the contract's rules for one reading of one device, whatever its
 * source (HTTP, a message broker) and format. Pure: no JSON, no I/O.
 *
 * A reading is valid for a device when
 *   - its value came as the member the device's reading type uses: kwh for
 *     an interval device, meter_kwh for a cumulative one;
 *   - its ts is at most INGEST_FUTURE_US after the time it was received;
 *   - its value is finite and >= 0.
 * The rules are checked in that order and the first broken one is the reason.
 */
#ifndef WATTLINE_INGEST_CHECK_H
#define WATTLINE_INGEST_CHECK_H

#include "../db/models.h"

/* How far in the future a reading's ts may be (device clocks drift). */
#define INGEST_FUTURE_US (5LL * 60 * 1000000)

/* One reading as a source delivered it. */
struct ingest_reading {
    long long ts;           /* microseconds since the epoch */
    double value;           /* kWh: energy since the previous reading, or a register */
    enum reading_type kind; /* the member it came as: READING_INTERVAL for kwh,
                               READING_CUMULATIVE for meter_kwh */
};

enum ingest_check_reason {
    INGEST_CHECK_OK = 0,
    INGEST_CHECK_WRONG_MEMBER, /* kwh for a cumulative device, or meter_kwh for an interval one */
    INGEST_CHECK_TS_FUTURE,    /* ts more than INGEST_FUTURE_US after the receive time */
    INGEST_CHECK_VALUE,        /* not finite, or < 0 */
};

/* Checks r for a device of the given type, received at now_us. */
enum ingest_check_reason ingest_check(const struct ingest_reading *r, enum reading_type type,
                                      long long now_us);

/* The rules one at a time, for a decoder that meets a reading's parts in
 * its own order and reports the first fault it meets. ingest_check() is
 * these three, in this order. */
enum ingest_check_reason ingest_check_member(enum reading_type kind, enum reading_type type);
enum ingest_check_reason ingest_check_ts(long long ts, long long now_us);
enum ingest_check_reason ingest_check_value(double value);

/* The member a reading of that kind comes as: "kwh" or "meter_kwh" (static). */
const char *ingest_member_name(enum reading_type kind);

/* The member at fault for a reason: "ts", or the value's member (static). */
const char *ingest_check_field(enum ingest_check_reason reason, const struct ingest_reading *r);

/* Why, in words, for a device of the given type (static, without the field). */
const char *ingest_check_message(enum ingest_check_reason reason, enum reading_type type);

#endif
