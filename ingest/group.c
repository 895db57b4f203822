#include "group.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "energy.h"
#include "forecast.h"

/* A reading of the group and where it came from. */
struct group_row {
    struct ingest_row r;
    int job; /* index of the job it came from */
    int pos; /* position in that job */
};

/* What the group does with one device, besides what the store sees of it
 * (g->devices[d], same index). */
struct group_slice {
    int first, count; /* its rows: g->rows[first .. first + count) */
    int inserted;     /* how many of them were new */
    long long lo, hi; /* the range of the new ones' ts */
    /* The hours this group may write for the device: [from, to), whole
     * hours (group_window). */
    long long window_from, window_to;
};

/* The recomputed hours to write. */
struct hour_list {
    struct ingest_hour *items;
    int count, cap;
};

/* Buffers reused from one device to the next while computing hours. */
struct scratch {
    struct energy_reading *readings;
    size_t readings_cap;
    double *values;
    size_t values_cap;
};

struct group {
    struct ingest_request **jobs;
    int njobs;
    long long max_age_us;   /* MAX_READING_AGE_DAYS */
    struct group_row *rows; /* one per (device, ts), sorted by device then ts */
    int nrows;
    struct ingest_device *devices; /* distinct, ascending id */
    struct group_slice *slices;    /* slices[d] belongs to devices[d] */
    int ndevices;
    struct ingest_row *insert; /* rows[i].r, as the store takes them */
    bool *inserted;            /* inserted[i]: rows[i] was new */
    /* Every row follows its device's newest stored reading: appended, all
     * new, without asking which (group_follows). */
    bool appending;
    struct ingest_hour_list stored; /* from the lock: the hours appends add to */
    struct hour_list hours;
    struct hour_list over; /* the hours of hours over their device's limit */
    long long *usage;      /* devices with new readings, ascending */
    int nusage;
    struct ingest_row *latest; /* devices whose newest reading is new, with it */
    int nlatest;
    long long *alerts; /* raised, ascending (the store's) */
    int nalerts;
    long long *online; /* devices reported offline that have new readings */
    int nonline;
    struct ingest_forecast *forecasts; /* at most one per device */
    int nforecasts;
};

static void group_free(struct group *g)
{
    free(g->rows);
    free(g->devices);
    free(g->slices);
    free(g->insert);
    free(g->inserted);
    free(g->stored.hours);
    free(g->hours.items);
    free(g->over.items);
    free(g->usage);
    free(g->latest);
    free(g->alerts);
    free(g->online);
    free(g->forecasts);
    memset(g, 0, sizeof *g);
}

/* ---- building the group ----------------------------------------------------- */

static int by_device_ts(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    if (x->r.device_id != y->r.device_id)
        return x->r.device_id < y->r.device_id ? -1 : 1;
    if (x->r.ts != y->r.ts)
        return x->r.ts < y->r.ts ? -1 : 1;
    if (x->job != y->job)
        return x->job - y->job; /* the earlier submission keeps its reading */
    return x->pos - y->pos;     /* and within one, the earlier position */
}

