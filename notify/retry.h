/* retry: when a failed webhook delivery is tried again. Pure. */
#ifndef WATTLINE_NOTIFY_RETRY_H
#define WATTLINE_NOTIFY_RETRY_H

/* Attempts in all: the first and six retries. */
#define RETRY_MAX_ATTEMPTS 7

/* The wait after attempt `attempt` (1 for the first) failed, in
 * milliseconds: about 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, each scaled by
 * 0.8 + 0.4 * jitter (jitter in [0, 1): receivers that failed together do
 * not all come back together) and divided by divisor (>= 1; tests shorten
 * the schedule). -1 once the attempts are spent: give up. */
long long retry_delay_ms(int attempt, int divisor, double jitter);

#endif
