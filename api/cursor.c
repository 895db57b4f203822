#include "cursor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/base64.h"

/* The plain text: the prefix and at most 20 characters of a long long. */
#define PLAIN_MAX 24

void cursor_encode(const char *kind, long long value, char out[CURSOR_MAX])
{
    char plain[PLAIN_MAX];
    int n = snprintf(plain, sizeof plain, "%s%lld", kind, value);
    base64_encode((const unsigned char *)plain, (size_t)n, BASE64_URL, out);
}

bool cursor_decode(const char *cursor, const char *kind, long long *value)
{
    unsigned char plain[PLAIN_MAX];
    size_t len = cursor ? strlen(cursor) : CURSOR_MAX, n, kind_len = strlen(kind);
    if (len >= CURSOR_MAX || !base64_decode(cursor, len, BASE64_URL, plain, sizeof plain - 1, &n) ||
        n <= kind_len || memchr(plain, '\0', n) || memcmp(plain, kind, kind_len) != 0)
        return false;
    plain[n] = '\0';
    errno = 0;
    char *end;
    long long v = strtoll((const char *)plain + kind_len, &end, 10);
    if (errno || *end)
        return false;
    /* Only the canonical spelling: no "+", spaces or leading zeros. */
    char again[CURSOR_MAX];
    cursor_encode(kind, v, again);
    if (strcmp(again, cursor) != 0)
        return false;
    *value = v;
    return true;
}

json_t *cursor_page(json_t *items, const char *kind, const long long *last)
{
    json_t *next = json_null();
    if (last) {
        char cursor[CURSOR_MAX];
        cursor_encode(kind, *last, cursor);
        next = json_string(cursor);
    }
    return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}
