#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/events.h"
#include "../db/ingest.h"
#include "../base/log.h"
#include "../base/clock.h"

/* A group stops growing past this many readings (a single submission of up
 * to 10,000 always fits: at least one job is taken). */
#define GROUP_MAX_READINGS 20000
/* How often the committer makes sure next months' partitions exist. */
#define PARTITION_CHECK_S 3600.0
/* While the database is down, how often the committer tries to reconnect. */
#define RECONNECT_INTERVAL_S 0.5
/* Submissions in one group at most. */
#define GROUP_MAX_JOBS 4096

/* Two committers, each taking everything queued when it starts: while one
 * waits for its commit to reach the disk, the other runs the next group's
 * statements (their commits can overlap because only alert-raising
 * transactions notify before committing). Device row locks keep them off
 * each other's devices. */
#define INGEST_COMMITTERS 2

struct ingest;

/* A committer thread and what only it touches. */
struct committer {
    struct ingest *ing;
    pthread_t thread;
    bool started;
    struct db_conn *conn;
    double last_connect_attempt;
    double last_partition_check;
    struct ingest_request *batch[GROUP_MAX_JOBS]; /* its current group */
};

struct ingest {
    char *url;
    struct db_pool_options db;

    pthread_mutex_t mutex;
    pthread_cond_t work; /* committers wait for submissions */
    struct ingest_request *head, *tail;
    bool stopping;
    struct committer committers[INGEST_COMMITTERS];

    atomic_ullong readings, duplicates, transactions, alerts, failures;
};

/* ---- one group, one transaction -------------------------------------------- */

/* A reading of the group, after de-duplication across its jobs. */
struct group_row {
    long long device_id;
    long long ts;
    double value;
    int job; /* index of the job it came from */
    int pos; /* position in that job */
};

struct group {
    struct ingest_request **jobs;
    int njobs;
    struct group_row *rows;
    int nrows;
    long long *devices; /* distinct devices, with their newest request time */
    long long *seen_at;
    struct ingest_device *info; /* what locking each device told */
    int ndevices;
};

static void group_free(struct group *g)
{
    free(g->rows);
    free(g->devices);
    free(g->seen_at);
    free(g->info);
    memset(g, 0, sizeof *g);
}

static int device_index(const struct group *g, long long id)
{
    for (int i = 0; i < g->ndevices; i++)
        if (g->devices[i] == id)
            return i;
    return -1;
}

static int by_device_ts(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    if (x->device_id != y->device_id)
        return x->device_id < y->device_id ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->job != y->job)
        return x->job - y->job; /* the earlier submission keeps its reading */
    return x->pos - y->pos;     /* and within one, the earlier position */
}

/* Collects the group's rows, one per (device, ts): the first submitted wins
 * and the others count as duplicates of their jobs. */
static bool group_build(struct group *g, struct ingest_request **jobs, int njobs)
{
    int total = 0;
    for (int j = 0; j < njobs; j++)
        total += jobs[j]->n;
    g->jobs = jobs;
    g->njobs = njobs;
    g->rows = malloc((size_t)(total ? total : 1) * sizeof *g->rows);
    g->devices = malloc((size_t)njobs * sizeof *g->devices);
    g->seen_at = malloc((size_t)njobs * sizeof *g->seen_at);
    g->info = calloc((size_t)njobs, sizeof *g->info);
    if (!g->rows || !g->devices || !g->seen_at || !g->info)
        return false;

    for (int j = 0; j < njobs; j++) {
        struct ingest_request *job = jobs[j];
        int d = device_index(g, job->device_id);
        if (d < 0) {
            d = g->ndevices++;
            g->devices[d] = job->device_id;
            g->seen_at[d] = job->received_at;
        } else if (job->received_at > g->seen_at[d]) {
            g->seen_at[d] = job->received_at;
        }
        for (int i = 0; i < job->n; i++)
            g->rows[g->nrows++] = (struct group_row){job->device_id, job->readings[i].ts,
                                                     job->readings[i].value, j, i};
    }
    /* Sorted, duplicates sit side by side with the first submitted in front. */
    qsort(g->rows, (size_t)g->nrows, sizeof *g->rows, by_device_ts);
    int kept = 0;
    for (int i = 0; i < g->nrows; i++) {
        if (kept && g->rows[kept - 1].device_id == g->rows[i].device_id &&
            g->rows[kept - 1].ts == g->rows[i].ts) {
            jobs[g->rows[i].job]->result.duplicates++;
            continue;
        }
        g->rows[kept++] = g->rows[i];
    }
    g->nrows = kept;
    return true;
}

