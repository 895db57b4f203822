#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "internal.h"

static bool is_prepared(const struct db_conn *c, const struct db_stmt *stmt)
{
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == stmt)
            return true;
    return false;
}

/* ---- pipelines -------------------------------------------------------------- */

/* Sends (pipeline mode) a PREPARE of stmt if it is not prepared, and one
 * execution. false when libpq could not send or the queue is full. */
static bool send_prepared(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                          const char *const *values, int format, PGresult **keep)
{
    if (c->nqueued + 2 > DB_MAX_QUEUED)
        return false;
    if (!is_prepared(c, stmt) && c->nprepared < DB_MAX_PREPARED) {
        bool queued_already = false;
        for (int i = 0; i < c->nqueued; i++)
            queued_already |= c->queued[i].prepare == stmt;
        if (!queued_already) {
            if (!PQsendPrepare(c->pg, stmt->name, stmt->sql, 0, NULL))
                return false;
            c->queued[c->nqueued++] = (struct db_queued){.prepare = stmt};
        }
    }
    int ok = is_prepared(c, stmt) || c->nprepared < DB_MAX_PREPARED
                 ? PQsendQueryPrepared(c->pg, stmt->name, nparams, values, NULL, NULL, format)
                 : PQsendQueryParams(c->pg, stmt->sql, nparams, NULL, values, NULL, NULL, format);
    if (!ok)
        return false;
    c->queued[c->nqueued++] = (struct db_queued){.keep = keep};
    return true;
}

static bool enter_pipeline(struct db_conn *c)
{
    return PQpipelineStatus(c->pg) == PQ_PIPELINE_ON || PQenterPipelineMode(c->pg);
}

/* Sends the sync, reads every queued result and leaves pipeline mode. The
 * last queued statement's result is returned (the caller's); an earlier
 * failure is returned instead, and later statements were not run. NULL when
 * the connection broke. */
static PGresult *sync_pipeline(struct db_conn *c)
{
    PGresult *failed = NULL, *last = NULL;
    bool broken = !PQpipelineSync(c->pg);
    for (int i = 0; !broken && i < c->nqueued; i++) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            broken = true;
            break;
        }
        ExecStatusType st = PQresultStatus(res);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (ok && c->queued[i].prepare && c->nprepared < DB_MAX_PREPARED)
            c->prepared[c->nprepared++] = c->queued[i].prepare;
        if (ok && c->queued[i].keep) {
            *c->queued[i].keep = res; /* the caller's now */
        } else if (!ok && !failed && st != PGRES_PIPELINE_ABORTED) {
            failed = res;
        } else if (i == c->nqueued - 1 && !failed) {
            last = res;
        } else {
            PQclear(res);
        }
        PGresult *end = PQgetResult(c->pg); /* NULL: the end of this statement's results */
        if (end) {
            PQclear(end);
            broken = true;
        }
    }
    /* The sync's own result, then pipeline mode can end. */
    PGresult *sync = broken ? NULL : PQgetResult(c->pg);
    if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
        broken = true;
    PQclear(sync);
    c->nqueued = 0;
    if (broken || !PQexitPipelineMode(c->pg)) {
        PQclear(failed);
        PQclear(last);
        return NULL;
    }
    if (failed) {
        PQclear(last);
        return failed;
    }
    return last;
}

enum status db_queue_keep(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                          const char *const *values, PGresult **res)
{
    if (res)
        *res = NULL;
    if (!enter_pipeline(c) || !send_prepared(c, stmt, nparams, values, 0, res)) {
        PQclear(sync_pipeline(c));
        log_warn("database: could not queue %s: %s", stmt->name, PQerrorMessage(c->pg));
        return STATUS_UNAVAILABLE;
    }
    return STATUS_OK;
}

enum status db_queue(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                     const char *const *values)
{
    return db_queue_keep(c, stmt, nparams, values, NULL);
}

enum status db_queue_command(struct db_conn *c, const char *sql)
{
    if (!enter_pipeline(c) || c->nqueued == DB_MAX_QUEUED ||
        !PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        PQclear(sync_pipeline(c));
        log_warn("database: could not queue %s: %s", sql, PQerrorMessage(c->pg));
        return STATUS_UNAVAILABLE;
    }
    c->queued[c->nqueued++] = (struct db_queued){0};
    return STATUS_OK;
}

/* ---- statements ------------------------------------------------------------ */

/* format: 0 text, 1 binary results. With statements queued, this one joins
 * them and the pipeline is synced (one round trip for all). */
static PGresult *exec_prepared(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                               const char *const *values, int format)
{
    if (c->nqueued > 0)
        return send_prepared(c, stmt, nparams, values, format, NULL)
                   ? sync_pipeline(c)
                   : (PQclear(sync_pipeline(c)), NULL);
    if (!is_prepared(c, stmt)) {
        if (c->nprepared == DB_MAX_PREPARED)
            return PQexecParams(c->pg, stmt->sql, nparams, NULL, values, NULL, NULL, format);
        PGresult *prep = PQprepare(c->pg, stmt->name, stmt->sql, 0, NULL);
        if (PQresultStatus(prep) != PGRES_COMMAND_OK)
            return prep;
        PQclear(prep);
        c->prepared[c->nprepared++] = stmt;
    }
    return PQexecPrepared(c->pg, stmt->name, nparams, values, NULL, NULL, format);
}

