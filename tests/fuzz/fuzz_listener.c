/* fuzz_listener: db/listener's NOTIFY payload parser.
 *
 * Properties (abort on violation):
 *  - a refused payload leaves *out empty (no arrays, no counts);
 *  - an accepted payload is a JSON object, and every id handed over is a
 *    positive integer equal to the member's element, in order, with counts
 *    that match the arrays (checked against jansson's own reading).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../db/listener.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_listener: %s\n", what);
        abort();
    }
}

/* The member name of a list, as the sender writes it, against what was parsed. */
static void check_list(const json_t *root, const char *name, const long long *ids, int n)
{
    const json_t *arr = json_object_get(root, name);
    check(n >= 0, "negative count");
    check((n == 0) == (ids == NULL), "count and array disagree");
    check((size_t)n == (arr ? json_array_size(arr) : 0), "count is not the member's length");
    for (int i = 0; i < n; i++) {
        check(ids[i] > 0, "an id that is not positive");
        check(json_integer_value(json_array_get(arr, (size_t)i)) == ids[i], "an id changed");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* NOTIFY payloads are under 8000 bytes in PostgreSQL. */
    if (size > 8000)
        return 0;
    char *payload = malloc(size + 1);
    if (!payload)
        return 0;
    memcpy(payload, data, size);
    payload[size] = '\0';

    struct listener_events ev;
    memset(&ev, 0xA5, sizeof ev); /* the parser must set every field */
    if (!listener_parse_payload(payload, &ev)) {
        check(!ev.alerts && !ev.usage && !ev.devices_changed && !ev.users_changed,
              "a refused payload left arrays");
        check(!ev.nalerts && !ev.nusage && !ev.ndevices_changed && !ev.nusers_changed,
              "a refused payload left counts");
        free(payload);
        return 0;
    }
    json_t *root = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    check(json_is_object(root), "accepted something that is not a JSON object");
    check_list(root, "alerts", ev.alerts, ev.nalerts);
    check_list(root, "usage", ev.usage, ev.nusage);
    check_list(root, "devices_changed", ev.devices_changed, ev.ndevices_changed);
    check_list(root, "users_changed", ev.users_changed, ev.nusers_changed);
    json_decref(root);
    listener_events_free(&ev);
    free(payload);
    return 0;
}
