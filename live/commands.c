/* commands: commands to devices on the live channel.
 *
 * Users: a "commands" notification (a command created or changed on any
 * instance) is read by id on the worker, and each command goes to the READY
 * user sessions of its device's owner and of every admin.
 *
 * Devices: the READY device sessions of each device are listed here. A
 * change to one of a device's commands (its "command_devices" id), a new
 * session, and the passing of a lock make the worker claim the device's
 * deliverable commands (db_commands_claim: each becomes sent and locked for
 * COMMAND_LOCK_S, on every instance at once, so two instances never push
 * the same lock period); what it got is pushed to the device's sessions
 * here. One claim per device is in flight at a time; a change meanwhile
 * claims once more after it. Answers (command_result) are recorded with
 * db_commands_answer and acknowledged with command_ack.
 */
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../db/events.h"
#include "hub_internal.h"

/* Devices are scanned for passed locks this often. */
#define DEVICE_SCAN_S 0.25
/* A claim after a lock passes waits this much past it, so the lock has. */
#define LOCK_SLACK_S 0.2
/* A device's sessions are claimed for at least this often. */
#define RECLAIM_MAX_S 60.0

struct device_entry {
    long long device_id;
    struct ptrvec sessions; /* borrowed READY device sessions */
    bool claiming, again;   /* a claim in flight; another wanted after it */
    double due;             /* claim again then (a lock passes); 0: not needed */
};

static struct device_entry *device_entry(struct hub *h, long long device_id)
{
    return device_id ? idmap_get(&h->devices, device_id) : NULL;
}

static void request_claim(struct hub *h, struct device_entry *e, bool by_event)
{
    if (e->claiming) {
        e->again = true;
        return;
    }
    struct job *j = job_new(JOB_DEVICE_CLAIM);
    if (!j) {
        log_error("hub: out of memory; a device's commands wait for the next change");
        return;
    }
    j->device_id = e->device_id;
    j->by_event = by_event;
    e->claiming = true;
    job_submit(h, j);
}

bool commands_add_device(struct hub *h, struct hub_session *s)
{
    struct device_entry *e = device_entry(h, s->device_id);
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return false;
        e->device_id = s->device_id;
        if (!idmap_put(&h->devices, e->device_id, e)) {
            free(e);
            return false;
        }
    }
    if (!ptrvec_add(&e->sessions, s))
        return false; /* an entry with no sessions is dropped at the next detach or free */
    request_claim(h, e, true);
    return true;
}

void commands_detach(struct hub *h, struct hub_session *s)
{
    struct device_entry *e = device_entry(h, s->device_id);
    if (!e)
        return;
    ptrvec_remove(&e->sessions, s);
    /* Kept while a claim is in flight: its apply finds and drops it. */
    if (e->sessions.n == 0 && !e->claiming) {
        idmap_del(&h->devices, e->device_id);
        free(e->sessions.items);
        free(e);
    }
}

void commands_free(struct hub *h)
{
    for (size_t i = 0; i < h->devices.cap; i++) {
        if (!h->devices.keys[i])
            continue;
        struct device_entry *e = h->devices.vals[i];
        free(e->sessions.items);
        free(e);
    }
    idmap_free(&h->devices);
}

/* A device deleted, moved to another owner or given a new token: its
 * sessions here close with 4401, so an old token stops working on the
 * socket too. A device still there reconnects with its (current) token. */
static void close_changed_devices(struct hub *h, const struct listener_events *ev)
{
    for (int i = 0; i < ev->ndevices_changed && h->devices.count > 0; i++) {
        struct device_entry *e = device_entry(h, ev->devices_changed[i]);
        if (!e)
            continue;
        int n;
        struct hub_session **sessions = registry_snapshot(&e->sessions, &n);
        for (int k = 0; k < n; k++)
            registry_close(h, sessions[k], HUB_CLOSE_CODE_UNAUTHORIZED, HUB_CLOSED_AUTH_FAILED,
                           "device changed");
        free(sessions);
    }
}

/* Reads the commands of these transitions (EVENTS_COMMAND values) for
 * the users' sessions; the transitions are kept to tell each status. */
static void commands_request_read(struct hub *h, const long long *transitions, int n)
{
    struct job *j = job_with_ids(JOB_COMMANDS, transitions, n);
    if (j && !(j->transitions = malloc((size_t)n * sizeof *j->transitions))) {
        job_free(j);
        j = NULL;
    }
    if (j) {
        for (int i = 0; i < n; i++) {
            j->transitions[i] = transitions[i];
            j->ids[i] = EVENTS_COMMAND_ID(transitions[i]);
        }
        j->ntransitions = n;
    }
    job_submit(h, j);
}

