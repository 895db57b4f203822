#include "webhook_url.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../db/notifications.h"
#include "addrclass.h"

static bool fail(char *why, size_t whylen, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return false;
}

bool webhook_url_parse(const char *url, struct webhook_url *out, char *why, size_t whylen)
{
    *out = (struct webhook_url){0};
    size_t len = strlen(url);
    if (len > WEBHOOK_URL_MAX)
        return fail(why, whylen, "url is longer than 2048 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
            return fail(why, whylen, "url may not contain spaces or control characters");
    const char *rest;
    if (!strncasecmp(url, "https://", 8)) {
        out->https = true;
        rest = url + 8;
    } else if (!strncasecmp(url, "http://", 7)) {
        rest = url + 7;
    } else {
        return fail(why, whylen, "url must start with https:// or http://");
    }
    size_t auth_len = strcspn(rest, "/?#");
    if (memchr(rest, '@', auth_len))
        return fail(why, whylen, "url may not carry credentials");
    const char *host = rest, *port = NULL;
    size_t host_len;
    if (auth_len > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', auth_len);
        if (!close)
            return fail(why, whylen, "url has an unclosed [");
        host = rest + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < rest + auth_len) {
            if (close[1] != ':')
                return fail(why, whylen, "url has a malformed host");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', auth_len);
        host_len = colon ? (size_t)(colon - rest) : auth_len;
        port = colon ? colon + 1 : NULL;
    }
    if (host_len == 0 || host_len > WEBHOOK_URL_HOST_MAX)
        return fail(why, whylen, "url has no host");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = out->https ? 443 : 80;
    if (port) {
        size_t plen = (size_t)(rest + auth_len - port);
        long p = 0;
        if (plen == 0 || plen > 5)
            return fail(why, whylen, "url has a malformed port");
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]))
                return fail(why, whylen, "url has a malformed port");
            p = p * 10 + (port[i] - '0');
        }
        if (p < 1 || p > 65535)
            return fail(why, whylen, "url has a malformed port");
        out->port = (int)p;
    }
    return true;
}

bool webhook_url_check(const char *url, bool allow_private, char *why, size_t whylen)
{
    struct webhook_url u;
    if (!webhook_url_parse(url, &u, why, whylen))
        return false;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    if (getaddrinfo(u.host, NULL, &hints, &list) != 0 || !list)
        return fail(why, whylen, "url's host does not resolve");
    bool ok = true;
    for (const struct addrinfo *ai = list; ok && ai; ai = ai->ai_next)
        if (!allow_private && !addrclass_is_public(ai->ai_addr))
            ok = fail(why, whylen, "url resolves to a loopback, private or link-local address");
    freeaddrinfo(list);
    return ok;
}
