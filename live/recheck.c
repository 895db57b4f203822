/* recheck: what a token says is checked against the stored user. The role
 * of every user with a session is re-read every HUB_USER_RECHECK_S, and at
 * once on a users_changed notification: a deleted user's sessions close
 * with 4401, a demoted admin keeps only what a client may see. */
#include <stdlib.h>

#include "../base/log.h"
#include "hub_internal.h"

void recheck_set_role(struct hub *h, struct hub_session *s, enum role role)
{
    bool demoted = s->role == ROLE_ADMIN && role != ROLE_ADMIN;
    s->role = role;
    if (demoted)
        usage_recheck_session(h, s);
}

void recheck_sweep(struct hub *h, double now)
{
    if (h->user_check_in_flight || now - h->last_user_check < HUB_USER_RECHECK_S ||
        h->users.count == 0)
        return;
    h->last_user_check = now;
    long long *ids = malloc(h->users.count * sizeof *ids);
    if (!ids)
        return; /* tried again on the next tick */
    int n = 0;
    for (size_t i = 0; i < h->users.cap; i++)
        if (h->users.keys[i])
            ids[n++] = h->users.keys[i];
    struct job *j = job_with_ids(JOB_USERS, ids, n);
    free(ids);
    if (j) {
        j->sweep = true;
        h->user_check_in_flight = true;
    }
    job_submit(h, j);
}

void recheck_on_events(struct hub *h, const struct listener_events *ev)
{
    if (ev->nusers_changed == 0)
        return;
    long long *local = malloc((size_t)ev->nusers_changed * sizeof *local);
    if (!local) {
        log_error("hub: out of memory; user changes were not applied");
        return;
    }
    int n = 0;
    for (int i = 0; i < ev->nusers_changed; i++)
        if (idmap_get(&h->users, ev->users_changed[i]))
            local[n++] = ev->users_changed[i];
    if (n > 0)
        job_submit(h, job_with_ids(JOB_USERS, local, n));
    free(local);
}

void recheck_run(struct hub *h, struct job *j)
{
    j->roles = calloc((size_t)j->nids, sizeof *j->roles);
    j->status =
        j->roles ? h->store.user_roles(h->store.ctx, j->ids, j->nids, j->roles) : STATUS_INTERNAL;
}

void recheck_apply(struct hub *h, struct job *j, double now)
{
    (void)now;
    if (j->sweep)
        h->user_check_in_flight = false;
    if (j->status != STATUS_OK) {
        if (!j->sweep) /* the sweep runs every second: it says nothing while the DB is away */
            log_warn("hub: could not re-read %d changed user(s)", j->nids);
        return;
    }
    for (int i = 0; i < j->nids; i++) {
        struct user_entry *u = registry_user(h, j->ids[i]);
        while (u && j->roles[i] == ROLE_NONE && u->sessions.n > 0) {
            /* Closing takes the session out of u; the last one frees u. */
            bool last = u->sessions.n == 1;
            registry_close(h, u->sessions.items[0], HUB_CLOSE_CODE_UNAUTHORIZED,
                           HUB_CLOSED_USER_DELETED, "user deleted");
            if (last)
                u = NULL;
        }
        for (int k = 0; u && k < u->sessions.n; k++)
            recheck_set_role(h, u->sessions.items[k], j->roles[i]);
    }
}
