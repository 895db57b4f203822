/* alerts: GET /api/v1/alerts and POST /api/v1/alerts/{id}/ack, and the one
 * JSON rendering of an alert that the REST API and the WebSocket share. */
#ifndef WATTLINE_ALERTS_H
#define WATTLINE_ALERTS_H

#include <jansson.h>

#include "../db/alerts.h"
#include "handler.h"

/* {"id","device_id","device_name","owner_id"|null,"hour_start","hour_kwh",
 *  "max_hourly_kwh","created_at","acknowledged_at"|null}; caller owns it. */
json_t *alert_to_json(const struct alert *a);

int alerts_list(const struct request *req, struct response *res, struct app *app);
int alerts_ack(const struct request *req, struct response *res, struct app *app);

#endif
