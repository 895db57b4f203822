/* A fake ingest store (ingest/store.h) for unit tests: small in-memory
 * tables with the semantics of db/ingest.c's statements, transactions that
 * copy the tables at begin and keep or drop the copy, a log of the calls,
 * and a call that can be told to fail. Thread-safe the simple way: a
 * transaction holds the fake's lock from begin to commit or rollback.
 *
 * Include it in one test file; it is all static (set-up helpers inline, so
 * that a test may leave some unused).
 */
#ifndef WATTLINE_FAKE_INGEST_STORE_H
#define WATTLINE_FAKE_INGEST_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/energy.h"
#include "../../ingest/store.h"

#define FAKE_DEVICES 8
#define FAKE_ROWS    512

struct fake_device {
    long long id;
    enum reading_type type;
    double limit;
    bool has_latest;
    long long latest_ts;
    double latest_value;
    long long last_seen;
};

struct fake_tables {
    struct fake_device devices[FAKE_DEVICES];
    int ndevices;
    struct ingest_row readings[FAKE_ROWS];
    int nreadings;
    struct ingest_hour hours[FAKE_ROWS];
    int nhours;
    struct {
        long long id, device_id, hour;
    } alerts[FAKE_ROWS];
    int nalerts;
    long long next_alert_id;
};

struct fake_store {
    pthread_mutex_t lock; /* held by the open transaction */
    struct fake_tables committed, tx;
    bool in_tx;
    bool unreachable;    /* connect fails */
    const char *fail_op; /* this call fails with fail_status */
    enum status fail_status;
    char log[1024]; /* the calls, space-separated */
    long long nwritten_hours; /* hour rows passed to write, in all */
    long long notified_alerts[FAKE_ROWS];
    int nnotified_alerts;
    long long notified_usage[FAKE_ROWS];
    int nnotified_usage;
    /* Optional: called by commit before it commits (a test's gate). */
    void (*on_commit)(struct fake_store *f);
};

static void fake_log(struct fake_store *f, const char *op)
{
    size_t len = strlen(f->log);
    snprintf(f->log + len, sizeof f->log - len, "%s%s", len ? " " : "", op);
}

/* Logs op and answers whether it should fail. */
static bool fake_fails(struct fake_store *f, const char *op)
{
    fake_log(f, op);
    return f->fail_op && !strcmp(f->fail_op, op);
}

static struct fake_device *fake_find_device(struct fake_tables *t, long long id)
{
    for (int i = 0; i < t->ndevices; i++)
        if (t->devices[i].id == id)
            return &t->devices[i];
    return NULL;
}

static struct ingest_row *fake_find_reading(struct fake_tables *t, long long device, long long ts)
{
    for (int i = 0; i < t->nreadings; i++)
        if (t->readings[i].device_id == device && t->readings[i].ts == ts)
            return &t->readings[i];
    return NULL;
}

static struct ingest_hour *fake_find_hour(struct fake_tables *t, long long device, long long hour)
{
    for (int i = 0; i < t->nhours; i++)
        if (t->hours[i].device_id == device && t->hours[i].hour == hour)
            return &t->hours[i];
    return NULL;
}

/* ---- set-up for tests ------------------------------------------------------ */

static void fake_init(struct fake_store *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->committed.next_alert_id = 1;
}

static void fake_destroy(struct fake_store *f)
{
    pthread_mutex_destroy(&f->lock);
}

static void fake_add_device(struct fake_store *f, long long id, enum reading_type type,
                            double limit)
{
    struct fake_tables *t = &f->committed;
    t->devices[t->ndevices++] = (struct fake_device){.id = id, .type = type, .limit = limit};
}

/* A stored reading (newest of its device when it is the latest so far). */
static inline void fake_add_reading(struct fake_store *f, long long device, long long ts,
                                    double value)
{
    struct fake_tables *t = &f->committed;
    t->readings[t->nreadings++] = (struct ingest_row){device, ts, value};
    struct fake_device *d = fake_find_device(t, device);
    if (!d->has_latest || ts > d->latest_ts) {
        d->has_latest = true;
        d->latest_ts = ts;
        d->latest_value = value;
    }
}

