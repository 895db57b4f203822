#include "decode.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/timefmt.h"

/* Records a fault of the member `member` of the reading at prefix ("" for a
 * body that is one reading, "measurements[3]" in a batch). */
static bool reading_fault(struct ingest_decode_error *err, const char *prefix, const char *member,
                          const char *why)
{
    err->fault = INGEST_DECODE_INVALID_FIELD;
    if (member)
        snprintf(err->field, sizeof err->field, "%s%s%s", prefix, *prefix ? "." : "", member);
    else
        snprintf(err->field, sizeof err->field, "%s", *prefix ? prefix : "body");
    snprintf(err->detail, sizeof err->detail, "%s: %s", err->field, why);
    return false;
}

/* The members of r are ts and the value's member; the value's member is the
 * device's (a fault is reported for the first offending member in order). */
static bool decode_members(const json_t *r, enum reading_type type, const char *prefix,
                           struct ingest_decode_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)r, key, v)
    {
        if (!strcmp(key, "ts"))
            continue;
        if (strcmp(key, "kwh") != 0 && strcmp(key, "meter_kwh") != 0)
            return reading_fault(err, prefix, key, "unknown member");
        enum reading_type kind = !strcmp(key, "kwh") ? READING_INTERVAL : READING_CUMULATIVE;
        enum ingest_check_reason why = ingest_check_member(kind, type);
        if (why != INGEST_CHECK_OK)
            return reading_fault(err, prefix, key, ingest_check_message(why, type));
    }
    return true;
}

static bool decode_reading(const json_t *r, enum reading_type type, long long now_us,
                           const char *prefix, struct ingest_reading *out,
                           struct ingest_decode_error *err)
{
    if (!json_is_object(r))
        return reading_fault(err, prefix, NULL, "a reading must be an object");
    if (!decode_members(r, type, prefix, err))
        return false;
    json_t *ts = json_object_get(r, "ts");
    out->ts = now_us;
    if (ts && (!json_is_string(ts) || !timefmt_parse(json_string_value(ts), &out->ts)))
        return reading_fault(err, prefix, "ts",
                             "ts must be an RFC 3339 date-time such as 2026-11-21T10:10:00Z");
    enum ingest_check_reason why = ingest_check_ts(out->ts, now_us);
    if (why != INGEST_CHECK_OK)
        return reading_fault(err, prefix, "ts", ingest_check_message(why, type));
    const char *member = ingest_member_name(type);
    json_t *value = json_object_get(r, member);
    if (!value)
        return reading_fault(err, prefix, member, "missing");
    why = json_is_number(value) ? ingest_check_value(json_number_value(value)) : INGEST_CHECK_VALUE;
    if (why != INGEST_CHECK_OK)
        return reading_fault(err, prefix, member, ingest_check_message(why, type));
    out->value = json_number_value(value);
    out->kind = type;
    return true;
}

static enum status decode_one(const json_t *body, enum reading_type type, long long now_us,
                              struct ingest_reading **out, int *n, struct ingest_decode_error *err)
{
    struct ingest_reading *one = malloc(sizeof *one);
    if (!one)
        return STATUS_INTERNAL;
    if (!decode_reading(body, type, now_us, "", one, err)) {
        free(one);
        return STATUS_INVALID;
    }
    *out = one;
    *n = 1;
    return STATUS_OK;
}

static enum status batch_fault(struct ingest_decode_error *err, enum ingest_decode_fault fault,
                               const char *field, const char *detail)
{
    err->fault = fault;
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->detail, sizeof err->detail, "%s", detail);
    return STATUS_INVALID;
}

static enum status decode_batch(const json_t *body, const json_t *batch, enum reading_type type,
                                long long now_us, struct ingest_reading **out, int *n,
                                struct ingest_decode_error *err)
{
    if (json_object_size(body) != 1)
        return batch_fault(err, INGEST_DECODE_UNKNOWN_FIELD, "",
                           "a batch body has only the member measurements");
    size_t count = json_is_array(batch) ? json_array_size(batch) : 0;
    if (count == 0 || count > INGEST_BATCH_MAX) {
        char detail[96];
        snprintf(detail, sizeof detail, "measurements must be an array of 1 to %d readings",
                 INGEST_BATCH_MAX);
        return batch_fault(err, INGEST_DECODE_INVALID_FIELD, "measurements", detail);
    }
    struct ingest_reading *readings = malloc(count * sizeof *readings);
    if (!readings)
        return STATUS_INTERNAL;
    for (size_t i = 0; i < count; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "measurements[%zu]", i);
        if (!decode_reading(json_array_get(batch, i), type, now_us, prefix, &readings[i], err)) {
            free(readings);
            return STATUS_INVALID;
        }
    }
    *out = readings;
    *n = (int)count;
    return STATUS_OK;
}

enum status ingest_decode(const json_t *body, enum reading_type type, long long now_us,
                          struct ingest_reading **out, int *n, struct ingest_decode_error *err)
{
    *out = NULL;
    *n = 0;
    memset(err, 0, sizeof *err);
    json_t *batch = json_is_object(body) ? json_object_get(body, "measurements") : NULL;
    if (!batch)
        return decode_one(body, type, now_us, out, n, err);
    return decode_batch(body, batch, type, now_us, out, n, err);
}
