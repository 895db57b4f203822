/* auth: login, token refresh and logout. */
#ifndef WATTLINE_AUTH_H
#define WATTLINE_AUTH_H

#include "../api/handler.h"

/* Refresh tokens live 30 days; each refresh issues a new one. */
#define AUTH_REFRESH_TTL_S (30LL * 24 * 3600)

int auth_login(const struct request *req, struct response *res, struct app *app);
/* The login route's admission check (run before it queues for a hashing
 * worker): 429 at once for a client address that is being slowed, else 0. */
int auth_login_admit(const struct request *req, struct response *res, struct app *app);
int auth_refresh(const struct request *req, struct response *res, struct app *app);
int auth_logout(const struct request *req, struct response *res, struct app *app);

#endif
