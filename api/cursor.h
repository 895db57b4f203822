/* cursor: the opaque cursors of paged lists. A cursor is base64url (no
 * padding, base/base64.h) of a kind prefix followed by a decimal number (the
 * last id or timestamp of the page); a prefix per list makes a cursor from
 * one list fail in another. Decoding is strict: only the exact text that
 * cursor_encode() gives for some number is accepted. */
#ifndef WATTLINE_CURSOR_H
#define WATTLINE_CURSOR_H

#include <jansson.h>
#include <stdbool.h>

/* Room for any cursor with a prefix of up to 3 bytes, and its NUL. */
#define CURSOR_MAX 32

/* kind is the list's prefix ("" for none, at most 3 bytes). */
void cursor_encode(const char *kind, long long value, char out[CURSOR_MAX]);

/* False for NULL and for anything cursor_encode(kind, ...) never gives. */
bool cursor_decode(const char *cursor, const char *kind, long long *value);

/* A page of a list: {"items": items, "next_cursor": the cursor of *last,
 * or null when last is NULL (no next page)}. Takes items; NULL when out of
 * memory. */
json_t *cursor_page(json_t *items, const char *kind, const long long *last);

#endif