static inline void fake_add_hour(struct fake_store *f, long long device, long long hour, double kwh)
{
    struct fake_tables *t = &f->committed;
    t->hours[t->nhours++] = (struct ingest_hour){device, hour, kwh};
}

/* The committed energy of an hour (0 without a row). */
static inline double fake_hour(struct fake_store *f, long long device, long long hour)
{
    const struct ingest_hour *h = fake_find_hour(&f->committed, device, hour);
    return h ? h->kwh : 0.0;
}

/* ---- the store's calls -------------------------------------------------------- */

static void *fake_connect(void *ctx, char *err, size_t errlen)
{
    struct fake_store *f = ctx;
    if (f->unreachable) {
        snprintf(err, errlen, "fake: unreachable");
        return NULL;
    }
    return f;
}

static bool fake_alive(void *conn)
{
    return !((struct fake_store *)conn)->unreachable;
}

static void fake_disconnect(void *conn)
{
    (void)conn;
}

static enum status fake_begin(void *conn)
{
    struct fake_store *f = conn;
    pthread_mutex_lock(&f->lock);
    f->in_tx = true;
    f->tx = f->committed;
    if (fake_fails(f, "begin")) {
        f->in_tx = false;
        pthread_mutex_unlock(&f->lock);
        return f->fail_status;
    }
    return STATUS_OK;
}

static enum status fake_lock_devices(void *conn, struct ingest_device *devices, int n,
                                     struct ingest_hour_list *hours)
{
    struct fake_store *f = conn;
    *hours = (struct ingest_hour_list){0};
    if (fake_fails(f, "lock_devices"))
        return f->fail_status;
    hours->hours = malloc(FAKE_ROWS * sizeof *hours->hours);
    for (int i = 0; i < n; i++) {
        if (i > 0 && devices[i].id <= devices[i - 1].id)
            return STATUS_INTERNAL; /* the contract: strictly ascending */
        const struct fake_device *d = fake_find_device(&f->tx, devices[i].id);
        devices[i].exists = d != NULL;
        devices[i].has_latest = d && d->has_latest;
        if (d) {
            devices[i].type = d->type;
            devices[i].limit = d->limit;
            devices[i].latest_ts = d->latest_ts;
            devices[i].latest_value = d->latest_value;
        }
        /* db/ingest.c's NEAR_HOURS: from the newest stored reading's hour
         * to the hour of the group's newest. */
        for (int h = 0; d && d->has_latest && h < f->tx.nhours; h++) {
            const struct ingest_hour *row = &f->tx.hours[h];
            if (row->device_id == d->id && row->hour >= energy_hour_floor(d->latest_ts) &&
                row->hour <= devices[i].newest_ts)
                hours->hours[hours->count++] = *row;
        }
    }
    return STATUS_OK;
}

/* What the statements' callers promise (rows sorted by device then ts,
 * unique) and the foreign key, for rows[i]. */
static enum status fake_check_row(struct fake_store *f, const struct ingest_row *rows, int i)
{
    if (i > 0 && (rows[i].device_id < rows[i - 1].device_id ||
                  (rows[i].device_id == rows[i - 1].device_id && rows[i].ts <= rows[i - 1].ts)))
        return STATUS_INTERNAL;
    return fake_find_device(&f->tx, rows[i].device_id) ? STATUS_OK : STATUS_INVALID;
}

static enum status fake_insert(void *conn, const struct ingest_row *rows, int n, bool *inserted)
{
    struct fake_store *f = conn;
    if (fake_fails(f, "insert"))
        return f->fail_status;
    for (int i = 0; i < n; i++) {
        enum status st = fake_check_row(f, rows, i);
        if (st != STATUS_OK)
            return st;
        inserted[i] = !fake_find_reading(&f->tx, rows[i].device_id, rows[i].ts);
        if (inserted[i] && f->tx.nreadings < FAKE_ROWS)
            f->tx.readings[f->tx.nreadings++] = rows[i];
    }
    return STATUS_OK;
}

