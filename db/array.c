#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void db_array_init(struct db_array *a)
{
    memset(a, 0, sizeof *a);
}

static void append(struct db_array *a, const char *s, size_t n)
{
    if (a->failed)
        return;
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        while (cap < a->len + n + 2)
            cap *= 2;
        char *text = realloc(a->text, cap);
        if (!text) {
            a->failed = true;
            return;
        }
        a->text = text;
        a->cap = cap;
    }
    memcpy(a->text + a->len, s, n);
    a->len += n;
    a->text[a->len] = '\0';
}

static void separator(struct db_array *a)
{
    append(a, a->len == 0 ? "{" : ",", 1);
}

/* A number already formatted as text: no quoting needed. */
static void add_number(struct db_array *a, const char *text, int n)
{
    separator(a);
    append(a, text, (size_t)n);
}

void db_array_add_ll(struct db_array *a, long long v)
{
    char buf[24];
    add_number(a, buf, snprintf(buf, sizeof buf, "%lld", v));
}

void db_array_add_double(struct db_array *a, double v)
{
    char buf[32];
    add_number(a, buf, snprintf(buf, sizeof buf, "%.17g", v));
}

void db_array_add_text(struct db_array *a, const char *s)
{
    separator(a);
    append(a, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            append(a, "\\", 1);
        append(a, s, 1);
    }
    append(a, "\"", 1);
}

const char *db_array_finish(struct db_array *a)
{
    if (a->len == 0)
        append(a, "{", 1);
    append(a, "}", 1);
    return a->failed ? NULL : a->text;
}

const char *db_array_of_ll(struct db_array *a, const long long *v, int n)
{
    db_array_init(a);
    for (int i = 0; i < n; i++)
        db_array_add_ll(a, v[i]);
    return db_array_finish(a);
}

enum status db_exec_ids(struct db_conn *c, const struct db_stmt *stmt, const long long *ids, int n,
                        PGresult **res)
{
    struct db_array arr;
    const char *params[] = {db_array_of_ll(&arr, ids, n)};
    *res = params[0] ? db_exec(c, stmt, 1, params) : NULL;
    db_array_free(&arr);
    return *res ? STATUS_OK : STATUS_INTERNAL;
}

void db_array_free(struct db_array *a)
{
    free(a->text);
    memset(a, 0, sizeof *a);
}

const char *db_ll(struct db_ll_text *buf, long long v)
{
    snprintf(buf->s, sizeof buf->s, "%lld", v);
    return buf->s;
}
