/* commands: commands to MQTT devices and their answers, on the consumer
 * thread (rabbitmq-c connections belong to one thread).
 *
 * Delivery. A device that speaks MQTT subscribes to devices/<it>/commands,
 * which RabbitMQ's MQTT plugin binds to amq.topic as devices.<it>.commands
 * (<it> its id or its serial, whichever it logged in with). Wattline does
 * not know which devices listen there, so it asks RabbitMQ: each deliverable
 * command is published as {"type":"command","command":{...}} to both names,
 * persistent and `mandatory`, with publisher confirms. Only when a publish
 * was routed (a subscription took it) are the device's commands claimed
 * (db_commands_claim(): sent, attempts + 1, locked for COMMAND_LOCK_S), the
 * same transition the long-poll and the WebSocket make; a device nobody
 * subscribes for keeps its commands queued for those. A publish may thus
 * reach a device just before another transport claims the same command: at
 * least once, and answers are idempotent by command id.
 *
 * When. At once for the devices the listener says have new commands
 * (broker_commands_wake), and every few seconds for every device with a
 * deliverable command (queued for a moment, or sent and its lock passed):
 * a device that subscribes late, or did not answer within the lock, gets
 * them again.
 *
 * Answers. The queue wattline.command_results takes devices.*.command_results;
 * broker_commands_answer() records one {"type"?:"command_result","id",
 * "status","result"?,"error"?} with db_commands_answer() for the device the
 * topic names.
 */
#ifndef WATTLINE_BROKER_COMMANDS_H
#define WATTLINE_BROKER_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "link.h"

struct db_pool;
struct broker_commands;

/* lock_s: COMMAND_LOCK_S. NULL when out of memory. */
struct broker_commands *broker_commands_create(struct db_pool *pool, int lock_s);
void broker_commands_free(struct broker_commands *c);

/* Any thread: these devices have new deliverable commands. */
void broker_commands_wake(struct broker_commands *c, const long long *device_ids, int n);

/* Whether there is delivery work now; else how long (ms) until there is,
 * when sooner than *wait_ms. */
bool broker_commands_due(struct broker_commands *c, int *wait_ms);

/* Publishes what is due over pub, a confirming link (link_open with
 * confirms). False when the link or the database failed (err says which);
 * the work is tried again later. */
bool broker_commands_run(struct broker_commands *c, struct link *pub, char *err, size_t errlen);

enum broker_answer {
    BROKER_ANSWER_STORED, /* recorded (or the same answer again): ack */
    BROKER_ANSWER_DEAD,   /* not an answer Wattline takes: dead-letter, why says why */
    BROKER_ANSWER_RETRY,  /* the database could not take it now */
};

/* A message of wattline.command_results: key is its routing key
 * (devices.<it>.command_results), body its body. */
enum broker_answer broker_commands_answer(struct broker_commands *c, const char *key, size_t keylen,
                                          const char *body, size_t len, char *why, size_t whylen);

#endif
