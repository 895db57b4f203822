/*
 * progress: what the simulator tells people while it runs and when it ends.
 * A self-rewriting status line on a terminal (stderr), event lines (retries,
 * refusals) unless --quiet, and the summary on stdout.
 */
#ifndef WATTLINE_SIM_PROGRESS_H
#define WATTLINE_SIM_PROGRESS_H

#include "meter.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress {
    bool quiet;      /* no status line, no event lines except refusals */
    bool status;     /* draw the status line (stderr is a terminal) */
    bool line_shown; /* the status line is on screen */
    int64_t last_draw_mono_us;
};

/* Totals over a set of meters. */
struct progress_totals {
    struct meter_counters counters;
    uint64_t pending;
    size_t meters;
    size_t failed;
    size_t commands; /* meters that take commands */
};

void progress_init(struct progress *p, bool quiet, bool terminal);

void progress_sum(const struct meter *meters, size_t count, struct progress_totals *out);

/* "sent 145  acked 140  dup 0  pending 5  retries 2" (+ "  commands 3/1 failed" with
 * --commands, "  devices 3/4" for a gateway). */
size_t progress_format(const struct progress_totals *t, char *buf, size_t size);

/* Redraw the status line, at most 5 times a second unless `force`. */
void progress_draw(struct progress *p, const struct progress_totals *t, int64_t now_mono_us,
                   bool force);

/* An event line on stderr, printed unless quiet (or always, if `important`). */
void progress_event(struct progress *p, bool important, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Leave the status line (newline) before the summary. */
void progress_end(struct progress *p);

/* The summary on stdout, one line per failed device after the totals. */
void progress_summary(const struct meter *meters, size_t count, const char *spool_hint);

#endif
