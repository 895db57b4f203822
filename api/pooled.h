/* pooled: a handler's work on a connection borrowed from the pool, for the
 * handlers whose whole answer needs one. Borrowing, the 503 when none is free
 * in time, and giving it back are here once. */
#ifndef WATTLINE_POOLED_H
#define WATTLINE_POOLED_H

#include "../db/db.h"
#include "handler.h"

/* The work: answers in res and returns res->status; conn is borrowed. */
typedef int (*pooled_fn)(const struct request *req, struct response *res, struct db_conn *conn);

/* Runs fn on a pooled connection and returns it to the pool; 503 when no
 * connection was free within APP_DB_WAIT_MS. */
int pooled_run(const struct request *req, struct response *res, struct app *app, pooled_fn fn);

#endif
