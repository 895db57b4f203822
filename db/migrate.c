#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "internal.h"

/* An arbitrary constant that names "schema migration" among advisory locks. */
#define MIGRATION_LOCK_KEY "7239001"

static const char CREATE_TABLE[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                   " version bigint PRIMARY KEY,"
                                   " name text NOT NULL,"
                                   " checksum text NOT NULL,"
                                   " applied_at timestamptz NOT NULL DEFAULT now())";

static const struct db_stmt GET_CHECKSUM = {
    "migrate_get", "SELECT checksum FROM schema_migrations WHERE version = $1"};
static const struct db_stmt RECORD = {
    "migrate_record",
    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"};

/* Looks up a migration: 1 applied with the same checksum, 0 not applied,
 * -1 applied with another checksum, -2 error. */
static int recorded(struct db_conn *c, const struct migration *m)
{
    struct db_ll_text version;
    const char *params[] = {db_ll(&version, m->version)};
    PGresult *res = db_exec(c, &GET_CHECKSUM, 1, params);
    int verdict = -2;
    if (db_check(c, res, PGRES_TUPLES_OK) == STATUS_OK) {
        if (PQntuples(res) == 0)
            verdict = 0;
        else
            verdict = strcmp(PQgetvalue(res, 0, 0), m->checksum) == 0 ? 1 : -1;
    }
    PQclear(res);
    return verdict;
}

struct apply_tx {
    const struct migration *m;
    char *err;
    size_t errlen;
};

/* Runs the migration's SQL and records it, so both or neither happen. */
static enum status apply_in_tx(struct db_conn *c, void *ctx)
{
    const struct apply_tx *a = ctx;
    PGresult *res = PQexec(c->pg, a->m->sql);
    /* A migration may end with a SELECT (of a function run for its effect). */
    enum status st =
        PQresultStatus(res) == PGRES_TUPLES_OK ? STATUS_OK : db_check(c, res, PGRES_COMMAND_OK);
    if (st != STATUS_OK)
        snprintf(a->err, a->errlen, "migration %s failed: %s", a->m->name,
                 PQresultErrorMessage(res));
    PQclear(res);
    if (st != STATUS_OK)
        return st;
    struct db_ll_text version;
    const char *params[] = {db_ll(&version, a->m->version), a->m->name, a->m->checksum};
    res = db_exec(c, &RECORD, 3, params);
    st = db_check(c, res, PGRES_COMMAND_OK);
    PQclear(res);
    return st;
}

static enum status apply_one(struct db_conn *c, const struct migration *m, char *err, size_t errlen)
{
    struct apply_tx a = {m, err, errlen};
    return db_transaction(c, apply_in_tx, &a);
}

enum status db_migrate(struct db_conn *c, const struct migration *list, size_t n, int *applied,
                       char *err, size_t errlen)
{
    *applied = 0;
    snprintf(err, errlen, "database error while migrating");
    enum status st = db_command(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")");
    if (st != STATUS_OK)
        return st;
    st = db_command(c, "SET client_min_messages = warning");
    if (st == STATUS_OK)
        st = db_command(c, CREATE_TABLE);
    for (size_t i = 0; st == STATUS_OK && i < n; i++) {
        int r = recorded(c, &list[i]);
        if (r == 1)
            continue;
        if (r == -1) {
            snprintf(err, errlen,
                     "migration %s was changed after it was applied (checksum differs); "
                     "add a new migration instead",
                     list[i].name);
            st = STATUS_CONFLICT;
        } else if (r == -2) {
            st = STATUS_UNAVAILABLE;
        } else {
            st = apply_one(c, &list[i], err, errlen);
            if (st == STATUS_OK) {
                (*applied)++;
                log_info("migrate: applied %s", list[i].name);
            }
        }
    }
    db_command(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")");
    return st;
}

enum status db_migrate_check(struct db_conn *c, const struct migration *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = recorded(c, &list[i]);
        if (r == -2)
            return STATUS_UNAVAILABLE;
        if (r != 1)
            return STATUS_CONFLICT;
    }
    return STATUS_OK;
}
