/* notices: events made elsewhere for a user's sessions (forecast,
 * device_status; db/notifications.h), announced by id on the events
 * channel, read once by the worker and sent to every ready session of the
 * user on this instance. The user's preferences were applied when the event
 * was made: a notice exists only for users who take that event here. */
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "hub_internal.h"

void notices_on_events(struct hub *h, const long long *ids, int n)
{
    if (n > 0 && h->users.count > 0 && h->store.notices)
        job_submit(h, job_with_ids(JOB_NOTICES, ids, n));
}

void notices_run(struct hub *h, struct job *j)
{
    j->status = h->store.notices(h->store.ctx, j->ids, j->nids, &j->notices);
}

/* The outbound type of an event; OUT_TYPES for one whose sessions get it
 * another way (a command's status travels with the commands). */
static enum out_type notice_type(const char *event)
{
    if (!strcmp(event, "forecast"))
        return OUT_FORECAST;
    if (!strcmp(event, "device_status"))
        return OUT_DEVICE_STATUS;
    return OUT_TYPES;
}

void notices_apply(struct hub *h, struct job *j, double now)
{
    (void)now;
    if (j->status != STATUS_OK) {
        log_warn("hub: could not read %d notified event(s)", j->nids);
        return;
    }
    for (int i = 0; i < j->notices.count; i++) {
        const struct notice *no = &j->notices.items[i];
        enum out_type type = notice_type(no->event);
        struct user_entry *u = type == OUT_TYPES ? NULL : registry_user(h, no->user_id);
        if (!u)
            continue;
        struct out_message m = {.type = type, .u.notice.json = no->payload};
        char *text = protocol_render(&m);
        int n;
        struct hub_session **targets = registry_snapshot(&u->sessions, &n);
        for (int k = 0; k < n; k++)
            if (targets[k]->state == SESSION_READY)
                protocol_send_text(h, targets[k], type, text);
        free(targets);
        free(text);
    }
}
