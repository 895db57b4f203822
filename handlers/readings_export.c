#include "readings_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../db/readings_query.h"
#include "../base/log.h"
#include "../api/app.h"
#include "devices.h"
#include "../base/timefmt.h"
#include "../api/validate.h"

/* The whole history when from/to are not given: every instant timefmt can
 * parse (years 1970..9999) lies in [0001-01-01, 10000-01-01). */
#define READINGS_FROM_MIN (-62135596800LL * 1000000)
#define READINGS_TO_MAX   (253402300800LL * 1000000)

static const char *value_name(enum reading_type type)
{
    return type == READING_INTERVAL ? "kwh" : "meter_kwh";
}

/* ---- content negotiation ------------------------------------------------------- */

/* The q parameter among one media range's parameters ("; q=0.5" up to end);
 * 1 when absent. */
static double quality(const char *params, const char *end)
{
    for (const char *p = params; p && p < end; p = memchr(p, ';', (size_t)(end - p))) {
        p++; /* past the ';' */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
            return strtod(p + 2, NULL);
    }
    return 1;
}

bool readings_export_wants_csv(const char *accept)
{
    for (const char *p = accept; p && *p;) {
        size_t len = strcspn(p, ","); /* one media range */
        const char *end = p + len;
        size_t skip = strspn(p, " \t");
        p += skip < len ? skip : len;
        size_t type_len = strcspn(p, ";,");
        const char *semi = p[type_len] == ';' ? p + type_len : NULL;
        while (type_len > 0 && (p[type_len - 1] == ' ' || p[type_len - 1] == '\t'))
            type_len--;
        if (type_len == 8 && !strncasecmp(p, "text/csv", 8) && quality(semi, end) > 0)
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

/* ---- the query ------------------------------------------------------------------- */

struct readings_range {
    long long from, to; /* [from, to) */
};

static bool optional_time_or_reply(const struct request *req, const char *name, long long *usec,
                                   struct response *res)
{
    const char *s = request_query(req, name);
    if (!s || timefmt_parse(s, usec))
        return true;
    response_problem(res, 400, "invalid_query", name, "%s must be an RFC 3339 date-time", name);
    return false;
}

static bool range_or_reply(const struct request *req, struct readings_range *r,
                           struct response *res)
{
    *r = (struct readings_range){READINGS_FROM_MIN, READINGS_TO_MAX};
    if (!optional_time_or_reply(req, "from", &r->from, res) ||
        !optional_time_or_reply(req, "to", &r->to, res))
        return false;
    if (r->from >= r->to) {
        response_problem(res, 422, "invalid_field", "to", "to must be later than from");
        return false;
    }
    return true;
}

/* ---- JSON pages ------------------------------------------------------------------- */

static json_t *page_json(const struct reading_list *list, int limit, enum reading_type type)
{
    json_t *items = json_array();
    int shown = list->count > limit ? limit : list->count;
    for (int i = 0; i < shown; i++) {
        char ts[TIMEFMT_MAX];
        timefmt_format(list->items[i].ts, ts);
        json_array_append_new(
            items, json_pack("{s:s, s:f}", "ts", ts, value_name(type), list->items[i].value));
    }
    json_t *next = json_null();
    if (list->count > limit) {
        char cursor[DEVICES_CURSOR_MAX];
        devices_cursor_encode('r', list->items[shown - 1].ts, cursor);
        next = json_string(cursor);
    }
    return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}

static int answer_page(const struct request *req, struct response *res, struct db_conn *c,
                       const struct device *d, struct readings_range range)
{
    int limit;
    long long after = 0;
    bool has_cursor = request_query(req, "cursor") != NULL;
    if (!validate_limit_or_reply(req, &limit, res) ||
        !devices_cursor_or_reply(req, 'r', &after, res))
        return res->status;
    /* Keyset: ts is unique per device and kept to the microsecond, so the
     * page after ts starts at ts + 1 µs (to is at most READINGS_TO_MAX, so
     * the sum cannot overflow when after is below it). */
    if (has_cursor && after >= range.to)
        range.from = range.to;
    else if (has_cursor && after + 1 > range.from)
        range.from = after + 1;
    struct reading_list list = {0};
    enum status st = range.from < range.to
                         ? db_readings_list(c, d->id, range.from, range.to, limit + 1, &list)
                         : STATUS_OK;
    if (st != STATUS_OK)
        return response_status(res, st);
    response_json(res, 200, page_json(&list, limit, d->reading_type));
    reading_list_free(&list);
    return res->status;
}

/* ---- the CSV stream ---------------------------------------------------------------- */

/* What the stream owns while the response lives: the pooled connection with
 * its open cursor, and the line being sent. */
struct csv_export {
    struct db_pool *pool;
    struct db_conn *conn;
    struct readings_cursor *cursor;
    char line[TIMEFMT_MAX + 40];
    size_t len, sent; /* line[sent..len) is still to go */
    bool done;
};

/* Ends the cursor's transaction and gives the connection back, once. */
static void csv_release(struct csv_export *x)
{
    db_readings_cursor_close(x->cursor);
    db_pool_release(x->pool, x->conn);
    x->cursor = NULL;
    x->conn = NULL;
}

/* Formats the next reading into x->line; false with x->done at the end. */
static enum status csv_next_line(struct csv_export *x)
{
    struct reading r;
    bool end;
    enum status st = db_readings_cursor_next(x->cursor, &r, &end);
    if (st != STATUS_OK)
        return st;
    if (end) {
        x->done = true;
        csv_release(x); /* free the connection now, not when the client is done */
        return STATUS_OK;
    }
    char ts[TIMEFMT_MAX], value[32];
    timefmt_format(r.ts, ts);
    format_double_exact(r.value, value, sizeof value); /* reads back as the stored double */
    x->len = (size_t)snprintf(x->line, sizeof x->line, "%s,%s\n", ts, value);
    x->sent = 0;
    return STATUS_OK;
}

static ssize_t csv_read(void *ctx, char *buf, size_t max)
{
    struct csv_export *x = ctx;
    size_t n = 0;
    while (n < max) {
        if (x->sent < x->len) {
            size_t chunk = x->len - x->sent < max - n ? x->len - x->sent : max - n;
            memcpy(buf + n, x->line + x->sent, chunk);
            x->sent += chunk;
            n += chunk;
            continue;
        }
        if (x->done)
            break;
        enum status st = csv_next_line(x);
        if (st != STATUS_OK) {
            /* The status line is long gone: cutting the connection is the
             * only way left to tell the client the file is incomplete. */
            log_error("readings export: reading failed mid-stream");
            return -1;
        }
    }
    return (ssize_t)n;
}

static void csv_free(void *ctx)
{
    struct csv_export *x = ctx;
    csv_release(x);
    free(x);
}

/* Starts the stream; on success the connection belongs to it. */
static int answer_csv(struct response *res, struct app *app, struct db_conn *c,
                      const struct device *d, struct readings_range range)
{
    struct csv_export *x = calloc(1, sizeof *x);
    if (!x) {
        db_pool_release(app->pool, c);
        return response_status(res, STATUS_INTERNAL);
    }
    *x = (struct csv_export){.pool = app->pool, .conn = c};
    enum status st = db_readings_cursor_open(c, d->id, range.from, range.to, &x->cursor);
    if (st != STATUS_OK) {
        csv_free(x);
        return response_status(res, st);
    }
    x->len = (size_t)snprintf(x->line, sizeof x->line, "ts,%s\n", value_name(d->reading_type));

    char disposition[80];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"device-%lld.csv\"", d->id);
    response_header(res, "Content-Disposition", disposition);
    res->stream = (struct response_stream){.read = csv_read, .free = csv_free, .ctx = x};
    res->content_type = "text/csv; charset=utf-8";
    res->status = 200;
    return res->status;
}

/* GET /api/v1/devices/{id}/measurements?from=&to=&limit=&cursor= — owner, admin.
 * from/to (RFC 3339, [from, to)) default to the whole history. 200
 * {"items": [{"ts", "meter_kwh"} | {"ts", "kwh"}], "next_cursor"}, oldest
 * first; with Accept: text/csv the whole range as CSV ("ts,meter_kwh" or
 * "ts,kwh" header, limit/cursor ignored), streamed as an attachment.
 * 404 missing or not the caller's; 400 malformed from/to/limit/cursor;
 * 422 from >= to. */
int readings_export_get(const struct request *req, struct response *res, struct app *app)
{
    struct db_conn *c = db_pool_acquire(app->pool, APP_DB_WAIT_MS);
    if (!c)
        return response_status(res, STATUS_UNAVAILABLE);
    struct device d;
    struct readings_range range;
    if (!devices_load_visible_or_reply(req, c, &d, res)) {
        db_pool_release(app->pool, c);
        return res->status;
    }
    if (!range_or_reply(req, &range, res)) {
        db_pool_release(app->pool, c);
    } else if (readings_export_wants_csv(req->accept)) {
        answer_csv(res, app, c, &d, range); /* the stream owns c from here */
    } else {
        answer_page(req, res, c, &d, range);
        db_pool_release(app->pool, c);
    }
    device_clear(&d);
    return res->status;
}
