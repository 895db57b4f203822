#include "log.h"

#include "json_writer.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    enum log_level level;
    enum log_format format;
} settings = {LOG_INFO, LOG_FORMAT_TEXT};

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format)
{
    settings.level = level;
    settings.format = format;
}

static void timestamp(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* One write(2) per line, so lines from several threads never interleave. */
static void emit(const char *line, size_t len)
{
    while (len) {
        ssize_t n = write(STDOUT_FILENO, line, len);
        if (n <= 0)
            return;
        line += n, len -= (size_t)n;
    }
}

static void emit_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s) {
        size_t len = strlen(s);
        char *line = realloc(s, len + 2);
        if (line) {
            line[len] = '\n';
            emit(line, len + 1);
            s = line;
        }
        free(s);
    }
    json_decref(obj);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (level < settings.level)
        return;
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    if (settings.format == LOG_FORMAT_JSON) {
        emit_json(json_pack("{s:s, s:s, s:s}", "ts", ts, "level", LEVEL_NAMES[level], "msg", msg));
        return;
    }
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %-5s %s\n", ts, LEVEL_NAMES[level], msg);
    emit(line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
}

void log_request(const struct log_request *r)
{
    if (settings.level > LOG_INFO)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    if (settings.format == LOG_FORMAT_JSON) {
        /* Once per request: written straight, not through a jansson tree. */
        struct json_writer w;
        json_writer_init(&w);
        json_writer_begin_object(&w);
        json_writer_key(&w, "ts");
        json_writer_string(&w, ts);
        json_writer_key(&w, "level");
        json_writer_string(&w, "info");
        json_writer_key(&w, "method");
        json_writer_string(&w, r->method);
        json_writer_key(&w, "route");
        json_writer_string(&w, r->route);
        json_writer_key(&w, "status");
        json_writer_int(&w, r->status);
        json_writer_key(&w, "duration_ms");
        json_writer_real(&w, r->duration_ms);
        json_writer_key(&w, "request_id");
        json_writer_string(&w, r->request_id);
        json_writer_key(&w, "client");
        json_writer_string(&w, r->client_ip);
        json_writer_end_object(&w);
        size_t len;
        char *doc = json_writer_finish(&w, &len);
        char *line = doc ? realloc(doc, len + 1) : NULL; /* room for the newline */
        if (line) {
            line[len] = '\n';
            emit(line, len + 1);
        }
        free(line ? line : doc);
        return;
    }
    char line[600];
    int n = snprintf(line, sizeof line, "%s info  %s %s %d %.2fms id=%s client=%s\n", ts, r->method,
                     r->route, r->status, r->duration_ms, r->request_id, r->client_ip);
    emit(line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
}
