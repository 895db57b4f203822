/* consumer: broker.h's thread. The loop: keep a connection, take deliveries
 * into `pending` (never more than the prefetch: the broker stops sending),
 * and every few milliseconds hand what is pending to ingest as one group (a
 * "flight"); when a flight's readings committed, settle its deliveries: ack
 * what committed, dead-letter what is invalid, keep what the database could
 * not take for a later try. Two flights may be in the air at once, one per
 * ingest committer, so deliveries keep arriving and the next group forms
 * while the last one commits. */
#include "broker.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/crypto.h"
#include "../base/log.h"
#include "../db/broker.h"
#include "../ingest/ingest.h"
#include "commands.h"
#include "link.h"
#include "message.h"

#define QUEUE         "wattline.measurements"
#define RESULTS_QUEUE "wattline.command_results"
#define EXCHANGE      "wattline"
#define DEAD_EXCHANGE "wattline.dead"
#define DEAD_QUEUE    "wattline.measurements.dead"
#define MQTT_EXCHANGE "amq.topic"
#define MAX_QUEUES    16
/* queues[]: measurements, command results, then the legacy queues */
#define Q_MEASUREMENTS 0
#define Q_RESULTS      1
#define Q_FIRST_LEGACY 2
/* A group closes this long after its first delivery arrived, or when it
 * holds BATCH_MAX deliveries: latency against transactions per message. */
#define BATCH_WINDOW_MS 5
#define BATCH_MAX       512
/* How often the thread looks at its stop flag while idle. */
#define IDLE_WAIT_MS 200
/* Reconnection backoff: from 0.5 s, doubling, at most 30 s (the contract). */
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
/* Retrying deliveries the database could not take: 1, 2, 4, 5, 5 ... s, so
 * consumption resumes within seconds of PostgreSQL answering again. */
#define RETRY_MIN_S 1.0
#define RETRY_MAX_S 5.0
/* A delivery that failed for an internal reason this often is dead-lettered
 * rather than retried forever. */
#define INTERNAL_FAILURES_MAX 5
#define POOL_WAIT_MS          1000
/* Groups handed to ingest and not yet settled: as many as it has committers. */
#define MAX_FLIGHTS 2
/* How often the thread looks for a finished flight while one is out. */
#define FLIGHT_POLL_MS     1
#define CONFIRM_TIMEOUT_MS 5000

enum delivery_state {
    D_NEW,     /* not parsed yet */
    D_PARSED,  /* parsed; its device is not resolved yet */
    D_READY,   /* readings built: to store (in a flight) */
    D_STORED,  /* committed: ack */
    D_DEAD,    /* invalid: dead-letter */
    D_RETRY,   /* the database could not take it: keep, try later */
    D_SETTLED, /* acked or rejected */
};

struct delivery {
    amqp_envelope_t env;
    int queue; /* index in broker.queues */
    enum delivery_state state;
    char why[256]; /* D_DEAD: the reason */
    struct broker_message msg;
    long long device_id;
    enum reading_type type;
    struct ingest_reading *readings;
    int nreadings;
    int internal_failures;
    bool duplicate_only; /* D_STORED: every reading was stored already */
    bool republished;    /* D_STORED: a legacy queue's dead message, now in wattline.dead */
    struct ingest_request req;
    double arrived;        /* clock_mono_s() when it arrived */
    struct flight *flight; /* the flight it is in, NULL when in none */
};

/* One group handed to ingest: its deliveries, in arrival order. */
struct flight {
    struct broker *b;
    struct delivery **items;
    int n;
    int outstanding; /* ingest requests not done yet; under b->lock */
    bool resolved;   /* the database resolved its devices */
};

struct broker {
    char *url;
    int prefetch;
    struct ingest *ingest;
    struct db_pool *pool;
    long long max_age_us;
    char *queues[MAX_QUEUES]; /* Q_MEASUREMENTS, Q_RESULTS, then the legacy queues */
    int nqueues;
    char consumer_tags[MAX_QUEUES][128];

    pthread_t thread;
    atomic_bool stop;
    atomic_bool halted; /* broker_halt() ran */
    atomic_bool connected;
    atomic_ullong stored, duplicate, dead;

    /* The consumer thread's alone. */
    struct link link;
    struct link pub_link; /* confirms: legacy queues' dead messages, commands to MQTT devices */
    struct broker_commands *commands;
    struct delivery **pending; /* arrival (delivery tag) order */
    int npending, cap;
    struct flight *flights[MAX_FLIGHTS]; /* oldest first */
    int nflights;
    int nfree;         /* pending deliveries in no flight and not settled */
    double free_since; /* when the oldest of those arrived */
    double retry_at;   /* > 0: wait until then before storing again */
    double retry_delay;

