/*
 * spool: the append-only file that keeps every reading until the server has
 * acknowledged it.
 *
 * Layout (text, one record per line):
 *   #wattline-sim-spool 1 type=cumulative start=2026-11-20T00:00:00Z interval_us=600000000
 * source=... 2026-11-20T00:00:00Z,48213.7,0          a reading: ts, value as sent, sequence number
 *   #ack 1234                               everything up to byte 1234 is acknowledged
 *
 * A reading is written and fdatasync'd before it is first sent, so a crash
 * never loses one. Ack records are not synced: losing one only means the
 * readings are sent again, and the server deduplicates them by (device, ts).
 * The header ties the file to one run (reading type, time line and source):
 * a restarted simulator resends what is not acknowledged and continues after
 * the last reading in the file. A torn last line left by a crash is dropped.
 * The file is locked (flock) while open, so two simulators cannot share it.
 */
#ifndef WATTLINE_SIM_SPOOL_H
#define WATTLINE_SIM_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPOOL_SOURCE_MAX 1100

/* What the header records about the run. */
struct spool_meta {
    char type[16]; /* "cumulative" or "interval" */
    int64_t start_us;
    int64_t interval_us;
    char source[SPOOL_SOURCE_MAX]; /* source_describe(); no newline */
};

struct spool_entry {
    int64_t seq;
    int64_t ts_us;
    double value; /* as sent: meter_kwh or kwh */
    off_t end;    /* file offset just past the entry's line */
};

struct spool {
    int fd;
    char *path;
    struct spool_meta meta;
    bool resumed;  /* the file existed and held a run */
    bool has_last; /* `last` is the newest reading ever written */
    struct spool_entry last;
    struct spool_entry *pending; /* unacknowledged readings, oldest first */
    size_t head, count, capacity;
    off_t size;
    off_t acked; /* offset up to which everything is acknowledged */
};

/*
 * Open or create the spool at `path`. A new or empty file gets a header from
 * `meta`; an existing one keeps its own header, which lands in sp->meta
 * (sp->resumed set) for the caller to check against what it wants. Returns 0,
 * or -1 with a message in `err` (unreadable, corrupt, locked by another
 * process).
 */
int spool_open(struct spool *sp, const char *path, const struct spool_meta *meta, char *err,
               size_t err_size);

/* Append `n` readings (their `end` is ignored) and fdatasync. 0 or -1 (errno). */
int spool_append(struct spool *sp, const struct spool_entry *entries, size_t n);

/* Unacknowledged readings. spool_peek(sp, 0) is the oldest; borrowed. */
size_t spool_pending(const struct spool *sp);
const struct spool_entry *spool_peek(const struct spool *sp, size_t i);

/* Mark the `n` oldest pending readings acknowledged. 0 or -1 (errno). */
int spool_ack(struct spool *sp, size_t n);

/*
 * Rewrite the file without acknowledged readings (keeping the newest reading so
 * a restart knows where to continue) when they take more than `threshold`
 * bytes. Atomic: a new file is synced and renamed over the old. 0 or -1 (errno).
 */
int spool_compact(struct spool *sp, off_t threshold);

/* Close the file and free memory; safe on a zeroed struct. */
void spool_close(struct spool *sp);

/* One data line for `e` (no newline) into buf; returns its length or 0. */
size_t spool_format_entry(const struct spool_entry *e, char *buf, size_t size);

/* Parse one data line (no newline) into `e` (end untouched). 0 or -1. */
int spool_parse_entry(const char *line, struct spool_entry *e);

#endif
