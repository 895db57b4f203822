#define _POSIX_C_SOURCE 200809L

#include "source.h"

#include "timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int source_open_csv(struct source *s, const char *path, char *err, size_t err_size)
{
    memset(s, 0, sizeof *s);
    char why[256];
    if (csv_load(path, &s->csv, why, sizeof why) != 0) {
        snprintf(err, err_size, "%s: %s", path, why);
        return -1;
    }
    s->kind = SOURCE_CSV;
    if ((size_t)snprintf(s->desc, sizeof s->desc, "csv:%s", path) >= sizeof s->desc ||
        strchr(path, '\n') != NULL) {
        snprintf(err, err_size, "CSV path too long or with a newline");
        csv_data_free(&s->csv);
        return -1;
    }
    source_set_timeline(s, 0, 10 * US_PER_MIN);
    return 0;
}

int source_open_profile(struct source *s, const char *name, uint64_t seed, char *err,
                        size_t err_size)
{
    memset(s, 0, sizeof *s);
    if (profile_init(&s->profile, name, seed) != 0) {
        snprintf(err, err_size, "unknown profile \"%s\" (known: household)", name);
        return -1;
    }
    s->kind = SOURCE_PROFILE;
    snprintf(s->desc, sizeof s->desc, "profile:%s seed=%" PRIu64, name, seed);
    source_set_timeline(s, 0, 10 * US_PER_MIN);
    return 0;
}

int source_open_spec(struct source *s, const char *spec, uint64_t seed, char *err, size_t err_size)
{
    if (strncmp(spec, "profile:", 8) == 0)
        return source_open_profile(s, spec + 8, seed, err, err_size);
    if (strncmp(spec, "csv:", 4) == 0)
        spec += 4;
    return source_open_csv(s, spec, err, err_size);
}

bool source_has_timestamps(const struct source *s)
{
    return s->kind == SOURCE_CSV && s->csv.ts_us != NULL;
}

int64_t source_length(const struct source *s)
{
    return s->kind == SOURCE_CSV ? (int64_t)s->csv.count : INT64_MAX;
}

void source_set_timeline(struct source *s, int64_t start_us, int64_t interval_us)
{
    s->start_us = start_us;
    s->interval_us = interval_us;
    s->first_seq = 0;
    s->end_seq = source_length(s);
    s->end_ts_us = INT64_MAX;
}

void source_rebase(struct source *s, int64_t seq, int64_t ts_us, int64_t interval_us)
{
    s->start_us = ts_us - seq * interval_us;
    s->interval_us = interval_us;
}

/* First sequence number whose timestamp is >= ts (binary search on the CSV). */
static int64_t first_seq_at(const struct source *s, int64_t ts)
{
    if (source_has_timestamps(s)) {
        size_t lo = 0, hi = s->csv.count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->csv.ts_us[mid] < ts)
                lo = mid + 1;
            else
                hi = mid;
        }
        return (int64_t)lo;
    }
    if (ts <= s->start_us)
        return 0;
    return (ts - s->start_us + s->interval_us - 1) / s->interval_us;
}

void source_set_bounds(struct source *s, int64_t from_us, int64_t to_us, int64_t count)
{
    s->first_seq = from_us == INT64_MIN ? 0 : first_seq_at(s, from_us);
    s->end_ts_us = to_us;
    int64_t length = source_length(s);
    s->end_seq = count < length - s->first_seq ? s->first_seq + count : length;
}

/* Reading `seq` of the whole source, ignoring bounds; seq may be negative for timeless ones. */
static bool raw_reading(struct source *s, int64_t seq, struct reading *out)
{
    out->seq = seq;
    if (s->kind == SOURCE_CSV) {
        if (seq < 0 || seq >= (int64_t)s->csv.count)
            return false;
        out->ts_us =
            source_has_timestamps(s) ? s->csv.ts_us[seq] : s->start_us + seq * s->interval_us;
        out->reg = s->csv.values[seq];
        return true;
    }
    out->ts_us = s->start_us + seq * s->interval_us;
    out->reg = profile_register_at(&s->profile, out->ts_us);
    return true;
}

bool source_get(struct source *s, int64_t seq, struct reading *out)
{
    if (seq < s->first_seq || seq >= s->end_seq)
        return false;
    if (!raw_reading(s, seq, out))
        return false;
    return out->ts_us < s->end_ts_us;
}

bool source_previous_register(struct source *s, int64_t seq, double *reg)
{
    struct reading r;
    if (!raw_reading(s, seq - 1, &r))
        return false;
    *reg = r.reg;
    return true;
}

void source_close(struct source *s)
{
    csv_data_free(&s->csv);
    memset(s, 0, sizeof *s);
}
