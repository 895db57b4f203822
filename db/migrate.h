/* migrate: applies numbered SQL migrations, each in its own transaction,
 * recorded with its checksum in schema_migrations, under an advisory lock so
 * that instances starting together do not race. */
#ifndef WATTLINE_DB_MIGRATE_H
#define WATTLINE_DB_MIGRATE_H

#include <stddef.h>

#include "db.h"

struct migration {
    long version;
    char *name; /* file name, e.g. "0001_init.sql" */
    char *sql;
    char checksum[65]; /* SHA-256 hex of the file */
};

/* Applies the migrations not yet recorded, in the order given (ascending
 * version). An applied migration whose checksum differs stops everything:
 * STATUS_CONFLICT with the file named in err. *applied counts new ones. */
enum status db_migrate(struct db_conn *conn, const struct migration *list, size_t n, int *applied,
                       char *err, size_t errlen);

/* STATUS_OK when every migration in list is recorded with its checksum;
 * STATUS_CONFLICT when one is missing or differs. */
enum status db_migrate_check(struct db_conn *conn, const struct migration *list, size_t n);

#endif