/* A row already stored fails the transaction, as the unique index does. */
static enum status fake_append(void *conn, const struct ingest_row *rows, int n)
{
    struct fake_store *f = conn;
    if (fake_fails(f, "append"))
        return f->fail_status;
    for (int i = 0; i < n; i++) {
        enum status st = fake_check_row(f, rows, i);
        if (st != STATUS_OK)
            return st;
        if (fake_find_reading(&f->tx, rows[i].device_id, rows[i].ts))
            return STATUS_CONFLICT;
        if (f->tx.nreadings < FAKE_ROWS)
            f->tx.readings[f->tx.nreadings++] = rows[i];
    }
    return STATUS_OK;
}

/* max(ts) of device's readings with ts < at (or <= at), or fallback. */
static long long fake_before(const struct fake_tables *t, long long device, long long at,
                             bool inclusive, long long fallback)
{
    long long best = fallback;
    bool found = false;
    for (int i = 0; i < t->nreadings; i++) {
        const struct ingest_row *r = &t->readings[i];
        bool in = r->device_id == device && (inclusive ? r->ts <= at : r->ts < at);
        if (in && (!found || r->ts > best)) {
            best = r->ts;
            found = true;
        }
    }
    return best;
}

/* min(ts) of device's readings with ts > at (or >= at), or fallback. */
static long long fake_after(const struct fake_tables *t, long long device, long long at,
                            bool inclusive, long long fallback)
{
    long long best = fallback;
    bool found = false;
    for (int i = 0; i < t->nreadings; i++) {
        const struct ingest_row *r = &t->readings[i];
        bool in = r->device_id == device && (inclusive ? r->ts >= at : r->ts > at);
        if (in && (!found || r->ts < best)) {
            best = r->ts;
            found = true;
        }
    }
    return best;
}

