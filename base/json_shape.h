/* json_shape: what may be handed to jansson. jansson has no depth or size
 * option: a linear pre-scan keeps hostile nesting out, and documents whose
 * parse would cost memory out of proportion to their size (thousands of
 * empty arrays). Used for HTTP bodies and broker messages alike. */
#ifndef WATTLINE_JSON_SHAPE_H
#define WATTLINE_JSON_SHAPE_H

#include <stddef.h>

#define JSON_SHAPE_MAX_DEPTH 32
/* jansson spends ~100 bytes on a value and more on an array or object: a
 * document may hold at most one value per JSON_SHAPE_BYTES_PER_VALUE bytes and
 * one array or object per JSON_SHAPE_BYTES_PER_CONTAINER (plus a few), so
 * that parsing costs memory in proportion to the text (a 64 KiB body of
 * empty arrays would otherwise cost ~3 MB). Real documents are far below. */
#define JSON_SHAPE_BYTES_PER_VALUE     4
#define JSON_SHAPE_BYTES_PER_CONTAINER 16
#define JSON_SHAPE_SLACK               64

/* NULL when s (len bytes, not necessarily valid JSON) may be parsed; else
 * why not, as a static message. */
const char *json_shape_problem(const char *s, size_t len);

#endif
