#include "pooled.h"

#include "app.h"
#include "read_pool.h"

struct work {
    pooled_fn fn;
    pooled_app_fn app_fn;
};

static int work_run(const struct work *w, const struct request *req, struct response *res,
                    struct app *app, struct db_conn *conn)
{
    return w->fn ? w->fn(req, res, conn) : w->app_fn(req, res, app, conn);
}

/* On the replica when the route may and the replica is usable: true when
 * that answer stands (counted), false when the primary must answer. */
static bool run_on_replica(const struct work *w, const struct request *req, struct response *res,
                           struct app *app)
{
    struct db_pool *replica = read_pool_replica(app->read_pool);
    struct db_conn *conn = replica ? db_pool_acquire(replica, READ_POOL_WAIT_MS) : NULL;
    if (!conn) {
        read_pool_note(app->read_pool, READ_FALLBACK);
        return false;
    }
    int status = work_run(w, req, res, app, conn);
    db_pool_release(replica, conn);
    if (!read_pool_retry_status(status)) {
        read_pool_note(app->read_pool, READ_REPLICA);
        return true;
    }
    response_clear(res); /* the primary's answer replaces it, whatever it is */
    read_pool_note(app->read_pool, READ_RETRIED);
    return false;
}

static int run(const struct work *w, const struct request *req, struct response *res,
               struct app *app)
{
    if (req->read_replica && app->read_pool && run_on_replica(w, req, res, app))
        return res->status;
    struct db_conn *conn = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!conn)
        return response_status(res, STATUS_UNAVAILABLE);
    int status = work_run(w, req, res, app, conn);
    db_pool_release(app->pool, conn);
    return status;
}

int pooled_run(const struct request *req, struct response *res, struct app *app, pooled_fn fn)
{
    return run(&(struct work){.fn = fn}, req, res, app);
}

int pooled_run_app(const struct request *req, struct response *res, struct app *app,
                   pooled_app_fn fn)
{
    return run(&(struct work){.app_fn = fn}, req, res, app);
}