    /* Ingest's done() callbacks, from the committers, count down flights
     * and wake the thread through wake_fd (an eventfd it polls with the
     * AMQP socket) when one is done. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wake_fd;
};

/* ---- small helpers -------------------------------------------------------- */

static double jitter(double s)
{
    unsigned char r;
    if (!crypto_random(&r, 1))
        r = 128;
    return s * (0.75 + r / 512.0); /* 0.75 to 1.25 of s */
}

/* Sleeps up to s seconds, less when told to stop. */
static void nap(struct broker *b, double s)
{
    double until = clock_mono_s() + s;
    while (!atomic_load(&b->stop)) {
        double left = until - clock_mono_s();
        if (left <= 0)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)((left < 0.1 ? left : 0.1) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static bool bytes_equal(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && !memcmp(b.bytes, s, n);
}

static void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    amqp_destroy_envelope(&d->env);
    broker_message_free(&d->msg);
    free(d->readings);
    free(d);
}

static void pending_drop_all(struct broker *b)
{
    for (int i = 0; i < b->npending; i++)
        delivery_free(b->pending[i]);
    b->npending = 0;
    b->nfree = 0;
}

/* ---- the connection ------------------------------------------------------- */

static amqp_table_t no_arguments(void)
{
    return (amqp_table_t){0};
}

/* Declares the topology (idempotent, all durable) and starts the consumers. */
static bool declare(struct broker *b, char *err, size_t errlen)
{
    amqp_connection_state_t c = b->link.conn;
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("topic"), 0, 1, 0,
                          0, no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "declare exchange " EXCHANGE, err, errlen))
        return false;
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(DEAD_EXCHANGE), amqp_cstring_bytes("topic"), 0,
                          1, 0, 0, no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "declare exchange " DEAD_EXCHANGE, err, errlen))
        return false;
    amqp_queue_declare(c, 1, amqp_cstring_bytes(DEAD_QUEUE), 0, 1, 0, 0, no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "declare queue " DEAD_QUEUE, err, errlen))
        return false;
    amqp_queue_bind(c, 1, amqp_cstring_bytes(DEAD_QUEUE), amqp_cstring_bytes(DEAD_EXCHANGE),
                    amqp_cstring_bytes("#"), no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "bind " DEAD_QUEUE, err, errlen))
        return false;

    amqp_table_entry_t dlx = {
        .key = amqp_cstring_bytes("x-dead-letter-exchange"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(DEAD_EXCHANGE)}};
    amqp_table_t args = {.num_entries = 1, .entries = &dlx};
    amqp_queue_declare(c, 1, amqp_cstring_bytes(QUEUE), 0, 1, 0, 0, args);
    if (!link_ok(amqp_get_rpc_reply(c), "declare queue " QUEUE, err, errlen))
        return false;
    amqp_queue_bind(c, 1, amqp_cstring_bytes(QUEUE), amqp_cstring_bytes(EXCHANGE),
                    amqp_cstring_bytes("measurements.#"), no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "bind " QUEUE " to " EXCHANGE, err, errlen))
        return false;
    amqp_queue_bind(c, 1, amqp_cstring_bytes(QUEUE), amqp_cstring_bytes(MQTT_EXCHANGE),
                    amqp_cstring_bytes("devices.*.measurements"), no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "bind " QUEUE " to " MQTT_EXCHANGE, err, errlen))
        return false;
    /* MQTT devices' answers to commands (broker/commands.h). */
    amqp_queue_declare(c, 1, amqp_cstring_bytes(RESULTS_QUEUE), 0, 1, 0, 0, args);
    if (!link_ok(amqp_get_rpc_reply(c), "declare queue " RESULTS_QUEUE, err, errlen))
        return false;
    amqp_queue_bind(c, 1, amqp_cstring_bytes(RESULTS_QUEUE), amqp_cstring_bytes(MQTT_EXCHANGE),
                    amqp_cstring_bytes("devices.*.command_results"), no_arguments());
    if (!link_ok(amqp_get_rpc_reply(c), "bind " RESULTS_QUEUE " to " MQTT_EXCHANGE, err, errlen))
        return false;
    return true;
}

/* A legacy queue is used as it is when it exists, whatever its flags, and
 * declared durable only when it does not. A passive declare of a missing
 * queue closes its channel, so the probe runs on a channel of its own. */
static bool declare_legacy(struct broker *b, const char *queue, char *err, size_t errlen)
{
    amqp_connection_state_t c = b->link.conn;
    amqp_channel_open(c, 2);
    if (!link_ok(amqp_get_rpc_reply(c), "channel.open", err, errlen))
        return false;
    amqp_queue_declare(c, 2, amqp_cstring_bytes(queue), 1, 0, 0, 0, no_arguments());
    amqp_rpc_reply_t probe = amqp_get_rpc_reply(c);
    if (probe.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS);
        return true;
    }
    if (probe.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        probe.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return link_ok(probe, "declare queue", err, errlen);
    /* The broker closed channel 2 (404): confirm, then declare it. */
    amqp_channel_close_ok_t close_ok = {0};
    amqp_send_method(c, 2, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, no_arguments());
    return link_ok(amqp_get_rpc_reply(c), "declare queue", err, errlen);
}

