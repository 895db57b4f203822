/* audit: GET /api/v1/audit, the audit log for admins. */
#ifndef WATTLINE_HANDLERS_AUDIT_H
#define WATTLINE_HANDLERS_AUDIT_H

#include "../api/handler.h"

int audit_list(const struct request *req, struct response *res, struct app *app);

#endif
