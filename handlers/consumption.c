#include "consumption.h"

#include <string.h>

#include "../db/consumption.h"
#include "../api/access.h"
#include "../api/pooled.h"
#include "../base/json_writer.h"
#include "../base/timefmt.h"

#define TZ_MAX 64

bool consumption_tz_plausible(const char *tz)
{
    size_t len = tz ? strlen(tz) : 0;
    if (len == 0 || len > TZ_MAX)
        return false;
    bool part_start = true;
    for (const char *p = tz; *p; p++) {
        char ch = *p;
        bool letter = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
        if (part_start && !letter)
            return false;
        part_start = ch == '/';
        if (!letter && !(ch >= '0' && ch <= '9') && !strchr("_-+/", ch))
            return false;
    }
    return !part_start; /* no trailing '/' */
}

/* What the query string asks for: one local day, or a range in buckets. */
struct consumption_query {
    const char *tz;
    const char *date; /* the day form; NULL for a range */
    int year, month, day;
    long long from, to;
    enum consumption_bucket bucket;
};

static bool time_param_or_reply(const struct request *req, const char *name, long long *usec,
                                struct response *res)
{
    const char *s = request_query(req, name);
    if (!s) {
        response_problem(res, 400, "invalid_query", name,
                         "give date=YYYY-MM-DD, or from and to (RFC 3339)");
        return false;
    }
    if (!timefmt_parse(s, usec)) {
        response_problem(res, 400, "invalid_query", name, "%s must be an RFC 3339 date-time", name);
        return false;
    }
    return true;
}

static bool range_or_reply(const struct request *req, struct consumption_query *q,
                           struct response *res)
{
    if (!time_param_or_reply(req, "from", &q->from, res) ||
        !time_param_or_reply(req, "to", &q->to, res))
        return false;
    if (q->from >= q->to) {
        response_problem(res, 422, "invalid_field", "to", "to must be later than from");
        return false;
    }
    const char *bucket = request_query(req, "bucket");
    q->bucket = CONSUMPTION_HOUR;
    if (bucket && !consumption_bucket_parse(bucket, &q->bucket)) {
        response_problem(res, 422, "invalid_field", "bucket", "bucket must be hour, day or month");
        return false;
    }
    return true;
}

static bool day_or_reply(const struct request *req, struct consumption_query *q,
                         struct response *res)
{
    if (request_query(req, "from") || request_query(req, "to") || request_query(req, "bucket")) {
        response_problem(res, 400, "invalid_query", "date",
                         "give either date, or from and to, not both");
        return false;
    }
    if (!timefmt_parse_date(q->date, &q->year, &q->month, &q->day)) {
        response_problem(res, 400, "invalid_query", "date", "date must be YYYY-MM-DD");
        return false;
    }
    return true;
}

static bool read_query_or_reply(const struct request *req, struct consumption_query *q,
                                struct response *res)
{
    *q = (struct consumption_query){.tz = request_query(req, "tz"),
                                    .date = request_query(req, "date")};
    if (!q->tz)
        q->tz = "UTC";
    if (!consumption_tz_plausible(q->tz)) {
        response_problem(res, 422, "invalid_field", "tz", "tz must be an IANA time zone name");
        return false;
    }
    return q->date ? day_or_reply(req, q, res) : range_or_reply(req, q, res);
}

static int tz_problem(struct response *res, const char *tz)
{
    return response_problem(res, 422, "invalid_field", "tz", "unknown time zone '%s'", tz);
}

/* {"device_id", "tz", "max_hourly_kwh", "total_kwh", "hours": [{"start", "kwh",
 * "over_limit" (hour buckets)}], then "date" or "from", "to", "bucket"}. The
 * total is summed in bucket order. Written straight into a buffer: this is
 * the dashboard's hottest read. NULL when out of memory. */