/* Recomputes the hours of every device in the context (rows sorted by device,
 * then ts) and appends them to the three output arrays. */
struct hour_list {
    long long *devices, *hours;
    double *kwh;
    int count, cap;
};

static bool hours_append(struct hour_list *h, long long device, long long first_hour,
                         const double *values, int n)
{
    if (h->count + n > h->cap) {
        int cap = h->cap ? h->cap : 64;
        while (cap < h->count + n)
            cap *= 2;
        long long *d = realloc(h->devices, (size_t)cap * sizeof *d);
        if (d)
            h->devices = d;
        long long *t = realloc(h->hours, (size_t)cap * sizeof *t);
        if (t)
            h->hours = t;
        double *k = realloc(h->kwh, (size_t)cap * sizeof *k);
        if (k)
            h->kwh = k;
        if (!d || !t || !k)
            return false;
        h->cap = cap;
    }
    for (int i = 0; i < n; i++) {
        h->devices[h->count] = device;
        h->hours[h->count] = first_hour + (long long)i * ENERGY_HOUR_US;
        h->kwh[h->count] = values[i];
        h->count++;
    }
    return true;
}

static void hours_free(struct hour_list *h)
{
    free(h->devices);
    free(h->hours);
    free(h->kwh);
}

static bool recompute_hours(const struct group *g, const struct ingest_context *ctx,
                            struct hour_list *out)
{
    struct energy_reading *readings =
        malloc((size_t)(ctx->count ? ctx->count : 1) * sizeof *readings);
    bool ok = readings != NULL;
    for (int start = 0; ok && start < ctx->count;) {
        const struct ingest_context_row *first = &ctx->rows[start];
        int end = start;
        while (end < ctx->count && ctx->rows[end].device_id == first->device_id) {
            readings[end - start] =
                (struct energy_reading){ctx->rows[end].ts, ctx->rows[end].value};
            end++;
        }
        int d = device_index(g, first->device_id);
        long long nhours = (first->end_hour - first->first_hour) / ENERGY_HOUR_US;
        double *values = nhours > 0 ? malloc((size_t)nhours * sizeof *values) : NULL;
        ok = values && d >= 0;
        if (ok) {
            energy_hours(g->info[d].type, readings, (size_t)(end - start), first->first_hour,
                         (size_t)nhours, values);
            ok = hours_append(out, first->device_id, first->first_hour, values, (int)nhours);
        }
        free(values);
        start = end;
    }
    free(readings);
    return ok;
}

/* Readings that come after every stored one (the common case: a meter
 * reporting in order) only add to the hours from the newest stored reading
 * on; those hours' stored figures plus the new contributions, summed in ts
 * order, are exactly what a recomputation would give, at the cost of reading
 * a few hour rows instead of every reading of the hours. */
static bool appends_only(const struct ingest_device *d, long long lo)
{
    return !d->has_latest || lo > d->latest_ts;
}

