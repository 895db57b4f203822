#include "sender.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/crypto.h"
#include "../base/log.h"
#include "../db/notifications.h"
#include "addrclass.h"
#include "retry.h"
#include "signature.h"

#define CLAIM_BATCH 4
#define ATTEMPT_MS  10000
/* A claim's lease outlasts every attempt of its batch, one after the other,
 * with room: no other sender takes a row while this one may still be
 * posting it. A sender that dies leaves its rows to others after this. */
#define LEASE_S        (CLAIM_BATCH * ATTEMPT_MS / 1000 + 60)
#define CONNECT_MS     5000
#define SWEEP_EVERY_S  5.0 /* offline within 30 s of the deadline, with room */
#define IDLE_WAIT_MS   5000
#define BACKOFF_MAX_MS 5000
#define SECRET_MAX     256

struct sender {
    struct sender_options opts;
    unsigned char key[SECRETBOX_KEY_LEN];
    char *url;
    pthread_t thread;
    int wake[2]; /* self-pipe: sender_stop() writes */
    atomic_bool stopping;
};

bool sender_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void sender_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- one attempt ----------------------------------------------------------- */

struct attempt {
    bool allow_private;
    bool refused;   /* the address connected to was not public */
    size_t read;    /* bytes of the answer read */
    bool truncated; /* the answer went past SENDER_BODY_CAP: reading stopped */
};

/* libcurl's hook before each connect: the address it resolved and is about
 * to use, which is the one to judge (not what the webhook's creation saw). */
static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct attempt *a = ctx;
    (void)purpose;
    if (!a->allow_private && !addrclass_is_public(&addr->addr)) {
        a->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* Discards the answer, stopping after SENDER_BODY_CAP bytes: a receiver
 * cannot make the server read more. */
static size_t discard_body(char *data, size_t size, size_t n, void *ctx)
{
    struct attempt *a = ctx;
    (void)data;
    size_t len = size * n;
    if (a->read + len > SENDER_BODY_CAP) {
        a->truncated = true;
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    a->read += len;
    return len;
}

/* Opens the webhook's secret into out (NUL-terminated); false when it does
 * not open (tampered, or sealed under another JWT secret). */
static bool open_secret(const struct sender *s, const struct outbox_claim *cl,
                        char out[SECRET_MAX + 1])
{
    if (cl->box_len < SECRETBOX_OVERHEAD || cl->box_len - SECRETBOX_OVERHEAD > SECRET_MAX)
        return false;
    size_t len = cl->box_len - SECRETBOX_OVERHEAD;
    if (!secretbox_open(s->key, cl->box, cl->box_len, (unsigned char *)out))
        return false;
    out[len] = '\0';
    return true;
}

static void set_error(char *err, size_t errlen, const char *detail)
{
    snprintf(err, errlen, "%s", detail);
}

/* POSTs cl's payload, signed; fills r (status_code, error, delivered). */
static void attempt_post(struct sender *s, const struct outbox_claim *cl, struct outbox_result *r,
                         char *err, size_t errlen)
{
    char secret[SECRET_MAX + 1], signature[SIGNATURE_MAX], sig_header[SIGNATURE_MAX + 32],
        id_header[64];
    size_t body_len = strlen(cl->payload);
    r->status_code = 0;
    r->delivered = false;
    if (!open_secret(s, cl, secret)) {
        set_error(err, errlen, "the webhook's secret cannot be opened");
        return;
    }
    bool signed_ok = signature_header(secret, strlen(secret), (long long)time(NULL), cl->payload,
                                      body_len, signature);
    explicit_bzero(secret, sizeof secret);
    if (!signed_ok) {
        set_error(err, errlen, "signing failed");
        return;
    }
    snprintf(sig_header, sizeof sig_header, "Wattline-Signature: %s", signature);
    snprintf(id_header, sizeof id_header, "Wattline-Event-Id: %lld", cl->event_id);

    struct attempt a = {.allow_private = s->opts.allow_private};
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL, *h;
    const char *lines[] = {"Content-Type: application/json", "User-Agent: Wattline-Webhooks",
                           "Expect:", id_header, sig_header};
    bool built = curl != NULL;
    for (size_t i = 0; built && i < sizeof lines / sizeof lines[0]; i++) {
        h = curl_slist_append(headers, lines[i]);
        if (!h)
            built = false;
        else
            headers = h;
    }
    if (!built) {
        set_error(err, errlen, "out of memory");
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return;
    }
    curl_easy_setopt(curl, CURLOPT_URL, cl->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)ATTEMPT_MS);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, cl->payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body_len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &a);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    r->status_code = (int)code;
    if (a.refused)
        set_error(err, errlen, "refused: the address is loopback, private or link-local");
    else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && a.truncated && code > 0))
        set_error(err, errlen, curl_easy_strerror(rc));
    else if (code < 200 || code > 299)
        snprintf(err, errlen, "HTTP %ld", code);
    else
        r->delivered = true;
    if (a.refused)
        r->status_code = 0;
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}

