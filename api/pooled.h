/* pooled: a handler's work on a connection borrowed from the pool, for the
 * handlers whose whole answer needs one. Borrowing, the 503 when none is free
 * in time, and giving it back are here once; so is the choice of database
 * for the routes that may read from the replica (req->read_replica,
 * api/read_pool.h): the replica when it is usable, and the primary when it
 * is not, or when the replica's answer is a 5xx or a 404 (then the work runs
 * once more on the primary, and only that answer is kept). */
#ifndef WATTLINE_POOLED_H
#define WATTLINE_POOLED_H

#include "../db/db.h"
#include "handler.h"

/* The work: answers in res and returns res->status; conn is borrowed. The
 * work of a replica route must be a pure read: it may run twice. */
typedef int (*pooled_fn)(const struct request *req, struct response *res, struct db_conn *conn);
/* The same for work that needs the app too (an export takes a slot). */
typedef int (*pooled_app_fn)(const struct request *req, struct response *res, struct app *app,
                             struct db_conn *conn);

/* Runs fn on a pooled connection and returns it to the pool; 503 when no
 * connection was free within APP_DB_WAIT_MS. */
int pooled_run(const struct request *req, struct response *res, struct app *app, pooled_fn fn);
int pooled_run_app(const struct request *req, struct response *res, struct app *app,
                   pooled_app_fn fn);

#endif
