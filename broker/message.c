#include "message.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/device_name.h"
#include "../base/json_shape.h"
#include "../base/timefmt.h"
#include "../ingest/decode.h"

/* Seed timestamps are milliseconds: anything past this (year 5138) is not
 * a time a meter took a reading at, and stays far from overflowing in µs. */
#define SEED_MS_MAX 100000000000000LL

static bool fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return false;
}

/* A name as text (device_name.h): digits name an id, anything else a
 * serial. len bytes, not NUL-terminated; a NUL inside names nothing. */
static bool name_from_text(const char *s, size_t len, struct broker_name *out)
{
    memset(out, 0, sizeof *out);
    char text[DEVICE_SERIAL_MAX + 1];
    if (len == 0 || len > DEVICE_SERIAL_MAX || memchr(s, '\0', len))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    switch (device_name_parse(text, &out->id)) {
    case DEVICE_NAME_ID:
        return true;
    case DEVICE_NAME_SERIAL:
        memcpy(out->serial, text, len + 1);
        return true;
    default:
        return false;
    }
}

bool broker_topic_device(const char *key, size_t len, const char *suffix, struct broker_name *out)
{
    static const char prefix[] = "devices.";
    const size_t np = sizeof prefix - 1, ns = strlen(suffix);
    if (len <= np + ns || memcmp(key, prefix, np) != 0 || memcmp(key + len - ns, suffix, ns) != 0)
        return false;
    return name_from_text(key + np, len - np - ns, out);
}

bool broker_topic_name(const char *key, size_t len, struct broker_name *out)
{
    return broker_topic_device(key, len, ".measurements", out);
}

/* device_id: a positive integer, or a string naming an id or a serial. */
static bool name_from_json(const json_t *v, struct broker_name *out)
{
    memset(out, 0, sizeof *out);
    if (json_is_integer(v)) {
        out->id = json_integer_value(v);
        return out->id > 0;
    }
    if (json_is_string(v))
        return name_from_text(json_string_value(v), json_string_length(v), out);
    return false;
}

static bool add_name(struct broker_message *m, const json_t *v, const char *member, char *why,
                     size_t whylen)
{
    if (!v)
        return true;
    struct broker_name *n = &m->names[m->nnames];
    /* serial names a serial only; device_id an id or a serial */
    bool ok =
        name_from_json(v, n) && (strcmp(member, "serial") != 0 || (json_is_string(v) && !n->id));
    if (!ok)
        return fail(why, whylen, "%s: not a device %s", member,
                    !strcmp(member, "serial") ? "serial" : "id or serial");
    m->nnames++;
    return true;
}

/* "1570654800000", 1570654800000, 1570654800000.0 or an RFC 3339 string. */
static bool seed_timestamp(const json_t *v, long long *ts_us)
{
    long long ms;
    if (json_is_integer(v)) {
        ms = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d <= (double)SEED_MS_MAX) || d != floor(d))
            return false;
        ms = (long long)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0 || strspn(s, "0123456789") < len)
            return timefmt_parse(s, ts_us);
        if (len > 15)
            return false;
        ms = strtoll(s, NULL, 10);
    } else {
        return false;
    }
    if (ms < 0 || ms > SEED_MS_MAX)
        return false;
    *ts_us = ms * 1000;
    return true;
}

/* 0.1 or "0.1": a decimal number, nothing around it (no "nan", "inf" or hex). */
static bool seed_value(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 64 || strspn(s, "0123456789+-.eE") < len)
        return false;
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end == s + len && isfinite(*out);
}

static bool parse_seed(const json_t *obj, struct broker_message *m, char *why, size_t whylen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "timestamp") != 0 && strcmp(key, "device_id") != 0 &&
            strcmp(key, "measurement_value") != 0)
            return fail(why, whylen, "%s: unknown member", key);
    }
    m->format = BROKER_FORMAT_SEED;
    json_t *ts = json_object_get(obj, "timestamp"),
           *value = json_object_get(obj, "measurement_value");
    if (!ts)
        return fail(why, whylen, "timestamp: missing");
    if (!seed_timestamp(ts, &m->ts_us))
        return fail(why, whylen, "timestamp: must be milliseconds since the epoch or RFC 3339");
    if (!value)
        return fail(why, whylen, "measurement_value: missing");
    if (!seed_value(value, &m->value))
        return fail(why, whylen, "measurement_value: must be a finite number");
    return add_name(m, json_object_get(obj, "device_id"), "device_id", why, whylen);
}