static int fake_by_ts(const void *a, const void *b)
{
    const struct ingest_context_row *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* db/ingest.c's CONTEXT statement, spelt out. */
static enum status fake_context(void *conn, const struct ingest_span *spans, int n,
                                struct ingest_context *out)
{
    struct fake_store *f = conn;
    *out = (struct ingest_context){0};
    if (fake_fails(f, "context"))
        return f->fail_status;
    out->rows = malloc(FAKE_ROWS * sizeof *out->rows);
    for (int s = 0; s < n; s++) {
        long long dev = spans[s].device_id;
        long long h0 =
            energy_hour_floor(fake_before(&f->tx, dev, spans[s].from, false, spans[s].from));
        long long h1 = energy_hour_floor(fake_after(&f->tx, dev, spans[s].to, false, spans[s].to)) +
                       ENERGY_HOUR_US;
        long long r0 = fake_before(&f->tx, dev, h0, true, h0);
        long long r1 = fake_after(&f->tx, dev, h1, true, h1);
        int first = out->count;
        for (int i = 0; i < f->tx.nreadings; i++) {
            const struct ingest_row *r = &f->tx.readings[i];
            if (r->device_id == dev && r->ts >= r0 && r->ts <= r1)
                out->rows[out->count++] = (struct ingest_context_row){dev, h0, h1, r->ts, r->value};
        }
        qsort(out->rows + first, (size_t)(out->count - first), sizeof *out->rows, fake_by_ts);
    }
    return STATUS_OK;
}

static enum status fake_lock_alerts(void *conn)
{
    struct fake_store *f = conn;
    return fake_fails(f, "lock_alerts") ? f->fail_status : STATUS_OK;
}

static bool fake_alert_exists(const struct fake_tables *t, long long device, long long hour)
{
    for (int i = 0; i < t->nalerts; i++)
        if (t->alerts[i].device_id == device && t->alerts[i].hour == hour)
            return true;
    return false;
}

static enum status fake_write(void *conn, const struct ingest_write *w)
{
    struct fake_store *f = conn;
    struct fake_tables *t = &f->tx;
    if (fake_fails(f, "write"))
        return f->fail_status;
    f->nwritten_hours += w->nhours;
    for (int i = 0; i < w->nhours; i++) {
        const struct ingest_hour *h = &w->hours[i];
        struct ingest_hour *row = fake_find_hour(t, h->device_id, h->hour);
        if (row)
            row->kwh = h->kwh;
        else if (t->nhours < FAKE_ROWS)
            t->hours[t->nhours++] = *h;
        else
            return STATUS_INTERNAL; /* more hours than a test should write */
    }
    for (int i = 0; i < w->nseen; i++) {
        struct fake_device *d = fake_find_device(t, w->seen[i].id);
        if (d && w->seen[i].seen_at > d->last_seen)
            d->last_seen = w->seen[i].seen_at;
    }
    for (int i = 0; i < w->nlatest; i++) {
        struct fake_device *d = fake_find_device(t, w->latest[i].device_id);
        d->has_latest = true;
        d->latest_ts = w->latest[i].ts;
        d->latest_value = w->latest[i].value;
    }
    return STATUS_OK;
}

static enum status fake_raise_alerts(void *conn, const struct ingest_hour *hours, int n,
                                     long long **alert_ids, int *nalerts)
{
    struct fake_store *f = conn;
    struct fake_tables *t = &f->tx;
    *alert_ids = NULL;
    *nalerts = 0;
    if (fake_fails(f, "raise_alerts"))
        return f->fail_status;
    *alert_ids = malloc(FAKE_ROWS * sizeof **alert_ids);
    for (int i = 0; i < n; i++) {
        const struct ingest_hour *h = &hours[i];
        const struct fake_device *d = fake_find_device(t, h->device_id);
        if (d && h->kwh > d->limit && !fake_alert_exists(t, h->device_id, h->hour)) {
            long long id = t->next_alert_id++;
            t->alerts[t->nalerts].id = id;
            t->alerts[t->nalerts].device_id = h->device_id;
            t->alerts[t->nalerts++].hour = h->hour;
            (*alert_ids)[(*nalerts)++] = id;
        }
    }
    return STATUS_OK;
}

static enum status fake_notify(void *conn, const long long *alerts, int nalerts,
                               const long long *usage, int nusage)
{
    struct fake_store *f = conn;
    if (fake_fails(f, f->in_tx ? "notify_in_tx" : "notify"))
        return f->fail_status;
    for (int i = 0; i < nalerts; i++)
        f->notified_alerts[f->nnotified_alerts++] = alerts[i];
    for (int i = 0; i < nusage; i++)
        f->notified_usage[f->nnotified_usage++] = usage[i];
    return STATUS_OK;
}

static enum status fake_commit(void *conn)
{
    struct fake_store *f = conn;
    if (f->on_commit)
        f->on_commit(f);
    enum status st = fake_fails(f, "commit") ? f->fail_status : STATUS_OK;
    if (st == STATUS_OK)
        f->committed = f->tx;
    f->in_tx = false;
    pthread_mutex_unlock(&f->lock);
    return st;
}

static void fake_rollback(void *conn)
{
    struct fake_store *f = conn;
    fake_log(f, "rollback");
    f->in_tx = false;
    pthread_mutex_unlock(&f->lock);
}

static struct ingest_store fake_store_table(struct fake_store *f)
{
    return (struct ingest_store){
        .connect = fake_connect,
        .alive = fake_alive,
        .disconnect = fake_disconnect,
        .begin = fake_begin,
        .lock_devices = fake_lock_devices,
        .insert = fake_insert,
        .append = fake_append,
        .context = fake_context,
        .write = fake_write,
        .lock_alerts = fake_lock_alerts,
        .raise_alerts = fake_raise_alerts,
        .notify = fake_notify,
        .commit = fake_commit,
        .rollback = fake_rollback,
        .ctx = f,
    };
}

#endif
