/* commands: commands to devices — the owners' routes under
 * /api/v1/devices/{id}/commands and /api/v1/commands/{id}, and the device's
 * under /api/v1/device/commands (long-poll and answer). */
#ifndef WATTLINE_HANDLERS_COMMANDS_H
#define WATTLINE_HANDLERS_COMMANDS_H

#include "../api/handler.h"

int commands_create(const struct request *req, struct response *res, struct app *app);
int commands_list(const struct request *req, struct response *res, struct app *app);
int commands_get(const struct request *req, struct response *res, struct app *app);
int commands_cancel(const struct request *req, struct response *res, struct app *app);
int commands_poll(const struct request *req, struct response *res, struct app *app);
int commands_result(const struct request *req, struct response *res, struct app *app);

#endif
