/* usage: live readings for the sessions that subscribed to a device. A
 * subscription is registered at once (so readings arriving meanwhile count)
 * and checked by the worker, which reads the device's owner. Readings make
 * the listener report device ids; a device some local session subscribed to
 * is read at most once per HUB_USAGE_INTERVAL_S, and the result goes to the
 * subscribers allowed to see the device at that moment (an admin, or the
 * owner read with the usage), so an owner change stops the old owner's
 * stream at once. */
#include <stdlib.h>

#include "../base/log.h"
#include "hub_internal.h"

/* Owned by h->usage.devices while some session subscribes to the device. */
struct device_entry {
    long long device_id;
    struct ptrvec subscribers; /* borrowed hub_session pointers */
    double last_read;          /* when usage was last read for it */
    bool dirty;                /* readings arrived since */
    bool in_flight;            /* a usage read is queued or running */
};

static bool usage_may_see(const struct hub_session *s, bool exists, long long owner_id)
{
    return exists && (s->role == ROLE_ADMIN || (owner_id != 0 && owner_id == s->user_id));
}

static bool usage_subscribed(const struct hub_session *s, long long device_id)
{
    for (int i = 0; i < s->nsubs; i++)
        if (s->subs[i] == device_id)
            return true;
    return false;
}

/* Forgets a device entry nobody subscribes to (its dirty mark goes stale
 * harmlessly: usage_flush skips ids without an entry). */
static void usage_release_if_unused(struct hub *h, struct device_entry *d)
{
    if (d->subscribers.n > 0)
        return;
    idmap_del(&h->usage.devices, d->device_id);
    free(d->subscribers.items);
    free(d);
}

/* Registers s as a subscriber of device_id; false when out of memory. */
static bool usage_add(struct hub *h, struct hub_session *s, long long device_id)
{
    struct device_entry *d = idmap_get(&h->usage.devices, device_id);
    if (!d) {
        if (!(d = calloc(1, sizeof *d)))
            return false;
        d->device_id = device_id;
        if (!idmap_put(&h->usage.devices, device_id, d)) {
            free(d);
            return false;
        }
    }
    if (s->nsubs == s->subs_cap) {
        int cap = s->subs_cap ? 2 * s->subs_cap : 4;
        long long *subs = realloc(s->subs, (size_t)cap * sizeof *subs);
        if (!subs) {
            usage_release_if_unused(h, d);
            return false;
        }
        s->subs = subs;
        s->subs_cap = cap;
    }
    if (!ptrvec_add(&d->subscribers, s)) {
        usage_release_if_unused(h, d);
        return false;
    }
    s->subs[s->nsubs++] = device_id;
    return true;
}

void usage_subscribe(struct hub *h, struct hub_session *s, long long device_id)
{
    if (usage_subscribed(s, device_id))
        return;
    if (s->nsubs == HUB_MAX_SUBSCRIPTIONS) {
        protocol_send_error(h, s, "too_many_subscriptions", "unsubscribe from a device first",
                            "device_id", device_id);
        return;
    }
    if (!usage_add(h, s, device_id)) {
        registry_close_for_memory(h, s);
        return;
    }
    /* usage_apply_owners drops it with not_found when it is not visible. */
    struct job *j = job_with_ids(JOB_OWNERS, &device_id, 1);
    if (j)
        j->session_id = s->id;
    job_submit(h, j);
}

void usage_unsubscribe(struct hub *h, struct hub_session *s, long long device_id)
{
    for (int i = 0; i < s->nsubs; i++) {
        if (s->subs[i] == device_id) {
            s->subs[i] = s->subs[--s->nsubs];
            break;
        }
    }
    struct device_entry *d = idmap_get(&h->usage.devices, device_id);
    if (d) {
        ptrvec_remove(&d->subscribers, s);
        usage_release_if_unused(h, d);
    }
}

void usage_detach(struct hub *h, struct hub_session *s)
{
    while (s->nsubs > 0)
        usage_unsubscribe(h, s, s->subs[0]);
    free(s->subs);
    s->subs = NULL;
    s->subs_cap = 0;
}

void usage_recheck_session(struct hub *h, struct hub_session *s)
{
    if (s->nsubs > 0)
        job_submit(h, job_with_ids(JOB_OWNERS, s->subs, s->nsubs));
}

void usage_run_owners(struct hub *h, struct job *j)
{
    j->owners = calloc((size_t)j->nids, sizeof *j->owners);
    j->status =
        j->owners ? h->store.owners(h->store.ctx, j->ids, j->nids, j->owners) : STATUS_INTERNAL;
}

