/* audit: the append-only audit log (migrations/0011_audit.sql).
 *
 * An entry is written inside the transaction of the change it records, so a
 * change that rolls back leaves none and one that commits always has one.
 * The serving role may only INSERT and SELECT the table. */
#ifndef WATTLINE_DB_AUDIT_H
#define WATTLINE_DB_AUDIT_H

#include "db.h"

/* Who made a change, from where, and what it set: what a handler knows and
 * the db_ call that makes the change does not. All borrowed. */
struct audit_ctx {
    long long actor_id;      /* 0: none (a failed login, the command line) */
    const char *client_addr; /* a bare IP address, or NULL when unknown */
    const char *request_id;  /* or NULL */
    const char *changes;     /* a JSON object's text (never a secret), or NULL for {} */
};

/* One entry: the context and what the change was. */
struct audit_entry {
    const struct audit_ctx *ctx; /* NULL: no actor, address, request or changes */
    const char *action;          /* one of the contract's, e.g. "user.create" */
    const char *target_type;     /* "user", "device" or "command" */
    long long target_id;         /* 0: none */
};

/* Appends the entry inside the caller's open transaction. */
enum status db_audit_add_in_tx(struct db_conn *conn, const struct audit_entry *e);

/* Appends the entry in a transaction of its own (a change with nothing else
 * to commit: a failed login). */
enum status db_audit_add(struct db_conn *conn, const struct audit_entry *e);

#define AUDIT_ACTION_MAX  24
#define AUDIT_TYPE_MAX    8
#define AUDIT_ADDR_MAX    64
#define AUDIT_REQUEST_MAX 128

struct audit_row {
    long long id;
    long long at;       /* microseconds since the epoch */
    long long actor_id; /* 0: null */
    char action[AUDIT_ACTION_MAX];
    char target_type[AUDIT_TYPE_MAX];
    long long target_id;                /* 0: null */
    char *changes;                      /* JSON object text, owned by the list */
    char client_addr[AUDIT_ADDR_MAX];   /* "": null */
    char request_id[AUDIT_REQUEST_MAX]; /* "": null */
};

struct audit_list {
    struct audit_row *items;
    int count;
};

/* Frees what db_audit_list() filled; a zeroed list is a no-op. */
void audit_list_free(struct audit_list *list);

/* Filters: 0, NULL or an empty bound is off. */
struct audit_query {
    long long actor_id;
    const char *action;
    const char *target_type;
    long long target_id;
    long long from;      /* at >= from, microseconds; 0: no bound */
    long long to;        /* at < to, microseconds; 0: no bound */
    long long before_id; /* the cursor: ids below it; 0: from the newest */
    int limit;
};

/* Up to q->limit entries matching q, newest (highest id) first. */
enum status db_audit_list(struct db_conn *conn, const struct audit_query *q,
                          struct audit_list *out);

#endif
