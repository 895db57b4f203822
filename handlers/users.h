/* users: the caller's own account (/me) and user administration (/users). */
#ifndef WATTLINE_USERS_H
#define WATTLINE_USERS_H

#include "../db/users.h"
#include "../api/handler.h"

int users_me_get(const struct request *req, struct response *res, struct app *app);
int users_me_patch(const struct request *req, struct response *res, struct app *app);

int users_list(const struct request *req, struct response *res, struct app *app);
int users_create(const struct request *req, struct response *res, struct app *app);
int users_get(const struct request *req, struct response *res, struct app *app);
int users_patch(const struct request *req, struct response *res, struct app *app);
int users_delete(const struct request *req, struct response *res, struct app *app);

#endif
