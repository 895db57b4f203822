#define _POSIX_C_SOURCE 200809L

#include "client.h"

#include "timeutil.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MEASUREMENTS_PATH "/api/v1/measurements"

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct client *c = user;
    size_t n = size * nmemb;
    size_t room = c->response_max - c->response_len;
    size_t take = n < room ? n : room;
    memcpy(c->response + c->response_len, data, take);
    c->response_len += take;
    return n; /* the rest of an oversized answer is ignored, not an error */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    struct client *c = user;
    size_t n = size * nmemb;
    static const char name[] = "Retry-After:";
    if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response starts (after a 100 Continue, say): forget the last one's. */
        c->retry_after[0] = '\0';
        c->response_len = 0;
    } else if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        size_t len = n - (sizeof name - 1);
        if (len >= sizeof c->retry_after)
            len = sizeof c->retry_after - 1;
        memcpy(c->retry_after, data + sizeof name - 1, len);
        c->retry_after[len] = '\0';
    }
    return n;
}

static char *endpoint_url(const char *base)
{
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    char *url = malloc(len + sizeof MEASUREMENTS_PATH);
    if (url != NULL) {
        memcpy(url, base, len);
        memcpy(url + len, MEASUREMENTS_PATH, sizeof MEASUREMENTS_PATH);
    }
    return url;
}

static struct curl_slist *request_headers(const char *token)
{
    size_t len = strlen("Authorization: Bearer ") + strlen(token) + 1;
    char *auth = malloc(len);
    if (auth == NULL)
        return NULL;
    snprintf(auth, len, "Authorization: Bearer %s", token);
    struct curl_slist *list = NULL;
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:", auth};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *next = curl_slist_append(list, fixed[i]);
        if (next == NULL) {
            curl_slist_free_all(list);
            list = NULL;
            break;
        }
        list = next;
    }
    memset(auth, 0, len); /* the copy in the list is curl's to manage */
    free(auth);
    return list;
}

static bool set_options(struct client *c, const struct client_config *cfg, const char *url,
                        void *owner)
{
    CURL *e = c->easy;
    bool ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_USERAGENT, "wattline-sim/" SIM_VERSION) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEDATA, c) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HEADERDATA, c) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PRIVATE, owner) == CURLE_OK;
    if (ok && cfg->cacert != NULL)
        ok = curl_easy_setopt(e, CURLOPT_CAINFO, cfg->cacert) == CURLE_OK;
    return ok;
}

int client_init(struct client *c, const struct client_config *cfg, const char *token, void *owner,
                char *err, size_t err_size)
{
    memset(c, 0, sizeof *c);
    char *url = endpoint_url(cfg->url);
    c->easy = curl_easy_init();
    c->headers = request_headers(token);
    c->response = malloc(CLIENT_RESPONSE_MAX);
    c->response_max = CLIENT_RESPONSE_MAX;
    if (url == NULL || c->easy == NULL || c->headers == NULL || c->response == NULL) {
        snprintf(err, err_size, "out of memory");
    } else if (!set_options(c, cfg, url, owner)) {
        snprintf(err, err_size, "libcurl refused an option (too old a libcurl?)");
    } else {
        free(url);
        return 0;
    }
    free(url);
    client_cleanup(c);
    return -1;
}

int client_set_response_max(struct client *c, size_t max)
{
    char *bigger = realloc(c->response, max);
    if (bigger == NULL)
        return -1;
    c->response = bigger;
    c->response_max = max;
    if (c->response_len > max)
        c->response_len = max;
    return 0;
}

static json_t *reading_json(const struct spool_entry *e, const char *member)
{
    char ts[TIME_RFC3339_SIZE];
    if (time_format_rfc3339(e->ts_us, ts, sizeof ts) == 0)
        return NULL;
    return json_pack("{s:s, s:f}", "ts", ts, member, e->value);
}

