/*
 * source: where a simulated meter's readings come from, as a numbered
 * sequence.
 *
 * Reading `seq` of a source is always the same (timestamp, register) pair, so
 * a run can be resumed at any sequence number. Timestamps are
 * start + seq * interval for sources without their own (the classic CSV, the
 * profile), or the CSV's timestamps. A source yields the readings with
 * first_seq <= seq < end_seq and ts < end_ts.
 */
#ifndef WATTLINE_SIM_SOURCE_H
#define WATTLINE_SIM_SOURCE_H

#include "csv.h"
#include "profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOURCE_DESC_MAX 1100

enum source_kind { SOURCE_CSV, SOURCE_PROFILE };

struct source {
    enum source_kind kind;
    struct csv_data csv;
    struct profile profile;
    int64_t start_us;
    int64_t interval_us;
    int64_t first_seq;
    int64_t end_seq;            /* INT64_MAX: no end */
    int64_t end_ts_us;          /* INT64_MAX: no end */
    char desc[SOURCE_DESC_MAX]; /* "csv:PATH" or "profile:household seed=N" */
};

struct reading {
    int64_t seq;
    int64_t ts_us;
    double reg; /* cumulative register, kWh */
};

/* Open a CSV file as a source. 0, or -1 with a message in `err`. */
int source_open_csv(struct source *s, const char *path, char *err, size_t err_size);

/* Open a generated profile ("household") as a source. 0 or -1 with `err`. */
int source_open_profile(struct source *s, const char *name, uint64_t seed, char *err,
                        size_t err_size);

/* Parse a source spec: "profile:NAME", "csv:PATH" or a bare CSV path. */
int source_open_spec(struct source *s, const char *spec, uint64_t seed, char *err, size_t err_size);

/* True if readings carry their own timestamps (a "ts,value" CSV). */
bool source_has_timestamps(const struct source *s);

/* Number of readings the source holds in all (INT64_MAX for a profile). */
int64_t source_length(const struct source *s);

/* Set the time line of sources without timestamps and clear any bounds. */
void source_set_timeline(struct source *s, int64_t start_us, int64_t interval_us);

/*
 * Change the interval of a source without timestamps from reading `seq` on,
 * which is stamped `ts_us`: the readings before it keep their places and the
 * bounds their sequence numbers.
 */
void source_rebase(struct source *s, int64_t seq, int64_t ts_us, int64_t interval_us);

/*
 * Limit the readings to the time range [from, to) (INT64_MIN/INT64_MAX for
 * open ends) and to at most `count` of them (INT64_MAX: all).
 */
void source_set_bounds(struct source *s, int64_t from_us, int64_t to_us, int64_t count);

/* Reading `seq` within the bounds: true and *out, or false past the end. */
bool source_get(struct source *s, int64_t seq, struct reading *out);

/*
 * The register of the reading before `seq`, ignoring the bounds (the energy of
 * an interval device's reading is the difference to it). False if there is
 * none (the first line of a CSV).
 */
bool source_previous_register(struct source *s, int64_t seq, double *reg);

/* Release the source; safe on a zeroed struct. */
void source_close(struct source *s);

#endif