static bool connect_and_consume(struct broker *b, char *err, size_t errlen)
{
    if (!link_open(&b->link, b->url, false, err, errlen))
        return false;
    amqp_connection_state_t c = b->link.conn;
    bool ok = declare(b, err, errlen);
    for (int i = Q_FIRST_LEGACY; ok && i < b->nqueues; i++)
        ok = declare_legacy(b, b->queues[i], err, errlen);
    if (ok) {
        /* global: the prefetch bounds the channel (every queue together),
         * which is what AMQP_PREFETCH promises for the instance. */
        amqp_basic_qos(c, 1, 0, (uint16_t)b->prefetch, 1);
        ok = link_ok(amqp_get_rpc_reply(c), "basic.qos", err, errlen);
    }
    for (int i = 0; ok && i < b->nqueues; i++) {
        amqp_basic_consume_ok_t *r = amqp_basic_consume(c, 1, amqp_cstring_bytes(b->queues[i]),
                                                        amqp_empty_bytes, 0, 0, 0, no_arguments());
        ok = link_ok(amqp_get_rpc_reply(c), "basic.consume", err, errlen) && r;
        if (ok)
            snprintf(b->consumer_tags[i], sizeof b->consumer_tags[i], "%.*s",
                     (int)r->consumer_tag.len, (const char *)r->consumer_tag.bytes);
    }
    if (!ok)
        link_close(&b->link);
    return ok;
}

/* The connection is gone: every delivery not settled goes back to its queue
 * (the broker requeues what a closed channel left unacked). */
static void flights_abandon(struct broker *b);

static void lost(struct broker *b, const char *why)
{
    flights_abandon(b); /* ingest still points into the deliveries */
    if (atomic_exchange(&b->connected, false))
        log_warn("broker: connection lost (%s); %d unacknowledged deliveries go back to the "
                 "queue",
                 why, b->npending);
    pending_drop_all(b);
    link_close(&b->link);
    link_close(&b->pub_link);
    b->retry_at = 0;
}

/* ---- taking deliveries ---------------------------------------------------- */

static int queue_of(struct broker *b, amqp_bytes_t consumer_tag)
{
    for (int i = 0; i < b->nqueues; i++)
        if (bytes_equal(consumer_tag, b->consumer_tags[i]))
            return i;
    return 0;
}

static bool pending_push(struct broker *b, struct delivery *d)
{
    if (b->npending == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        struct delivery **p = realloc(b->pending, (size_t)cap * sizeof *p);
        if (!p)
            return false;
        b->pending = p;
        b->cap = cap;
    }
    d->arrived = clock_mono_s();
    if (b->nfree++ == 0)
        b->free_since = d->arrived;
    b->pending[b->npending++] = d;
    return true;
}

/* A frame other than a delivery arrived: a close or a cancel ends the
 * connection; anything else is of no interest to a consumer. */
static bool other_frame(struct broker *b, char *err, size_t errlen)
{
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame(b->link.conn, &frame);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "%s", amqp_error_string2(rc));
        return false;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return true;
    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        snprintf(err, errlen, "closed by the broker");
        return false;
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(err, errlen, "consumer cancelled by the broker (queue deleted?)");
        return false;
    default:
        return true;
    }
}

/* Waits up to wait_ms for one delivery. False when the connection is lost
 * (err says why); a timeout is true. */
static bool receive_one(struct broker *b, int wait_ms, char *err, size_t errlen)
{
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    struct timeval timeout = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    amqp_maybe_release_buffers(b->link.conn);
    amqp_rpc_reply_t r = amqp_consume_message(b->link.conn, &d->env, &timeout, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        d->queue = queue_of(b, d->env.consumer_tag);
        if (pending_push(b, d))
            return true;
        snprintf(err, errlen, "out of memory");
        delivery_free(d);
        return false;
    }
    free(d); /* nothing was put in the envelope */
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return true;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return other_frame(b, err, errlen);
    return link_ok(r, "consume", err, errlen);
}

/* Waits up to wait_ms for a delivery or a finished flight, then takes every
 * delivery already read into rabbitmq-c's buffer without a system call each.
 * The wait is a poll() of the AMQP socket and wake_fd: rabbitmq-c's own
 * wait could not hear a committer, and polling it every millisecond instead
 * cost five times the CPU of storing the readings. */