char *client_build_body(const struct spool_entry *entries, size_t n, const char *member)
{
    json_t *root = NULL;
    if (n == 1) {
        root = reading_json(&entries[0], member);
    } else {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < n; i++) {
            if (json_array_append_new(list, reading_json(&entries[i], member)) != 0) {
                json_decref(list);
                list = NULL;
            }
        }
        root = list ? json_pack("{s:o}", "measurements", list) : NULL;
    }
    if (root == NULL)
        return NULL;
    /* 15 significant digits print 48213.7 as such, not as 48213.699999999997. */
    char *body = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(root);
    return body;
}

int client_prepare(struct client *c, const struct spool_entry *entries, size_t n,
                   const char *member)
{
    free(c->body);
    c->body = client_build_body(entries, n, member);
    if (c->body == NULL)
        return -1;
    c->response_len = 0;
    c->retry_after[0] = '\0';
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body)) !=
            CURLE_OK ||
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body) != CURLE_OK)
        return -1;
    return 0;
}

bool client_transport_retryable(CURLcode code)
{
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
        return false;
    default:
        return true;
    }
}

/* Copy a JSON string member, replacing control characters (it is printed on a terminal). */
static void copy_member(json_t *obj, const char *key, char *out, size_t size)
{
    const char *s = json_string_value(json_object_get(obj, key));
    out[0] = '\0';
    if (s == NULL)
        return;
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < size; i++)
        out[i] = iscntrl((unsigned char)s[i]) ? ' ' : s[i];
    out[i] = '\0';
}

void client_describe_problem(long status, const char *body, size_t len, char *out, size_t size)
{
    char title[96] = "", detail[256] = "", code[64] = "", field[96] = "";
    json_t *doc = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    if (json_is_object(doc)) {
        copy_member(doc, "title", title, sizeof title);
        copy_member(doc, "detail", detail, sizeof detail);
        copy_member(doc, "code", code, sizeof code);
        copy_member(doc, "field", field, sizeof field);
    }
    json_decref(doc);
    int n = snprintf(out, size, "HTTP %ld%s%s", status, title[0] ? " " : "", title);
    if (n >= 0 && (size_t)n < size && detail[0])
        n += snprintf(out + n, size - (size_t)n, ": %s", detail);
    if (n >= 0 && (size_t)n < size && (code[0] || field[0]))
        snprintf(out + n, size - (size_t)n, " (%s%s%s)", code, code[0] && field[0] ? ", " : "",
                 field[0] ? field : "");
}

static void read_counts(struct client *c, struct client_answer *out)
{
    json_t *doc = json_loadb(c->response, c->response_len, 0, NULL);
    json_t *accepted = json_object_get(doc, "accepted");
    json_t *duplicates = json_object_get(doc, "duplicates");
    if (json_is_integer(accepted) && json_is_integer(duplicates)) {
        out->accepted = (long)json_integer_value(accepted);
        out->duplicates = (long)json_integer_value(duplicates);
    }
    json_decref(doc);
}

void client_answer(struct client *c, CURLcode code, int64_t now_us, struct client_answer *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_us = -1;
    out->accepted = -1;
    out->duplicates = -1;
    if (code != CURLE_OK) {
        out->verdict = client_transport_retryable(code) ? RETRY_AGAIN : RETRY_FATAL;
        snprintf(out->message, sizeof out->message, "%s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        return;
    }
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &out->status);
    out->verdict = retry_classify_status(out->status);
    if (c->retry_after[0])
        out->retry_after_us = retry_after_parse(c->retry_after, now_us);
    if (out->verdict == RETRY_ACK) {
        read_counts(c, out);
        return;
    }
    client_describe_problem(out->status, c->response, c->response_len, out->message,
                            sizeof out->message);
    if (out->status >= 300 && out->status < 400) {
        char *location = NULL;
        curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &location);
        size_t n = strlen(out->message);
        snprintf(out->message + n, sizeof out->message - n, ": redirected to %s; use that as --url",
                 location ? location : "(no Location)");
    }
}

void client_cleanup(struct client *c)
{
    if (c->easy != NULL)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->body);
    free(c->response);
    memset(c, 0, sizeof *c);
}
