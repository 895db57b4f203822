#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* PostgreSQL's limit is 8000 bytes; stay well below with room for the keys. */
#define PAYLOAD_BUDGET 7000

static const struct db_stmt NOTIFY = {"events_notify", "SELECT pg_notify('" EVENTS_CHANNEL
                                                       "', p) FROM unnest($1::text[]) AS p"};

struct payloads {
    struct db_array list; /* text[] literal of the payloads */
    char current[PAYLOAD_BUDGET + 64];
    size_t len;
    const char *open_key; /* the array currently open in current, or NULL */
};

/* Closes the current payload and adds it to the text[] literal. */
static void flush(struct payloads *p)
{
    if (p->len == 0)
        return;
    snprintf(p->current + p->len, sizeof p->current - p->len, "%s}", p->open_key ? "]" : "");
    db_array_add_text(&p->list, p->current);
    p->len = 0;
    p->open_key = NULL;
}

static void add_ids(struct payloads *p, const char *key, const long long *ids, int n)
{
    for (int i = 0; i < n; i++) {
        char num[24];
        int nl = snprintf(num, sizeof num, "%lld", ids[i]);
        if (p->len + (size_t)nl + strlen(key) + 8 > PAYLOAD_BUDGET)
            flush(p);
        if (p->len == 0)
            p->len = (size_t)snprintf(p->current, sizeof p->current, "{");
        if (p->open_key != key) {
            p->len += (size_t)snprintf(p->current + p->len, sizeof p->current - p->len,
                                       "%s\"%s\":[%s", p->open_key ? "]," : "", key, num);
            p->open_key = key;
        } else {
            p->len += (size_t)snprintf(p->current + p->len, sizeof p->current - p->len, ",%s", num);
        }
    }
}

enum status db_events_notify(struct db_conn *c, const struct events *ev)
{
    if (!ev->nalerts && !ev->nusage && !ev->ndevices_changed && !ev->nusers_changed)
        return STATUS_OK;
    struct payloads *p = calloc(1, sizeof *p);
    if (!p)
        return STATUS_INTERNAL;
    add_ids(p, "alerts", ev->alerts, ev->nalerts);
    add_ids(p, "usage", ev->usage, ev->nusage);
    add_ids(p, "devices_changed", ev->devices_changed, ev->ndevices_changed);
    add_ids(p, "users_changed", ev->users_changed, ev->nusers_changed);
    flush(p);
    const char *list = db_array_finish(&p->list);
    enum status st = STATUS_INTERNAL;
    if (list) {
        const char *params[] = {list};
        PGresult *res = db_exec(c, &NOTIFY, 1, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        PQclear(res);
    }
    db_array_free(&p->list);
    free(p);
    return st;
}
