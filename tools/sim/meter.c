#define _POSIX_C_SOURCE 200809L

#include "meter.h"

#include "timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define METER_SPOOL_CHUNK   1024
#define METER_COMPACT_BYTES (1024 * 1024)

void meter_plan(struct source *source, const struct meter_settings *set, int64_t start_us)
{
    source_set_timeline(source, start_us, set->interval_us);
    if (set->backfill)
        source_set_bounds(source, set->from_us, set->to_us, set->count);
    else
        source_set_bounds(source, INT64_MIN, INT64_MAX, set->count);
}

int64_t meter_wanted_start(const struct source *source, const struct meter_settings *set)
{
    if (set->backfill)
        return set->from_us;
    if (set->start_given)
        return set->start_us;
    int64_t length = source_length(source);
    int64_t readings = set->count < length ? set->count : length;
    return schedule_default_start(time_now_us(), set->interval_us, readings, set->speed);
}

/* A resumed spool must hold this run: same type and source; same time line if one was asked for. */
static int check_resumed(struct meter *m, const struct meter_settings *set,
                         const struct spool_meta *want, char *err, size_t err_size)
{
    const struct spool_meta *have = &m->spool.meta;
    const char *clash = NULL;
    if (strcmp(have->type, want->type) != 0)
        clash = "reading type";
    else if (strcmp(have->source, want->source) != 0)
        clash = "source";
    else if (!source_has_timestamps(&m->source) &&
             (((set->start_given || set->backfill) && have->start_us != want->start_us) ||
              (set->interval_given && have->interval_us != want->interval_us)))
        clash = "start or interval";
    if (clash != NULL) {
        char start[TIME_RFC3339_SIZE];
        time_format_rfc3339(have->start_us, start, sizeof start);
        snprintf(err, err_size,
                 "spool %s holds another run (%s differs: it has %s, %s, start %s, interval "
                 "%lld s); finish it with the same options, or remove it / choose another --spool",
                 m->spool.path, clash, have->type, have->source, start,
                 (long long)(have->interval_us / US_PER_SEC));
        return -1;
    }
    return 0;
}

/*
 * A resumed cumulative spool whose last register is below its source's was
 * sent with the relay off before: continue from that register, as the meter
 * would, instead of jumping by the energy of the off periods.
 */
static void resume_relay(struct meter *m)
{
    double raw;
    if (m->type != READING_CUMULATIVE || !m->spool.has_last)
        return;
    /* The register before seq + 1 is that of seq itself, whatever the bounds. */
    bool found = source_previous_register(&m->source, m->spool.last.seq + 1, &raw);
    double gap = found ? raw - m->spool.last.value : 0;
    /* Spooled values are the register to 15 significant digits: closer is no gap. */
    if (fabs(gap) <= 1e-9 * fmax(1.0, fabs(raw)))
        return;
    m->relay.offset = gap;
    m->relay.has_last = true;
    m->relay.last_raw = raw;
    m->relay.last_out = m->spool.last.value;
}

