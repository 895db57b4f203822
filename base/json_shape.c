#include "json_shape.h"

#include <stdbool.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* Commas count values: every value after the first in an array or object
 * follows one. */
const char *json_shape_problem(const char *s, size_t len)
{
    int depth = 0;
    size_t containers = 0, commas = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            containers++;
            if (++depth > JSON_SHAPE_MAX_DEPTH)
                return "JSON nested deeper than " STRINGIFY(JSON_SHAPE_MAX_DEPTH) " levels";
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',') {
            commas++;
        }
    }
    if (containers > JSON_SHAPE_SLACK + len / JSON_SHAPE_BYTES_PER_CONTAINER ||
        containers + commas > JSON_SHAPE_SLACK + len / JSON_SHAPE_BYTES_PER_VALUE)
        return "JSON with more values than one per " STRINGIFY(
            JSON_SHAPE_BYTES_PER_VALUE) " bytes, or arrays and objects than one per " STRINGIFY(JSON_SHAPE_BYTES_PER_CONTAINER) " bytes";
    return NULL;
}