void usage_apply_owners(struct hub *h, struct job *j, double now)
{
    (void)now;
    struct hub_session *asker = j->session_id ? registry_session(h, j->session_id) : NULL;
    if (j->status != STATUS_OK) {
        if (asker && asker->state == SESSION_READY && usage_subscribed(asker, j->ids[0])) {
            usage_unsubscribe(h, asker, j->ids[0]);
            protocol_send_error(h, asker, "unavailable", "the database is unavailable; try again",
                                NULL, j->ids[0]);
        }
        return;
    }
    for (int i = 0; i < j->nids; i++) {
        const struct device_owner *o = &j->owners[i];
        struct device_entry *d = idmap_get(&h->usage.devices, o->device_id);
        if (!d)
            continue;
        int n;
        struct hub_session **subs = registry_snapshot(&d->subscribers, &n);
        for (int k = 0; k < n; k++) {
            if (usage_may_see(subs[k], o->exists, o->owner_id))
                continue;
            usage_unsubscribe(h, subs[k], o->device_id); /* may free d */
            if (subs[k] == asker)
                protocol_send_error(h, asker, "not_found", "no such device", "device_id",
                                    o->device_id);
        }
        free(subs);
    }
}

static void usage_mark_dirty(struct hub *h, struct device_entry *d)
{
    struct usage_index *x = &h->usage;
    if (d->dirty)
        return;
    if (x->ndirty == x->capdirty) {
        int cap = x->capdirty ? x->capdirty * 2 : 64;
        long long *more = realloc(x->dirty, (size_t)cap * sizeof *more);
        if (!more)
            return; /* this burst's usage message is skipped; the next reading brings it */
        x->dirty = more;
        x->capdirty = cap;
    }
    d->dirty = true;
    x->dirty[x->ndirty++] = d->device_id;
}

void usage_flush(struct hub *h, double now)
{
    struct usage_index *x = &h->usage;
    if (x->ndirty == 0)
        return;
    long long *due = malloc((size_t)x->ndirty * sizeof *due);
    if (!due)
        return; /* tried again on the next tick */
    int ndue = 0, keep = 0;
    for (int i = 0; i < x->ndirty; i++) {
        struct device_entry *d = idmap_get(&x->devices, x->dirty[i]);
        if (!d || !d->dirty)
            continue; /* unsubscribed meanwhile */
        if (d->in_flight || now - d->last_read < HUB_USAGE_INTERVAL_S) {
            x->dirty[keep++] = d->device_id;
            continue;
        }
        d->dirty = false;
        d->in_flight = true;
        d->last_read = now;
        due[ndue++] = d->device_id;
    }
    x->ndirty = keep;
    if (ndue > 0)
        job_submit(h, job_with_ids(JOB_USAGE, due, ndue));
    free(due);
}

void usage_on_events(struct hub *h, const struct listener_events *ev, double now)
{
    for (int i = 0; i < ev->nusage; i++) {
        struct device_entry *d = idmap_get(&h->usage.devices, ev->usage[i]);
        if (d)
            usage_mark_dirty(h, d);
    }
    usage_flush(h, now);

    if (ev->ndevices_changed == 0)
        return;
    long long *local = malloc((size_t)ev->ndevices_changed * sizeof *local);
    if (!local) {
        log_error("hub: out of memory; owner changes were not applied");
        return;
    }
    int n = 0;
    for (int i = 0; i < ev->ndevices_changed; i++)
        if (idmap_get(&h->usage.devices, ev->devices_changed[i]))
            local[n++] = ev->devices_changed[i];
    if (n > 0)
        job_submit(h, job_with_ids(JOB_OWNERS, local, n));
    free(local);
}

void usage_run_read(struct hub *h, struct job *j)
{
    j->status = h->store.usage(h->store.ctx, j->ids, j->nids, &j->usage, &j->nusage);
}

void usage_apply_read(struct hub *h, struct job *j, double now)
{
    (void)now;
    for (int i = 0; i < j->nids; i++) {
        struct device_entry *d = idmap_get(&h->usage.devices, j->ids[i]);
        if (d)
            d->in_flight = false;
    }
    if (j->status != STATUS_OK)
        return;
    for (int i = 0; i < j->nusage; i++) {
        const struct device_usage *u = &j->usage[i];
        struct device_entry *d = idmap_get(&h->usage.devices, u->device_id);
        if (!d)
            continue;
        struct out_message m = {.type = OUT_USAGE, .u.usage.usage = u};
        char *text = protocol_render(&m);
        int n;
        struct hub_session **subs = registry_snapshot(&d->subscribers, &n);
        for (int k = 0; k < n; k++) {
            if (!usage_may_see(subs[k], true, u->owner_id))
                usage_unsubscribe(h, subs[k], u->device_id); /* the device changed hands */
            else if (protocol_send_text(h, subs[k], OUT_USAGE, text))
                atomic_fetch_add(&h->counters.usage_sent, 1);
        }
        free(subs);
        free(text);
    }
}

void usage_free(struct hub *h)
{
    idmap_free(&h->usage.devices);
    free(h->usage.dirty);
}
