/* signature: the Wattline-Signature header of a delivery:
 * "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>".
 * Pure. */
#ifndef WATTLINE_NOTIFY_SIGNATURE_H
#define WATTLINE_NOTIFY_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

/* "t=" 20 digits ",v1=" 64 hex digits, NUL. */
#define SIGNATURE_MAX 96

/* Signs body[0..len) at time t with secret (the HMAC key as its UTF-8
 * bytes) into out; false when out of memory or OpenSSL fails. */
bool signature_header(const char *secret, size_t secret_len, long long t, const char *body,
                      size_t len, char out[SIGNATURE_MAX]);

#endif
