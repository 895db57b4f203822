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

/* At most this many statements wait in a pipeline (db_queue). */
#define DB_MAX_QUEUED 16

struct db_conn {
    PGconn *pg;
    const struct db_stmt *prepared[DB_MAX_PREPARED];
    int nprepared;
    /* Pipeline mode (db_queue): what was sent and whose results are unread,
     * in order; a statement sent with its PREPARE is prepared only once that
     * PREPARE's result says so. */
    struct db_queued {
        const struct db_stmt *prepare; /* a PREPARE of this statement, or NULL */
        PGresult **keep;               /* where its result goes (db_queue_keep), or NULL */
    } queued[DB_MAX_QUEUED];
    int nqueued;
    struct db_conn *next_free;
};

/* pool.c, for the watcher (health.c): a new connection with the pool's
 * settings (NULL or not CONNECTION_OK on failure; the caller PQfinish()es
 * it), and the health state's setter. */
PGconn *db_pool_connect(struct db_pool *pool);
void db_pool_health_set(struct db_pool *pool, enum db_health state);
void db_pool_replica_lag_set(struct db_pool *pool, double lag_s);

/* health.c, for the pool: starts and stops (and frees) the watcher. */
struct db_watch;
/* replica: check a standby's replay lag instead of the schema (list unused). */
struct db_watch *db_watch_start(struct db_pool *pool, const struct migration *list, size_t n,
                                bool replica);
void db_watch_stop(struct db_watch *w);

/* Runs a prepared statement with text parameters (NULL entries are SQL NULL).
 * Always returns a PGresult (possibly an error one); caller PQclear()s it. */
PGresult *db_exec(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                  const char *const *values);
/* The same with the result's columns in PostgreSQL's binary form, read with
 * db_bin_*(): no number or timestamp is formatted by the server and parsed
 * back here, which is most of the cost of a small, hot query. */
PGresult *db_exec_binary(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                         const char *const *values);

/* Runs a statement that should find one row: STATUS_NOT_FOUND when it finds
 * none, else as db_check(). *res is always set; the caller PQclear()s it. */
enum status db_exec_row(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                        const char *const *values, PGresult **res);

/* Checks a result: STATUS_OK when its status is `expected`; otherwise logs
 * the server's message and maps it: connection gone -> UNAVAILABLE,
 * unique violation -> CONFLICT, foreign key / check -> INVALID, else INTERNAL. */
enum status db_check(struct db_conn *conn, const PGresult *res, ExecStatusType expected);

/* Checks a result of rows and allocates one zeroed item of item_size per
 * row: *items (NULL when there is none; the caller frees it whatever the
 * status) and *n (0 unless STATUS_OK). */
enum status db_check_rows(struct db_conn *conn, const PGresult *res, size_t item_size, void **items,
                          int *n);

/* Queues a statement whose only answer that matters is success (BEGIN, a
 * write): it is sent now in libpq's pipeline mode and travels with the next
 * statement that waits for a result (db_exec*, db_command, db_commit), whose
 * round trip it shares; if it fails, that statement returns its failure and
 * is not run. sql (db_queue_command) is a parameterless command. */
enum status db_queue(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                     const char *const *values);
enum status db_queue_command(struct db_conn *conn, const char *sql);
/* Queues a statement like db_queue, for a result that matters later: *res
 * is NULL now and, once the next statement that waits has returned, this
 * one's result if it succeeded (if it failed, that statement reports it).
 * The caller PQclear()s *res. */
enum status db_queue_keep(struct db_conn *conn, const struct db_stmt *stmt, int nparams,
                          const char *const *values, PGresult **res);

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

/* Binary columns (binary_results): int8, float8, and timestamptz as
 * microseconds since the Unix epoch; 0 when NULL. */
long long db_bin_int8(const PGresult *res, int row, int col);
double db_bin_float8(const PGresult *res, int row, int col);
long long db_bin_timestamptz(const PGresult *res, int row, int col);

/* A PostgreSQL array literal ("{1,2,3}") built from numbers, passed as ONE
 * parameter: how a batch reaches the server in one round trip without any
 * SQL being built from data. */
struct db_array {
    char *text;
    size_t len, cap;
    bool failed; /* out of memory: the caller answers STATUS_INTERNAL */
};

void db_array_init(struct db_array *a);
void db_array_add_ll(struct db_array *a, long long v);
void db_array_add_double(struct db_array *a, double v);    /* %.17g: exact round trip */
void db_array_add_text(struct db_array *a, const char *s); /* quoted and escaped */
/* Closes the literal; returns its text (owned by a) or NULL on failure. */
const char *db_array_finish(struct db_array *a);
/* The one bigint[] parameter builder: a initialised and filled with the n
 * values, then finished. NULL when out of memory; db_array_free(a) either way. */
const char *db_array_of_ll(struct db_array *a, const long long *v, int n);

/* Runs stmt whose one parameter is the bigint[] of ids into *res, which the
 * caller checks and PQclear()s. STATUS_INTERNAL, *res NULL, when out of memory. */
enum status db_exec_ids(struct db_conn *conn, const struct db_stmt *stmt, const long long *ids,
                        int n, PGresult **res);
void db_array_free(struct db_array *a);

/* Formats a long long parameter. */
struct db_ll_text {
    char s[24];
};
const char *db_ll(struct db_ll_text *buf, long long v);

#endif
