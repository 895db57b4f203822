/* reply: the problem answers that several handlers give for the same domain
 * outcome, written once so that they read the same everywhere. Each returns
 * the HTTP status it set. */
#ifndef WATTLINE_REPLY_H
#define WATTLINE_REPLY_H

#include "handler.h"

/* 503 "busy": every password-hashing slot stayed taken. */
int reply_busy(struct response *res);

/* 429 "too_many_attempts" with Retry-After for a wait in seconds. */
int reply_throttled(struct response *res, double wait);

/* 429 "rate_limited" with Retry-After for a wait in seconds: the device
 * posted more than DEVICE_RATE_PER_MIN. */
int reply_rate_limited(struct response *res, double wait);

/* A status from accounts_hash_password(): 503 busy for STATUS_UNAVAILABLE,
 * else as response_status(). */
int reply_hash_failed(struct response *res, enum status st);

#endif