static char *answer_json(long long device_id, const struct consumption_query *q,
                         const struct consumption *rows, size_t *len)
{
    bool hourly = q->bucket == CONSUMPTION_HOUR;
    double total = 0;
    for (int i = 0; i < rows->count; i++)
        total += rows->rows[i].kwh;

    struct json_writer w;
    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, "device_id");
    json_writer_int(&w, device_id);
    json_writer_key(&w, "tz");
    json_writer_string(&w, q->tz);
    json_writer_key(&w, "max_hourly_kwh");
    json_writer_real(&w, rows->max_hourly_kwh);
    json_writer_key(&w, "total_kwh");
    json_writer_real(&w, total);
    json_writer_key(&w, "hours");
    json_writer_begin_array(&w);
    for (int i = 0; i < rows->count; i++) {
        char start[TIMEFMT_MAX];
        timefmt_format(rows->rows[i].start, start);
        json_writer_begin_object(&w);
        json_writer_key(&w, "start");
        json_writer_string(&w, start);
        json_writer_key(&w, "kwh");
        json_writer_real(&w, rows->rows[i].kwh);
        if (hourly) {
            json_writer_key(&w, "over_limit");
            json_writer_bool(&w, rows->rows[i].kwh > rows->max_hourly_kwh);
        }
        json_writer_end_object(&w);
    }
    json_writer_end_array(&w);
    if (q->date) {
        json_writer_key(&w, "date");
        json_writer_string(&w, q->date);
    } else {
        char from[TIMEFMT_MAX], to[TIMEFMT_MAX];
        timefmt_format(q->from, from);
        timefmt_format(q->to, to);
        json_writer_key(&w, "from");
        json_writer_string(&w, from);
        json_writer_key(&w, "to");
        json_writer_string(&w, to);
        json_writer_key(&w, "bucket");
        json_writer_string(&w, consumption_bucket_name(q->bucket));
    }
    json_writer_end_object(&w);
    return json_writer_finish(&w, len);
}

/* The device check and the buckets are one statement; only a refused query
 * costs a second look, because a device the caller may not see is 404
 * whatever its query says. Everything after the connection is borrowed. */
static int answer(const struct request *req, struct response *res, struct db_conn *c)
{
    long long id;
    if (!request_param_id(req, 0, &id))
        return response_status(res, STATUS_NOT_FOUND);
    long long scope = access_owner_scope(&req->caller);
    struct consumption_query q;
    struct consumption rows = {0};
    enum status st = STATUS_INVALID;
    if (read_query_or_reply(req, &q, res)) {
        st = q.date ? db_consumption_day(c, id, scope, q.date, q.tz, &rows)
                    : db_consumption_buckets(c, id, scope, q.from, q.to, q.bucket, q.tz,
                                             CONSUMPTION_MAX_BUCKETS, &rows);
        if (st == STATUS_INVALID)
            tz_problem(res, q.tz);
    }
    struct device d;
    if (st == STATUS_INVALID) {
        if (access_device_or_reply(req, c, &d, res))
            device_clear(&d);
    } else if (st != STATUS_OK) {
        response_status(res, st);
    } else if (rows.too_many) {
        response_problem(res, 422, "too_many_buckets", "bucket",
                         "the range holds more than %d buckets; use a larger bucket",
                         CONSUMPTION_MAX_BUCKETS);
    } else {
        size_t len;
        char *body = answer_json(id, &q, &rows, &len);
        response_body(res, 200, "application/json", body, len);
    }
    consumption_free(&rows);
    return res->status;
}

/* GET /api/v1/devices/{id}/consumption — owner, admin.
 *   ?date=YYYY-MM-DD&tz=Area/City  the local day's hours (23 to 25 of them)
 *   ?from=&to=&bucket=hour|day|month&tz=  the range in zone-aligned buckets
 * tz defaults to UTC. 200 {"device_id", "tz", "max_hourly_kwh", "total_kwh",
 * "hours": [{"start", "kwh", "over_limit" (hour buckets only)}]} plus "date",
 * or "from", "to", "bucket". 404 missing or not the caller's; 400 malformed
 * date/from/to; 422 unknown tz, from >= to, bad bucket, too_many_buckets. */
int consumption_get(const struct request *req, struct response *res, struct app *app)
{
    return pooled_run(req, res, app, answer);
}
