#include "commands.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/command_input.h"
#include "../api/resources.h"
#include "../base/clock.h"
#include "../base/json_shape.h"
#include "../base/log.h"
#include "../db/broker.h"
#include "../db/commands.h"
#include "message.h"

/* The periodic pass: how often, how many devices at most, and how long a
 * queued command is left to the other transports first. */
#define SCAN_EVERY_S       5.0
#define SCAN_DEVICES_MAX   64
#define QUEUED_MIN_AGE_S   2
#define WOKEN_MAX          4096 /* devices remembered between runs; beyond, the scan finds them */
#define POOL_WAIT_MS       1000
#define CONFIRM_TIMEOUT_MS 5000
#define ANSWER_MAX         (64 * 1024)
#define RETRY_AFTER_S      2.0

struct broker_commands {
    struct db_pool *pool;
    int lock_s;
    double next_scan;  /* clock_mono_s() */
    double not_before; /* after a failure: no run before then */

    pthread_mutex_t lock; /* the woken list, filled from the listener's thread */
    long long *woken;
    int nwoken, cap;
};

struct broker_commands *broker_commands_create(struct db_pool *pool, int lock_s)
{
    struct broker_commands *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->pool = pool;
    c->lock_s = lock_s;
    c->next_scan = clock_mono_s() + SCAN_EVERY_S;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void broker_commands_free(struct broker_commands *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->woken);
    free(c);
}

void broker_commands_wake(struct broker_commands *c, const long long *device_ids, int n)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < n && c->nwoken < WOKEN_MAX; i++) {
        if (c->nwoken == c->cap) {
            int cap = c->cap ? c->cap * 2 : 64;
            long long *w = realloc(c->woken, (size_t)cap * sizeof *w);
            if (!w)
                break; /* the scan finds it in a few seconds */
            c->woken = w;
            c->cap = cap;
        }
        c->woken[c->nwoken++] = device_ids[i];
    }
    pthread_mutex_unlock(&c->lock);
}

bool broker_commands_due(struct broker_commands *c, int *wait_ms)
{
    pthread_mutex_lock(&c->lock);
    bool woken = c->nwoken > 0;
    pthread_mutex_unlock(&c->lock);
    double now = clock_mono_s();
    double left = now < c->not_before ? c->not_before - now : woken ? 0 : c->next_scan - now;
    if (left <= 0)
        return true;
    int ms = (int)(left * 1000) + 1;
    if (ms < *wait_ms)
        *wait_ms = ms;
    return false;
}

/* ---- delivery ------------------------------------------------------------- */

/* One publish of command to every name the device may listen under.
 * *routed: a subscription took it. False when the link failed. */
static bool publish(struct link *pub, const struct command *command, const char *serial,
                    bool *routed, char *err, size_t errlen)
{
    json_t *msg = json_pack("{s:s, s:o}", "type", "command", "command", command_to_json(command));
    char *body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
                                               AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .content_type = amqp_cstring_bytes("application/json"),
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    char keys[2][128];
    int nkeys = 0;
    snprintf(keys[nkeys++], sizeof keys[0], "devices.%lld.commands", command->device_id);
    if (serial && *serial)
        snprintf(keys[nkeys++], sizeof keys[0], "devices.%s.commands", serial);
    bool ok = true;
    *routed = false;
    for (int k = 0; ok && k < nkeys; k++) {
        bool returned;
        ok = link_publish_confirmed(pub, "amq.topic", amqp_cstring_bytes(keys[k]), &props,
                                    amqp_cstring_bytes(body), &returned, CONFIRM_TIMEOUT_MS, err,
                                    errlen);
        *routed = *routed || (ok && !returned);
    }
    free(body);
    return ok;
}

static bool contains(const long long *ids, int n, long long id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* One device: publish its deliverable commands; if a subscription took
 * them, claim them (and publish what the claim adds: a command created or
 * unlocked meanwhile). False when the link or the database failed. */
static bool deliver(struct broker_commands *c, struct db_conn *conn, struct link *pub,
                    long long device_id, char *err, size_t errlen)
{
    long long ids[COMMANDS_CLAIM_MAX];
    int n = 0;
    struct db_broker_device *dev = NULL;
    int ndev = 0;
    struct command_list peek = {0}, claimed = {0};
    bool ok = db_broker_deliverable(conn, device_id, COMMANDS_CLAIM_MAX, ids, &n) == STATUS_OK &&
              db_broker_devices(conn, &device_id, 1, NULL, 0, &dev, &ndev) == STATUS_OK &&
              (n == 0 || db_commands_by_ids(conn, ids, n, &peek) == STATUS_OK);
    if (!ok)
        snprintf(err, errlen, "the database did not answer");
    const char *serial = ndev == 1 ? dev[0].serial : NULL;
    bool routed = false;
    for (int i = 0; ok && i < peek.count; i++) {
        bool this_routed;
        ok = publish(pub, &peek.items[i], serial, &this_routed, err, errlen);
        routed = routed || this_routed;
    }
    if (ok && routed && ndev == 1) {
        ok = db_commands_claim(conn, device_id, c->lock_s, COMMANDS_CLAIM_MAX, &claimed) ==
             STATUS_OK;
        if (!ok)
            snprintf(err, errlen, "the database did not answer");
        for (int i = 0; ok && i < claimed.count; i++) {
            bool again;
            if (!contains(ids, n, claimed.items[i].id))
                ok = publish(pub, &claimed.items[i], serial, &again, err, errlen);
        }
    }
    command_list_free(&peek);
    command_list_free(&claimed);
    free(dev);
    return ok;
}

/* The devices to look at now: those woken, and on the scan's turn those
 * with a deliverable command. */
static int due_devices(struct broker_commands *c, struct db_conn *conn, long long *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nwoken && n < max; i++)
        if (!contains(out, n, c->woken[i]))
            out[n++] = c->woken[i];
    c->nwoken = 0;
    pthread_mutex_unlock(&c->lock);
    if (clock_mono_s() >= c->next_scan) {
        c->next_scan = clock_mono_s() + SCAN_EVERY_S;
        long long found[SCAN_DEVICES_MAX];
        int nfound = 0;
        if (db_broker_command_devices(conn, QUEUED_MIN_AGE_S, SCAN_DEVICES_MAX, found, &nfound) ==
            STATUS_OK)
            for (int i = 0; i < nfound && n < max; i++)
                if (!contains(out, n, found[i]))
                    out[n++] = found[i];
    }
    return n;
}

