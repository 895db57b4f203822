/* broker: readings from RabbitMQ (AMQP publishers, and MQTT devices through
 * RabbitMQ's MQTT plugin), stored through the one ingestion entry.
 *
 * One consumer thread per instance, with its own AMQP connection: it declares
 * the topology (API.md, "Message broker"), consumes wattline.measurements
 * and any AMQP_LEGACY_QUEUES with manual acks under a prefetch of
 * AMQP_PREFETCH, and group-commits: the deliveries that arrive within a few
 * milliseconds go to ingest together (one transaction) and are acked, with
 * `multiple`, only once their readings committed. An invalid message is
 * rejected without requeue, so it is dead-lettered (or, from a legacy queue,
 * republished to wattline.dead with confirms, then acked); the messages
 * around it are stored. While PostgreSQL is away nothing is acked and the
 * held deliveries are retried every few seconds; a lost broker connection is
 * retried with capped exponential backoff and jitter. The same thread
 * publishes commands to MQTT devices and takes their answers
 * (broker/commands.h).
 */
#ifndef WATTLINE_BROKER_H
#define WATTLINE_BROKER_H

#include <stdbool.h>
#include <stddef.h>

struct ingest;
struct db_pool;

struct broker_options {
    const char *url;           /* AMQP_URL */
    int prefetch;              /* AMQP_PREFETCH */
    const char *legacy_queues; /* AMQP_LEGACY_QUEUES, or NULL */
    struct ingest *ingest;     /* where readings go */
    struct db_pool *pool;      /* for resolving the devices messages name */
    long long max_age_us;      /* MAX_READING_AGE_DAYS */
    int command_lock_s;        /* COMMAND_LOCK_S, for commands to MQTT devices */
};

struct broker;

/* Starts the consumer thread (it connects in the background: a broker that
 * is not there yet is retried). Strings are copied. NULL with err set on a
 * bad option or when the thread cannot start. */
struct broker *broker_start(const struct broker_options *opts, char *err, size_t errlen);
/* Stops consuming, lets the groups in flight finish and closes the
 * connection (unacked deliveries go back to the queue); the broker stays
 * allocated, so broker_wake_commands() from another thread stays safe.
 * Idempotent; NULL is a no-op. */
void broker_halt(struct broker *b);
/* broker_halt(), then frees. NULL is a no-op. */
void broker_stop(struct broker *b);

/* Any thread (the listener's): these devices have new deliverable commands,
 * to publish to those that speak MQTT (broker/commands.h). NULL is a no-op. */
void broker_wake_commands(struct broker *b, const long long *device_ids, int n);

struct broker_stats {
    bool connected;
    unsigned long long stored;    /* messages whose readings were stored */
    unsigned long long duplicate; /* messages whose readings were all stored already */
    unsigned long long dead;      /* messages dead-lettered */
};
void broker_stats(struct broker *b, struct broker_stats *out);

#endif
