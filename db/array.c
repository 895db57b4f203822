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

void db_array_add_ll(struct db_array *a, long long v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    separator(a);
    append(a, buf, (size_t)n);
}

void db_array_add_double(struct db_array *a, double v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    separator(a);
    append(a, buf, (size_t)n);
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
