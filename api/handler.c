#include "handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    int http;
    const char *code;
    const char *detail;
} STATUS_TABLE[] = {
    [STATUS_OK] = {200, NULL, NULL},
    [STATUS_NOT_FOUND] = {404, "not_found", "no such resource"},
    [STATUS_CONFLICT] = {409, "conflict", "the request conflicts with the current state"},
    [STATUS_INVALID] = {422, "invalid_field", "invalid value"},
    [STATUS_FORBIDDEN] = {403, "forbidden", "not allowed"},
    [STATUS_UNAUTHORIZED] = {401, "unauthorized", "missing or invalid credentials"},
    [STATUS_UNAVAILABLE] = {503, "unavailable", "the database is unavailable; retry shortly"},
    [STATUS_INTERNAL] = {500, "internal", "internal error"},
};

int status_http(enum status st)
{
    return STATUS_TABLE[st].http;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Server Error" : "Error";
    }
}

/* Forgets the body set so far: a response has one, JSON or raw. */
static void drop_body(struct response *res)
{
    json_decref(res->json);
    res->json = NULL;
    res->problem = false;
    free(res->raw);
    res->raw = NULL;
    res->raw_len = 0;
}

int response_json(struct response *res, int status, json_t *body)
{
    drop_body(res);
    res->json = body;
    res->status = status;
    return status;
}

int response_body(struct response *res, int status, const char *content_type, char *body,
                  size_t len)
{
    if (!body)
        return response_status(res, STATUS_INTERNAL);
    drop_body(res);
    res->raw = body;
    res->raw_len = len;
    res->content_type = content_type;
    res->status = status;
    return status;
}

void deferred_resume(struct deferred *d)
{
    d->resume(d->ctx);
}

void response_header(struct response *res, const char *name, const char *value)
{
    if (res->nheaders == RESPONSE_MAX_HEADERS)
        return; /* a programming error caught by tests; never user-driven */
    res->headers[res->nheaders].name = strdup(name);
    res->headers[res->nheaders].value = strdup(value);
    res->nheaders++;
}

/* The length of the valid UTF-8 sequence at p (as jansson checks it: no
 * overlong forms, surrogates or code points past U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *p)
{
    unsigned c = p[0], cp;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Replaces each byte that starts no valid UTF-8 sequence with '?'. A detail
 * may quote what the client sent (jansson's error text does, and a field
 * name cut to fit its buffer may end inside a character); jansson refuses
 * invalid UTF-8, which would leave the problem without its document. */
static void utf8_repair(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = utf8_sequence(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

int response_problem(struct response *res, int status, const char *code, const char *field,
                     const char *detail_fmt, ...)
{
    char detail[512], field_text[256];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    utf8_repair(detail);

    json_t *doc =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                  reason_phrase(status), "status", status, "detail", detail, "code", code);
    if (doc && field) {
        snprintf(field_text, sizeof field_text, "%s", field);
        utf8_repair(field_text);
        json_object_set_new(doc, "field", json_string(field_text));
    }
    response_json(res, status, doc);
    res->problem = true;
    if (status == 401)
        response_header(res, "WWW-Authenticate", "Bearer");
    if (status == 503)
        response_header(res, "Retry-After", "1");
    return status;
}

int response_status(struct response *res, enum status st)
{
    if (st == STATUS_OK)
        return response_json(res, 200, json_object());
    return response_problem(res, STATUS_TABLE[st].http, STATUS_TABLE[st].code, NULL, "%s",
                            STATUS_TABLE[st].detail);
}

void response_clear(struct response *res)
{
    json_decref(res->json);
    free(res->raw);
    if (res->stream.free)
        res->stream.free(res->stream.ctx);
    if (res->has_file)
        close(res->file_fd);
    if (res->deferral.free)
        res->deferral.free(res->deferral.ctx);
    for (int i = 0; i < res->nheaders; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    memset(res, 0, sizeof *res);
}

void format_double_exact(double v, char *out, size_t size)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

const char *request_query(const struct request *req, const char *name)
{
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

bool request_param_id(const struct request *req, int i, long long *id)
{
    if (i >= req->nparams || !req->params[i])
        return false;
    const char *s = req->params[i];
    if (*s < '1' || *s > '9' || strlen(s) > 18)
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return false;
    *id = v;
    return true;
}