/* The first index of device id in the group's rows (sorted by device). */
static int first_group_row(const struct group *g, long long id)
{
    int lo = 0, hi = g->nrows;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (g->rows[mid].device_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The same for the stored hours (sorted by device by the query). */
static int first_row_of(const struct ingest_hour_list *l, long long id)
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

/* The hour range an append touches, and the readings that make it. */
static bool append_hours(const struct group *g, const struct ingest_device *d, const bool *inserted,
                         long long first_hour, long long end_hour,
                         const struct ingest_hour_list *stored, struct hour_list *out)
{
    size_t nhours = (size_t)((end_hour - first_hour) / ENERGY_HOUR_US);
    double *values = calloc(nhours ? nhours : 1, sizeof *values);
    struct energy_reading *readings = malloc((size_t)(g->nrows + 1) * sizeof *readings);
    bool ok = values && readings;
    /* Both lists are sorted by device: each device reads only its own slice. */
    for (int i = first_row_of(stored, d->id); ok && i < stored->count; i++) {
        const struct ingest_hour *h = &stored->hours[i];
        if (h->device_id != d->id)
            break;
        if (h->hour >= first_hour && h->hour < end_hour)
            values[(h->hour - first_hour) / ENERGY_HOUR_US] = h->kwh;
    }
    size_t n = 0;
    if (ok && d->type == READING_CUMULATIVE && d->has_latest)
        readings[n++] = (struct energy_reading){d->latest_ts, d->latest_value};
    for (int i = first_group_row(g, d->id); ok && i < g->nrows && g->rows[i].device_id == d->id;
         i++)
        if (inserted[i])
            readings[n++] = (struct energy_reading){g->rows[i].ts, g->rows[i].value};
    if (ok) {
        energy_add(d->type, readings, n, first_hour, nhours, values);
        ok = hours_append(out, d->id, first_hour, values, (int)nhours);
    }
    free(values);
    free(readings);
    return ok;
}

/* The recomputed hours of every device with new readings: by appending where
 * the readings come after all stored ones, from the stored readings around
 * them otherwise (late, out-of-order readings). */
static enum status hours_for_new_readings(struct db_conn *c, const struct group *g,
                                          const bool *inserted, const long long *ids,
                                          const long long *lo, const long long *hi, int n,
                                          struct hour_list *out)
{
    long long *fast = malloc((size_t)(n ? n : 1) * sizeof *fast);
    long long *first = malloc((size_t)(n ? n : 1) * sizeof *first);
    long long *end = malloc((size_t)(n ? n : 1) * sizeof *end);
    long long *slow = malloc((size_t)(n ? n : 1) * sizeof *slow);
    long long *slow_lo = malloc((size_t)(n ? n : 1) * sizeof *slow_lo);
    long long *slow_hi = malloc((size_t)(n ? n : 1) * sizeof *slow_hi);
    struct ingest_hour_list stored = {0};
    struct ingest_context ctx = {0};
    int nfast = 0, nslow = 0;
    enum status st =
        fast && first && end && slow && slow_lo && slow_hi ? STATUS_OK : STATUS_INTERNAL;
    for (int u = 0; st == STATUS_OK && u < n; u++) {
        const struct ingest_device *d = &g->info[device_index(g, ids[u])];
        if (appends_only(d, lo[u])) {
            fast[nfast] = ids[u];
            first[nfast] = energy_hour_floor(d->has_latest ? d->latest_ts : lo[u]);
            end[nfast] = energy_hour_floor(hi[u]) + ENERGY_HOUR_US;
            nfast++;
        } else {
            slow[nslow] = ids[u];
            slow_lo[nslow] = lo[u];
            slow_hi[nslow] = hi[u];
            nslow++;
        }
    }
    if (st == STATUS_OK && nfast > 0)
        st = db_ingest_hours(c, fast, first, end, nfast, &stored);
    for (int f = 0; st == STATUS_OK && f < nfast; f++)
        if (!append_hours(g, &g->info[device_index(g, fast[f])], inserted, first[f], end[f],
                          &stored, out))
            st = STATUS_INTERNAL;
    if (st == STATUS_OK && nslow > 0)
        st = db_ingest_context(c, slow, slow_lo, slow_hi, nslow, &ctx);
    if (st == STATUS_OK && !recompute_hours(g, &ctx, out))
        st = STATUS_INTERNAL;
    db_ingest_context_free(&ctx);
    free(stored.hours);
    free(fast);
    free(first);
    free(end);
    free(slow);
    free(slow_lo);
    free(slow_hi);
    return st;
}

/* True when some recomputed hour exceeds its device's limit: an alert may be
 * raised (or exist already; the lock is cheap either way). */
static bool hours_over_limit(const struct group *g, const struct hour_list *hours)
{
    for (int i = 0; i < hours->count; i++)
        if (hours->kwh[i] > g->info[device_index(g, hours->devices[i])].limit)
            return true;
    return false;
}

/* Drops rows of devices that no longer exist and fails their jobs. */
static void drop_missing_devices(struct group *g)
{
    int kept = 0;
    for (int i = 0; i < g->nrows; i++) {
        int d = device_index(g, g->rows[i].device_id);
        if (g->info[d].exists)
            g->rows[kept++] = g->rows[i];
    }
    g->nrows = kept;
    for (int j = 0; j < g->njobs; j++)
        if (!g->info[device_index(g, g->jobs[j]->device_id)].exists)
            g->jobs[j]->status = STATUS_NOT_FOUND;
}

/* The devices whose newest reading this group replaces, with that reading:
 * rows are sorted by device, then ts, so a device's last inserted row is its
 * newest. The arrays have room for every device of the group. */
struct latest_list {
    long long *devices, *ts;
    double *values;
    int count;
};

static void latest_collect(const struct group *g, const bool *inserted, struct latest_list *out)
{
    out->count = 0;
    int newest = -1; /* the current device's newest inserted row so far */
    for (int i = 0; i < g->nrows; i++) {
        const struct group_row *r = &g->rows[i];
        if (inserted[i])
            newest = i;
        if (i + 1 < g->nrows && g->rows[i + 1].device_id == r->device_id)
            continue; /* not the device's last row yet */
        const struct ingest_device *d = &g->info[device_index(g, r->device_id)];
        if (newest >= 0 && (!d->has_latest || g->rows[newest].ts > d->latest_ts)) {
            out->devices[out->count] = r->device_id;
            out->ts[out->count] = g->rows[newest].ts;
            out->values[out->count] = g->rows[newest].value;
            out->count++;
        }
        newest = -1;
    }
}

/* Runs the statements of one group inside the open transaction. */
static enum status group_store(struct committer *cm, struct group *g, long long **alert_ids,
                               int *nalerts, long long **usage, int *nusage)
{
    struct db_conn *c = cm->conn;
    enum status st = db_ingest_lock_devices(c, g->devices, g->ndevices, g->info);
    if (st != STATUS_OK)
        return st;
    drop_missing_devices(g);

    int n = g->nrows;
    long long *dev = malloc((size_t)(n ? n : 1) * sizeof *dev);
    long long *ts = malloc((size_t)(n ? n : 1) * sizeof *ts);
    double *val = malloc((size_t)(n ? n : 1) * sizeof *val);
    bool *inserted = calloc((size_t)(n ? n : 1), sizeof *inserted);
    long long *lo = malloc((size_t)g->ndevices * sizeof *lo);
    long long *hi = malloc((size_t)g->ndevices * sizeof *hi);
    *usage = malloc((size_t)g->ndevices * sizeof **usage);
    struct hour_list hours = {0};
    struct latest_list latest = {
        .devices = malloc((size_t)g->ndevices * sizeof *latest.devices),
        .ts = malloc((size_t)g->ndevices * sizeof *latest.ts),
        .values = malloc((size_t)g->ndevices * sizeof *latest.values),
    };
    st = dev && ts && val && inserted && lo && hi && *usage && latest.devices && latest.ts &&
                 latest.values
             ? STATUS_OK
             : STATUS_INTERNAL;

    for (int i = 0; st == STATUS_OK && i < n; i++) {
        dev[i] = g->rows[i].device_id;
        ts[i] = g->rows[i].ts;
        val[i] = g->rows[i].value;
    }
    if (st == STATUS_OK && n > 0)
        st = db_ingest_insert(c, dev, ts, val, n, inserted);

    /* The range of new readings per device: only those can change hours. */
    *nusage = 0;
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        struct ingest_request *job = g->jobs[g->rows[i].job];
        if (!inserted[i]) {
            job->result.duplicates++;
            continue;
        }
        job->result.accepted++;
        int u = 0;
        while (u < *nusage && (*usage)[u] != dev[i])
            u++;
        if (u == *nusage) {
            (*usage)[(*nusage)++] = dev[i];
            lo[u] = hi[u] = ts[i];
        }
        lo[u] = ts[i] < lo[u] ? ts[i] : lo[u];
        hi[u] = ts[i] > hi[u] ? ts[i] : hi[u];
    }
    if (st == STATUS_OK)
        st = hours_for_new_readings(c, g, inserted, *usage, lo, hi, *nusage, &hours);
    if (st == STATUS_OK && hours_over_limit(g, &hours))
        st = db_ingest_lock_alerts(c);
    if (st == STATUS_OK) {
        latest_collect(g, inserted, &latest);
        struct ingest_write w = {
            .hour_devices = hours.devices,
            .hours = hours.hours,
            .kwh = hours.kwh,
            .nhours = hours.count,
            .seen_devices = g->devices,
            .seen_at = g->seen_at,
            .nseen = g->ndevices,
            .latest_devices = latest.devices,
            .latest_ts = latest.ts,
            .latest_values = latest.values,
            .nlatest = latest.count,
        };
        st = db_ingest_write(c, &w, alert_ids, nalerts);
    }
    hours_free(&hours);
    free(latest.devices);
    free(latest.ts);
    free(latest.values);
    free(dev);
    free(ts);
    free(val);
    free(inserted);
    free(lo);
    free(hi);
    return st;
}

static enum status group_commit(struct committer *cm, struct ingest_request **jobs, int njobs)
{
    struct ingest *ing = cm->ing;
    struct group g = {0};
    long long *alert_ids = NULL, *usage = NULL;
    int nalerts = 0, nusage = 0;
    for (int j = 0; j < njobs; j++) {
        jobs[j]->result = (struct ingest_result){0};
        jobs[j]->status = STATUS_OK;
    }
    enum status st = group_build(&g, jobs, njobs) ? STATUS_OK : STATUS_INTERNAL;
    if (st == STATUS_OK)
        st = db_begin(cm->conn);
    if (st == STATUS_OK)
        st = group_store(cm, &g, &alert_ids, &nalerts, &usage, &nusage);
    /* PostgreSQL holds the notification queue lock through the commit of a
     * transaction that notified, WAL flush included: such commits cannot
     * overlap. So only alerts, which must reach their owner if and only if
     * they are stored, are announced inside the transaction; live usage is
     * announced just after the commit (a crash in between loses one usage
     * update, never a reading or an alert). */
    struct events ev = {.alerts = alert_ids, .nalerts = nalerts, .usage = usage, .nusage = nusage};
    bool notify_inside = nalerts > 0;
    if (st == STATUS_OK && notify_inside)
        st = db_events_notify(cm->conn, &ev);
    if (st == STATUS_OK)
        st = db_commit(cm->conn);
    else
        db_rollback(cm->conn);
    if (st == STATUS_OK && !notify_inside && db_events_notify(cm->conn, &ev) != STATUS_OK)
        log_warn("ingest: live usage of %d devices not announced", nusage);

    if (st == STATUS_OK) {
        unsigned long long stored = 0, dups = 0;
        for (int j = 0; j < njobs; j++) {
            stored += (unsigned long long)jobs[j]->result.accepted;
            dups += (unsigned long long)jobs[j]->result.duplicates;
        }
        atomic_fetch_add(&ing->readings, stored);
        atomic_fetch_add(&ing->duplicates, dups);
        atomic_fetch_add(&ing->transactions, 1);
        atomic_fetch_add(&ing->alerts, (unsigned long long)nalerts);
    } else {
        atomic_fetch_add(&ing->failures, 1);
    }
    free(alert_ids);
    free(usage);
    group_free(&g);
    return st;
}

/* ---- the committer thread ---------------------------------------------------- */

/* Makes sure the committer has a live connection; false when the database
 * cannot be reached (tried at most every RECONNECT_INTERVAL_S). */
static bool committer_connect(struct committer *cm)
{
    if (cm->conn && db_conn_alive(cm->conn))
        return true;
    double now = clock_mono_s();
    if (now - cm->last_connect_attempt < RECONNECT_INTERVAL_S)
        return false;
    cm->last_connect_attempt = now;
    db_disconnect(cm->conn);
    char err[256];
    cm->conn = db_connect(&cm->ing->db, err, sizeof err);
    if (!cm->conn)
        log_warn("ingest: %s", err);
    return cm->conn != NULL;
}

static void maintain_partitions(struct committer *cm)
{
    double now = clock_mono_s();
    if (cm->last_partition_check > 0 && now - cm->last_partition_check < PARTITION_CHECK_S)
        return;
    if (db_ingest_ensure_partitions(cm->conn) == STATUS_OK)
        cm->last_partition_check = now;
}

/* Takes the queued jobs into batch, up to GROUP_MAX_READINGS readings (but
 * at least one job). Called with the mutex held. */
static int take_jobs(struct ingest *ing, struct ingest_request **batch)
{
    int n = 0, readings = 0;
    while (ing->head && n < GROUP_MAX_JOBS &&
           (n == 0 || readings + ing->head->n <= GROUP_MAX_READINGS)) {
        struct ingest_request *job = ing->head;
        ing->head = job->next;
        readings += job->n;
        batch[n++] = job;
    }
    if (!ing->head)
        ing->tail = NULL;
    return n;
}

static void finish_jobs(struct ingest_request **jobs, int n, enum status st)
{
    for (int i = 0; i < n; i++) {
        if (st != STATUS_OK)
            jobs[i]->status = st; /* else group_commit set OK or NOT_FOUND */
        jobs[i]->done(jobs[i]);   /* may free the request: touch it no more */
    }
}

static void *committer_main(void *arg)
{
    struct committer *cm = arg;
    struct ingest *ing = cm->ing;
    /* Connected before the first group, like the pool: a committer is ready
     * to take over the moment the other is busy, even while the database
     * refuses new connections. */
    committer_connect(cm);
    for (;;) {
        pthread_mutex_lock(&ing->mutex);
        while (!ing->stopping && !ing->head)
            pthread_cond_wait(&ing->work, &ing->mutex);
        if (!ing->head && ing->stopping) {
            pthread_mutex_unlock(&ing->mutex);
            break;
        }
        struct ingest_request **jobs = cm->batch;
        int n = take_jobs(ing, jobs);
        pthread_mutex_unlock(&ing->mutex);

        enum status st = STATUS_UNAVAILABLE;
        if (committer_connect(cm)) {
            maintain_partitions(cm);
            st = group_commit(cm, jobs, n);
            /* A group fails as a whole; unless the database is away, retry its
             * jobs one by one so that one bad submission fails alone. */
            if (st != STATUS_OK && st != STATUS_UNAVAILABLE && n > 1) {
                for (int i = 0; i < n; i++) {
                    enum status one = group_commit(cm, &jobs[i], 1);
                    finish_jobs(&jobs[i], 1, one);
                }
                continue;
            }
        }
        finish_jobs(jobs, n, st);
    }
    return NULL;
}

/* ---- public ---------------------------------------------------------------------- */

struct ingest *ingest_start(const struct db_pool_options *db, char *err, size_t errlen)
{
    struct ingest *ing = calloc(1, sizeof *ing);
    if (!ing || !(ing->url = strdup(db->url))) {
        free(ing);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ing->db = *db;
    ing->db.url = ing->url;
    ing->db.application_name = "wattline-ingest";
    pthread_mutex_init(&ing->mutex, NULL);
    pthread_cond_init(&ing->work, NULL);
    for (int i = 0; i < INGEST_COMMITTERS; i++) {
        struct committer *cm = &ing->committers[i];
        cm->ing = ing;
        if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) {
            snprintf(err, errlen, "cannot start the ingestion threads");
            ingest_stop(ing);
            return NULL;
        }
        cm->started = true;
    }
    return ing;
}

void ingest_stop(struct ingest *ing)
{
    if (!ing)
        return;
    pthread_mutex_lock(&ing->mutex);
    ing->stopping = true;
    pthread_cond_broadcast(&ing->work);
    pthread_mutex_unlock(&ing->mutex);
    for (int i = 0; i < INGEST_COMMITTERS; i++) {
        struct committer *cm = &ing->committers[i];
        if (cm->started)
            pthread_join(cm->thread, NULL);
        db_disconnect(cm->conn);
    }
    pthread_mutex_destroy(&ing->mutex);
    pthread_cond_destroy(&ing->work);
    free(ing->url);
    free(ing);
}

void ingest_enqueue(struct ingest *ing, struct ingest_request *req)
{
    req->next = NULL;
    req->result = (struct ingest_result){0};
    req->status = STATUS_OK;
    pthread_mutex_lock(&ing->mutex);
    if (ing->stopping) {
        pthread_mutex_unlock(&ing->mutex);
        req->status = STATUS_UNAVAILABLE;
        req->done(req);
        return;
    }
    if (ing->tail)
        ing->tail->next = req;
    else
        ing->head = req;
    ing->tail = req;
    pthread_cond_signal(&ing->work);
    pthread_mutex_unlock(&ing->mutex);
}

/* ingest_submit's waiting room. */
struct waiter {
    struct ingest_request req;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool done;
};

static void waiter_done(struct ingest_request *req)
{
    struct waiter *w = req->user;
    pthread_mutex_lock(&w->mutex);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mutex);
}

enum status ingest_submit(struct ingest *ing, long long device_id,
                          const struct energy_reading *readings, int n, long long received_at,
                          struct ingest_result *out)
{
    struct waiter w = {
        .req = {.device_id = device_id,
                .readings = readings,
                .n = n,
                .received_at = received_at,
                .done = waiter_done},
    };
    w.req.user = &w;
    pthread_mutex_init(&w.mutex, NULL);
    pthread_cond_init(&w.cond, NULL);
    ingest_enqueue(ing, &w.req);
    pthread_mutex_lock(&w.mutex);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mutex);
    pthread_mutex_unlock(&w.mutex);
    pthread_mutex_destroy(&w.mutex);
    pthread_cond_destroy(&w.cond);
    *out = w.req.result;
    return w.req.status;
}

void ingest_stats(struct ingest *ing, struct ingest_stats *out)
{
    out->readings = atomic_load(&ing->readings);
    out->duplicates = atomic_load(&ing->duplicates);
    out->transactions = atomic_load(&ing->transactions);
    out->alerts = atomic_load(&ing->alerts);
    out->failures = atomic_load(&ing->failures);
}