static double random_unit(void)
{
    unsigned char b[4];
    if (!crypto_random(b, sizeof b))
        return 0.5;
    unsigned long v =
        (unsigned long)b[0] << 24 | (unsigned long)b[1] << 16 | (unsigned long)b[2] << 8 | b[3];
    return (double)v / 4294967296.0;
}

static enum status deliver(struct sender *s, struct db_conn *c, const struct outbox_claim *cl)
{
    char err[256] = "";
    struct outbox_result r = {.delivery_id = cl->delivery_id,
                              .webhook_id = cl->webhook_id,
                              .attempt = cl->attempt,
                              .fail_window_s = s->opts.fail_window_s};
    attempt_post(s, cl, &r, err, sizeof err);
    if (!r.delivered) {
        r.error = err;
        r.retry_in_ms = retry_delay_ms(cl->attempt, s->opts.retry_divisor, random_unit());
        if (r.retry_in_ms < 0)
            log_warn("webhooks: delivery %lld given up after %d attempts (%s)", cl->delivery_id,
                     cl->attempt, err);
    }
    return db_outbox_finish(c, &r);
}

/* ---- the loop --------------------------------------------------------------- */

static struct db_conn *sender_connect(struct sender *s)
{
    struct db_pool_options opts = {.url = s->url,
                                   .size = 1,
                                   .statement_timeout_ms = 30000,
                                   .connect_timeout_s = 3,
                                   .application_name = "wattline-webhooks",
                                   .timeout_s = s->opts.db_timeout_s};
    char err[256];
    struct db_conn *c = db_connect(&opts, err, sizeof err);
    if (!c) {
        log_warn("webhooks: %s", err);
        return NULL;
    }
    if (db_outbox_listen(c) != STATUS_OK) {
        db_disconnect(c);
        return NULL;
    }
    return c;
}

/* Claims and delivers until nothing is due; false when the connection broke. */
static bool drain_due(struct sender *s, struct db_conn *c)
{
    while (!atomic_load(&s->stopping)) {
        struct outbox_claim_list list;
        enum status st = db_outbox_claim(c, CLAIM_BATCH, LEASE_S, &list);
        if (st != STATUS_OK)
            return st != STATUS_UNAVAILABLE;
        for (int i = 0; i < list.count && st != STATUS_UNAVAILABLE; i++)
            st = deliver(s, c, &list.items[i]);
        int n = list.count;
        outbox_claim_list_free(&list);
        if (st == STATUS_UNAVAILABLE)
            return false;
        if (n < CLAIM_BATCH)
            return true;
    }
    return true;
}

static int wait_ms(struct db_conn *c, double next_sweep)
{
    long long due = -1;
    long long ms = IDLE_WAIT_MS;
    if (db_outbox_next_due(c, &due) == STATUS_OK && due >= 0 && due < ms)
        ms = due;
    long long sweep = (long long)((next_sweep - clock_mono_s()) * 1000.0);
    if (sweep < ms)
        ms = sweep < 0 ? 0 : sweep;
    return (int)ms;
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    struct db_conn *c = NULL;
    int backoff_ms = 100;
    double next_sweep = 0;
    while (!atomic_load(&s->stopping)) {
        if (!c && !(c = sender_connect(s))) {
            struct pollfd pfd = {.fd = s->wake[0], .events = POLLIN};
            poll(&pfd, 1, backoff_ms);
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
            continue;
        }
        backoff_ms = 100;
        bool alive = true;
        if (clock_mono_s() >= next_sweep) {
            int gone = 0;
            enum status st = db_devices_sweep_offline(c, &gone);
            alive = st != STATUS_UNAVAILABLE;
            if (gone > 0)
                log_info("devices: %d went offline", gone);
            next_sweep = clock_mono_s() + SWEEP_EVERY_S;
        }
        alive = alive && drain_due(s, c);
        if (alive && !atomic_load(&s->stopping))
            alive = db_outbox_wait(c, s->wake[0], wait_ms(c, next_sweep)) == STATUS_OK;
        if (!alive) {
            log_warn("webhooks: database connection lost; reconnecting");
            db_disconnect(c);
            c = NULL;
        }
    }
    db_disconnect(c);
    return NULL;
}

struct sender *sender_start(const struct sender_options *opts)
{
    struct sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->opts = *opts;
    memcpy(s->key, opts->key, sizeof s->key);
    s->opts.key = s->key;
    s->url = strdup(opts->database_url);
    if (!s->url || pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(s->url);
        free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        close(s->wake[0]);
        close(s->wake[1]);
        free(s->url);
        free(s);
        return NULL;
    }
    return s;
}

void sender_stop(struct sender *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    ssize_t ignored = write(s->wake[1], "x", 1);
    (void)ignored; /* the pipe is only a nudge: the flag is what counts */
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s->url);
    memset(s->key, 0, sizeof s->key);
    free(s);
}
