/* devices: the Devices API (/api/v1/devices...), the one JSON rendering of a
 * device, and what the per-device routes share with it (below). */
#ifndef WATTLINE_DEVICES_H
#define WATTLINE_DEVICES_H

#include <jansson.h>
#include <stdbool.h>

#include "../db/devices.h"
#include "../api/cursor.h"
#include "../api/handler.h"

/* {"id","name","description","address","max_hourly_kwh","reading_type",
 *  "serial"|null,"owner_id"|null,"created_at","last_seen_at"|null}; caller
 *  owns it. */
json_t *devices_to_json(const struct device *d);

/* ---- shared with the other per-device routes ------------------------------
 * The only handler functions another handler file may call. Who may see a
 * device is api/access.h's to say; these keep its answer and the cursor
 * format of device lists in one place for readings_export.c. */

/* access_device_or_reply(): the device named by path parameter 0 when the
 * caller may see it; else 404 (missing or foreign alike) or 503 in res. */
bool devices_load_visible_or_reply(const struct request *req, struct db_conn *conn,
                                   struct device *out, struct response *res);

/* Cursors (api/cursor.h) whose kind is a one-letter tag: 'd' devices,
 * 'r' readings. Strict: only what devices_cursor_encode() gives decodes. */
#define DEVICES_CURSOR_MAX CURSOR_MAX

void devices_cursor_encode(char tag, long long value, char out[DEVICES_CURSOR_MAX]);
bool devices_cursor_decode(const char *cursor, char tag, long long *value);

/* Query parameter "cursor" of the given kind: *value untouched and true when
 * absent; 400 invalid_cursor in res when malformed. */
bool devices_cursor_or_reply(const struct request *req, char tag, long long *value,
                             struct response *res);

/* ---- request bodies -------------------------------------------------------- */

struct device_fields {
    const char *name; /* NULL: not given */
    const char *description;
    const char *address;
    bool has_max_hourly_kwh;
    double max_hourly_kwh;
    bool has_reading_type;
    enum reading_type reading_type;
    bool has_serial;
    const char *serial; /* NULL with has_serial: null (none, or clear it) */
    bool has_owner;
    long long owner_id; /* 0: null (unassigned) */
    bool has_over_limit_command;
    const json_t *over_limit_command; /* checked {"name","params"?}; NULL with has_: null */
    bool has_offline_after_s;
    int offline_after_s; /* 0: null (never offline) */
};

/* Reads and checks a POST (create) or PATCH body; strings are borrowed from
 * body. On false the 422 problem is in res. */
bool devices_read_fields_or_reply(const json_t *body, bool create, struct device_fields *out,
                                  struct response *res);

/* The checked over_limit_command as stored: {"name","params"} compact
 * (caller frees); NULL when there is none (or out of memory, if there is). */
char *devices_over_limit_text(const struct device_fields *f);

/* ---- handlers ------------------------------------------------------------- */

int devices_list(const struct request *req, struct response *res, struct app *app);
int devices_create(const struct request *req, struct response *res, struct app *app);
int devices_get(const struct request *req, struct response *res, struct app *app);
int devices_update(const struct request *req, struct response *res, struct app *app);
int devices_delete(const struct request *req, struct response *res, struct app *app);
int devices_rotate_token(const struct request *req, struct response *res, struct app *app);

#endif
