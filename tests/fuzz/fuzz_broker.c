/* fuzz_broker: broker/message's reading of any message body a publisher (or
 * an MQTT device) can send, with and without an MQTT topic.
 *
 * The first byte chooses the topic (none, an id's, a serial's, a bad one);
 * the rest is the body. Properties (abort on violation):
 *  - a parse that succeeds names at least one device, every name valid (an
 *    id > 0 or a serial device_serial_valid() accepts), and a topic's name
 *    first;
 *  - a parse that fails says why;
 *  - for either reading type, readings are STATUS_OK with 1..INGEST_BATCH_MAX
 *    readings, every one passing ingest_check() for that type, or
 *    STATUS_INVALID with a reason and no readings.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/device_name.h"
#include "../../broker/message.h"
#include "../../ingest/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1795000000000000LL
#define AGE (1100 * INGEST_DAY_US)

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_broker: %s\n", what);
        abort();
    }
}

static void check_name(const struct broker_name *n)
{
    check(n->id > 0 ? n->serial[0] == '\0' : device_serial_valid(n->serial),
          "a name that is neither an id nor a valid serial");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const topics[] = {NULL, "devices.7.measurements",
                                         "devices.MTR-1.measurements", "devices.7.commands"};
    if (size == 0)
        return 0;
    const char *topic = topics[data[0] % 4];
    struct broker_message m;
    char why[256] = "";
    bool ok = broker_message_parse((const char *)data + 1, size - 1, topic, &m, why, sizeof why);
    if (!ok) {
        check(why[0] != '\0', "refused without a reason");
        broker_message_free(&m);
        return 0;
    }
    check(topic != NULL || m.nnames >= 1, "accepted without naming a device");
    check(m.nnames >= 1 && m.nnames <= 3, "the number of names");
    for (int i = 0; i < m.nnames; i++)
        check_name(&m.names[i]);
    if (topic)
        check(m.names[0].id == 7 || !strcmp(m.names[0].serial, "MTR-1"), "the topic's name first");
    for (int t = 0; t < 2; t++) {
        enum reading_type type = (enum reading_type)t;
        struct ingest_reading *r = NULL;
        int n = -1;
        why[0] = '\0';
        enum status st = broker_message_readings(&m, type, NOW, AGE, &r, &n, why, sizeof why);
        if (st == STATUS_OK) {
            check(r && n >= 1 && n <= INGEST_BATCH_MAX, "readings out of bounds");
            for (int i = 0; i < n; i++)
                check(ingest_check(&r[i], type, NOW, AGE) == INGEST_CHECK_OK,
                      "a reading that breaks a rule");
        } else {
            check(st == STATUS_INVALID && !r && n == 0 && why[0], "a refusal without a reason");
        }
        free(r);
    }
    broker_message_free(&m);
    return 0;
}
