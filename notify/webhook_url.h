/* webhook_url: the contract's checks on a webhook's URL: http:// or https://,
 * a host and an optional port, no credentials, and (unless private
 * addresses are allowed) every address the host resolves to public
 * (addrclass.h). The sender checks again, on the address it connects to. */
#ifndef WATTLINE_NOTIFY_WEBHOOK_URL_H
#define WATTLINE_NOTIFY_WEBHOOK_URL_H

#include <stdbool.h>
#include <stddef.h>

#define WEBHOOK_URL_HOST_MAX 255

struct webhook_url {
    bool https;
    char host[WEBHOOK_URL_HOST_MAX + 1]; /* without brackets for an IPv6 literal */
    int port;                            /* the scheme's default when absent */
};

/* Parses url; false (the reason in why) when it is not one the contract
 * takes. Pure. */
bool webhook_url_parse(const char *url, struct webhook_url *out, char *why, size_t whylen);

/* Parses url and resolves its host: false (why set) when it does not parse,
 * does not resolve, or resolves to an address that is not public while
 * allow_private is false. Blocks on DNS: call it off the HTTP threads. */
bool webhook_url_check(const char *url, bool allow_private, char *why, size_t whylen);

#endif
