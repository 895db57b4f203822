/* clock: the process's one set of clock readings.
 *
 * Wall time (CLOCK_REALTIME) is for what is shown or stored; monotonic time
 * is for measuring intervals and for deadlines, which must not jump when the
 * wall clock is set. */
#ifndef WATTLINE_CLOCK_H
#define WATTLINE_CLOCK_H

#include <time.h>

/* Unix time in seconds, with the fraction. */
double clock_wall_s(void);
/* Seconds on the monotonic clock (an arbitrary origin). */
double clock_mono_s(void);
/* The absolute time ms milliseconds from now on clock id, normalised, for
 * pthread_cond_timedwait() with a condition variable on that clock. */
struct timespec clock_deadline_ms(clockid_t id, int ms);

#endif