void commands_on_events(struct hub *h, const struct listener_events *ev)
{
    close_changed_devices(h, ev);
    if (ev->ncommands > 0 && h->users.count > 0)
        commands_request_read(h, ev->commands, ev->ncommands);
    for (int i = 0; i < ev->ncommand_devices && h->devices.count > 0; i++) {
        struct device_entry *e = device_entry(h, ev->command_devices[i]);
        if (e)
            request_claim(h, e, true);
    }
}

void commands_tick(struct hub *h, double now)
{
    if (h->devices.count == 0 || now - h->last_device_scan < DEVICE_SCAN_S)
        return;
    h->last_device_scan = now;
    for (size_t i = 0; i < h->devices.cap; i++) {
        struct device_entry *e = h->devices.keys[i] ? h->devices.vals[i] : NULL;
        if (e && e->due > 0 && e->due <= now) {
            e->due = 0;
            request_claim(h, e, false);
        }
    }
}

/* ---- users' status ------------------------------------------------------------ */

void commands_run_read(struct hub *h, struct job *j)
{
    j->status = h->store.commands_by_ids(h->store.ctx, j->ids, j->nids, &j->commands);
    if (j->status == STATUS_OK)
        j->status =
            h->store.commands_live_muted(h->store.ctx, j->ids, j->nids, &j->muted, &j->nmuted);
}

/* Whether user_id turned commands off for sessions (a few users at most). */
static bool is_muted(const struct job *j, long long user_id)
{
    for (int i = 0; i < j->nmuted; i++)
        if (j->muted[i] == user_id)
            return true;
    return false;
}

/* The READY sessions of admins here, collected once per batch of commands
 * (admins have no list of their own; owners do: registry_user). Caller
 * frees; NULL when there are none. */
static struct hub_session **admin_sessions(struct hub *h, const struct job *j, int *n)
{
    *n = 0;
    struct hub_session **out = NULL;
    int cap = 0;
    for (size_t i = 0; i < h->sessions.cap; i++) {
        struct hub_session *s = h->sessions.keys[i] ? h->sessions.vals[i] : NULL;
        if (!s || s->state != SESSION_READY || s->kind != SESSION_KIND_USER ||
            s->role != ROLE_ADMIN || is_muted(j, s->user_id))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct hub_session **grown = realloc(out, (size_t)cap * sizeof *out);
            if (!grown) {
                log_error("hub: out of memory; admins miss a command's status");
                return out;
            }
            out = grown;
        }
        out[(*n)++] = s;
    }
    return out;
}

/* Sends text to the owner's sessions that are not admins' (those got it
 * with the admins). */
static void send_to_owner(struct hub *h, const struct job *j, long long owner_id, const char *text)
{
    struct user_entry *u = registry_user(h, owner_id);
    if (!u || is_muted(j, owner_id))
        return;
    int n;
    struct hub_session **sessions = registry_snapshot(&u->sessions, &n);
    for (int i = 0; i < n; i++)
        if (sessions[i]->role != ROLE_ADMIN)
            protocol_send_text(h, sessions[i], OUT_COMMAND, text);
    free(sessions);
}

/* The command as it was when it took status st, from c as read since: a
 * command read after later transitions still shows each one. A final
 * status is never left, so only queued and sent need their later members
 * hidden (attempts is the count read, at least the one of that moment). */
static struct command as_of(const struct command *c, enum command_status st)
{
    struct command v = *c; /* borrows c's strings */
    v.status = st;
    if (st == COMMAND_QUEUED) {
        v.attempts = 0;
        v.sent_at = 0;
    }
    if (st == COMMAND_QUEUED || st == COMMAND_SENT) {
        v.completed_at = 0;
        v.result = NULL;
        v.error = NULL;
    }
    return v;
}

static const struct command *find_command(const struct command_list *list, long long id)
{
    for (int i = 0; i < list->count; i++)
        if (list->items[i].id == id)
            return &list->items[i];
    return NULL;
}

/* Each transition goes, in the order notified, to the device's owner and to
 * every admin. */
