#include "reply.h"

#include <stdio.h>

#include "../auth/throttle.h"

int reply_busy(struct response *res)
{
    return response_problem(res, 503, "busy", NULL,
                            "too many password checks in progress; retry shortly");
}

int reply_throttled(struct response *res, double wait)
{
    char seconds[24];
    long retry = throttle_retry_after(wait);
    snprintf(seconds, sizeof seconds, "%ld", retry);
    response_problem(res, 429, "too_many_attempts", NULL,
                     "too many failed attempts; retry in %ld seconds", retry);
    response_header(res, "Retry-After", seconds);
    return 429;
}

int reply_rate_limited(struct response *res, double wait)
{
    char seconds[24];
    long retry = throttle_retry_after(wait);
    snprintf(seconds, sizeof seconds, "%ld", retry);
    response_problem(res, 429, "rate_limited", NULL,
                     "too many ingestion requests from this device; retry in %ld seconds", retry);
    response_header(res, "Retry-After", seconds);
    return 429;
}

int reply_hash_failed(struct response *res, enum status st)
{
    return st == STATUS_UNAVAILABLE ? reply_busy(res) : response_status(res, st);
}