static int by_id(const void *a, const void *b)
{
    const struct ingest_device *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The index of id in g->devices, or -1. */
static int group_find_device(const struct group *g, long long id)
{
    int lo = 0, hi = g->ndevices;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (g->devices[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->ndevices && g->devices[lo].id == id ? lo : -1;
}

/* Allocates what depends only on the group's size. */
static bool group_alloc(struct group *g, int total)
{
    size_t rows = (size_t)(total ? total : 1), jobs = (size_t)(g->njobs ? g->njobs : 1);
    g->rows = malloc(rows * sizeof *g->rows);
    g->insert = malloc(rows * sizeof *g->insert);
    g->inserted = malloc(rows * sizeof *g->inserted);
    g->devices = calloc(jobs, sizeof *g->devices);
    g->slices = calloc(jobs, sizeof *g->slices);
    g->usage = malloc(jobs * sizeof *g->usage);
    g->latest = malloc(jobs * sizeof *g->latest);
    g->online = malloc(jobs * sizeof *g->online);
    g->forecasts = malloc(jobs * sizeof *g->forecasts);
    return g->rows && g->insert && g->inserted && g->devices && g->slices && g->usage &&
           g->latest && g->online && g->forecasts;
}

/* One entry per distinct device, with the newest receive time of its jobs. */
static void group_unique_devices(struct group *g)
{
    for (int j = 0; j < g->njobs; j++)
        g->devices[j] = (struct ingest_device){.id = g->jobs[j]->in.device_id,
                                               .seen_at = g->jobs[j]->in.received_at};
    qsort(g->devices, (size_t)g->njobs, sizeof *g->devices, by_id);
    int kept = 0;
    for (int j = 0; j < g->njobs; j++) {
        struct ingest_device *last = kept ? &g->devices[kept - 1] : NULL;
        if (last && last->id == g->devices[j].id) {
            if (g->devices[j].seen_at > last->seen_at)
                last->seen_at = g->devices[j].seen_at;
            continue;
        }
        g->devices[kept++] = g->devices[j];
    }
    g->ndevices = kept;
}

/* Collects the group's rows, one per (device, ts): the first submitted wins
 * and the others count as duplicates of their jobs. */
static bool group_build(struct group *g, struct ingest_request **jobs, int njobs)
{
    int total = 0;
    for (int j = 0; j < njobs; j++)
        total += jobs[j]->in.n;
    g->jobs = jobs;
    g->njobs = njobs;
    if (!group_alloc(g, total))
        return false;
    group_unique_devices(g);
    for (int j = 0; j < njobs; j++) {
        const struct ingest_submission *in = &jobs[j]->in;
        for (int i = 0; i < in->n; i++)
            g->rows[g->nrows++] = (struct group_row){
                {in->device_id, in->readings[i].ts, in->readings[i].value}, j, i};
    }
    /* Sorted, duplicates sit side by side with the first submitted in front. */
    qsort(g->rows, (size_t)g->nrows, sizeof *g->rows, by_device_ts);
    int kept = 0;
    for (int i = 0; i < g->nrows; i++) {
        const struct group_row *last = kept ? &g->rows[kept - 1] : NULL;
        if (last && last->r.device_id == g->rows[i].r.device_id && last->r.ts == g->rows[i].r.ts) {
            jobs[g->rows[i].job]->result.duplicates++;
            continue;
        }
        g->rows[kept++] = g->rows[i];
    }
    g->nrows = kept;
    /* Each device's newest reading: the last of its rows. */
    for (int i = 0, d = 0; i < g->nrows; i++) {
        while (g->devices[d].id != g->rows[i].r.device_id)
            d++;
        g->devices[d].newest_ts = g->rows[i].r.ts;
    }
    return true;
}

/* After locking: fails the jobs of devices that no longer exist, drops
 * their rows, and marks each remaining device's slice of rows. Rows and
 * devices are both sorted by device: one walk over each. */
static void group_slice_rows(struct group *g)
{
    for (int j = 0; j < g->njobs; j++) {
        int d = group_find_device(g, g->jobs[j]->in.device_id); /* always found */
        if (d < 0 || !g->devices[d].exists) {
            g->jobs[j]->status = STATUS_NOT_FOUND;
            g->jobs[j]->result = (struct ingest_result){0};
        }
    }
    int kept = 0, d = 0;
    for (int i = 0; i < g->nrows; i++) {
        while (g->devices[d].id != g->rows[i].r.device_id)
            d++;
        if (!g->devices[d].exists)
            continue;
        if (g->slices[d].count++ == 0)
            g->slices[d].first = kept;
        g->insert[kept] = g->rows[i].r;
        g->rows[kept++] = g->rows[i];
    }
    g->nrows = kept;
}

/* The hours one group may write for a device with new readings in
 * [s->lo, s->hi]: those of the window its readings were checked against
 * (MAX_READING_AGE_DAYS before the newest receive time, INGEST_FUTURE_US
 * after it), widened to the new readings themselves (one of an earlier
 * submission in the group may sit before the newest's window), in whole hours.
 *
 * Stored readings may lie outside it: from before MAX_READING_AGE_DAYS
 * existed, or from a larger setting since lowered. The contract spreads a
 * cumulative interval evenly over its whole length, so an interval that
 * starts years ago gives each hour of the window exactly its share of the
 * register's difference (delta * overlap / length), and its share of the
 * hours before the window is never written: for the hours written, energy
 * before the window counts as 0, as energy before a first reading does.
 * Every hour written is still exactly what a recomputation from the stored
 * readings gives (energy.h); only the hours outside the window are left
 * as they were, so one request never writes more hours than its readings
 * span within the window. */
static void group_window(const struct group *g, const struct ingest_device *dev,
                         struct group_slice *s)
{
    long long from = dev->seen_at - g->max_age_us;
    long long to = dev->seen_at + INGEST_FUTURE_US;
    s->window_from = energy_hour_floor(s->lo < from ? s->lo : from);
    s->window_to = energy_hour_floor(s->hi > to ? s->hi : to) + ENERGY_HOUR_US;
}

/* True when every row comes after its device's newest stored reading: then
 * none can be stored already (the newest is kept by every writer, under the
 * device's lock), and they are appended without asking which are new. */
static bool group_follows(const struct group *g)
{
    for (int d = 0; d < g->ndevices; d++) {
        const struct ingest_device *dev = &g->devices[d];
        const struct group_slice *s = &g->slices[d];
        if (s->count > 0 && dev->has_latest && g->rows[s->first].r.ts <= dev->latest_ts)
            return false;
    }
    return true;
}

/* Counts each job's new and duplicate readings and each device's range of
 * new readings: only those can change hours. */
static void group_count_inserted(struct group *g)
{
    for (int d = 0; d < g->ndevices; d++) {
        struct group_slice *s = &g->slices[d];
        for (int i = s->first; i < s->first + s->count; i++) {
            struct ingest_request *job = g->jobs[g->rows[i].job];
            if (!g->inserted[i]) {
                job->result.duplicates++;
                continue;
            }
            job->result.accepted++;
            long long ts = g->rows[i].r.ts;
            if (s->inserted++ == 0)
                s->lo = s->hi = ts;
            s->lo = ts < s->lo ? ts : s->lo;
            s->hi = ts > s->hi ? ts : s->hi;
        }
        if (s->inserted > 0) {
            group_window(g, &g->devices[d], s);
            g->usage[g->nusage++] = g->devices[d].id;
        }
    }
}

/* ---- hours ----------------------------------------------------------------- */

static bool scratch_reserve(struct scratch *s, size_t readings, size_t values)
{
    if (readings > s->readings_cap) {
        struct energy_reading *r = realloc(s->readings, readings * sizeof *r);
        if (!r)
            return false;
        s->readings = r;
        s->readings_cap = readings;
    }
    if (values > s->values_cap) {
        double *v = realloc(s->values, values * sizeof *v);
        if (!v)
            return false;
        s->values = v;
        s->values_cap = values;
    }
    return true;
}

static void scratch_free(struct scratch *s)
{
    free(s->readings);
    free(s->values);
}

/* Appends the hours [first_hour, first_hour + n hours) of device. */
static bool hours_add(struct hour_list *h, long long device, long long first_hour,
                      const double *values, int n)
{
    if (h->count + n > h->cap) {
        int cap = h->cap ? h->cap : 64;
        while (cap < h->count + n)
            cap *= 2;
        struct ingest_hour *items = realloc(h->items, (size_t)cap * sizeof *items);
        if (!items)
            return false;
        h->items = items;
        h->cap = cap;
    }
    for (int i = 0; i < n; i++)
        h->items[h->count++] =
            (struct ingest_hour){device, first_hour + (long long)i * ENERGY_HOUR_US, values[i]};
    return true;
}

/* Readings that come after every stored one (the common case: a meter
 * reporting in order) only add to the hours from the newest stored reading
 * on; those hours' stored figures plus the new contributions, summed in ts
 * order, are exactly what a recomputation would give, at the cost of reading
 * a few hour rows instead of every reading of the hours. */
static bool appends_only(const struct ingest_device *d, const struct group_slice *s)
{
    return !d->has_latest || s->lo > d->latest_ts;
}

/* The first index of device id in the stored hours (sorted by device). */
static int first_stored_hour(const struct ingest_hour_list *l, long long id)
{
    int lo = 0, hi = l->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->hours[mid].device_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The hours of span (one device's append range): its stored figures plus
 * what the new readings add. */
static bool append_hours(struct group *g, int d, const struct ingest_span *span,
                         const struct ingest_hour_list *stored, struct scratch *s)
{
    const struct ingest_device *dev = &g->devices[d];
    const struct group_slice *slice = &g->slices[d];
    size_t nhours = (size_t)((span->to - span->from) / ENERGY_HOUR_US);
    if (!scratch_reserve(s, (size_t)slice->count + 1, nhours))
        return false;
    for (size_t i = 0; i < nhours; i++)
        s->values[i] = 0.0;
    for (int i = first_stored_hour(stored, dev->id); i < stored->count; i++) {
        const struct ingest_hour *h = &stored->hours[i];
        if (h->device_id != dev->id)
            break;
        if (h->hour >= span->from && h->hour < span->to)
            s->values[(h->hour - span->from) / ENERGY_HOUR_US] = h->kwh;
    }
    size_t n = 0;
    if (dev->type == READING_CUMULATIVE && dev->has_latest)
        s->readings[n++] = (struct energy_reading){dev->latest_ts, dev->latest_value};
    for (int i = slice->first; i < slice->first + slice->count; i++)
        if (g->inserted[i])
            s->readings[n++] = (struct energy_reading){g->rows[i].r.ts, g->rows[i].r.value};
    energy_add(dev->type, s->readings, n, span->from, nhours, s->values);
    return hours_add(&g->hours, dev->id, span->from, s->values, (int)nhours);
}

/* Recomputes the hours of every device in the context (rows sorted by
 * device, then ts) from its stored readings. */
static bool recompute_hours(struct group *g, const struct ingest_context *ctx, struct scratch *s)
{
    if (!scratch_reserve(s, (size_t)ctx->count, 0))
        return false;
    for (int start = 0; start < ctx->count;) {
        const struct ingest_context_row *first = &ctx->rows[start];
        int end = start;
        for (; end < ctx->count && ctx->rows[end].device_id == first->device_id; end++)
            s->readings[end - start] =
                (struct energy_reading){ctx->rows[end].ts, ctx->rows[end].value};
        int d = group_find_device(g, first->device_id);
        if (d < 0)
            return false;
        /* The readings around a late one may be far apart: only the hours
         * of the window are recomputed (group_window). */
        const struct group_slice *slice = &g->slices[d];
        long long from =
            first->first_hour > slice->window_from ? first->first_hour : slice->window_from;
        long long to = first->end_hour < slice->window_to ? first->end_hour : slice->window_to;
        long long nhours = (to - from) / ENERGY_HOUR_US;
        if (nhours <= 0 || !scratch_reserve(s, 0, (size_t)nhours))
            return false;
        energy_hours(g->devices[d].type, s->readings, (size_t)(end - start), from, (size_t)nhours,
                     s->values);
        if (!hours_add(&g->hours, first->device_id, from, s->values, (int)nhours))
            return false;
        start = end;
    }
    return true;
}

/* Splits the devices with new readings into spans: appends (fast[0..*nfast),
 * hours [from, to)) and late readings (slow[0..*nslow), readings [from, to]). */
static void group_split(const struct group *g, struct ingest_span *fast, int *nfast,
                        struct ingest_span *slow, int *nslow)
{
    *nfast = *nslow = 0;
    for (int d = 0; d < g->ndevices; d++) {
        const struct ingest_device *dev = &g->devices[d];
        const struct group_slice *s = &g->slices[d];
        if (s->inserted == 0)
            continue;
        if (appends_only(dev, s)) {
            /* From the newest stored reading's hour, or the window's first
             * if it is older (group_window). */
            long long from = energy_hour_floor(dev->has_latest ? dev->latest_ts : s->lo);
            fast[(*nfast)++] =
                (struct ingest_span){dev->id, from > s->window_from ? from : s->window_from,
                                     energy_hour_floor(s->hi) + ENERGY_HOUR_US};
        } else
            slow[(*nslow)++] = (struct ingest_span){dev->id, s->lo, s->hi};
    }
}

/* The recomputed hours of every device with new readings: by appending where
 * the readings come after all stored ones (to the hours the lock read), from
 * the stored readings around them otherwise (late, out-of-order readings:
 * one statement, only when some device has them). */
static enum status group_hours(const struct ingest_store *store, void *conn, struct group *g)
{
    struct ingest_span *spans = malloc((size_t)(g->ndevices ? g->ndevices : 1) * 2 * sizeof *spans);
    struct ingest_span *fast = spans, *slow = spans ? spans + g->ndevices : NULL;
    struct ingest_context ctx = {0};
    struct scratch scratch = {0};
    int nfast = 0, nslow = 0;
    enum status st = spans ? STATUS_OK : STATUS_INTERNAL;
    if (st == STATUS_OK)
        group_split(g, fast, &nfast, slow, &nslow);
    for (int f = 0; st == STATUS_OK && f < nfast; f++)
        if (!append_hours(g, group_find_device(g, fast[f].device_id), &fast[f], &g->stored,
                          &scratch))
            st = STATUS_INTERNAL;
    if (st == STATUS_OK && nslow > 0)
        st = store->context(conn, slow, nslow, &ctx);
    if (st == STATUS_OK && !recompute_hours(g, &ctx, &scratch))
        st = STATUS_INTERNAL;
    free(ctx.rows);
    scratch_free(&scratch);
    free(spans);
    return st;
}

/* ---- alerts and the rest of the write ----------------------------------------- */

/* The recomputed hours that exceed their device's limit: an alert may be
 * raised for each (or exist already). */
static bool group_collect_over(struct group *g)
{
    g->over.count = 0;
    for (int i = 0; i < g->hours.count; i++) {
        const struct ingest_hour *h = &g->hours.items[i];
        int d = group_find_device(g, h->device_id);
        if (d >= 0 && h->kwh > g->devices[d].limit &&
            !hours_add(&g->over, h->device_id, h->hour, &h->kwh, 1))
            return false;
    }
    return true;
}

/* The devices whose newest reading this group replaces, with that reading:
 * a device's rows are sorted by ts, so its last inserted row is its newest. */
static void group_collect_latest(struct group *g)
{
    g->nlatest = 0;
    for (int d = 0; d < g->ndevices; d++) {
        const struct ingest_device *dev = &g->devices[d];
        const struct group_slice *s = &g->slices[d];
        int newest = -1;
        for (int i = s->first + s->count - 1; i >= s->first && newest < 0; i--)
            if (g->inserted[i])
                newest = i;
        if (newest >= 0 && (!dev->has_latest || g->rows[newest].r.ts > dev->latest_ts))
            g->latest[g->nlatest++] = g->rows[newest].r;
    }
}

/* The devices reported offline that this group gives new readings: they
 * turn online (db_ingest_write_in_tx). */
static void group_collect_online(struct group *g)
{
    g->nonline = 0;
    for (int d = 0; d < g->ndevices; d++)
        if (g->devices[d].exists && g->devices[d].offline && g->slices[d].inserted > 0)
            g->online[g->nonline++] = g->devices[d].id;
}

/* The energy of device's hour among the recomputed hours; false when absent. */
static bool group_hour_kwh(const struct group *g, long long device, long long hour, double *kwh)
{
    for (int i = 0; i < g->hours.count; i++)
        if (g->hours.items[i].device_id == device && g->hours.items[i].hour == hour) {
            *kwh = g->hours.items[i].kwh;
            return true;
        }
    return false;
}

/* The forecasts of the group: each device whose newest reading is new is
 * judged once, at that reading (forecast.h), against the hour containing
 * its newest receive time; not for the hour it already has a forecast for. */
static void group_collect_forecasts(struct group *g)
{
    g->nforecasts = 0;
    for (int i = 0; i < g->nlatest; i++) {
        const struct ingest_row *r = &g->latest[i];
        int d = group_find_device(g, r->device_id);
        long long hour = energy_hour_floor(r->ts);
        double so_far, projected;
        if (d >= 0 && hour != g->devices[d].forecast_hour &&
            group_hour_kwh(g, r->device_id, hour, &so_far) &&
            forecast_judge(r->ts, g->devices[d].seen_at, so_far, g->devices[d].limit, &projected))
            g->forecasts[g->nforecasts++] = (struct ingest_forecast){
                r->device_id, hour, so_far, projected, g->devices[d].limit, r->ts};
    }
}

/* Runs the statements of one group inside the open transaction, up to the
 * alerts: everything here holds only the group's own devices' rows. */
static enum status group_store(const struct ingest_store *store, void *conn, struct group *g,
                               bool may_append)
{
    enum status st = store->lock_devices(conn, g->devices, g->ndevices, &g->stored);
    if (st != STATUS_OK)
        return st;
    group_slice_rows(g);
    g->appending = may_append && group_follows(g);
    if (g->appending) {
        for (int i = 0; i < g->nrows; i++)
            g->inserted[i] = true;
        if (g->nrows > 0)
            st = store->append(conn, g->insert, g->nrows);
    } else if (g->nrows > 0) {
        st = store->insert(conn, g->insert, g->nrows, g->inserted);
    }
    if (st != STATUS_OK)
        return st;
    group_count_inserted(g);
    st = group_hours(store, conn, g);
    if (st != STATUS_OK)
        return st;
    group_collect_latest(g);
    group_collect_online(g);
    struct ingest_write w = {
        .hours = g->hours.items,
        .nhours = g->hours.count,
        .seen = g->devices,
        .nseen = g->ndevices,
        .latest = g->latest,
        .nlatest = g->nlatest,
        .online = g->online,
        .nonline = g->nonline,
    };
    st = store->write(conn, &w);
    if (st != STATUS_OK || !store->raise_forecasts)
        return st;
    group_collect_forecasts(g);
    return g->nforecasts > 0 ? store->raise_forecasts(conn, g->forecasts, g->nforecasts) : st;
}

/* Raises the alerts of the hours over their limit, if any, under the lock
 * shared by every device's alert-raising transaction (store.h): taken last,
 * after the hours are computed and written, so that it covers only the
 * alerts' insert, the NOTIFY and the commit. */
static enum status group_raise_alerts(const struct ingest_store *store, void *conn, struct group *g)
{
    if (!group_collect_over(g))
        return STATUS_INTERNAL;
    if (g->over.count == 0)
        return STATUS_OK;
    enum status st = store->lock_alerts(conn);
    if (st == STATUS_OK)
        st = store->raise_alerts(conn, g->over.items, g->over.count, &g->alerts, &g->nalerts);
    return st;
}

/* Opens the transaction, stores the group, announces its alerts, and commits
 * or rolls back. PostgreSQL holds the notification queue lock through the
 * commit of a transaction that notified, WAL flush included: such commits
 * cannot overlap. So only alerts, which must reach their owner if and only
 * if they are stored, are announced inside the transaction (with the live
 * usage of the group, which costs nothing more there); otherwise live usage
 * is left to the caller, who announces it after the commit (a crash in
 * between loses one usage update, never a reading or an alert). */
static enum status group_transaction(const struct ingest_store *store, void *conn, struct group *g,
                                     bool may_append)
{
    enum status st = store->begin(conn);
    if (st != STATUS_OK)
        return st;
    st = group_store(store, conn, g, may_append);
    if (st == STATUS_OK)
        st = group_raise_alerts(store, conn, g);
    bool notify_inside = g->nalerts > 0;
    if (st == STATUS_OK && notify_inside)
        st = store->notify(conn, g->alerts, g->nalerts, g->usage, g->nusage);
    if (st != STATUS_OK) {
        store->rollback(conn);
        return st;
    }
    return store->commit(conn);
}

/* Builds the group of jobs in g and runs its transaction. */
static enum status group_run(const struct ingest_store *store, void *conn, struct group *g,
                             struct ingest_request **jobs, int njobs, bool may_append)
{
    for (int j = 0; j < njobs; j++) {
        jobs[j]->result = (struct ingest_result){0};
        jobs[j]->status = STATUS_OK;
    }
    if (!group_build(g, jobs, njobs))
        return STATUS_INTERNAL;
    return group_transaction(store, conn, g, may_append);
}

enum status ingest_group_commit(const struct ingest_store *store, void *conn,
                                struct ingest_request **jobs, int njobs, long long max_age_us,
                                struct ingest_group_outcome *out)
{
    struct group g = {.max_age_us = max_age_us};
    enum status st = group_run(store, conn, &g, jobs, njobs, true);
    if (st == STATUS_CONFLICT && g.appending) {
        /* A row was stored after the newest reading the device row knew of:
         * only a change made by hand does that. The careful way instead. */
        log_warn("ingest: readings newer than their device's newest stored one were stored "
                 "already; the group runs again with an insert that skips them");
        group_free(&g);
        g.max_age_us = max_age_us;
        st = group_run(store, conn, &g, jobs, njobs, false);
    }
    if (st == STATUS_OK) {
        *out = (struct ingest_group_outcome){.alerts = g.nalerts};
        if (g.nalerts == 0 && g.nusage > 0) { /* else announced with the alerts */
            out->usage = g.usage;
            out->nusage = g.nusage;
            g.usage = NULL;
        }
        for (int j = 0; j < njobs; j++) {
            out->stored += (unsigned long long)jobs[j]->result.accepted;
            out->duplicates += (unsigned long long)jobs[j]->result.duplicates;
        }
    } else {
        for (int j = 0; j < njobs; j++) {
            jobs[j]->result = (struct ingest_result){0};
            jobs[j]->status = st;
        }
    }
    group_free(&g);
    return st;
}
