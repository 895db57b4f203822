/* broker_acl: what a device logged in to RabbitMQ (MQTT) may do, as the
 * plugin rabbitmq_auth_backend_http asks it on every connection, queue and
 * topic access (/api/v1/broker/auth/{vhost,resource,topic}). Pure string
 * checks on the user name and the names RabbitMQ gives: no database, so
 * those routes answer on the HTTP thread. Whether the login itself was good
 * is auth/broker_login.h's to say; RabbitMQ asks these only of users that
 * backend let in.
 *
 * The user name is the one the device logged in with: its id in digits or
 * its serial (base/device_name.h); a name that is neither is denied
 * everything. Every check also wants the vhost of AMQP_URL, the devices'
 * vhost (RabbitMQ's mqtt.vhost). */
#ifndef WATTLINE_BROKER_ACL_H
#define WATTLINE_BROKER_ACL_H

#include <stdbool.h>
#include <stddef.h>

/* The exchange where RabbitMQ's MQTT plugin publishes, and topic names with
 * '.' for MQTT's '/'. */
#define BROKER_ACL_EXCHANGE "amq.topic"

/* The vhost an AMQP URL names, as RabbitMQ and rabbitmq-c read it: the path
 * after the authority, percent-decoded ("amqp://u:p@h:5672/%2f" is "/",
 * "amqp://h/meters" is "meters"); no path at all is "/". False when the URL
 * is not amqp:// or amqps://, has a bad escape, or the vhost does not fit
 * in size bytes. */
bool broker_acl_vhost_of_url(const char *amqp_url, char *out, size_t size);

/* /vhost: the device may use vhost, the vhost of amqp_url. */
bool broker_acl_vhost(const char *amqp_url, const char *username, const char *vhost);

/* /resource: resource "exchange" named BROKER_ACL_EXCHANGE for read or
 * write, or resource "queue" named mqtt-subscription-<client id>qos0 or
 * ...qos1 (the plugin's subscription queues) for configure, write or read;
 * nothing else. */
bool broker_acl_resource(const char *amqp_url, const char *username, const char *vhost,
                         const char *resource, const char *name, const char *permission);

/* /topic: on exchange BROKER_ACL_EXCHANGE, write to devices.<it>.measurements
 * and devices.<it>.command_results, read devices.<it>.commands, where <it>
 * is exactly username; nothing else (wildcard subscriptions included). */
bool broker_acl_topic(const char *amqp_url, const char *username, const char *vhost,
                      const char *resource, const char *name, const char *permission,
                      const char *routing_key);

#endif
