/* The route table: every API path, who may call it, and whether it takes a
 * JSON body. The dispatcher (dispatch.c) enforces all of it before a handler runs. */
#include "routes.h"

#include "../handlers/alerts.h"
#include "../handlers/audit.h"
#include "../handlers/auth.h"
#include "../handlers/commands.h"
#include "../handlers/broker_auth.h"
#include "../handlers/chat.h"
#include "../handlers/consumption.h"
#include "../handlers/devices.h"
#include "../handlers/measurements.h"
#include "../handlers/notifications.h"
#include "../handlers/ops.h"
#include "../handlers/readings_export.h"
#include "../handlers/users.h"

#define R(method, pattern, handler, access, body)                                                  \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_HTTP, NULL, false                           \
    }
/* Routes that wait on PostgreSQL run on a query worker: requests queue in
 * arrival order instead of behind whichever connection shares their HTTP
 * thread, which is what keeps the slowest answers close to the typical one. */
#define Q(method, pattern, handler, access, body)                                                  \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_QUERY, NULL, false                          \
    }
/* A query route that may read from DATABASE_READ_URL (api/read_pool.h): the
 * contract's charts, readings, exports and lists; never a write, a single
 * object, or a read that must see its caller's own write. */
#define QR(method, pattern, handler, access, body)                                                 \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_QUERY, NULL, true                           \
    }
/* Routes that hash passwords (~0.1 s of CPU and 128 MiB each) run on a
 * hashing worker, so they never hold an HTTP thread or a query worker. */
#define H(method, pattern, handler, access, body)                                                  \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_HASHING, NULL, false                        \
    }

/* A hashing route with an admission check on the HTTP thread: login answers
 * an address it is slowing down at once, never from the hashing queue. */
#define HA(method, pattern, handler, access, body, admit)                                          \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_HASHING, admit, false                       \
    }

/* Routes with an admission check on the HTTP thread and a handler on it or
 * on a query worker: RabbitMQ's auth backend, refused (404) to anyone
 * outside BROKER_AUTH_ALLOW before the body is read. */
#define RA(method, pattern, handler, access, body, admit)                                          \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_HTTP, admit, false                          \
    }
#define QA(method, pattern, handler, access, body, admit)                                          \
    {                                                                                              \
        method, pattern, handler, access, body, THREAD_QUERY, admit, false                         \
    }