static bool parse_own(const json_t *obj, struct broker_message *m, char *why, size_t whylen)
{
    m->format = BROKER_FORMAT_OWN;
    if (!add_name(m, json_object_get(obj, "device_id"), "device_id", why, whylen) ||
        !add_name(m, json_object_get(obj, "serial"), "serial", why, whylen))
        return false;
    m->body = json_copy((json_t *)obj); /* shallow: the readings are shared, not copied */
    if (!m->body)
        return fail(why, whylen, "out of memory");
    json_object_del(m->body, "device_id");
    json_object_del(m->body, "serial");
    return true;
}

/* A NestJS microservice envelope {"pattern", "data", "id"?}: its data. */
static const json_t *unwrap(const json_t *obj)
{
    const json_t *data = json_object_get(obj, "data");
    if (!json_object_get(obj, "pattern") || !json_is_object(data))
        return obj;
    size_t members = json_object_size(obj);
    return members == 2 || (members == 3 && json_object_get(obj, "id")) ? data : obj;
}

bool broker_message_parse(const char *data, size_t len, const char *topic_key,
                          struct broker_message *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (topic_key) {
        if (!broker_topic_name(topic_key, strlen(topic_key), &out->names[0]))
            return fail(why, whylen, "routing key %.80s: not devices.<id or serial>.measurements",
                        topic_key);
        out->nnames = 1;
    }
    if (len > BROKER_MESSAGE_MAX)
        return fail(why, whylen, "body: %zu bytes, more than %d", len, BROKER_MESSAGE_MAX);
    const char *shape = json_shape_problem(data, len);
    if (shape)
        return fail(why, whylen, "body: %s", shape);
    json_error_t error;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &error);
    if (!doc)
        return fail(why, whylen, "body: not JSON: %s", error.text);
    bool ok;
    const json_t *obj = json_is_object(doc) ? unwrap(doc) : NULL;
    if (!obj)
        ok = fail(why, whylen, "body: must be a JSON object");
    else if (json_object_get(obj, "measurement_value") || json_object_get(obj, "timestamp"))
        ok = parse_seed(obj, out, why, whylen);
    else
        ok = parse_own(obj, out, why, whylen);
    if (ok && out->nnames == 0)
        ok = fail(why, whylen, "device_id: missing (or serial)");
    json_decref(doc);
    return ok;
}

void broker_message_free(struct broker_message *m)
{
    json_decref(m->body);
    m->body = NULL;
}

enum status broker_message_readings(const struct broker_message *m, enum reading_type type,
                                    long long now_us, long long max_age_us,
                                    struct ingest_reading **out, int *n, char *why, size_t whylen)
{
    *out = NULL;
    *n = 0;
    if (m->format == BROKER_FORMAT_OWN) {
        struct ingest_decode_error err;
        enum status st = ingest_decode(m->body, type, now_us, max_age_us, out, n, &err);
        /* too_old leads the dead-letter reason, as it is the problem's code over HTTP. */
        if (st == STATUS_INVALID)
            snprintf(why, whylen, "%s%s", err.fault == INGEST_DECODE_TOO_OLD ? "too_old: " : "",
                     err.detail);
        return st;
    }
    /* The seed's value is whatever the device's type says it is. */
    struct ingest_reading r = {.ts = m->ts_us, .value = m->value, .kind = type};
    enum ingest_check_reason reason = ingest_check(&r, type, now_us, max_age_us);
    if (reason != INGEST_CHECK_OK) {
        const char *member = reason == INGEST_CHECK_VALUE ? "measurement_value" : "timestamp";
        snprintf(why, whylen, "%s%s: %s", reason == INGEST_CHECK_TS_TOO_OLD ? "too_old: " : "",
                 member, ingest_check_message(reason, type));
        return STATUS_INVALID;
    }
    *out = malloc(sizeof r);
    if (!*out)
        return STATUS_INTERNAL;
    **out = r;
    *n = 1;
    return STATUS_OK;
}