static bool receive(struct broker *b, int wait_ms, char *err, size_t errlen)
{
    amqp_connection_state_t c = b->link.conn;
    if (wait_ms > 0 && !amqp_data_in_buffer(c) && !amqp_frames_enqueued(c)) {
        struct pollfd fds[2] = {{.fd = amqp_get_sockfd(c), .events = POLLIN},
                                {.fd = b->wake_fd, .events = POLLIN}};
        int n = poll(fds, 2, wait_ms);
        if (n > 0 && (fds[1].revents & POLLIN)) {
            uint64_t count;
            if (read(b->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                log_warn("broker: reading the wake-up eventfd: %s", strerror(errno));
            if (!(fds[0].revents & (POLLIN | POLLERR | POLLHUP)))
                return true; /* a flight finished; nothing to read */
        }
        /* Data, or the wait is over: rabbitmq-c reads, and sends a heartbeat
         * when one is due. */
    }
    if (!receive_one(b, 0, err, errlen))
        return false;
    while (amqp_data_in_buffer(c) && b->npending < b->prefetch)
        if (!receive_one(b, 0, err, errlen))
            return false;
    return true;
}

/* Counts the pending deliveries no flight holds and notes when the oldest
 * arrived: after a flight starts or finishes, the only times they change
 * other than by arrival. */
static void free_recount(struct broker *b)
{
    b->nfree = 0;
    for (int i = 0; i < b->npending; i++) {
        const struct delivery *d = b->pending[i];
        if (d->flight || d->state == D_SETTLED)
            continue;
        if (b->nfree++ == 0)
            b->free_since = d->arrived;
    }
}

/* ---- storing a group ------------------------------------------------------ */

static void dead(struct delivery *d, const char *why)
{
    d->state = D_DEAD;
    snprintf(d->why, sizeof d->why, "%s", why);
}

static void parse(struct delivery *d)
{
    const amqp_envelope_t *e = &d->env;
    char key[300] = "", *topic = NULL;
    if (bytes_equal(e->exchange, MQTT_EXCHANGE)) {
        /* Bound with devices.*.measurements: the topic names the device. */
        snprintf(key, sizeof key, "%.*s", (int)e->routing_key.len,
                 (const char *)e->routing_key.bytes);
        topic = key;
    }
    if (broker_message_parse(e->message.body.bytes, e->message.body.len, topic, &d->msg, d->why,
                             sizeof d->why))
        d->state = D_PARSED;
    else
        d->state = D_DEAD;
}

static const struct db_broker_device *find(const struct db_broker_device *devs, int n,
                                           const struct broker_name *name)
{
    for (int i = 0; i < n; i++)
        if (name->id ? devs[i].id == name->id : !strcmp(devs[i].serial, name->serial))
            return &devs[i];
    return NULL;
}

/* The device of a parsed delivery, from the devices its names matched:
 * NULL, the delivery dead with the reason, when a name matches none or two
 * names match different devices. */
static const struct db_broker_device *device_of(struct delivery *d,
                                                const struct db_broker_device *devs, int ndevs)
{
    const struct db_broker_device *dev = NULL;
    for (int k = 0; k < d->msg.nnames; k++) {
        const struct broker_name *name = &d->msg.names[k];
        const struct db_broker_device *named = find(devs, ndevs, name);
        char why[120];
        if (!named) {
            if (name->id)
                snprintf(why, sizeof why, "unknown device %lld", name->id);
            else
                snprintf(why, sizeof why, "unknown device serial %s", name->serial);
            dead(d, why);
            return NULL;
        }
        if (dev && dev != named) {
            dead(d, "the message names two different devices");
            return NULL;
        }
        dev = named;
    }
    if (!dev) /* broker_message_parse() promises a name; never trust it blindly */
        dead(d, "the message names no device");
    return dev;
}

/* Every name of every parsed delivery, looked up in one round trip, and the
 * readings of those whose device is known. False when the database could
 * not answer (the deliveries stay D_PARSED and wait). */
static bool resolve(struct broker *b, struct delivery **items, int n)
{
    long long *ids = malloc((size_t)n * 3 * sizeof *ids);
    const char **serials = malloc((size_t)n * 3 * sizeof *serials);
    int nids = 0, nserials = 0, parsed = 0;
    for (int i = 0; ids && serials && i < n; i++) {
        if (items[i]->state != D_PARSED)
            continue;
        parsed++;
        for (int k = 0; k < items[i]->msg.nnames; k++) {
            const struct broker_name *name = &items[i]->msg.names[k];
            if (name->id)
                ids[nids++] = name->id;
            else
                serials[nserials++] = name->serial;
        }
    }
    struct db_broker_device *devs = NULL;
    int ndevs = 0;
    enum status st = ids && serials && parsed == 0 ? STATUS_OK : STATUS_INTERNAL;
    struct db_conn *conn =
        ids && serials && parsed > 0 ? db_pool_acquire(b->pool, POOL_WAIT_MS) : NULL;
    if (conn) {
        st = db_broker_devices(conn, ids, nids, serials, nserials, &devs, &ndevs);
        db_pool_release(b->pool, conn);
    }
    free(ids);
    free(serials);
    if (st != STATUS_OK) {
        free(devs);
        return false;
    }
    long long now_us = (long long)(clock_wall_s() * 1e6);
    long long max_age_us = ingest_max_age_us(b->ingest, now_us, b->max_age_us); /* retired months */
    for (int i = 0; i < n; i++) {
        struct delivery *d = items[i];
        const struct db_broker_device *dev =
            d->state == D_PARSED ? device_of(d, devs, ndevs) : NULL;
        if (!dev)
            continue;
        d->device_id = dev->id;
        d->type = dev->type;
        enum status rs = broker_message_readings(&d->msg, d->type, now_us, max_age_us, &d->readings,
                                                 &d->nreadings, d->why, sizeof d->why);
        if (rs == STATUS_OK)
            d->state = D_READY;
        else if (rs == STATUS_INVALID)
            d->state = D_DEAD;
        else
            d->internal_failures++; /* out of memory: stays D_PARSED, tried again */
    }
    free(devs);
    return true;
}

static void stored(struct ingest_request *req)
{
    struct delivery *d = req->user;
    struct flight *f = d->flight;
    struct broker *b = f->b;
    pthread_mutex_lock(&b->lock);
    bool done = --f->outstanding == 0;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    if (done) {
        uint64_t one = 1;
        if (write(b->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_warn("broker: waking the consumer: %s", strerror(errno));
    }
}

static bool flight_done(struct flight *f)
{
    pthread_mutex_lock(&f->b->lock);
    bool done = f->outstanding == 0;
    pthread_mutex_unlock(&f->b->lock);
    return done;
}

/* A delivery ingest answered for: what to do with it. */
static void outcome(struct delivery *d)
{
    switch (d->req.status) {
    case STATUS_OK:
        d->state = D_STORED;
        d->duplicate_only = d->req.result.accepted == 0;
        break;
    case STATUS_INVALID:
        dead(d, "a reading broke a rule of ingestion");
        break;
    case STATUS_NOT_FOUND:
        dead(d, "the device was deleted");
        break;
    case STATUS_INTERNAL:
        if (++d->internal_failures >= INTERNAL_FAILURES_MAX)
            dead(d, "storing it failed repeatedly (see the server's log)");
        else
            d->state = D_RETRY;
        break;
    default: /* the database is away, or ingest is stopping */
        d->state = D_RETRY;
        break;
    }
}

/* A device's answer to a command, recorded at once (they are few): stored
 * to ack, dead to dead-letter, or kept to try again. */
static void answer(struct broker *b, struct delivery *d)
{
    const amqp_envelope_t *e = &d->env;
    switch (broker_commands_answer(b->commands, e->routing_key.bytes, e->routing_key.len,
                                   e->message.body.bytes, e->message.body.len, d->why,
                                   sizeof d->why)) {
    case BROKER_ANSWER_STORED:
        d->state = D_STORED;
        break;
    case BROKER_ANSWER_DEAD:
        d->state = D_DEAD;
        break;
    case BROKER_ANSWER_RETRY:
        d->state = D_RETRY;
        break;
    }
}

/* Takes the oldest deliveries no flight holds (at most BATCH_MAX), parses
 * them, resolves their devices and hands the ready ones to ingest together,
 * so that a committer stores them as one group. When the database could not
 * resolve them nothing is handed over, and the flight only settles its dead
 * deliveries. */
static void flight_start(struct broker *b)
{
    struct flight *f = calloc(1, sizeof *f);
    struct delivery **items = f ? malloc((size_t)BATCH_MAX * sizeof *items) : NULL;
    if (!items) {
        free(f);
        return; /* out of memory: the next turn tries again */
    }
    f->b = b;
    f->items = items;
    for (int i = 0; i < b->npending && f->n < BATCH_MAX; i++) {
        struct delivery *d = b->pending[i];
        if (d->flight || d->state == D_SETTLED)
            continue;
        if (d->queue == Q_RESULTS && d->state != D_DEAD)
            answer(b, d);
        else if (d->state == D_NEW)
            parse(d);
        else if (d->state == D_RETRY)
            d->state = d->readings ? D_READY : D_PARSED;
        d->flight = f;
        f->items[f->n++] = d;
    }
    bool resolved = f->resolved = resolve(b, f->items, f->n);
    long long now_us = (long long)(clock_wall_s() * 1e6);
    pthread_mutex_lock(&b->lock);
    for (int i = 0; resolved && i < f->n; i++)
        f->outstanding += f->items[i]->state == D_READY;
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; resolved && i < f->n; i++) {
        struct delivery *d = f->items[i];
        if (d->state != D_READY)
            continue;
        d->req = (struct ingest_request){.in = {.device_id = d->device_id,
                                                .type = d->type,
                                                .readings = d->readings,
                                                .n = d->nreadings,
                                                .received_at = now_us},
                                         .done = stored,
                                         .user = d};
        ingest_enqueue(b->ingest, &d->req); /* may call stored() at once */
    }
    b->flights[b->nflights++] = f;
    free_recount(b);
}

static void flight_free(struct flight *f)
{
    for (int i = 0; i < f->n; i++)
        f->items[i]->flight = NULL;
    free(f->items);
    free(f);
}

/* Waits until ingest is done with every flight and forgets them, settling
 * nothing: the connection is gone or going. */
static void flights_abandon(struct broker *b)
{
    for (int i = 0; i < b->nflights; i++) {
        struct flight *f = b->flights[i];
        pthread_mutex_lock(&b->lock);
        while (f->outstanding > 0)
            pthread_cond_wait(&b->cond, &b->lock);
        pthread_mutex_unlock(&b->lock);
        flight_free(f);
    }
    b->nflights = 0;
}

/* ---- settling ------------------------------------------------------------- */

/* A legacy queue has no dead-letter exchange of ours: the message goes to
 * wattline.dead as it was, with where it came from and why, confirmed
 * before the original is acked, so it is never lost. */
static bool republish_dead(struct broker *b, struct delivery *d, char *err, size_t errlen)
{
    const amqp_basic_properties_t *orig = &d->env.message.properties;
    amqp_basic_properties_t props = *orig;
    int nold = (orig->_flags & AMQP_BASIC_HEADERS_FLAG) ? orig->headers.num_entries : 0;
    amqp_table_entry_t *entries = calloc((size_t)nold + 2, sizeof *entries);
    if (!entries) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    int n = 0;
    for (int i = 0; i < nold; i++)
        if (!bytes_equal(orig->headers.entries[i].key, "x-wattline-queue") &&
            !bytes_equal(orig->headers.entries[i].key, "x-wattline-reason"))
            entries[n++] = orig->headers.entries[i];
    entries[n++] =
        (amqp_table_entry_t){.key = amqp_cstring_bytes("x-wattline-queue"),
                             .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                       .value.bytes = amqp_cstring_bytes(b->queues[d->queue])}};
    entries[n++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("x-wattline-reason"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(d->why)}};
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){.num_entries = n, .entries = entries};

    bool ok = false;
    for (int attempt = 0; attempt < 2 && !ok; attempt++) {
        /* An idle link may have been closed by the broker: one reconnection. */
        if (!b->pub_link.conn && !link_open(&b->pub_link, b->url, true, err, errlen))
            break;
        ok = link_publish_confirmed(&b->pub_link, DEAD_EXCHANGE, d->env.routing_key, &props,
                                    d->env.message.body, NULL, CONFIRM_TIMEOUT_MS, err, errlen);
        if (!ok)
            link_close(&b->pub_link);
    }
    free(entries);
    return ok;
}

static void log_dead(struct broker *b, const struct delivery *d)
{
    log_warn("broker: dead-lettered a message from queue %s (exchange '%.*s', routing key "
             "'%.*s'): %s",
             b->queues[d->queue], (int)d->env.exchange.len, (const char *)d->env.exchange.bytes,
             (int)(d->env.routing_key.len > 200 ? 200 : d->env.routing_key.len),
             (const char *)d->env.routing_key.bytes, d->why);
}

/* Dead-letters a flight's invalid deliveries: rejected without requeue (the
 * queue's dead-letter exchange takes them), or, from a legacy queue,
 * republished to wattline.dead and then acked with the stored. False when
 * the connection failed. */
static bool settle_dead(struct broker *b, struct flight *f, char *err, size_t errlen)
{
    for (int i = 0; i < f->n; i++) {
        struct delivery *d = f->items[i];
        if (d->state != D_DEAD)
            continue;
        if (d->queue >= Q_FIRST_LEGACY) {
            /* Stays D_DEAD (unacknowledged) until the republish works. */
            if (!republish_dead(b, d, err, errlen)) {
                log_warn("broker: could not dead-letter a message from %s (%s); it stays "
                         "unacknowledged",
                         b->queues[d->queue], err);
                continue;
            }
            d->state = D_STORED; /* now safe to ack */
            d->republished = true;
        } else {
            if (amqp_basic_reject(b->link.conn, 1, d->env.delivery_tag, 0) != AMQP_STATUS_OK) {
                snprintf(err, errlen, "basic.reject failed");
                return false;
            }
            d->state = D_SETTLED;
        }
        log_dead(b, d);
        atomic_fetch_add(&b->dead, 1);
    }
    return true;
}

/* Acks a flight's stored deliveries. One `multiple` ack covers the longest
 * run, from the oldest pending delivery, of deliveries settled or stored by
 * this flight: anything else (another flight's, one kept for a retry) ends
 * the run, and the flight's stored deliveries after it are acked one by one.
 * False when the connection failed. */
static bool settle_stored(struct broker *b, struct flight *f, char *err, size_t errlen)
{
    uint64_t run_end = 0;
    bool in_run = true;
    for (int i = 0; i < b->npending; i++) {
        struct delivery *d = b->pending[i];
        if (d->state == D_SETTLED)
            continue;
        if (d->flight != f || d->state != D_STORED) {
            in_run = false;
            continue;
        }
        if (!d->republished)
            atomic_fetch_add(d->duplicate_only ? &b->duplicate : &b->stored, 1);
        d->state = D_SETTLED;
        if (in_run) {
            run_end = d->env.delivery_tag;
        } else if (amqp_basic_ack(b->link.conn, 1, d->env.delivery_tag, 0) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "basic.ack failed");
            return false;
        }
    }
    if (run_end && amqp_basic_ack(b->link.conn, 1, run_end, 1) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "basic.ack failed");
        return false;
    }
    return true;
}

