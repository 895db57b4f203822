#include "check.h"

enum ingest_check_reason ingest_check_member(enum reading_type kind, enum reading_type type)
{
    return kind == type ? INGEST_CHECK_OK : INGEST_CHECK_WRONG_MEMBER;
}

enum ingest_check_reason ingest_check_ts(long long ts, long long now_us, long long max_age_us)
{
    if (ts > now_us + INGEST_FUTURE_US)
        return INGEST_CHECK_TS_FUTURE;
    return ts < now_us - max_age_us ? INGEST_CHECK_TS_TOO_OLD : INGEST_CHECK_OK;
}

enum ingest_check_reason ingest_check_value(double value)
{
    /* NaN fails every comparison: it is refused with the infinities. */
    return value >= 0 && value <= INGEST_VALUE_MAX ? INGEST_CHECK_OK : INGEST_CHECK_VALUE;
}

enum ingest_check_reason ingest_check(const struct ingest_reading *r, enum reading_type type,
                                      long long now_us, long long max_age_us)
{
    enum ingest_check_reason why = ingest_check_member(r->kind, type);
    if (why == INGEST_CHECK_OK)
        why = ingest_check_ts(r->ts, now_us, max_age_us);
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
    return reason == INGEST_CHECK_TS_FUTURE || reason == INGEST_CHECK_TS_TOO_OLD
               ? "ts"
               : ingest_member_name(r->kind);
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
    case INGEST_CHECK_TS_TOO_OLD:
        return "ts is older than MAX_READING_AGE_DAYS before the server's time, or in a month "
               "whose raw readings were retired";
    case INGEST_CHECK_VALUE:
        return "must be a number from 0 to 1e12";
    }
    return "invalid";
}
