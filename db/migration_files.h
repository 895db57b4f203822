/* migrations: reads the numbered SQL files of the migrations directory.
 * Files are named NNNN_description.sql; they are applied in ascending
 * numeric order, and two files with one number are an error. */
#ifndef WATTLINE_MIGRATIONS_H
#define WATTLINE_MIGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "migrate.h"

struct migration_set {
    struct migration *items;
    size_t count;
};

/* Loads and checksums every migration file in dir. Returns false with a
 * one-line reason in err. The set must be freed with migrations_free(). */
bool migrations_load(const char *dir, struct migration_set *set, char *err, size_t errlen);

/* Parses "0012_add_alerts.sql" into 12; false for names that are not migrations. */
bool migrations_parse_name(const char *name, long *version);

void migrations_free(struct migration_set *set);

#endif
