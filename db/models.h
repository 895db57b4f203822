/* models: the records db/ reads and writes, in plain C types. Timestamps are
 * microseconds since the Unix epoch (UTC), ids are PostgreSQL bigints. */
#ifndef WATTLINE_MODELS_H
#define WATTLINE_MODELS_H

#include <stdbool.h>

enum role { ROLE_NONE = 0, ROLE_CLIENT, ROLE_ADMIN };

enum reading_type { READING_CUMULATIVE = 0, READING_INTERVAL };

/* "admin" / "client" and back; ROLE_NONE for anything else. */
const char *role_name(enum role role);
enum role role_parse(const char *name);

const char *reading_type_name(enum reading_type type);
/* false for an unknown name */
bool reading_type_parse(const char *name, enum reading_type *out);

#endif
