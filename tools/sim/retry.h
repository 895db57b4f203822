/*
 * retry: what to do with an answer, and how long to wait before trying again.
 *
 * Policy: network errors, 408, 429 and 5xx are retried for as long as it
 * takes (the readings wait in the spool); any other 4xx or a 3xx means the
 * server will not take these readings however often they are sent, so the
 * run stops. 413 (batch too large) is retried with a smaller batch. Waits use
 * exponential backoff with full jitter (base 200 ms, cap 30 s), and never
 * less than a Retry-After the server sent (itself capped at an hour).
 */
#ifndef WATTLINE_SIM_RETRY_H
#define WATTLINE_SIM_RETRY_H

#include <stdint.h>

#define RETRY_BASE_US      INT64_C(200000)
#define RETRY_CAP_US       INT64_C(30000000)
#define RETRY_AFTER_MAX_US INT64_C(3600000000)

enum retry_verdict {
    RETRY_ACK,    /* stored: the readings are acknowledged */
    RETRY_AGAIN,  /* transient: wait and send the same readings again */
    RETRY_SHRINK, /* too large: send fewer readings at once */
    RETRY_FATAL,  /* refused: stop */
};

/* Verdict for a complete HTTP answer with this status code. */
enum retry_verdict retry_classify_status(long status);

/* Full-jitter backoff for the attempt-th consecutive failure (0-based): a
 * uniform wait in [0, min(cap, base * 2^attempt)] drawn from `random_bits`. */
int64_t retry_backoff_us(unsigned attempt, uint64_t random_bits);

/*
 * A Retry-After header value (delta-seconds or an HTTP date) as a wait from
 * `now_us`, capped at RETRY_AFTER_MAX_US; -1 if the value is not valid.
 */
int64_t retry_after_parse(const char *value, int64_t now_us);

/* The wait before the next attempt: the backoff, or longer if the server asked. */
int64_t retry_delay_us(unsigned attempt, uint64_t random_bits, int64_t retry_after_us);

/* Next number of a splitmix64 generator (jitter needs no cryptographic quality). */
uint64_t retry_random(uint64_t *state);

#endif
