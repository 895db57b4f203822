/* ops: health, readiness, metrics, client configuration, OpenAPI. */
#ifndef WATTLINE_OPS_H
#define WATTLINE_OPS_H

#include "../api/handler.h"

int ops_healthz(const struct request *req, struct response *res, struct app *app);
int ops_readyz(const struct request *req, struct response *res, struct app *app);
int ops_metrics(const struct request *req, struct response *res, struct app *app);
int ops_config(const struct request *req, struct response *res, struct app *app);
int ops_openapi(const struct request *req, struct response *res, struct app *app);

#endif