/* Removes the settled deliveries from pending, keeping the order. */
static void pending_compact(struct broker *b)
{
    int kept = 0;
    for (int i = 0; i < b->npending; i++) {
        if (b->pending[i]->state == D_SETTLED)
            delivery_free(b->pending[i]);
        else
            b->pending[kept++] = b->pending[i];
    }
    b->npending = kept;
}

/* Settles the oldest flight once ingest is done with it; what could not be
 * stored waits for a retry, 1 s later at first, then longer. False when the
 * connection failed. */
static bool flight_finish(struct broker *b, char *err, size_t errlen)
{
    struct flight *f = b->flights[0];
    bool retry = !f->resolved;
    for (int i = 0; i < f->n; i++) {
        struct delivery *d = f->items[i];
        if (d->state == D_READY)
            outcome(d);
    }
    bool ok = settle_dead(b, f, err, errlen) && settle_stored(b, f, err, errlen);
    for (int i = 0; i < f->n; i++)
        retry = retry || f->items[i]->state != D_SETTLED;
    flight_free(f);
    memmove(&b->flights[0], &b->flights[1], (size_t)(b->nflights - 1) * sizeof b->flights[0]);
    b->nflights--;
    pending_compact(b);
    free_recount(b);
    if (retry) {
        b->retry_delay = b->retry_delay ? b->retry_delay * 2 : RETRY_MIN_S;
        if (b->retry_delay > RETRY_MAX_S)
            b->retry_delay = RETRY_MAX_S;
        b->retry_at = clock_mono_s() + jitter(b->retry_delay);
        log_warn("broker: %d deliveries wait for the database; next try in %.1f s", b->npending,
                 b->retry_at - clock_mono_s());
    } else if (b->retry_at == 0 || clock_mono_s() >= b->retry_at) {
        b->retry_delay = 0;
        b->retry_at = 0;
    }
    return ok;
}

