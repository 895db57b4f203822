/* internal: what db/ modules share; never included outside db/. */
#ifndef WATTLINE_DB_INTERNAL_H
#define WATTLINE_DB_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "db.h"

/* A statement with a stable name, prepared once per connection on first use. */
struct db_stmt {
    const char *name;
    const char *sql;
};

#define DB_MAX_PREPARED 128

struct db_conn {
    PGconn *pg;
    const struct db_stmt *prepared[DB_MAX_PREPARED];
    int nprepared;
    struct db_conn *next_free;
};

/* Runs a prepared statement with text parameters (NULL entries are SQL NULL).
 * Always returns a PGresult (possibly an error one); caller PQclear()s it. */
PGresult *db_exec(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                  const char *const *values);

/* Checks a result: STATUS_OK when its status is `expected`; otherwise logs
 * the server's message and maps it: connection gone -> UNAVAILABLE,
 * unique violation -> CONFLICT, foreign key / check -> INVALID, else INTERNAL. */
enum status db_check(struct db_conn *conn, const PGresult *res, ExecStatusType expected);

/* Runs an unparameterised command (BEGIN, COMMIT, SELECT pg_advisory_lock(..)). */
enum status db_command(struct db_conn *conn, const char *sql);

/* Reads column col of row as a long long / double / bool (0 when NULL). */
long long db_get_ll(const PGresult *res, int row, int col);
double db_get_double(const PGresult *res, int row, int col);
bool db_get_bool(const PGresult *res, int row, int col);
/* Copies a text column into out (truncating); empty when NULL. */
void db_get_str(const PGresult *res, int row, int col, char *out, size_t size);
/* True when the column is NULL. */
bool db_is_null(const PGresult *res, int row, int col);

#endif
