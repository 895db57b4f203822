#include "progress.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#define PROGRESS_REDRAW_US 200000

void progress_init(struct progress *p, bool quiet, bool terminal)
{
    p->quiet = quiet;
    p->status = terminal && !quiet;
    p->line_shown = false;
    p->last_draw_mono_us = 0;
}

void progress_sum(const struct meter *meters, size_t count, struct progress_totals *out)
{
    *out = (struct progress_totals){.meters = count};
    for (size_t i = 0; i < count; i++) {
        const struct meter_counters *c = &meters[i].counters;
        out->counters.generated += c->generated;
        out->counters.sent += c->sent;
        out->counters.acked += c->acked;
        out->counters.duplicates += c->duplicates;
        out->counters.retries += c->retries;
        out->counters.commands_obeyed += c->commands_obeyed;
        out->counters.commands_failed += c->commands_failed;
        out->commands += meters[i].commands;
        out->pending += spool_pending(&meters[i].spool);
        out->failed += meters[i].failed;
    }
}

size_t progress_format(const struct progress_totals *t, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "sent %" PRIu64 "  acked %" PRIu64 "  dup %" PRIu64 "  pending %" PRIu64
                     "  retries %" PRIu64,
                     t->counters.sent, t->counters.acked, t->counters.duplicates, t->pending,
                     t->counters.retries);
    if (n >= 0 && (size_t)n < size && t->commands > 0)
        n += snprintf(buf + n, size - (size_t)n, "  commands %" PRIu64 "/%" PRIu64 " failed",
                      t->counters.commands_obeyed + t->counters.commands_failed,
                      t->counters.commands_failed);
    if (n >= 0 && (size_t)n < size && t->meters > 1)
        n += snprintf(buf + n, size - (size_t)n, "  devices %zu/%zu", t->meters - t->failed,
                      t->meters);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

void progress_draw(struct progress *p, const struct progress_totals *t, int64_t now_mono_us,
                   bool force)
{
    if (!p->status || (!force && now_mono_us - p->last_draw_mono_us < PROGRESS_REDRAW_US))
        return;
    char line[160];
    progress_format(t, line, sizeof line);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->line_shown = true;
    p->last_draw_mono_us = now_mono_us;
}

void progress_event(struct progress *p, bool important, const char *fmt, ...)
{
    if (p->quiet && !important)
        return;
    if (p->line_shown) {
        fputs("\r\033[K", stderr);
        p->line_shown = false;
        p->last_draw_mono_us = 0; /* redraw at the next tick */
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("wattline-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void progress_end(struct progress *p)
{
    if (p->line_shown)
        fputc('\n', stderr);
    p->line_shown = false;
}

void progress_summary(const struct meter *meters, size_t count, const char *spool_hint)
{
    struct progress_totals t;
    progress_sum(meters, count, &t);
    printf("wattline-sim: sent %" PRIu64 ", acknowledged %" PRIu64 " (duplicates %" PRIu64
           "), pending %" PRIu64 ", retries %" PRIu64,
           t.counters.sent, t.counters.acked, t.counters.duplicates, t.pending, t.counters.retries);
    if (count > 1)
        printf(", devices %zu (%zu stopped)", count, t.failed);
    if (t.commands > 0)
        printf(", commands obeyed %" PRIu64 ", failed %" PRIu64, t.counters.commands_obeyed,
               t.counters.commands_failed);
    if (t.pending > 0 && spool_hint != NULL)
        printf("; pending readings are kept in %s and sent on the next run", spool_hint);
    putchar('\n');
    for (size_t i = 0; i < count; i++)
        if (meters[i].failed)
            printf("wattline-sim: %s%sstopped: %s\n", meters[i].name, meters[i].name[0] ? ": " : "",
                   meters[i].failure);
    fflush(stdout);
}
