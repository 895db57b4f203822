#include "retention.h"

#include <stdlib.h>

#include "../base/month.h"
#include "internal.h"

/* An arbitrary constant naming "retiring months" among advisory locks. */
#define RETENTION_LOCK_KEY "7239019"

// clang-format off
static const struct db_stmt HORIZON = {
    "retention_horizon", "SELECT to_char(oldest_kept, 'YYYY-MM') FROM readings_horizon"};

static const struct db_stmt TRY_LOCK = {
    "retention_try_lock", "SELECT pg_try_advisory_lock(" RETENTION_LOCK_KEY ")"};

static const struct db_stmt UNLOCK = {
    "retention_unlock", "SELECT pg_advisory_unlock(" RETENTION_LOCK_KEY ")"};

static const struct db_stmt MONTHS = {
    "retention_months", "SELECT to_char(m, 'YYYY-MM') FROM readings_months_before($1::date) AS m"};

static const struct db_stmt CLOSE = {
    "retention_close", "SELECT readings_close_month($1::date)"};

static const struct db_stmt RETIRE = {
    "retention_retire", "SELECT readings_retire_month($1::date)"};

/* One index probe per device ((device_id, ts) is every partition's key),
 * not a scan of the month. */
static const struct db_stmt DEVICES = {
    "retention_devices",
    "SELECT d.id, d.reading_type FROM devices d"
    " WHERE EXISTS (SELECT 1 FROM readings r WHERE r.device_id = d.id"
    "  AND r.ts >= $1::date::timestamp AT TIME ZONE 'UTC'"
    "  AND r.ts < ($1::date + interval '1 month')::timestamp AT TIME ZONE 'UTC')"
    " ORDER BY d.id"};
// clang-format on

/* A month of a result's text column ("YYYY-MM"); false when it is not one. */
static bool get_month(const PGresult *res, int row, int *month)
{
    char text[MONTH_TEXT_MAX + 1];
    db_get_str(res, row, 0, text, sizeof text);
    return month_parse(text, month);
}

enum status db_retention_horizon(struct db_conn *c, bool *none, int *month)
{
    *none = true;
    PGresult *res;
    enum status st = db_exec_row(c, &HORIZON, 0, NULL, &res);
    if (st == STATUS_OK && !db_is_null(res, 0, 0)) {
        if (get_month(res, 0, month))
            *none = false;
        else
            st = STATUS_INTERNAL;
    }
    PQclear(res);
    return st;
}

static enum status lock_call(struct db_conn *c, const struct db_stmt *stmt, bool *ok)
{
    PGresult *res;
    enum status st = db_exec_row(c, stmt, 0, NULL, &res);
    if (st == STATUS_OK)
        *ok = db_get_bool(res, 0, 0);
    PQclear(res);
    return st;
}

enum status db_retention_try_lock(struct db_conn *c, bool *taken)
{
    *taken = false;
    return lock_call(c, &TRY_LOCK, taken);
}

enum status db_retention_unlock(struct db_conn *c)
{
    bool released;
    return lock_call(c, &UNLOCK, &released);
}

enum status db_retention_months(struct db_conn *c, int before, int **months, int *n)
{
    char date[MONTH_DATE_MAX];
    month_format_date(before, date);
    const char *params[] = {date};
    PGresult *res = db_exec(c, &MONTHS, 1, params);
    void *items;
    enum status st = db_check_rows(c, res, sizeof **months, &items, n);
    *months = items;
    for (int i = 0; st == STATUS_OK && i < *n; i++)
        if (!get_month(res, i, &(*months)[i]))
            st = STATUS_INTERNAL;
    if (st != STATUS_OK)
        *n = 0;
    PQclear(res);
    return st;
}

static enum status month_call(struct db_conn *c, const struct db_stmt *stmt, int month)
{
    char date[MONTH_DATE_MAX];
    month_format_date(month, date);
    const char *params[] = {date};
    PGresult *res = db_exec(c, stmt, 1, params);
    enum status st = db_check(c, res, PGRES_TUPLES_OK);
    PQclear(res);
    return st;
}

enum status db_retention_close(struct db_conn *c, int month)
{
    return month_call(c, &CLOSE, month);
}

enum status db_retention_retire(struct db_conn *c, int month)
{
    return month_call(c, &RETIRE, month);
}

enum status db_retention_devices(struct db_conn *c, int month, struct retention_device **devices,
                                 int *n)
{
    char date[MONTH_DATE_MAX];
    month_format_date(month, date);
    const char *params[] = {date};
    PGresult *res = db_exec(c, &DEVICES, 1, params);
    void *items;
    enum status st = db_check_rows(c, res, sizeof **devices, &items, n);
    *devices = items;
    for (int i = 0; st == STATUS_OK && i < *n; i++) {
        char type[16];
        db_get_str(res, i, 1, type, sizeof type);
        (*devices)[i].id = db_get_ll(res, i, 0);
        if (!reading_type_parse(type, &(*devices)[i].type))
            st = STATUS_INTERNAL;
    }
    if (st != STATUS_OK)
        *n = 0;
    PQclear(res);
    return st;
}
