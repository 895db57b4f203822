/* json_writer: a JSON document written straight into one growing buffer, for
 * the hot read paths (the day chart). Building a jansson tree of a hundred
 * small heap objects to print 1.5 KB costs more than the query behind it.
 *
 * Separators are implied: a key or a value that follows a complete value
 * gets its comma. Numbers print as jansson prints them (reals with 17
 * significant digits and always a '.' or an exponent), so a document reads
 * the same whichever way it was made. Out of memory, or a number JSON cannot
 * hold (NaN, an infinity), makes every later call a no-op and
 * json_writer_finish() return NULL: a document is whole and valid or none. */
#ifndef WATTLINE_JSON_WRITER_H
#define WATTLINE_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>

struct json_writer {
    char *buf; /* owned until json_writer_finish() */
    size_t len, cap;
    bool failed;
    const char *error; /* why it failed (static), NULL while it has not */
};

void json_writer_init(struct json_writer *w);
void json_writer_begin_object(struct json_writer *w);
void json_writer_end_object(struct json_writer *w);
void json_writer_begin_array(struct json_writer *w);
void json_writer_end_array(struct json_writer *w);
/* A member's name: a C string literal or any UTF-8 text. */
void json_writer_key(struct json_writer *w, const char *key);
/* s must be valid UTF-8 (validated input); quotes, backslashes and control
 * characters are escaped. */
void json_writer_string(struct json_writer *w, const char *s);
void json_writer_int(struct json_writer *w, long long v);
/* JSON has no NaN or infinity: such a v fails the document (never written
 * as "inf" or dropped). */
void json_writer_real(struct json_writer *w, double v);
void json_writer_bool(struct json_writer *w, bool v);

/* Why the document failed ("out of memory", "a number is not finite";
 * static), or NULL while it has not. Ask before json_writer_finish(). */
const char *json_writer_error(const struct json_writer *w);

/* The document (NUL-terminated, *len bytes), now the caller's to free(); NULL
 * after a failure (the buffer is then freed). */
char *json_writer_finish(struct json_writer *w, size_t *len);

#endif
