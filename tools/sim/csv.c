#define _POSIX_C_SOURCE 200809L

#include "csv.h"

#include "timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_FILE_BYTES (1024L * 1024 * 1024)
#define CSV_MAX_FIELD      128

enum layout { LAYOUT_UNKNOWN, LAYOUT_VALUES, LAYOUT_TS_VALUE };

/* Parsing state shared by the per-line helpers. */
struct parser {
    struct csv_data *out;
    size_t capacity;
    enum layout layout;
    size_t line_no;
    bool seen_first;
    char *err;
    size_t err_size;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Split one line (no newline) into at most `max` fields, unquoting "..." with
 * "" as an escaped quote and trimming blanks around unquoted fields. Returns
 * the field count, or -1 when the line is malformed or a field too long.
 */
static int split_fields(const char *line, size_t len, char fields[][CSV_MAX_FIELD], int max)
{
    size_t i = 0;
    int count = 0;
    for (;;) {
        if (count == max)
            return -1;
        char *field = fields[count++];
        size_t flen = 0;
        while (i < len && is_blank(line[i]))
            i++;
        if (i < len && line[i] == '"') {
            for (i++;; i++) {
                if (i >= len)
                    return -1; /* unterminated quote */
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"')
                        i++;
                    else
                        break;
                }
                if (flen + 1 >= CSV_MAX_FIELD)
                    return -1;
                field[flen++] = line[i];
            }
            i++;
            while (i < len && is_blank(line[i]))
                i++;
        } else {
            while (i < len && line[i] != ',') {
                if (flen + 1 >= CSV_MAX_FIELD)
                    return -1;
                field[flen++] = line[i++];
            }
            while (flen > 0 && is_blank(field[flen - 1]))
                flen--;
        }
        field[flen] = '\0';
        if (i >= len)
            return count;
        if (line[i] != ',')
            return -1; /* text after a closing quote */
        i++;
    }
}

/*
 * A plain decimal number: strtod alone would also take "inf", "nan" and hex
 * floats, none of which a meter writes.
 */
static bool parse_value(const char *text, double *out)
{
    if (*text == '\0' || strspn(text, "0123456789.eE+-") != strlen(text))
        return false;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

static int grow(struct parser *ps)
{
    if (ps->out->count < ps->capacity)
        return 0;
    size_t cap = ps->capacity ? ps->capacity * 2 : 1024;
    double *values = realloc(ps->out->values, cap * sizeof *values);
    if (values == NULL)
        return -1;
    ps->out->values = values;
    if (ps->layout == LAYOUT_TS_VALUE) {
        int64_t *ts = realloc(ps->out->ts_us, cap * sizeof *ts);
        if (ts == NULL)
            return -1;
        ps->out->ts_us = ts;
    }
    ps->capacity = cap;
    return 0;
}

static int fail(struct parser *ps, const char *what)
{
    snprintf(ps->err, ps->err_size, "line %zu: %s", ps->line_no, what);
    return -1;
}

/* Parse the fields of one data line into a reading; false if they are not data. */
static bool parse_reading(enum layout layout, char fields[][CSV_MAX_FIELD], double *value,
                          int64_t *ts)
{
    if (layout == LAYOUT_VALUES)
        return parse_value(fields[0], value);
    return time_parse_rfc3339(fields[0], ts) == 0 && parse_value(fields[1], value);
}

static int parse_line(struct parser *ps, const char *line, size_t len)
{
    char fields[3][CSV_MAX_FIELD];
    int n = split_fields(line, len, fields, 3);
    if (n < 1 || n > 2)
        return fail(ps, "expected one value or \"ts,value\"");
    enum layout layout = n == 1 ? LAYOUT_VALUES : LAYOUT_TS_VALUE;
    bool first = !ps->seen_first;
    ps->seen_first = true;
    if (ps->layout == LAYOUT_UNKNOWN)
        ps->layout = layout;
    else if (ps->layout != layout)
        return fail(ps, "number of columns differs from the first line");
    double value = 0;
    int64_t ts = 0;
    if (!parse_reading(layout, fields, &value, &ts)) {
        if (first)
            return 0; /* a header line */
        return fail(ps, layout == LAYOUT_VALUES
                            ? "not a number >= 0"
                            : "expected an RFC 3339 timestamp and a number >= 0");
    }
    if (grow(ps) != 0)
        return fail(ps, "out of memory");
    struct csv_data *out = ps->out;
    if (layout == LAYOUT_TS_VALUE) {
        if (out->count > 0 && ts <= out->ts_us[out->count - 1])
            return fail(ps, "timestamps must increase from line to line");
        out->ts_us[out->count] = ts;
    }
    out->values[out->count++] = value;
    return 0;
}

static bool skippable(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (is_blank(line[i]) || line[i] == '\r'))
        i++;
    return i == len || line[i] == '#';
}

int csv_parse(const char *text, size_t len, struct csv_data *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    struct parser ps = {.out = out, .err = err, .err_size = err_size};
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl != NULL);
        ps.line_no++;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (skippable(line, line_len))
            continue;
        if (memchr(line, '\0', line_len) != NULL) {
            fail(&ps, "NUL byte");
            goto error;
        }
        if (parse_line(&ps, line, line_len) != 0)
            goto error;
    }
    if (out->count == 0) {
        snprintf(err, err_size, "no readings");
        goto error;
    }
    return 0;
error:
    csv_data_free(out);
    return -1;
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "%s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 65536;
            char *bigger = cap <= (size_t)CSV_MAX_FILE_BYTES ? realloc(buf, cap) : NULL;
            if (bigger == NULL) {
                snprintf(err, err_size, "file too large or out of memory");
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        size_t n = fread(buf + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, err_size, "read error");
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

int csv_load(const char *path, struct csv_data *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = read_file(path, &len, err, err_size);
    if (text == NULL)
        return -1;
    int rc = csv_parse(text, len, out, err, err_size);
    free(text);
    return rc;
}

void csv_data_free(struct csv_data *data)
{
    free(data->values);
    free(data->ts_us);
    memset(data, 0, sizeof *data);
}