/* ---- the thread ----------------------------------------------------------- */

/* Whether a new flight should start now, and else how long the thread may
 * wait for a delivery before it looks again. */
static bool flight_due(const struct broker *b, int *wait_ms)
{
    double now = clock_mono_s();
    *wait_ms = IDLE_WAIT_MS;
    if (b->nfree == 0 || b->nflights == MAX_FLIGHTS)
        return false;
    if (b->retry_at > 0) {
        double left = b->retry_at - now;
        if (left > 0) {
            int ms = (int)(left * 1000) + 1;
            if (ms < *wait_ms)
                *wait_ms = ms;
            return false;
        }
        return true;
    }
    double left = b->free_since + BATCH_WINDOW_MS / 1000.0 - now;
    if (left <= 0 || b->nfree >= BATCH_MAX)
        return true;
    int ms = (int)(left * 1000) + 1;
    if (ms < *wait_ms)
        *wait_ms = ms;
    return false;
}

/* Commands to MQTT devices, on their own confirming link; a failure closes
 * it, and the commands wait for the next try. */
static void publish_commands(struct broker *b)
{
    char err[256];
    if ((!b->pub_link.conn && !link_open(&b->pub_link, b->url, true, err, sizeof err)) ||
        !broker_commands_run(b->commands, &b->pub_link, err, sizeof err)) {
        log_warn("broker: commands to MQTT devices wait: %s", err);
        link_close(&b->pub_link);
    }
}

