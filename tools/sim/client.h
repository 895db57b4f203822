/*
 * client: one device's HTTP conversation with the ingestion endpoint, over a
 * reusable libcurl easy handle (so its connection is kept alive between
 * requests). The event loop owns the multi handle that drives it.
 */
#ifndef WATTLINE_SIM_CLIENT_H
#define WATTLINE_SIM_CLIENT_H

#include "retry.h"
#include "spool.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_VERSION         "1.0.0"
#define CLIENT_RESPONSE_MAX 65536
#define CLIENT_MESSAGE_MAX  512

struct client_config {
    const char *url;    /* server base URL, e.g. "https://wattline.example:8443" */
    const char *cacert; /* PEM bundle of a private CA, or NULL */
};

struct client {
    CURL *easy;
    struct curl_slist *headers;
    char *body;     /* JSON of the request in flight, owned */
    char *response; /* first response_max bytes of the answer, owned */
    size_t response_len;
    size_t response_max; /* CLIENT_RESPONSE_MAX unless client_set_response_max */
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
};

/* What an exchange came to. */
struct client_answer {
    enum retry_verdict verdict;
    long status;            /* 0 when no HTTP answer arrived */
    int64_t retry_after_us; /* -1 when the server did not ask for a wait */
    long accepted;          /* from a 200 answer, -1 if absent */
    long duplicates;
    char message[CLIENT_MESSAGE_MAX]; /* what went wrong, for people */
};

/*
 * Set up the handle for `cfg` and `token`; `owner` is stored as the handle's
 * CURLOPT_PRIVATE. Returns 0, or -1 with a message in `err`.
 */
int client_init(struct client *c, const struct client_config *cfg, const char *token, void *owner,
                char *err, size_t err_size);

/* Keep up to `max` bytes of an answer (a long-poll's may be larger). 0, or -1 (out of memory). */
int client_set_response_max(struct client *c, size_t max);

/*
 * The request body for `n` readings: one reading object when n == 1, else
 * {"measurements": [...]}; `member` is "meter_kwh" or "kwh". Caller frees.
 * NULL when out of memory.
 */
char *client_build_body(const struct spool_entry *entries, size_t n, const char *member);

/* Load the handle with a request for these readings. 0, or -1 (out of memory). */
int client_prepare(struct client *c, const struct spool_entry *entries, size_t n,
                   const char *member);

/* Judge the finished transfer (`code` from the multi handle). */
void client_answer(struct client *c, CURLcode code, int64_t now_us, struct client_answer *out);

/* False for transport errors a retry cannot fix (bad URL, TLS verification). */
bool client_transport_retryable(CURLcode code);

/*
 * One line for people from a problem+json body: "HTTP 401 Unauthorized:
 * detail (code)"; falls back to the status when the body is not a problem.
 */
void client_describe_problem(long status, const char *body, size_t len, char *out, size_t size);

/* Release the handle and buffers; safe on a zeroed struct. */
void client_cleanup(struct client *c);

#endif
