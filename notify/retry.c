#include "retry.h"

static const long long SCHEDULE_MS[RETRY_MAX_ATTEMPTS - 1] = {
    10 * 1000LL, 60 * 1000LL, 300 * 1000LL, 1800 * 1000LL, 7200 * 1000LL, 21600 * 1000LL,
};

long long retry_delay_ms(int attempt, int divisor, double jitter)
{
    if (attempt < 1 || attempt >= RETRY_MAX_ATTEMPTS)
        return -1;
    if (divisor < 1)
        divisor = 1;
    if (!(jitter >= 0.0 && jitter < 1.0)) /* also NaN */
        jitter = 0.5;
    double ms = (double)SCHEDULE_MS[attempt - 1] * (0.8 + 0.4 * jitter) / divisor;
    return ms < 1.0 ? 1 : (long long)ms;
}