int meter_open(struct meter *m, const char *name, struct source *source, const char *token,
               const char *spool_path, const struct meter_settings *set, char *err, size_t err_size)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->source = *source;
    memset(source, 0, sizeof *source);
    m->type = set->type;
    m->batch_limit = set->batch;

    struct spool_meta want = {.start_us = meter_wanted_start(&m->source, set),
                              .interval_us = set->interval_us};
    snprintf(want.type, sizeof want.type, "%s", schedule_type_name(set->type));
    snprintf(want.source, sizeof want.source, "%s", m->source.desc);
    if (spool_open(&m->spool, spool_path, &want, err, err_size) != 0)
        goto fail;
    if (m->spool.resumed && check_resumed(m, set, &want, err, err_size) != 0)
        goto fail;
    /* A resumed run keeps its own time line, so its readings keep their timestamps. */
    struct meter_settings effective = *set;
    effective.interval_us = m->spool.meta.interval_us;
    meter_plan(&m->source, &effective, m->spool.meta.start_us);

    m->next_seq = m->source.first_seq;
    if (m->spool.has_last && m->spool.last.seq + 1 > m->next_seq)
        m->next_seq = m->spool.last.seq + 1;
    m->pacing.paced = !set->backfill;
    m->pacing.speed = set->speed;
    m->pacing.anchor_wall_us = time_now_us();
    m->has_next = source_get(&m->source, m->next_seq, &m->next);
    m->exhausted = !m->has_next;
    m->pacing.anchor_ts_us = m->has_next ? m->next.ts_us : 0;
    relay_init(&m->relay);
    resume_relay(m);
    m->commands = set->commands;
    if (set->commands_url != NULL) {
        struct client_config cfg = {.url = set->commands_url, .cacert = set->client.cacert};
        if (commander_init(&m->commander, &cfg, token, m, err, err_size) != 0)
            goto fail;
    }

    /* Without a URL the readings go to a broker (broker_run.c), not over HTTP. */
    if (set->client.url != NULL &&
        client_init(&m->client, &set->client, token, m, err, err_size) != 0)
        goto fail;
    return 0;
fail:
    meter_close(m);
    return -1;
}

struct spool_entry meter_entry_for(struct source *source, enum reading_type type,
                                   const struct reading *r)
{
    double previous = 0;
    bool has_previous =
        type == READING_INTERVAL && source_previous_register(source, r->seq, &previous);
    struct spool_entry e = {
        .seq = r->seq,
        .ts_us = r->ts_us,
        .value = schedule_wire_value(type, r->reg, has_previous, previous),
    };
    return e;
}

/* The spool entry for the next reading: its register as the relay lets it count. */
static struct spool_entry next_entry(struct meter *m)
{
    const struct reading *r = &m->next;
    double previous = 0;
    bool has_previous = m->relay.has_last;
    if (has_previous)
        previous = m->relay.last_out;
    else
        has_previous =
            m->type == READING_INTERVAL && source_previous_register(&m->source, r->seq, &previous);
    double reg = relay_register(&m->relay, r->reg);
    struct spool_entry e = {
        .seq = r->seq,
        .ts_us = r->ts_us,
        .value = schedule_wire_value(m->type, reg, has_previous, previous),
    };
    return e;
}

int meter_generate(struct meter *m, int64_t now_wall_us, size_t window)
{
    struct spool_entry chunk[METER_SPOOL_CHUNK];
    size_t n = 0;
    while (m->has_next && spool_pending(&m->spool) + n < window &&
           schedule_due_us(&m->pacing, m->next.ts_us) <= now_wall_us) {
        chunk[n++] = next_entry(m);
        m->next_seq++;
        m->has_next = source_get(&m->source, m->next_seq, &m->next);
        if (n == METER_SPOOL_CHUNK || !m->has_next) {
            if (spool_append(&m->spool, chunk, n) != 0)
                return -1;
            m->counters.generated += n;
            n = 0;
        }
    }
    if (n > 0) {
        if (spool_append(&m->spool, chunk, n) != 0)
            return -1;
        m->counters.generated += n;
    }
    m->exhausted = !m->has_next;
    return 0;
}

int64_t meter_next_due(const struct meter *m)
{
    return m->has_next && !m->failed ? schedule_due_us(&m->pacing, m->next.ts_us) : INT64_MAX;
}

bool meter_ready(const struct meter *m, int64_t now_mono_us)
{
    return !m->failed && m->in_flight == 0 && spool_pending(&m->spool) > 0 &&
           m->retry_at_mono <= now_mono_us;
}

int meter_start_request(struct meter *m)
{
    size_t pending = spool_pending(&m->spool);
    size_t n = pending < m->batch_limit ? pending : m->batch_limit;
    if (client_prepare(&m->client, spool_peek(&m->spool, 0), n, schedule_member(m->type)) != 0)
        return -1;
    m->in_flight = n;
    m->counters.sent += n;
    return 0;
}