void commands_apply_read(struct hub *h, struct job *j, double now)
{
    (void)now;
    if (j->status != STATUS_OK) {
        log_warn("hub: %d command change(s) could not be read; not shown live", j->nids);
        return;
    }
    int nadmins;
    struct hub_session **admins = admin_sessions(h, j, &nadmins);
    for (int k = 0; k < j->ntransitions; k++) {
        const struct command *read =
            find_command(&j->commands, EVENTS_COMMAND_ID(j->transitions[k]));
        int st = EVENTS_COMMAND_STATUS(j->transitions[k]);
        if (!read || st >= COMMAND_STATUSES)
            continue; /* deleted with its device since, or a newer sender's status */
        struct command view = as_of(read, (enum command_status)st);
        const struct command *c = &view;
        struct out_message m = {.type = OUT_COMMAND, .u.command.command = c};
        char *text = protocol_render(&m);
        if (!text)
            continue;
        for (int i = 0; i < nadmins; i++)
            protocol_send_text(h, admins[i], OUT_COMMAND, text);
        send_to_owner(h, j, c->owner_id, text);
        free(text);
    }
    free(admins);
}

/* ---- devices ------------------------------------------------------------------- */

void commands_run_claim(struct hub *h, struct job *j)
{
    j->status = h->store.commands_claim(h->store.ctx, j->device_id, &j->commands);
}

void commands_apply_claim(struct hub *h, struct job *j, double now)
{
    struct device_entry *e = device_entry(h, j->device_id);
    if (!e)
        return;
    e->claiming = false;
    if (e->sessions.n == 0) {
        idmap_del(&h->devices, e->device_id);
        free(e->sessions.items);
        free(e);
        return; /* what it claimed goes again once its lock passes */
    }
    /* A claim that got something, or that a change asked for (another
     * delivery may hold a lock that will pass), looks again after a lock.
     * Any other looks again within RECLAIM_MAX_S all the same: a change
     * notified while the listener was reconnecting is not caught up (only
     * alerts are), and this bounds how long such a command waits. */
    double lock = h->limits.command_lock_s + LOCK_SLACK_S;
    if (j->status != STATUS_OK || j->commands.count > 0 || j->by_event)
        e->due = now + lock;
    else
        e->due = now + (lock < RECLAIM_MAX_S ? lock : RECLAIM_MAX_S);
    int n;
    struct hub_session **sessions = registry_snapshot(&e->sessions, &n);
    for (int k = 0; k < j->commands.count; k++) {
        struct out_message m = {.type = OUT_COMMAND, .u.command.command = &j->commands.items[k]};
        char *text = protocol_render(&m);
        for (int i = 0; i < n; i++)
            protocol_send_text(h, sessions[i], OUT_COMMAND, text);
        free(text);
    }
    free(sessions);
    if (e->again) {
        e->again = false;
        request_claim(h, e, true);
    }
}

void commands_answer_begin(struct hub *h, struct hub_session *s, long long id,
                           const struct command_answer *answer, char *result)
{
    struct job *j = job_new(JOB_DEVICE_ANSWER);
    char *error = NULL;
    if (!j || (answer->error && !(error = strdup(answer->error)))) {
        free(j);
        free(result);
        registry_close_for_memory(h, s);
        return;
    }
    j->session_id = s->id;
    j->device_id = s->device_id;
    j->command_id = id;
    j->answer_result = result;
    j->answer_error = error;
    j->answer = (struct command_answer){.status = answer->status, .result = result, .error = error};
    job_submit(h, j);
}

void commands_run_answer(struct hub *h, struct job *j)
{
    j->status = h->store.commands_answer(h->store.ctx, j->device_id, j->command_id, &j->answer,
                                         &j->command, &j->changed);
}

void commands_apply_answer(struct hub *h, struct job *j, double now)
{
    (void)now;
    struct hub_session *s = registry_session(h, j->session_id);
    if (!s || s->state != SESSION_READY)
        return;
    switch (j->status) {
    case STATUS_OK: {
        struct out_message m = {.type = OUT_COMMAND_ACK,
                                .u.ack = {.id = j->command_id, .status = j->command.status}};
        protocol_send(h, s, &m);
        break;
    }
    case STATUS_NOT_FOUND:
        protocol_send_error(h, s, "not_found", "no such command for this device", "id", 0);
        break;
    case STATUS_CONFLICT:
        protocol_send_error(h, s, "already_final", "the command is already final", "id", 0);
        break;
    default:
        protocol_send_error(h, s, "unavailable", "the answer was not stored; send it again", NULL,
                            0);
        break;
    }
}
