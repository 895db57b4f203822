#include "retry.h"

#include "timeutil.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum retry_verdict retry_classify_status(long status)
{
    if (status >= 200 && status < 300)
        return RETRY_ACK;
    if (status == 408 || status == 429 || (status >= 500 && status < 600))
        return RETRY_AGAIN;
    if (status == 413)
        return RETRY_SHRINK;
    if (status >= 300 && status < 500)
        return RETRY_FATAL;
    /* 1xx as a final answer or nonsense: treat like a broken connection. */
    return RETRY_AGAIN;
}

int64_t retry_backoff_us(unsigned attempt, uint64_t random_bits)
{
    int64_t ceiling = RETRY_CAP_US;
    if (attempt < 32 && (RETRY_BASE_US << attempt) < RETRY_CAP_US)
        ceiling = RETRY_BASE_US << attempt;
    return (int64_t)(random_bits % (uint64_t)(ceiling + 1));
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

int64_t retry_after_parse(const char *value, int64_t now_us)
{
    while (*value == ' ' || *value == '\t')
        value++;
    char text[64];
    size_t len = strlen(value);
    while (len > 0 && isspace((unsigned char)value[len - 1]))
        len--;
    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, value, len);
    text[len] = '\0';
    int64_t wait;
    if (all_digits(text)) {
        if (len > 10)
            return RETRY_AFTER_MAX_US;
        wait = (int64_t)strtoll(text, NULL, 10) * US_PER_SEC;
    } else {
        time_t when = curl_getdate(text, NULL);
        if (when == (time_t)-1)
            return -1;
        wait = (int64_t)when * US_PER_SEC - now_us;
        if (wait < 0)
            wait = 0;
    }
    return wait > RETRY_AFTER_MAX_US ? RETRY_AFTER_MAX_US : wait;
}

int64_t retry_delay_us(unsigned attempt, uint64_t random_bits, int64_t retry_after_us)
{
    int64_t backoff = retry_backoff_us(attempt, random_bits);
    return retry_after_us > backoff ? retry_after_us : backoff;
}

uint64_t retry_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
