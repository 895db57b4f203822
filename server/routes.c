/* The route table: every API path, who may call it, and whether it takes a
 * JSON body. The dispatcher (http.c) enforces all of it before a handler runs. */
#include "routes.h"

#include "../handlers/alerts.h"
#include "../handlers/measurements.h"
#include "../handlers/ops.h"

#define R(method, pattern, handler, access, body) {method, pattern, handler, access, body}

const struct route ROUTES[] = {
    R("GET", "/healthz", ops_healthz, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/readyz", ops_readyz, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/metrics", ops_metrics, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/api/v1/config", ops_config, ACCESS_ANYONE, BODY_NONE),
    R("GET", "/api/v1/openapi.json", ops_openapi, ACCESS_ANYONE, BODY_NONE),

    R("POST", "/api/v1/measurements", measurements_ingest, ACCESS_DEVICE, BODY_JSON),

    R("GET", "/api/v1/alerts", alerts_list, ACCESS_USER, BODY_NONE),
    R("POST", "/api/v1/alerts/{id}/ack", alerts_ack, ACCESS_USER, BODY_NONE),
};

const size_t ROUTES_COUNT = sizeof ROUTES / sizeof ROUTES[0];
