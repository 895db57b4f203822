#include "validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool validate_object_or_reply(const json_t *body, const char *const *allowed, struct response *res)
{
    if (!json_is_object(body)) {
        response_problem(res, 422, "invalid_body", NULL, "the body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)body, key, value)
    {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = !strcmp(*a, key);
        if (!known) {
            response_problem(res, 422, "unknown_field", key, "unknown member '%s'", key);
            return false;
        }
    }
    return true;
}

bool validate_string_or_reply(const json_t *body, const char *name, bool required, size_t max_len,
                              const char **out, struct response *res)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v) {
        if (required)
            response_problem(res, 422, "missing_field", name, "%s is required", name);
        return !required;
    }
    if (!json_is_string(v)) {
        response_problem(res, 422, "invalid_field", name, "%s must be a string", name);
        return false;
    }
    size_t len = json_string_length(v);
    if (memchr(json_string_value(v), '\0', len) || len > max_len) {
        response_problem(res, 422, "invalid_field", name,
                         "%s must be at most %zu bytes, without NUL", name, max_len);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool validate_number_or_reply(const json_t *body, const char *name, bool required, double *out,
                              bool *present, struct response *res)
{
    json_t *v = json_object_get(body, name);
    *present = v != NULL;
    if (!v) {
        if (required)
            response_problem(res, 422, "missing_field", name, "%s is required", name);
        return !required;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        response_problem(res, 422, "invalid_field", name, "%s must be a finite number", name);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

bool validate_id_or_reply(const json_t *body, const char *name, bool nullable, long long *out,
                          bool *present, bool *is_null, struct response *res)
{
    json_t *v = json_object_get(body, name);
    *present = v != NULL;
    *is_null = false;
    if (!v)
        return true;
    if (json_is_null(v) && nullable) {
        *is_null = true;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        response_problem(res, 422, "invalid_field", name, "%s must be a positive integer id%s",
                         name, nullable ? " or null" : "");
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool validate_limit_or_reply(const struct request *req, int *limit, struct response *res)
{
    const char *s = request_query(req, "limit");
    *limit = 50;
    if (!s)
        return true;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000) {
        response_problem(res, 400, "invalid_query", "limit",
                         "limit must be an integer from 1 to 1000");
        return false;
    }
    *limit = (int)v;
    return true;
}