bool broker_commands_run(struct broker_commands *c, struct link *pub, char *err, size_t errlen)
{
    struct db_conn *conn = db_pool_acquire(c->pool, POOL_WAIT_MS);
    if (!conn) {
        /* The woken devices stay woken; nothing is tried for a while. */
        snprintf(err, errlen, "no database connection");
        c->not_before = clock_mono_s() + RETRY_AFTER_S;
        return false;
    }
    long long devices[SCAN_DEVICES_MAX * 2];
    int n = due_devices(c, conn, devices, (int)(sizeof devices / sizeof devices[0]));
    bool ok = true;
    for (int i = 0; ok && i < n; i++)
        ok = deliver(c, conn, pub, devices[i], err, errlen);
    db_pool_release(c->pool, conn);
    if (!ok) {
        /* What was not delivered is deliverable still: the next scan finds it. */
        c->not_before = clock_mono_s() + RETRY_AFTER_S;
        c->next_scan = c->not_before;
    }
    return ok;
}

/* ---- answers -------------------------------------------------------------- */

static enum broker_answer dead(char *why, size_t whylen, const char *text)
{
    snprintf(why, whylen, "%s", text);
    return BROKER_ANSWER_DEAD;
}

enum broker_answer broker_commands_answer(struct broker_commands *c, const char *key, size_t keylen,
                                          const char *body, size_t len, char *why, size_t whylen)
{
    struct broker_name name;
    if (!broker_topic_device(key, keylen, ".command_results", &name))
        return dead(why, whylen, "routing key: not devices.<id or serial>.command_results");
    if (len > ANSWER_MAX || json_shape_problem(body, len))
        return dead(why, whylen, "body: too large or too deeply nested");
    json_error_t error;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return dead(why, whylen, "body: not a JSON object");
    }
    enum broker_answer verdict;
    const json_t *type = json_object_get(doc, "type");
    const json_t *id = json_object_get(doc, "id");
    static const char *const ENVELOPE[] = {"type", "id", NULL};
    struct command_answer answer;
    char *result = NULL;
    struct command_fault fault;
    if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "command_result"))) {
        verdict = dead(why, whylen, "type: must be command_result");
    } else if (!json_is_integer(id) || json_integer_value(id) <= 0) {
        verdict = dead(why, whylen, "id: must be a command id");
    } else if (!command_answer_read(doc, ENVELOPE, &answer, &result, &fault)) {
        snprintf(why, whylen, "%s: %s", fault.field ? fault.field : "body", fault.detail);
        verdict = BROKER_ANSWER_DEAD;
    } else {
        struct db_conn *conn = db_pool_acquire(c->pool, POOL_WAIT_MS);
        struct db_broker_device *dev = NULL;
        int ndev = 0;
        struct command stored = {0};
        bool changed = false;
        const char *serials[] = {name.serial};
        enum status st = !conn     ? STATUS_UNAVAILABLE
                         : name.id ? db_broker_devices(conn, &name.id, 1, NULL, 0, &dev, &ndev)
                                   : db_broker_devices(conn, NULL, 0, serials, 1, &dev, &ndev);
        if (st == STATUS_OK && ndev == 1)
            st = db_commands_answer(conn, dev[0].id, json_integer_value(id), &answer, &stored,
                                    &changed);
        else if (st == STATUS_OK)
            st = STATUS_NOT_FOUND;
        if (conn)
            db_pool_release(c->pool, conn);
        command_clear(&stored);
        free(dev);
        switch (st) {
        case STATUS_OK:
            verdict = BROKER_ANSWER_STORED;
            break;
        case STATUS_NOT_FOUND:
            verdict = dead(why, whylen, "no such command of this device");
            break;
        case STATUS_CONFLICT:
            verdict = dead(why, whylen,
                           "the command is final already (answered, canceled or "
                           "expired)");
            break;
        case STATUS_INVALID:
            verdict = dead(why, whylen, "the answer was refused");
            break;
        default:
            verdict = BROKER_ANSWER_RETRY;
            break;
        }
    }
    free(result);
    json_decref(doc);
    return verdict;
}
