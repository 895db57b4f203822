/* validate: reading JSON request members with the contract's rules.
 *
 * Each *_or_reply function either succeeds or has already put the 422
 * problem (naming the field) in res; the handler then just returns. */
#ifndef WATTLINE_VALIDATE_H
#define WATTLINE_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "handler.h"

/* body must be an object whose members are all in allowed (NULL-terminated). */
bool validate_object_or_reply(const json_t *body, const char *const *allowed, struct response *res);

/* A string member. Missing: false+422 when required, else *out = NULL.
 * Strings with NUL bytes or longer than max_len bytes are 422. */
bool validate_string_or_reply(const json_t *body, const char *name, bool required, size_t max_len,
                              const char **out, struct response *res);

/* A finite number member (integer or real JSON). *present tells whether it
 * was there; missing and required is 422. */
bool validate_number_or_reply(const json_t *body, const char *name, bool required, double *out,
                              bool *present, struct response *res);

/* A positive integer id member, or JSON null when nullable (*is_null set). */
bool validate_id_or_reply(const json_t *body, const char *name, bool nullable, long long *out,
                          bool *present, bool *is_null, struct response *res);

/* Query parameter "limit": default 50, 1..1000, else 400. */
bool validate_limit_or_reply(const struct request *req, int *limit, struct response *res);

#endif
