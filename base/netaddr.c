#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void map_v4(const void *in4, struct netaddr *out)
{
    memcpy(out->bytes, V4_MAPPED, sizeof V4_MAPPED);
    memcpy(out->bytes + 12, in4, 4);
}

static bool is_v4(const struct netaddr *a)
{
    return memcmp(a->bytes, V4_MAPPED, sizeof V4_MAPPED) == 0;
}

bool netaddr_parse(const char *text, size_t len, struct netaddr *out)
{
    char buf[NETADDR_TEXT_MAX];
    if (len == 0 || len >= sizeof buf || memchr(text, '\0', len))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strchr(buf, ':'))
        return inet_pton(AF_INET6, buf, out->bytes) == 1;
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) != 1)
        return false;
    map_v4(v4, out);
    return true;
}

bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        map_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, out);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->bytes, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

void netaddr_format(const struct netaddr *a, char out[NETADDR_TEXT_MAX])
{
    const char *done = is_v4(a) ? inet_ntop(AF_INET, a->bytes + 12, out, NETADDR_TEXT_MAX)
                                : inet_ntop(AF_INET6, a->bytes, out, NETADDR_TEXT_MAX);
    if (!done) /* cannot happen with this buffer; never leave it unwritten */
        snprintf(out, NETADDR_TEXT_MAX, "%s", NETADDR_UNKNOWN);
}

/* ---- ranges -------------------------------------------------------------------- */

static void mask_to_prefix(struct netaddr *a, int prefix)
{
    for (int i = 0; i < 16; i++) {
        int keep = prefix - 8 * i; /* bits of this byte inside the prefix */
        if (keep <= 0)
            a->bytes[i] = 0;
        else if (keep < 8)
            a->bytes[i] &= (unsigned char)(0xff << (8 - keep));
    }
}

static bool range_contains(const struct netaddr_range *r, const struct netaddr *a)
{
    struct netaddr masked = *a;
    mask_to_prefix(&masked, r->prefix);
    return memcmp(masked.bytes, r->base.bytes, 16) == 0;
}

/* "a.b.c.d", "a.b.c.d/n" (n <= 32), "x::y", "x::y/n" (n <= 128). */
static bool range_parse(const char *text, size_t len, struct netaddr_range *out)
{
    const char *slash = memchr(text, '/', len);
    size_t addr_len = slash ? (size_t)(slash - text) : len;
    if (!netaddr_parse(text, addr_len, &out->base))
        return false;
    bool v4 = memchr(text, ':', addr_len) == NULL;
    int max = v4 ? 32 : 128;
    int prefix = max;
    if (slash) {
        const char *p = slash + 1, *end = text + len;
        if (p == end || end - p > 3)
            return false;
        prefix = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return false;
            prefix = prefix * 10 + (*p - '0');
        }
        if (prefix > max)
            return false;
    }
    out->prefix = v4 ? 96 + prefix : prefix;
    mask_to_prefix(&out->base, out->prefix);
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends of [*start, *end). */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_space(**start))
        (*start)++;
    while (*end > *start && is_space((*end)[-1]))
        (*end)--;
}

bool netaddr_set_parse(const char *list, struct netaddr_set *out, char *err, size_t errlen)
{
    out->n = 0;
    if (!list)
        return true;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        const char *start = p, *end = comma ? comma : p + strlen(p);
        trim(&start, &end);
        if (start < end) {
            if (out->n == NETADDR_SET_MAX) {
                snprintf(err, errlen, "more than %d addresses or ranges", NETADDR_SET_MAX);
                return false;
            }
            if (!range_parse(start, (size_t)(end - start), &out->ranges[out->n])) {
                snprintf(err, errlen, "'%.*s' is not an IP address or CIDR range",
                         (int)(end - start > 64 ? 64 : end - start), start);
                return false;
            }
            out->n++;
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

bool netaddr_set_contains(const struct netaddr_set *set, const struct netaddr *a)
{
    for (int i = 0; i < set->n; i++)
        if (range_contains(&set->ranges[i], a))
            return true;
    return false;
}

bool netaddr_set_contains_text(const struct netaddr_set *set, const char *text)
{
    struct netaddr a;
    return text && netaddr_parse(text, strlen(text), &a) && netaddr_set_contains(set, &a);
}

/* ---- the client behind trusted proxies ------------------------------------------- */

enum walk { WALK_FOUND, WALK_ALL_TRUSTED, WALK_BAD_ENTRY };

/* One header's entries, right to left. */
static enum walk walk_header(const struct netaddr_set *trusted, const char *value,
                             struct netaddr *client)
{
    const char *end = value + strlen(value);
    for (;;) {
        const char *start = end;
        while (start > value && start[-1] != ',')
            start--;
        const char *s = start, *e = end;
        trim(&s, &e);
        if (!netaddr_parse(s, (size_t)(e - s), client))
            return WALK_BAD_ENTRY;
        if (!netaddr_set_contains(trusted, client))
            return WALK_FOUND;
        if (start == value)
            return WALK_ALL_TRUSTED;
        end = start - 1; /* before the comma */
    }
}

bool netaddr_client(const struct netaddr_set *trusted, const struct netaddr *peer,
                    const char *const *xff, size_t nxff, struct netaddr *client)
{
    if (!peer)
        return false;
    if (!netaddr_set_contains(trusted, peer)) {
        *client = *peer;
        return true;
    }
    for (size_t i = nxff; i-- > 0;) {
        if (!xff[i])
            continue;
        switch (walk_header(trusted, xff[i], client)) {
        case WALK_FOUND:
            return true;
        case WALK_BAD_ENTRY:
            return false;
        case WALK_ALL_TRUSTED:
            break;
        }
    }
    *client = *peer;
    return true;
}

void netaddr_client_text(const struct netaddr_set *trusted, const struct netaddr *peer,
                         const char *const *xff, size_t nxff, char out[NETADDR_TEXT_MAX])
{
    struct netaddr client;
    if (netaddr_client(trusted, peer, xff, nxff, &client))
        netaddr_format(&client, out);
    else
        snprintf(out, NETADDR_TEXT_MAX, "%s", NETADDR_UNKNOWN);
}
