#include "pooled.h"

#include "app.h"

int pooled_run(const struct request *req, struct response *res, struct app *app, pooled_fn fn)
{
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    int status = fn(req, res, conn);
    db_pool_release(app->pool, conn);
    return status;
}
