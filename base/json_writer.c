#include "json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 2048

void json_writer_init(struct json_writer *w)
{
    *w = (struct json_writer){0};
}

static void fail(struct json_writer *w, const char *why)
{
    if (!w->failed)
        w->error = why;
    w->failed = true;
}

static bool reserve(struct json_writer *w, size_t more)
{
    if (w->failed)
        return false;
    if (w->len + more + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : INITIAL_CAP;
    while (cap < w->len + more + 1)
        cap *= 2;
    char *buf = realloc(w->buf, cap);
    if (!buf) {
        fail(w, "out of memory");
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

static void put(struct json_writer *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* A value or key after a complete value needs a comma first. */
static void separate(struct json_writer *w)
{
    if (w->len > 0 && !strchr("{[:", w->buf[w->len - 1]))
        put(w, ",", 1);
}

void json_writer_begin_object(struct json_writer *w)
{
    separate(w);
    put(w, "{", 1);
}

void json_writer_end_object(struct json_writer *w)
{
    put(w, "}", 1);
}

void json_writer_begin_array(struct json_writer *w)
{
    separate(w);
    put(w, "[", 1);
}

void json_writer_end_array(struct json_writer *w)
{
    put(w, "]", 1);
}

static void put_quoted(struct json_writer *w, const char *s)
{
    put(w, "\"", 1);
    const char *run = s; /* the bytes since the last escape, copied in one go */
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(w, run, (size_t)(p - run));
        static const char SHORT[] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                     ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
        char esc[8];
        if (ch < sizeof SHORT && SHORT[ch])
            snprintf(esc, sizeof esc, "\\%c", SHORT[ch]);
        else
            snprintf(esc, sizeof esc, "\\u%04X", ch);
        put(w, esc, strlen(esc));
        run = p + 1;
    }
    put(w, run, strlen(run));
    put(w, "\"", 1);
}

void json_writer_key(struct json_writer *w, const char *key)
{
    separate(w);
    put_quoted(w, key);
    put(w, ":", 1);
}

void json_writer_string(struct json_writer *w, const char *s)
{
    separate(w);
    put_quoted(w, s);
}

void json_writer_int(struct json_writer *w, long long v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", v);
    separate(w);
    put(w, text, (size_t)n);
}

void json_writer_real(struct json_writer *w, double v)
{
    if (!isfinite(v)) {
        fail(w, "a number is not finite");
        return;
    }
    char text[32];
    snprintf(text, sizeof text, "%.17g", v);
    /* Like jansson: a real always looks like one ("2.0", not "2"), and an
     * exponent has no '+' and no leading zeros ("1e21", "1e-5"). */
    char *e = strchr(text, 'e');
    if (!e && !strchr(text, '.'))
        strcat(text, ".0");
    if (e) {
        char *digits = e + 1 + (e[1] == '-' || e[1] == '+');
        char *keep = e + 1 + (e[1] == '-');
        while (*digits == '0' && digits[1])
            digits++;
        memmove(keep, digits, strlen(digits) + 1);
    }
    separate(w);
    put(w, text, strlen(text));
}

void json_writer_bool(struct json_writer *w, bool v)
{
    separate(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

const char *json_writer_error(const struct json_writer *w)
{
    return w->failed ? w->error : NULL;
}

char *json_writer_finish(struct json_writer *w, size_t *len)
{
    if (!w->buf)
        put(w, "", 0); /* nothing written: an empty string, not a failure */
    char *doc = w->failed ? NULL : w->buf;
    if (!doc)
        free(w->buf);
    *len = doc ? w->len : 0;
    *w = (struct json_writer){0};
    return doc;
}
