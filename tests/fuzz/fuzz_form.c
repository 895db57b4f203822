/* fuzz_form: base/form's decoder of application/x-www-form-urlencoded
 * bodies (what RabbitMQ's HTTP auth backend posts to the /api/v1/broker/auth/ routes).
 *
 * Properties (abort on violation):
 *  - a refused body gives NULL and a reason; an accepted one an object of at
 *    most FORM_MAX_FIELDS members, every name and value text without NUL
 *    (jansson has checked the UTF-8);
 *  - encoding the object again (every byte but unreserved ones escaped) and
 *    decoding that gives the same object: nothing is lost or invented;
 *  - form_unescape never writes more bytes than it reads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../base/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_form: %s\n", what);
        abort();
    }
}

/* Appends s, escaped, to out (room for 3 bytes per byte of s). */
static size_t escape(const char *s, char *out)
{
    static const char HEX[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = HEX[*p >> 4];
            out[n++] = HEX[*p & 15];
        }
    }
    return n;
}

static void check_round_trip(const json_t *obj, size_t size)
{
    /* Decoded text is never longer than the body: 3 bytes per byte and a
     * separator per field bound the encoding. */
    char *text = malloc(3 * size + FORM_MAX_FIELDS * 2 + 1);
    check(text != NULL, "out of memory");
    size_t n = 0;
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)obj, name, value)
    {
        const char *v = json_string_value(value);
        check(v != NULL, "a value that is not a string");
        check(strlen(v) == json_string_length(value), "a value with a NUL");
        if (n)
            text[n++] = '&';
        n += escape(name, text + n);
        text[n++] = '=';
        n += escape(v, text + n);
    }
    const char *why = NULL;
    json_t *again = form_decode(text, n, &why);
    check(again != NULL, "its own encoding is refused");
    check(json_equal(obj, again), "decode -> encode -> decode changed the form");
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    const char *why = NULL;
    json_t *obj = form_decode(body, size, &why);
    if (!obj) {
        check(why != NULL, "refused without a reason");
    } else {
        check(why == NULL, "accepted with a reason");
        check(json_is_object(obj), "not an object");
        check(json_object_size(obj) <= FORM_MAX_FIELDS, "more fields than the cap");
        check_round_trip(obj, size);
        json_decref(obj);
    }
    char *out = malloc(size + 1);
    check(out != NULL, "out of memory");
    size_t n = 0;
    if (form_unescape(body, size, size % 2 == 0, out, &n))
        check(n <= size && out[n] == '\0' && strlen(out) == n, "unescape grew or lost its end");
    free(out);
    return 0;
}