static void *consumer_main(void *arg)
{
    struct broker *b = arg;
    double backoff = BACKOFF_MIN_S;
    char err[512], last_err[512] = "";
    while (!atomic_load(&b->stop)) {
        if (!b->link.conn) {
            if (!connect_and_consume(b, err, sizeof err)) {
                double delay = jitter(backoff);
                if (strcmp(err, last_err) != 0)
                    log_warn("broker: %s; retrying (backoff up to %.0f s)", err, BACKOFF_MAX_S);
                snprintf(last_err, sizeof last_err, "%s", err);
                nap(b, delay);
                backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
                continue;
            }
            backoff = BACKOFF_MIN_S;
            last_err[0] = '\0';
            atomic_store(&b->connected, true);
            log_info("broker: consuming %s, %s and %d legacy queue(s), prefetch %d", QUEUE,
                     RESULTS_QUEUE, b->nqueues - Q_FIRST_LEGACY, b->prefetch);
        }
        int wait;
        bool ok = true;
        bool flight_now = flight_due(b, &wait);
        if (!broker_commands_due(b->commands, &wait) && !flight_now)
            ok = receive(b, wait, err, sizeof err);
        while (ok && b->nflights > 0 && flight_done(b->flights[0]))
            ok = flight_finish(b, err, sizeof err);
        if (ok && flight_due(b, &wait))
            flight_start(b);
        if (ok && broker_commands_due(b->commands, &wait))
            publish_commands(b);
        if (!ok)
            lost(b, err);
    }
    /* What is pending and not settled goes back to the queue with the
     * connection. */
    flights_abandon(b);
    pending_drop_all(b);
    link_close(&b->link);
    link_close(&b->pub_link);
    atomic_store(&b->connected, false);
    return NULL;
}

