/* broker_auth: RabbitMQ's HTTP auth backend (rabbitmq_auth_backend_http),
 * asked about devices that log in over MQTT: POST /api/v1/broker/auth/user,
 * /vhost, /resource and /topic, form bodies in, "allow" or "deny" out. The
 * routes exist only with AMQP_URL set and answer only BROKER_AUTH_ALLOW. */
#ifndef WATTLINE_BROKER_AUTH_H
#define WATTLINE_BROKER_AUTH_H

#include "../api/handler.h"

/* The routes' admission check, on the HTTP thread before the body is read:
 * 404 (as for a path that does not exist) without AMQP_URL or for a client
 * outside BROKER_AUTH_ALLOW. */
int broker_auth_admit(const struct request *req, struct response *res, struct app *app);

int broker_auth_user(const struct request *req, struct response *res, struct app *app);
int broker_auth_vhost(const struct request *req, struct response *res, struct app *app);
int broker_auth_resource(const struct request *req, struct response *res, struct app *app);
int broker_auth_topic(const struct request *req, struct response *res, struct app *app);

#endif
