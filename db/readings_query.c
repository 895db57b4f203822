#include "readings_query.h"

#include <stdlib.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#define READING_COLUMNS "(extract(epoch FROM ts) * 1000000)::bigint, value"
#define READING_RANGE                                                                              \
    "device_id = $1 AND ts >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"         \
    " AND ts < timestamptz 'epoch' + $3::bigint * interval '1 microsecond'"

/* (device_id, ts) is the primary key of every partition: each scan is an
 * index range scan, merged across the monthly partitions in ts order. */
static const struct db_stmt LIST = {"readings_list",
                                    "SELECT " READING_COLUMNS " FROM readings WHERE " READING_RANGE
                                    " ORDER BY ts LIMIT $4"};

/* One export at a time per connection, so the cursor's name is fixed. */
static const struct db_stmt DECLARE = {"readings_cursor_declare",
                                       "DECLARE readings_export NO SCROLL CURSOR FOR"
                                       " SELECT " READING_COLUMNS
                                       " FROM readings WHERE " READING_RANGE " ORDER BY ts"};

static const struct db_stmt FETCH = {
    "readings_cursor_fetch", "FETCH FORWARD " STR(DB_READINGS_BATCH) " FROM readings_export"};

struct readings_cursor {
    struct db_conn *conn; /* borrowed */
    PGresult *batch;      /* the rows fetched last, or NULL */
    int next_row;         /* the next row of batch to hand out */
    bool exhausted;       /* the last FETCH came back short */
};

void reading_list_free(struct reading_list *list)
{
    free(list->items);
    *list = (struct reading_list){0};
}

static void read_reading(const PGresult *res, int row, struct reading *out)
{
    *out = (struct reading){db_get_ll(res, row, 0), db_get_double(res, row, 1)};
}

enum status db_readings_list(struct db_conn *c, long long device_id, long long from, long long to,
                             int limit, struct reading_list *out)
{
    *out = (struct reading_list){0};
    struct db_ll_text idt, fromt, tot, limitt;
    const char *params[] = {db_ll(&idt, device_id), db_ll(&fromt, from), db_ll(&tot, to),
                            db_ll(&limitt, limit)};
    PGresult *res = db_exec(c, &LIST, 4, params);
    void *items;
    int n;
    enum status st = db_check_rows(c, res, sizeof *out->items, &items, &n);
    out->items = items;
    for (int i = 0; i < n; i++)
        read_reading(res, i, &out->items[i]);
    out->count = n;
    PQclear(res);
    return st;
}

enum status db_readings_cursor_open(struct db_conn *c, long long device_id, long long from,
                                    long long to, struct readings_cursor **out)
{
    *out = NULL;
    struct readings_cursor *cur = calloc(1, sizeof *cur);
    if (!cur)
        return STATUS_INTERNAL;
    cur->conn = c;
    /* A cursor lives in a transaction; one snapshot serves the whole export. */
    enum status st = db_begin(c);
    if (st == STATUS_OK) {
        struct db_ll_text idt, fromt, tot;
        const char *params[] = {db_ll(&idt, device_id), db_ll(&fromt, from), db_ll(&tot, to)};
        PGresult *res = db_exec(c, &DECLARE, 3, params);
        st = db_check(c, res, PGRES_COMMAND_OK);
        PQclear(res);
    }
    if (st != STATUS_OK) {
        db_readings_cursor_close(cur);
        return st;
    }
    *out = cur;
    return STATUS_OK;
}

/* Replaces the batch with the next one from the server. */
static enum status fetch_batch(struct readings_cursor *cur)
{
    PQclear(cur->batch);
    cur->batch = db_exec(cur->conn, &FETCH, 0, NULL);
    cur->next_row = 0;
    enum status st = db_check(cur->conn, cur->batch, PGRES_TUPLES_OK);
    if (st != STATUS_OK) {
        PQclear(cur->batch);
        cur->batch = NULL;
        return st;
    }
    cur->exhausted = PQntuples(cur->batch) < DB_READINGS_BATCH;
    return STATUS_OK;
}

enum status db_readings_cursor_next(struct readings_cursor *cur, struct reading *row, bool *done)
{
    *done = false;
    if (!cur->batch || cur->next_row == PQntuples(cur->batch)) {
        if (cur->exhausted) {
            *done = true;
            return STATUS_OK;
        }
        enum status st = fetch_batch(cur);
        if (st != STATUS_OK)
            return st;
        if (PQntuples(cur->batch) == 0) {
            *done = true;
            return STATUS_OK;
        }
    }
    read_reading(cur->batch, cur->next_row++, row);
    return STATUS_OK;
}

void db_readings_cursor_close(struct readings_cursor *cur)
{
    if (!cur)
        return;
    PQclear(cur->batch);
    /* Only reading happened: ROLLBACK ends it and drops the cursor. A broken
     * connection is left for the pool to reopen. */
    db_rollback(cur->conn);
    free(cur);
}