/* ---- the public side ------------------------------------------------------ */

static void broker_free(struct broker *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->nqueues; i++)
        free(b->queues[i]);
    if (b->url)
        explicit_bzero(b->url, strlen(b->url));
    free(b->url);
    free(b->pending);
    broker_commands_free(b->commands);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    free(b);
}

/* "a, b,c" -> queues[1..]: names trimmed, empty ones skipped. */
static bool add_legacy_queues(struct broker *b, const char *list, char *err, size_t errlen)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            if (b->nqueues == MAX_QUEUES || e - s > 255) {
                snprintf(err, errlen, "AMQP_LEGACY_QUEUES: at most %d names of at most 255 bytes",
                         MAX_QUEUES - 1);
                return false;
            }
            b->queues[b->nqueues] = strndup(s, (size_t)(e - s));
            if (!b->queues[b->nqueues]) {
                snprintf(err, errlen, "out of memory");
                return false;
            }
            b->nqueues++;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

struct broker *broker_start(const struct broker_options *opts, char *err, size_t errlen)
{
    struct broker *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->prefetch = opts->prefetch;
    b->ingest = opts->ingest;
    b->pool = opts->pool;
    b->max_age_us = opts->max_age_us;
    b->url = strdup(opts->url);
    b->queues[Q_MEASUREMENTS] = strdup(QUEUE);
    b->queues[Q_RESULTS] = strdup(RESULTS_QUEUE);
    b->nqueues = Q_FIRST_LEGACY;
    b->commands = broker_commands_create(opts->pool, opts->command_lock_s);
    char vhost[256];
    if (!b->url || !b->queues[Q_MEASUREMENTS] || !b->queues[Q_RESULTS] || !b->commands ||
        b->wake_fd < 0) {
        snprintf(err, errlen, "out of memory (or eventfd: %s)", strerror(errno));
    } else if (!link_url_vhost(b->url, vhost, sizeof vhost)) {
        snprintf(err, errlen, "AMQP_URL is not an amqp:// URL");
    } else if (add_legacy_queues(b, opts->legacy_queues, err, errlen)) {
        int rc = pthread_create(&b->thread, NULL, consumer_main, b);
        if (rc == 0)
            return b;
        snprintf(err, errlen, "cannot start the broker thread: %s", strerror(rc));
    }
    broker_free(b);
    return NULL;
}

void broker_halt(struct broker *b)
{
    if (!b || atomic_exchange(&b->halted, true))
        return;
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
}

void broker_stop(struct broker *b)
{
    if (!b)
        return;
    broker_halt(b);
    broker_free(b);
}

void broker_wake_commands(struct broker *b, const long long *device_ids, int n)
{
    if (!b || n == 0)
        return;
    broker_commands_wake(b->commands, device_ids, n);
    uint64_t one = 1;
    if (write(b->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("broker: waking the consumer: %s", strerror(errno));
}

void broker_stats(struct broker *b, struct broker_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!b)
        return;
    out->connected = atomic_load(&b->connected);
    out->stored = atomic_load(&b->stored);
    out->duplicate = atomic_load(&b->duplicate);
    out->dead = atomic_load(&b->dead);
}
