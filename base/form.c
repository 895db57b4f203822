#include "form.h"

#include <stdlib.h>
#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool form_unescape(const char *s, size_t len, bool plus_is_space, char *out, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0')
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return true;
}

/* Decodes one "name=value" pair (no '&' inside) into obj, using buf (room
 * for len + 1 bytes) for each half in turn. */
static const char *decode_pair(const char *pair, size_t len, char *buf, json_t *obj)
{
    const char *eq = memchr(pair, '=', len);
    size_t name_len = eq ? (size_t)(eq - pair) : len;
    size_t decoded;
    if (!form_unescape(pair, name_len, true, buf, &decoded))
        return "a name with a bad %-escape";
    /* The object copies its key; the value is decoded into buf afterwards. */
    char *name = strdup(buf);
    if (!name)
        return "out of memory";
    const char *why = NULL;
    const char *value = eq ? eq + 1 : pair + len;
    size_t value_len = (size_t)(pair + len - value);
    json_t *v = NULL;
    if (json_object_get(obj, name))
        why = "a name given twice";
    else if (!form_unescape(value, value_len, true, buf, &decoded))
        why = "a value with a bad %-escape";
    else if (!(v = json_stringn(buf, decoded)))
        why = "a value that is not UTF-8";
    else if (json_object_set_new(obj, name, v) != 0) /* takes v, even on failure */
        why = "a name that is not UTF-8";
    free(name);
    return why;
}

json_t *form_decode(const char *body, size_t len, const char **why)
{
    *why = NULL;
    json_t *obj = json_object();
    char *buf = malloc(len + 1);
    if (!obj || !buf) {
        *why = "out of memory";
        goto out;
    }
    size_t fields = 0;
    for (size_t start = 0; start < len && !*why;) {
        const char *amp = memchr(body + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > start) { /* "a=1&&b=2" and a trailing '&' hold empty pairs */
            if (++fields > FORM_MAX_FIELDS)
                *why = "more fields than a form here may have";
            else
                *why = decode_pair(body + start, end - start, buf, obj);
        }
        start = end + 1;
    }
out:
    free(buf);
    if (*why) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
