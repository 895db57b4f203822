/* alerts: GET /api/v1/alerts and POST /api/v1/alerts/{id}/ack. */
#ifndef WATTLINE_ALERTS_H
#define WATTLINE_ALERTS_H

#include <jansson.h>

#include "../db/alerts.h"
#include "../api/handler.h"

int alerts_list(const struct request *req, struct response *res, struct app *app);
int alerts_ack(const struct request *req, struct response *res, struct app *app);

#endif
