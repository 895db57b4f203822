/* form: application/x-www-form-urlencoded bodies (what RabbitMQ's HTTP auth
 * backend posts), decoded into a JSON object of strings so that handlers
 * read them as they read a JSON body. Pure: no I/O, nothing global. */
#ifndef WATTLINE_FORM_H
#define WATTLINE_FORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Fields one body may hold: RabbitMQ sends fewer than 20; the cap keeps the
 * memory a 64 KiB body costs in proportion to what it is for. */
#define FORM_MAX_FIELDS 256

/* Percent-decodes s[0..len) into out (room for len + 1 bytes; it is
 * NUL-terminated) and sets *out_len. '+' is a space when plus_is_space (form
 * bodies), a plus otherwise (URL paths). False on a '%' not followed by two
 * hex digits, or a decoded NUL (it would cut the string short). */
bool form_unescape(const char *s, size_t len, bool plus_is_space, char *out, size_t *out_len);

/* Decodes a body (len bytes, not terminated): name=value pairs joined by
 * '&', both percent-encoded with '+' for space; empty pairs are skipped, a
 * pair without '=' has the empty value. Returns a new object (the caller
 * decrefs it), or NULL with *why set (a static string) when the body is
 * malformed: a bad escape, a decoded NUL, text that is not UTF-8, a name
 * given twice (which one would count is anyone's guess), more than
 * FORM_MAX_FIELDS fields, or no memory. */
json_t *form_decode(const char *body, size_t len, const char **why);

#endif
