#define _POSIX_C_SOURCE 200809L

#include "broker.h"

#include "client.h"

#include <amqp.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rabbitmq-c's parser knows the AMQP URI rules (defaults, percent-decoding). */
static int parse_amqp(const char *text, struct broker_url *out, char *err, size_t err_size)
{
    if (strncmp(text, "amqps://", 8) == 0) {
        snprintf(err, err_size, "--amqp: amqps:// (TLS) is not supported; use amqp://");
        return -1;
    }
    struct amqp_connection_info info;
    if (strncmp(text, "amqp://", 7) != 0 || amqp_parse_url(out->buf, &info) != AMQP_STATUS_OK ||
        info.host[0] == '\0') {
        snprintf(err, err_size,
                 "--amqp: \"%s\" is not amqp://USER:PASSWORD@HOST:PORT/VHOST (%%2f for the vhost "
                 "/)",
                 text);
        return -1;
    }
    out->host = info.host;
    out->port = info.port;
    out->user = info.user;
    out->password = info.password;
    out->vhost = info.vhost;
    return 0;
}

/* mqtt://host[:port][/]; host may be a bracketed IPv6 address. */
static int parse_mqtt(const char *text, struct broker_url *out, char *err, size_t err_size)
{
    char *p = out->buf;
    if (strncmp(p, "mqtt://", 7) != 0)
        goto bad;
    p += 7;
    if (strpbrk(p, "@?#") != NULL) {
        snprintf(err, err_size,
                 "--mqtt: \"%s\": no credentials or query in the URL; the device logs in with "
                 "--device-id or --serial and its token",
                 text);
        return -1;
    }
    char *host = p, *rest;
    if (*p == '[') {
        char *close = strchr(p, ']');
        if (close == NULL || close == p + 1)
            goto bad;
        host = p + 1;
        *close = '\0';
        rest = close + 1;
    } else {
        rest = p + strcspn(p, ":/");
        if (rest == p)
            goto bad;
    }
    long port = BROKER_MQTT_PORT;
    if (*rest == ':') {
        char *end;
        errno = 0;
        port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || errno != 0 || port < 1 || port > 65535)
            goto bad;
        *rest = '\0';
        rest = end;
    }
    if (*rest == '/')
        *rest++ = '\0';
    if (*rest != '\0')
        goto bad;
    out->host = host;
    out->port = (int)port;
    return 0;
bad:
    snprintf(err, err_size, "--mqtt: \"%s\" is not mqtt://HOST[:PORT]", text);
    return -1;
}

int broker_url_parse(enum broker_kind kind, const char *text, struct broker_url *out, char *err,
                     size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->buf = strdup(text);
    if (out->buf == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = kind == BROKER_AMQP ? parse_amqp(text, out, err, err_size)
                                 : parse_mqtt(text, out, err, err_size);
    if (rc != 0)
        broker_url_free(out);
    return rc;
}

void broker_url_free(struct broker_url *u)
{
    free(u->buf);
    memset(u, 0, sizeof *u);
}

bool broker_serial_valid(const char *serial)
{
    size_t len = strlen(serial);
    bool digits_only = true;
    if (len == 0 || len > BROKER_SERIAL_MAX)
        return false;
    for (const char *p = serial; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isascii(c) || !(isalnum(c) || c == '_' || c == '-'))
            return false;
        if (!isdigit(c))
            digits_only = false;
    }
    /* All digits would read as an id. */
    return !digits_only;
}

size_t broker_device_name(const struct broker_device *d, char *buf, size_t size)
{
    int n = d->id > 0 ? snprintf(buf, size, "%lld", (long long)d->id)
                      : snprintf(buf, size, "%s", d->serial);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

size_t broker_routing(enum broker_kind kind, const struct broker_device *d, char *buf, size_t size)
{
    char name[BROKER_DEVICE_NAME];
    if (broker_device_name(d, name, sizeof name) == 0)
        return 0;
    int n = kind == BROKER_AMQP ? snprintf(buf, size, "measurements.%s", name)
                                : snprintf(buf, size, "devices/%s/measurements", name);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

char *broker_body(enum broker_kind kind, const struct broker_device *d,
                  const struct spool_entry *entries, size_t n, const char *member)
{
    /* The readings are serialised exactly as for HTTP, by the same code. */
    char *http = client_build_body(entries, n, member);
    if (http == NULL || kind == BROKER_MQTT)
        return http;
    /* An AMQP message also says who sent it: the device goes in front of the reading
     * members. A serial needs no escaping: it is [A-Za-z0-9_-] only. */
    char who[BROKER_SERIAL_MAX + 32];
    int w = d->id > 0 ? snprintf(who, sizeof who, "{\"device_id\":%lld,", (long long)d->id)
                      : snprintf(who, sizeof who, "{\"serial\":\"%s\",", d->serial);
    size_t len = strlen(http);
    char *body = w > 0 && http[0] == '{' ? malloc((size_t)w + len) : NULL;
    if (body != NULL) {
        memcpy(body, who, (size_t)w);
        memcpy(body + w, http + 1, len); /* the rest and its terminator */
    }
    free(http);
    return body;
}
