#define _POSIX_C_SOURCE 200809L

#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICES_MAX_FILE (16 * 1024 * 1024)

bool devices_token_valid(const char *token)
{
    if (*token == '\0' || strlen(token) > 4000)
        return false;
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static bool name_valid(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len < DEVICES_NAME_MAX && name[0] != '.' &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* Split `line` in place into at most `max` blank-separated words. */
static int split_words(char *line, char **words, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(line, " \t\r", &save); w != NULL; w = strtok_r(NULL, " \t\r", &save)) {
        if (n == max)
            return -1;
        words[n++] = w;
    }
    return n;
}

static int check_unique(const struct device_spec *list, size_t count, char *err, size_t err_size,
                        size_t line_no)
{
    const struct device_spec *last = &list[count - 1];
    for (size_t i = 0; i + 1 < count; i++) {
        const char *what = strcmp(list[i].token, last->token) == 0 ? "token"
                           : strcmp(list[i].name, last->name) == 0 ? "name"
                                                                   : NULL;
        if (what != NULL) {
            snprintf(err, err_size, "line %zu: the same %s as device %s", line_no, what,
                     list[i].name);
            return -1;
        }
    }
    return 0;
}

static int add_device(struct device_spec **list, size_t *count, char **words, int n, size_t line_no,
                      char *err, size_t err_size)
{
    if (n < 2 || n > 3) {
        snprintf(err, err_size, "line %zu: expected \"TOKEN SOURCE [NAME]\"", line_no);
        return -1;
    }
    if (!devices_token_valid(words[0])) {
        snprintf(err, err_size, "line %zu: the token has invalid characters", line_no);
        return -1;
    }
    char name[DEVICES_NAME_MAX];
    snprintf(name, sizeof name, "device-%zu", *count + 1);
    if (n == 3 && !name_valid(words[2])) {
        snprintf(err, err_size,
                 "line %zu: a name is 1-63 of A-Z a-z 0-9 . _ - (not starting with .)", line_no);
        return -1;
    }
    struct device_spec *bigger = realloc(*list, (*count + 1) * sizeof **list);
    if (bigger == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    *list = bigger;
    struct device_spec *d = &bigger[*count];
    d->token = strdup(words[0]);
    d->source = strdup(words[1]);
    snprintf(d->name, sizeof d->name, "%s", n == 3 ? words[2] : name);
    (*count)++;
    if (d->token == NULL || d->source == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return check_unique(*list, *count, err, err_size, line_no);
}

int devices_parse(const char *text, struct device_spec **out, size_t *count, char *err,
                  size_t err_size)
{
    *out = NULL;
    *count = 0;
    char *copy = strdup(text);
    if (copy == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    size_t line_no = 0;
    int rc = 0;
    /* strtok_r on "\n" skips empty lines, so count lines by hand. */
    for (char *line = copy, *next; line != NULL && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        line_no++;
        char *words[4];
        int n = split_words(line, words, 4);
        if (n == 0 || words[0][0] == '#')
            continue;
        if (n < 0) {
            snprintf(err, err_size, "line %zu: expected \"TOKEN SOURCE [NAME]\"", line_no);
            rc = -1;
        } else {
            rc = add_device(out, count, words, n, line_no, err, err_size);
        }
    }
    free(copy);
    if (rc == 0 && *count == 0) {
        snprintf(err, err_size, "no devices");
        rc = -1;
    }
    if (rc != 0) {
        devices_free(*out, *count);
        *out = NULL;
        *count = 0;
    }
    return rc;
}

int devices_load(const char *path, struct device_spec **out, size_t *count, char *err,
                 size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(DEVICES_MAX_FILE + 1);
    size_t len = text ? fread(text, 1, DEVICES_MAX_FILE + 1, f) : 0;
    bool bad = text == NULL || ferror(f) || len > DEVICES_MAX_FILE;
    fclose(f);
    if (bad) {
        snprintf(err, err_size, "%s: unreadable or larger than 16 MiB", path);
        free(text);
        return -1;
    }
    text[len] = '\0';
    char why[256];
    int rc = devices_parse(text, out, count, why, sizeof why);
    if (rc != 0)
        snprintf(err, err_size, "%s: %s", path, why);
    free(text);
    return rc;
}

void devices_free(struct device_spec *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(list[i].token);
        free(list[i].source);
    }
    free(list);
}