const struct route ROUTES[] = {
    R("GET", "/healthz", ops_healthz, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/readyz", ops_readyz, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/metrics", ops_metrics, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/api/v1/config", ops_config, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/api/v1/openapi.json", ops_openapi, ACCESS_ANYONE, BODY_NONE),

    HA("POST", "/api/v1/auth/login", auth_login, ACCESS_ANYONE, BODY_JSON, auth_login_admit),
    Q("POST", "/api/v1/auth/refresh", auth_refresh, ACCESS_ANYONE, BODY_JSON),
    Q("POST", "/api/v1/auth/logout", auth_logout, ACCESS_ANYONE, BODY_JSON),

    Q("GET", "/api/v1/me", users_me_get, ACCESS_USER, BODY_NONE),
    H("PATCH", "/api/v1/me", users_me_patch, ACCESS_USER, BODY_JSON),
    QR("GET", "/api/v1/users", users_list, ACCESS_ADMIN, BODY_NONE),
    H("POST", "/api/v1/users", users_create, ACCESS_ADMIN, BODY_JSON),
    Q("GET", "/api/v1/users/{id}", users_get, ACCESS_ADMIN, BODY_NONE),
    H("PATCH", "/api/v1/users/{id}", users_patch, ACCESS_ADMIN, BODY_JSON),
    Q("DELETE", "/api/v1/users/{id}", users_delete, ACCESS_ADMIN, BODY_NONE),

    QR("GET", "/api/v1/devices", devices_list, ACCESS_USER, BODY_NONE),
    Q("POST", "/api/v1/devices", devices_create, ACCESS_ADMIN, BODY_JSON),
    Q("GET", "/api/v1/devices/{id}", devices_get, ACCESS_USER, BODY_NONE),
    Q("PATCH", "/api/v1/devices/{id}", devices_update, ACCESS_USER, BODY_JSON),
    Q("DELETE", "/api/v1/devices/{id}", devices_delete, ACCESS_ADMIN, BODY_NONE),
    Q("POST", "/api/v1/devices/{id}/token", devices_rotate_token, ACCESS_ADMIN, BODY_NONE),
    QR("GET", "/api/v1/devices/{id}/consumption", consumption_get, ACCESS_USER, BODY_NONE),
    QR("GET", "/api/v1/devices/{id}/measurements", readings_export_get, ACCESS_USER, BODY_NONE),

    R("POST", "/api/v1/measurements", measurements_ingest, ACCESS_DEVICE, BODY_JSON_BULK),

    Q("POST", "/api/v1/devices/{id}/commands", commands_create, ACCESS_USER, BODY_JSON),
    QR("GET", "/api/v1/devices/{id}/commands", commands_list, ACCESS_USER, BODY_NONE),
    Q("GET", "/api/v1/commands/{id}", commands_get, ACCESS_USER, BODY_NONE),
    Q("POST", "/api/v1/commands/{id}/cancel", commands_cancel, ACCESS_USER, BODY_NONE),
    /* The long-poll waits suspended in command_poll, holding no thread. */
    R("GET", "/api/v1/device/commands", commands_poll, ACCESS_DEVICE, BODY_NONE),
    Q("POST", "/api/v1/device/commands/{id}/result", commands_result, ACCESS_DEVICE, BODY_JSON),

    Q("GET", "/api/v1/audit", audit_list, ACCESS_ADMIN, BODY_NONE),

    QR("GET", "/api/v1/alerts", alerts_list, ACCESS_USER, BODY_NONE),
    Q("POST", "/api/v1/alerts/{id}/ack", alerts_ack, ACCESS_USER, BODY_NONE),

    Q("GET", "/api/v1/me/notifications", notifications_get, ACCESS_USER, BODY_NONE),
    Q("PUT", "/api/v1/me/notifications", notifications_put, ACCESS_USER, BODY_JSON),
    /* Creating one resolves its URL's host: a query worker, never an HTTP thread. */
    Q("POST", "/api/v1/me/webhooks", webhooks_create, ACCESS_USER, BODY_JSON),
    QR("GET", "/api/v1/me/webhooks", webhooks_list, ACCESS_USER, BODY_NONE),
    Q("GET", "/api/v1/me/webhooks/{id}", webhooks_get, ACCESS_USER, BODY_NONE),
    Q("DELETE", "/api/v1/me/webhooks/{id}", webhooks_delete, ACCESS_USER, BODY_NONE),
    QR("GET", "/api/v1/me/webhooks/{id}/deliveries", webhooks_deliveries, ACCESS_USER, BODY_NONE),

    QA("POST", "/api/v1/broker/auth/user", broker_auth_user, ACCESS_ANYONE, BODY_FORM,
       broker_auth_admit),
    RA("POST", "/api/v1/broker/auth/vhost", broker_auth_vhost, ACCESS_ANYONE, BODY_FORM,
       broker_auth_admit),
    RA("POST", "/api/v1/broker/auth/resource", broker_auth_resource, ACCESS_ANYONE, BODY_FORM,
       broker_auth_admit),
    RA("POST", "/api/v1/broker/auth/topic", broker_auth_topic, ACCESS_ANYONE, BODY_FORM,
       broker_auth_admit),
    QR("GET", "/api/v1/conversations", chat_conversations_list, ACCESS_ADMIN, BODY_NONE),
    Q("GET", "/api/v1/me/conversation", chat_me_conversation, ACCESS_USER, BODY_NONE),
    QR("GET", "/api/v1/conversations/{id}/messages", chat_messages_list, ACCESS_USER, BODY_NONE),
    Q("POST", "/api/v1/conversations/{id}/messages", chat_messages_post, ACCESS_USER, BODY_JSON),
    Q("GET", "/api/v1/conversations/{id}/messages/{message_id}", chat_message_get, ACCESS_USER,
      BODY_NONE),
    Q("POST", "/api/v1/conversations/{id}/read", chat_read_post, ACCESS_USER, BODY_JSON),
};

const size_t ROUTES_COUNT = sizeof ROUTES / sizeof ROUTES[0];
