#include "check.h"

#include <math.h>

enum ingest_check_reason ingest_check_member(enum reading_type kind, enum reading_type type)
{
    return kind == type ? INGEST_CHECK_OK : INGEST_CHECK_WRONG_MEMBER;
}

enum ingest_check_reason ingest_check_ts(long long ts, long long now_us)
{
    return ts > now_us + INGEST_FUTURE_US ? INGEST_CHECK_TS_FUTURE : INGEST_CHECK_OK;
}

enum ingest_check_reason ingest_check_value(double value)
{
    return isfinite(value) && value >= 0 ? INGEST_CHECK_OK : INGEST_CHECK_VALUE;
}

enum ingest_check_reason ingest_check(const struct ingest_reading *r, enum reading_type type,
                                      long long now_us)
{
    enum ingest_check_reason why = ingest_check_member(r->kind, type);
    if (why == INGEST_CHECK_OK)
        why = ingest_check_ts(r->ts, now_us);
    if (why == INGEST_CHECK_OK)
        why = ingest_check_value(r->value);
    return why;
}

const char *ingest_member_name(enum reading_type kind)
{
    return kind == READING_INTERVAL ? "kwh" : "meter_kwh";
}

const char *ingest_check_field(enum ingest_check_reason reason, const struct ingest_reading *r)
{
    return reason == INGEST_CHECK_TS_FUTURE ? "ts" : ingest_member_name(r->kind);
}

const char *ingest_check_message(enum ingest_check_reason reason, enum reading_type type)
{
    switch (reason) {
    case INGEST_CHECK_OK:
        return "valid";
    case INGEST_CHECK_WRONG_MEMBER:
        return type == READING_INTERVAL ? "this device reports interval energy: use kwh"
                                        : "this device reports a meter register: use meter_kwh";
    case INGEST_CHECK_TS_FUTURE:
        return "ts is more than 5 minutes in the future";
    case INGEST_CHECK_VALUE:
        return "must be a finite number >= 0";
    }
    return "invalid";
}
