#include "events.h"

#include <stdlib.h>
#include <string.h>

#include "../base/json_writer.h"
#include "internal.h"

/* PostgreSQL's limit is 8000 bytes; stay well below with room for the keys. */
#define PAYLOAD_BUDGET 7000
/* The most an id adds to a payload: a comma and 20 characters of a long long. */
#define ID_MAX_LEN 21

static const struct db_stmt NOTIFY = {"events_notify", "SELECT pg_notify('" EVENTS_CHANNEL
                                                       "', p) FROM unnest($1::text[]) AS p"};

struct payloads {
    struct db_array list;   /* text[] literal of the finished payloads */
    struct json_writer doc; /* the payload being written */
    const char *open_key;   /* the array currently open in doc, or NULL */
    bool failed;            /* out of memory */
};

/* Closes the current payload and adds it to the text[] literal. */
static void flush(struct payloads *p)
{
    if (p->doc.len == 0)
        return;
    if (p->open_key)
        json_writer_end_array(&p->doc);
    json_writer_end_object(&p->doc);
    size_t len;
    char *doc = json_writer_finish(&p->doc, &len);
    if (doc)
        db_array_add_text(&p->list, doc);
    else
        p->failed = true;
    free(doc);
    p->open_key = NULL;
}

/* n tuples of stride integers each; a tuple is never split across payloads. */
static void add_tuples(struct payloads *p, const char *key, const long long *ids, int n, int stride)
{
    for (int i = 0; i < n * stride; i++) {
        if (i % stride == 0 &&
            p->doc.len + (size_t)stride * ID_MAX_LEN + strlen(key) + 8 > PAYLOAD_BUDGET)
            flush(p);
        if (p->doc.len == 0)
            json_writer_begin_object(&p->doc);
        if (p->open_key != key) {
            if (p->open_key)
                json_writer_end_array(&p->doc);
            json_writer_key(&p->doc, key);
            json_writer_begin_array(&p->doc);
            p->open_key = key;
        }
        json_writer_int(&p->doc, ids[i]);
    }
}

static void add_ids(struct payloads *p, const char *key, const long long *ids, int n)
{
    add_tuples(p, key, ids, n, 1);
}

enum status db_events_notify(struct db_conn *c, const struct events *ev)
{
    if (!ev->nalerts && !ev->nusage && !ev->ndevices_changed && !ev->nusers_changed &&
        !ev->ncommands && !ev->nchat_messages && !ev->nchat_typing && !ev->nchat_reads)
        return STATUS_OK;
    struct payloads p = {0};
    db_array_init(&p.list);
    json_writer_init(&p.doc);
    add_ids(&p, "alerts", ev->alerts, ev->nalerts);
    add_ids(&p, "usage", ev->usage, ev->nusage);
    add_ids(&p, "devices_changed", ev->devices_changed, ev->ndevices_changed);
    add_ids(&p, "users_changed", ev->users_changed, ev->nusers_changed);
    add_ids(&p, "commands", ev->commands, ev->ncommands);
    add_ids(&p, "command_devices", ev->command_devices, ev->ncommand_devices);
    add_tuples(&p, "chat_messages", ev->chat_messages, ev->nchat_messages, EVENTS_CHAT_MESSAGE_LEN);
    add_tuples(&p, "chat_typing", ev->chat_typing, ev->nchat_typing, EVENTS_CHAT_TYPING_LEN);
    add_tuples(&p, "chat_reads", ev->chat_reads, ev->nchat_reads, EVENTS_CHAT_READ_LEN);
    flush(&p);
    const char *list = p.failed ? NULL : db_array_finish(&p.list);
    enum status st = STATUS_INTERNAL;
    if (list) {
        const char *params[] = {list};
        PGresult *res = db_exec(c, &NOTIFY, 1, params);
        st = db_check(c, res, PGRES_TUPLES_OK);
        PQclear(res);
    }
    db_array_free(&p.list);
    return st;
}