PGresult *db_exec(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                  const char *const *values)
{
    return exec_prepared(c, stmt, nparams, values, 0);
}

PGresult *db_exec_binary(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                         const char *const *values)
{
    return exec_prepared(c, stmt, nparams, values, 1);
}

enum status db_check(struct db_conn *c, const PGresult *res, ExecStatusType expected)
{
    ExecStatusType got = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (got == expected)
        return STATUS_OK;
    if (!res || PQstatus(c->pg) != CONNECTION_OK) {
        log_warn("database: connection lost: %s", PQerrorMessage(c->pg));
        return STATUS_UNAVAILABLE;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && !strcmp(state, "23505"))
        return STATUS_CONFLICT;
    if (state && (!strcmp(state, "23503") || !strcmp(state, "23514")))
        return STATUS_INVALID;
    /* 57014 statement timeout, 57P01 admin shutdown, 08xxx connection trouble */
    bool transient =
        state && (!strcmp(state, "57P01") || !strcmp(state, "57014") || !strncmp(state, "08", 2) ||
                  !strcmp(state, "40001") || !strcmp(state, "40P01"));
    log_error("database: %s (SQLSTATE %s)", PQresultErrorMessage(res), state ? state : "?");
    return transient ? STATUS_UNAVAILABLE : STATUS_INTERNAL;
}

enum status db_exec_row(struct db_conn *c, const struct db_stmt *stmt, int nparams,
                        const char *const *values, PGresult **res)
{
    *res = db_exec(c, stmt, nparams, values);
    enum status st = db_check(c, *res, PGRES_TUPLES_OK);
    if (st == STATUS_OK && PQntuples(*res) == 0)
        st = STATUS_NOT_FOUND;
    return st;
}

enum status db_check_rows(struct db_conn *c, const PGresult *res, size_t item_size, void **items,
                          int *n)
{
    *items = NULL;
    *n = 0;
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    int rows = st == STATUS_OK ? PQntuples(res) : 0;
    if (rows > 0 && !(*items = calloc((size_t)rows, item_size)))
        return STATUS_INTERNAL;
    *n = rows;
    return st;
}

enum status db_command(struct db_conn *c, const char *sql)
{
    PGresult *res = c->nqueued == 0                         ? PQexec(c->pg, sql)
                    : db_queue_command(c, sql) == STATUS_OK ? sync_pipeline(c)
                                                            : NULL;
    /* A command may be a SELECT of a function for its effect (advisory locks). */
    enum status st =
        PQresultStatus(res) == PGRES_TUPLES_OK ? STATUS_OK : db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

enum status db_begin(struct db_conn *c)
{
    return db_command(c, "BEGIN");
}

enum status db_begin_pipelined(struct db_conn *c)
{
    return db_queue_command(c, "BEGIN");
}

enum status db_commit(struct db_conn *c)
{
    enum status st = db_command(c, "COMMIT");
    /* A COMMIT queued behind a statement that failed never ran: the
     * transaction is still open, aborted. It ends here, as a failed COMMIT's
     * would. */
    if (st != STATUS_OK && PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        PQclear(PQexec(c->pg, "ROLLBACK"));
    return st;
}

void db_rollback(struct db_conn *c)
{
    if (c->nqueued > 0)
        PQclear(sync_pipeline(c)); /* whatever was queued is rolled back too */
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

enum status db_transaction(struct db_conn *c, db_tx_fn body, void *ctx)
{
    enum status st = db_begin(c);
    if (st == STATUS_OK)
        st = body(c, ctx);
    if (st == STATUS_OK)
        st = db_commit(c);
    if (st != STATUS_OK)
        db_rollback(c);
    return st;
}

enum status db_ping(struct db_conn *c)
{
    PGresult *res = PQexec(c->pg, "SELECT 1");
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    PQclear(res);
    return st;
}

long long db_get_ll(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

double db_get_double(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtod(PQgetvalue(res, row, col), NULL);
}

bool db_get_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

void db_get_str(const PGresult *res, int row, int col, char *out, size_t size)
{
    const char *v = PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
    size_t n = strlen(v);
    if (n >= size)
        n = size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

bool db_is_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col);
}

/* The 8 bytes of a binary int8/float8/timestamptz column, in host order; 0
 * when NULL (or not 8 bytes long, which these types never are). */
static uint64_t bin8(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return 0;
    const unsigned char *b = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i]; /* network byte order */
    return v;
}

long long db_bin_int8(const PGresult *res, int row, int col)
{
    return (long long)bin8(res, row, col);
}

double db_bin_float8(const PGresult *res, int row, int col)
{
    uint64_t bits = bin8(res, row, col);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* PostgreSQL counts microseconds from 2000-01-01T00:00:00Z. */
#define PG_EPOCH_US 946684800000000LL

long long db_bin_timestamptz(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : (long long)bin8(res, row, col) + PG_EPOCH_US;
}