int meter_finish_request(struct meter *m, const struct client_answer *answer, int64_t now_mono_us,
                         uint64_t random_bits)
{
    size_t n = m->in_flight;
    m->in_flight = 0;
    switch (answer->verdict) {
    case RETRY_ACK:
        m->attempt = 0;
        m->counters.acked += n;
        if (answer->duplicates > 0)
            m->counters.duplicates += (uint64_t)answer->duplicates;
        if (spool_ack(&m->spool, n) != 0 || spool_compact(&m->spool, METER_COMPACT_BYTES) != 0)
            return -1;
        return 0;
    case RETRY_SHRINK:
        if (n > 1) {
            m->batch_limit = n / 2;
            return 0;
        }
        break;
    case RETRY_AGAIN:
        m->counters.retries++;
        m->retry_at_mono =
            now_mono_us + retry_delay_us(m->attempt, random_bits, answer->retry_after_us);
        m->attempt++;
        return 0;
    case RETRY_FATAL:
        break;
    }
    m->failed = true;
    snprintf(m->failure, sizeof m->failure, "%s", answer->message);
    return 0;
}

/*
 * Report every `seconds` from the next reading on: it comes `seconds` after
 * the last one spooled. The spool's header records the new time line, so a
 * restart continues on it. 0, or -1 with a message in `err`.
 */
static int set_interval(struct meter *m, int64_t seconds, char *err, size_t err_size)
{
    if (source_has_timestamps(&m->source)) {
        snprintf(err, err_size,
                 "the readings' timestamps come from the CSV file: its interval "
                 "cannot change");
        return -1;
    }
    if (!m->pacing.paced) {
        snprintf(err, err_size, "a --backfill run's time line cannot change");
        return -1;
    }
    int64_t interval = seconds * US_PER_SEC;
    int64_t next_ts = m->spool.has_last ? m->spool.last.ts_us + interval
                      : m->has_next     ? m->next.ts_us
                                        : m->source.start_us + m->next_seq * m->source.interval_us;
    struct spool_meta before = m->spool.meta;
    m->spool.meta.start_us = next_ts - m->next_seq * interval;
    m->spool.meta.interval_us = interval;
    if (spool_compact(&m->spool, -1) != 0) {
        snprintf(err, err_size, "cannot record the new interval in spool %s: %s", m->spool.path,
                 strerror(errno));
        m->spool.meta = before;
        return -1;
    }
    source_rebase(&m->source, m->next_seq, next_ts, interval);
    m->has_next = source_get(&m->source, m->next_seq, &m->next);
    m->exhausted = !m->has_next;
    return 0;
}

void meter_obey(void *ctx, const struct command_order *order, struct command_outcome *out)
{
    struct meter *m = ctx;
    out->action = order->action;
    switch (order->action) {
    case COMMAND_RELAY:
        relay_switch(&m->relay, order->relay_on);
        out->succeeded = true;
        out->relay_on = order->relay_on;
        return;
    case COMMAND_INTERVAL:
        out->succeeded = set_interval(m, order->seconds, out->error, sizeof out->error) == 0;
        out->seconds = order->seconds;
        return;
    case COMMAND_REFUSE:
        break;
    }
    out->succeeded = false;
    snprintf(out->error, sizeof out->error, "%s", order->error);
}

void meter_command(struct meter *m, const struct command_order *order, struct command_outcome *out)
{
    if (!command_handle(&m->obeyed, order, meter_obey, m, out))
        return; /* a redelivery: answered as before */
    if (out->succeeded)
        m->counters.commands_obeyed++;
    else
        m->counters.commands_failed++;
}

bool meter_done(const struct meter *m)
{
    return m->failed || (m->exhausted && m->in_flight == 0 && spool_pending(&m->spool) == 0);
}

void meter_close(struct meter *m)
{
    commander_cleanup(&m->commander);
    client_cleanup(&m->client);
    spool_close(&m->spool);
    source_close(&m->source);
}
