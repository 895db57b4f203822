#include "clock.h"

static double seconds_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clock_wall_s(void)
{
    return seconds_of(CLOCK_REALTIME);
}

double clock_mono_s(void)
{
    return seconds_of(CLOCK_MONOTONIC);
}

struct timespec clock_deadline_ms(clockid_t id, int ms)
{
    struct timespec t;
    clock_gettime(id, &t);
    if (ms < 0)
        ms = 0;
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}
