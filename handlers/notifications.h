/* notifications: the caller's notification preferences and webhooks
 * (GET/PUT /api/v1/me/notifications, /api/v1/me/webhooks...). */
#ifndef WATTLINE_HANDLERS_NOTIFICATIONS_H
#define WATTLINE_HANDLERS_NOTIFICATIONS_H

#include "../api/handler.h"

int notifications_get(const struct request *req, struct response *res, struct app *app);
int notifications_put(const struct request *req, struct response *res, struct app *app);
int webhooks_create(const struct request *req, struct response *res, struct app *app);
int webhooks_list(const struct request *req, struct response *res, struct app *app);
int webhooks_get(const struct request *req, struct response *res, struct app *app);
int webhooks_delete(const struct request *req, struct response *res, struct app *app);
int webhooks_deliveries(const struct request *req, struct response *res, struct app *app);

#endif
