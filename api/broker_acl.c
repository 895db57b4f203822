#include "broker_acl.h"

#include <string.h>

#include "../base/device_name.h"
#include "../base/form.h"

/* Longer vhosts than this are not ours: RabbitMQ allows 255 bytes. */
#define VHOST_MAX 256

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

bool broker_acl_vhost_of_url(const char *url, char *out, size_t size)
{
    if (!url || size == 0)
        return false;
    const char *rest = starts_with(url, "amqp://")    ? url + 7
                       : starts_with(url, "amqps://") ? url + 8
                                                      : NULL;
    if (!rest)
        return false;
    /* The authority (user:pass@host:port) has no '/': RFC 3986 wants it
     * percent-encoded there. */
    const char *path = strchr(rest, '/');
    if (!path) {
        if (size < 2)
            return false;
        strcpy(out, "/");
        return true;
    }
    path++;
    size_t len = strcspn(path, "?#");
    char decoded[VHOST_MAX + 1];
    size_t n;
    if (len > VHOST_MAX || !form_unescape(path, len, false, decoded, &n) || n >= size)
        return false;
    memcpy(out, decoded, n + 1);
    return true;
}

/* The user is a device name, and vhost the devices' vhost. */
static bool device_in_vhost(const char *amqp_url, const char *username, const char *vhost)
{
    long long id;
    char ours[VHOST_MAX + 1];
    return username && vhost && device_name_parse(username, &id) != DEVICE_NAME_INVALID &&
           broker_acl_vhost_of_url(amqp_url, ours, sizeof ours) && strcmp(vhost, ours) == 0;
}

bool broker_acl_vhost(const char *amqp_url, const char *username, const char *vhost)
{
    return device_in_vhost(amqp_url, username, vhost);
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* mqtt-subscription-<client id>qos0 / qos1: the queue the MQTT plugin
 * declares for a client's subscriptions, whatever the client id. */
static bool subscription_queue(const char *name)
{
    static const char PREFIX[] = "mqtt-subscription-";
    size_t len = strlen(name);
    return starts_with(name, PREFIX) && len >= sizeof PREFIX - 1 + 4 &&
           (ends_with(name, len, "qos0") || ends_with(name, len, "qos1"));
}

bool broker_acl_resource(const char *amqp_url, const char *username, const char *vhost,
                         const char *resource, const char *name, const char *permission)
{
    static const char *const EXCHANGE_PERMISSIONS[] = {"read", "write", NULL};
    static const char *const QUEUE_PERMISSIONS[] = {"configure", "write", "read", NULL};
    if (!device_in_vhost(amqp_url, username, vhost) || !resource || !name || !permission)
        return false;
    if (strcmp(resource, "exchange") == 0)
        return strcmp(name, BROKER_ACL_EXCHANGE) == 0 &&
               is_one_of(permission, EXCHANGE_PERMISSIONS);
    if (strcmp(resource, "queue") == 0)
        return subscription_queue(name) && is_one_of(permission, QUEUE_PERMISSIONS);
    return false;
}

/* routing_key is "devices." username "." suffix, exactly. */
static bool own_key(const char *routing_key, const char *username, const char *suffix)
{
    static const char PREFIX[] = "devices.";
    size_t user_len = strlen(username);
    if (!starts_with(routing_key, PREFIX))
        return false;
    const char *p = routing_key + sizeof PREFIX - 1;
    return strncmp(p, username, user_len) == 0 && p[user_len] == '.' &&
           strcmp(p + user_len + 1, suffix) == 0;
}

bool broker_acl_topic(const char *amqp_url, const char *username, const char *vhost,
                      const char *resource, const char *name, const char *permission,
                      const char *routing_key)
{
    if (!device_in_vhost(amqp_url, username, vhost) || !resource || !name || !permission ||
        !routing_key || strcmp(resource, "topic") != 0 || strcmp(name, BROKER_ACL_EXCHANGE) != 0)
        return false;
    if (strcmp(permission, "write") == 0)
        return own_key(routing_key, username, "measurements") ||
               own_key(routing_key, username, "command_results");
    if (strcmp(permission, "read") == 0)
        return own_key(routing_key, username, "commands");
    return false;
}
