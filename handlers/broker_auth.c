/* The answers are 200 text/plain "allow" or "deny" whatever the reason for a
 * deny (a missing field included): RabbitMQ takes anything but "allow" as a
 * refusal, and says no more to the device. A body that is not a form at all
 * is the dispatcher's 415 or 400, which RabbitMQ also takes as a refusal. */
#include "broker_auth.h"

#include <stdlib.h>
#include <string.h>

#include "../api/app.h"
#include "../api/broker_acl.h"
#include "../auth/broker_login.h"
#include "../base/netaddr.h"

static int answer(struct response *res, bool allow)
{
    /* A user is never tagged "administrator": "allow" alone. */
    const char *word = allow ? "allow" : "deny";
    return response_body(res, 200, "text/plain; charset=utf-8", strdup(word), strlen(word));
}

/* A form field (req->body is the decoded form), or NULL when absent. */
static const char *field(const struct request *req, const char *name)
{
    return json_string_value(json_object_get(req->body, name));
}

int broker_auth_admit(const struct request *req, struct response *res, struct app *app)
{
    if (app->config->amqp_url &&
        netaddr_set_contains_text(&app->config->broker_auth_allow_set, req->client_ip))
        return 0;
    return response_problem(res, 404, "not_found", NULL, "no such resource");
}

/* POST /api/v1/broker/auth/user — BROKER_AUTH_ALLOW — form: username (a
 * device id or serial), password (its token), and whatever else the plugin
 * adds (client_id, vhost). 200 "allow" when the token is that device's; else
 * "deny". 503 when the database cannot answer and nothing is cached. On a
 * query worker: a miss queries (cached 1 s). */
int broker_auth_user(const struct request *req, struct response *res, struct app *app)
{
    if (!app->broker_login)
        return answer(res, false);
    bool allow = false;
    enum status st = broker_login_check(app->broker_login, field(req, "username"),
                                        field(req, "password"), &allow);
    if (st != STATUS_OK)
        return response_status(res, st);
    return answer(res, allow);
}

/* POST /api/v1/broker/auth/vhost — BROKER_AUTH_ALLOW — form: username,
 * vhost, ip. 200 "allow" for a device name and the vhost of AMQP_URL. */
int broker_auth_vhost(const struct request *req, struct response *res, struct app *app)
{
    return answer(
        res, broker_acl_vhost(app->config->amqp_url, field(req, "username"), field(req, "vhost")));
}

/* POST /api/v1/broker/auth/resource — BROKER_AUTH_ALLOW — form: username,
 * vhost, resource, name, permission. 200 "allow" for exchange amq.topic
 * (read, write) and the device's MQTT subscription queues (configure, write,
 * read); "deny" for anything else. */
int broker_auth_resource(const struct request *req, struct response *res, struct app *app)
{
    return answer(res, broker_acl_resource(app->config->amqp_url, field(req, "username"),
                                           field(req, "vhost"), field(req, "resource"),
                                           field(req, "name"), field(req, "permission")));
}

/* POST /api/v1/broker/auth/topic — BROKER_AUTH_ALLOW — form: username,
 * vhost, resource (topic), name (the exchange), permission, routing_key,
 * variable_map.*. 200 "allow" on amq.topic for writing
 * devices.<it>.measurements and devices.<it>.command_results and reading
 * devices.<it>.commands, <it> the name the device logged in with. */
int broker_auth_topic(const struct request *req, struct response *res, struct app *app)
{
    return answer(res,
                  broker_acl_topic(app->config->amqp_url, field(req, "username"),
                                   field(req, "vhost"), field(req, "resource"), field(req, "name"),
                                   field(req, "permission"), field(req, "routing_key")));
}
