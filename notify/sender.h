/* sender: the webhook sender, one thread per instance, on a connection of its
 * own that LISTENs on the outbox channel. Woken by a notification (or its
 * retry timer), it claims due deliveries (db/notifications.h: FOR UPDATE
 * SKIP LOCKED, so instances share the work and each delivery is attempted
 * by one at a time), POSTs each with libcurl, records the attempt and
 * reschedules failures (retry.h). Every few seconds it also sweeps devices
 * that went silent (db_devices_sweep_offline).
 *
 * Outbound HTTP: connect timeout 5 s, whole attempt 10 s, no redirects, only
 * http and https, no proxy from the environment, TLS verified, at most
 * SENDER_BODY_CAP bytes of an answer read; the address actually connected to
 * is checked against loopback/private/link-local ranges (addrclass.h)
 * unless allow_private, so a DNS answer that changed since the webhook was
 * created (rebinding) gains nothing. */
#ifndef WATTLINE_NOTIFY_SENDER_H
#define WATTLINE_NOTIFY_SENDER_H

#include <stdbool.h>

#include "../base/secretbox.h"

#define SENDER_BODY_CAP (64 * 1024)

struct sender_options {
    const char *database_url;
    int db_timeout_s;
    const unsigned char *key; /* SECRETBOX_KEY_LEN bytes: opens the webhooks' secrets */
    bool allow_private;       /* WEBHOOK_ALLOW_PRIVATE */
    int retry_divisor;        /* WEBHOOK_RETRY_DIVISOR */
    int fail_window_s;        /* WEBHOOK_FAIL_WINDOW_S */
};

struct sender;

/* Once per process, before any thread starts (libcurl's global state). */
bool sender_global_init(void);
void sender_global_cleanup(void);

/* Starts the thread; it connects by itself and retries until stopped. The
 * options are copied. NULL when the thread cannot start. */
struct sender *sender_start(const struct sender_options *opts);

/* Stops the thread (an attempt in flight ends within its 10 s), frees.
 * NULL is a no-op. */
void sender_stop(struct sender *s);

#endif
