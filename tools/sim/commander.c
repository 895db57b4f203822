#define _POSIX_C_SOURCE 200809L

#include "commander.h"

#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMANDS_PATH "/api/v1/device/commands"

static char *joined(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    char *s = malloc(a_len + b_len + 1);
    if (s != NULL) {
        memcpy(s, a, a_len);
        memcpy(s + a_len, b, b_len + 1);
    }
    return s;
}

int commander_init(struct commander *c, const struct client_config *cfg, const char *token,
                   void *owner, char *err, size_t err_size)
{
    memset(c, 0, sizeof *c);
    if (client_init(&c->conn, cfg, token, owner, err, err_size) != 0)
        return -1;
    size_t len = strlen(cfg->url);
    while (len > 0 && cfg->url[len - 1] == '/')
        len--;
    char query[64];
    snprintf(query, sizeof query, COMMANDS_PATH "?wait=%d", COMMANDER_WAIT_S);
    c->base = joined(cfg->url, len, "");
    c->poll_url = joined(cfg->url, len, query);
    if (c->base == NULL || c->poll_url == NULL ||
        client_set_response_max(&c->conn, COMMANDER_RESPONSE_MAX) != 0) {
        snprintf(err, err_size, "out of memory");
        commander_cleanup(c);
        return -1;
    }
    return 0;
}

bool commander_ready(const struct commander *c, int64_t now_mono_us)
{
    return c->conn.easy != NULL && !c->stopped && c->state == COMMANDER_IDLE &&
           c->retry_at_mono <= now_mono_us;
}

static void reset_answer(struct client *conn)
{
    conn->response_len = 0;
    conn->retry_after[0] = '\0';
    conn->errbuf[0] = '\0';
}

static int start_answer(struct commander *c)
{
    const struct command_outcome *o = &c->answers[0];
    char path[96];
    snprintf(path, sizeof path, COMMANDS_PATH "/%lld/result", (long long)o->id);
    free(c->result_url);
    free(c->conn.body);
    c->result_url = joined(c->base, strlen(c->base), path);
    c->conn.body = command_result_body(o, false);
    CURL *e = c->conn.easy;
    if (c->result_url == NULL || c->conn.body == NULL ||
        curl_easy_setopt(e, CURLOPT_URL, c->result_url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->conn.body)) !=
            CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->conn.body) != CURLE_OK)
        return -1;
    c->state = COMMANDER_ANSWERING;
    return 0;
}

static int start_poll(struct commander *c)
{
    CURL *e = c->conn.easy;
    if (curl_easy_setopt(e, CURLOPT_URL, c->poll_url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK)
        return -1;
    c->state = COMMANDER_POLLING;
    return 0;
}

int commander_start(struct commander *c, int64_t now_mono_us)
{
    reset_answer(&c->conn);
    c->started_mono = now_mono_us;
    return c->answers_count > 0 ? start_answer(c) : start_poll(c);
}

int commander_queue(struct commander *c, const struct command_outcome *o)
{
    if (c->answers_count == c->answers_cap) {
        size_t cap = c->answers_cap ? c->answers_cap * 2 : 8;
        struct command_outcome *bigger = realloc(c->answers, cap * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        c->answers = bigger;
        c->answers_cap = cap;
    }
    c->answers[c->answers_count++] = *o;
    return 0;
}

static void drop_answer(struct commander *c)
{
    /* A handful at most: moving them down is cheaper than a ring's bookkeeping. */
    memmove(&c->answers[0], &c->answers[1], (c->answers_count - 1) * sizeof *c->answers);
    c->answers_count--;
}

/* Deliver the commands of a poll's answer. False when its body is not {"items": [...]}. */
static bool deliver_all(struct commander *c, command_obey_fn *deliver, void *ctx, size_t *count,
                        char *msg, size_t msg_size)
{
    struct command_order *orders;
    if (command_parse_poll(c->conn.response, c->conn.response_len, &orders, count) != 0) {
        snprintf(msg, msg_size,
                 "the server's answer to a poll for commands is not {\"items\": [...]}");
        return false;
    }
    for (size_t i = 0; i < *count; i++) {
        struct command_outcome out;
        deliver(ctx, &orders[i], &out);
        if (commander_queue(c, &out) != 0)
            snprintf(msg, msg_size,
                     "out of memory queueing the answer to command %lld; the "
                     "server delivers it again",
                     (long long)out.id);
    }
    free(orders);
    return true;
}

static enum commander_event backoff(struct commander *c, const struct client_answer *a,
                                    int64_t now_mono_us, uint64_t random_bits)
{
    c->retry_at_mono = now_mono_us + retry_delay_us(c->attempt, random_bits, a->retry_after_us);
    c->attempt++;
    return COMMANDER_RETRY;
}

enum commander_event commander_finish(struct commander *c, CURLcode code, int64_t now_mono_us,
                                      uint64_t random_bits, command_obey_fn *deliver, void *ctx,
                                      char *msg, size_t msg_size)
{
    struct client_answer a;
    client_answer(&c->conn, code, time_now_us(), &a);
    bool polled = c->state == COMMANDER_POLLING;
    c->state = COMMANDER_IDLE;
    msg[0] = '\0';
    unsigned attempts_before = c->attempt;
    if (a.verdict == RETRY_ACK) {
        size_t count = 0;
        if (polled && !deliver_all(c, deliver, ctx, &count, msg, msg_size)) {
            a.retry_after_us = -1;
            return backoff(c, &a, now_mono_us, random_bits);
        }
        if (!polled)
            drop_answer(c);
        c->attempt = 0;
        /* A server that answers a poll at once with nothing must not make a busy loop. */
        if (polled && count == 0 && now_mono_us - c->started_mono < COMMANDER_EMPTY_GAP_US)
            c->retry_at_mono = now_mono_us + COMMANDER_EMPTY_GAP_US;
        return attempts_before > 0 ? COMMANDER_BACK : COMMANDER_QUIET;
    }
    if (a.verdict == RETRY_FATAL && !polled) {
        snprintf(msg, msg_size, "the answer to command %lld was refused, not retrying: %s",
                 (long long)c->answers[0].id, a.message);
        drop_answer(c);
        return COMMANDER_DROPPED;
    }
    if (a.verdict == RETRY_FATAL) {
        c->stopped = true;
        snprintf(c->failure, sizeof c->failure, "polling for commands refused: %s", a.message);
        snprintf(msg, msg_size, "%s", c->failure);
        return COMMANDER_STOPPED;
    }
    snprintf(msg, msg_size, "%s: %s", polled ? "polling for commands" : "answering a command",
             a.message[0] ? a.message : "no answer");
    return backoff(c, &a, now_mono_us, random_bits);
}

void commander_abandon(struct commander *c)
{
    c->state = COMMANDER_IDLE;
}

void commander_cleanup(struct commander *c)
{
    client_cleanup(&c->conn);
    free(c->base);
    free(c->poll_url);
    free(c->result_url);
    free(c->answers);
    memset(c, 0, sizeof *c);
}
