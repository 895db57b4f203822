#include "addrclass.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* IPv4 ranges no webhook may reach (RFC 6890 and friends), as address and
 * prefix length. */
static const struct {
    uint32_t net;
    int bits;
} V4_REFUSED[] = {
    {0x00000000, 8},  /* "this network", 0.0.0.0 */
    {0x0a000000, 8},  /* private */
    {0x64400000, 10}, /* shared address space (carrier-grade NAT) */
    {0x7f000000, 8},  /* loopback */
    {0xa9fe0000, 16}, /* link-local, cloud metadata (169.254.169.254) */
    {0xac100000, 12}, /* private */
    {0xc0000000, 24}, /* IETF protocol assignments */
    {0xc0000200, 24}, /* documentation */
    {0xc0a80000, 16}, /* private */
    {0xc6120000, 15}, /* benchmarking */
    {0xc6336400, 24}, /* documentation */
    {0xcb007100, 24}, /* documentation */
    {0xe0000000, 4},  /* multicast */
    {0xf0000000, 4},  /* reserved, broadcast */
};

static bool v4_is_public(uint32_t a)
{
    for (size_t i = 0; i < sizeof V4_REFUSED / sizeof V4_REFUSED[0]; i++) {
        uint32_t mask = 0xffffffffu << (32 - V4_REFUSED[i].bits);
        if ((a & mask) == V4_REFUSED[i].net)
            return false;
    }
    return true;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static bool v6_is_public(const unsigned char *b)
{
    static const unsigned char zeros[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    /* An IPv4 address in IPv6 clothing is judged as the IPv4 address:
     * mapped (::ffff:a.b.c.d), compatible (::a.b.c.d, which covers :: and
     * ::1 too) and the NAT64 well-known prefix. */
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return v4_is_public(v4_at(b + 12));
    if (!memcmp(b, zeros, 12))
        return false; /* ::, ::1 and the deprecated compatible form */
    if ((b[0] & 0xfe) == 0xfc)
        return false; /* unique local fc00::/7 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return false; /* link-local fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return false; /* site-local fec0::/10 (deprecated) */
    if (b[0] == 0xff)
        return false; /* multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return false; /* documentation 2001:db8::/32 */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_is_public(v4_at(b + 2)); /* 6to4 carries an IPv4 address */
    return true;
}

bool addrclass_is_public(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return v4_is_public(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return v6_is_public(in6.sin6_addr.s6_addr);
    }
    return false;
}

bool addrclass_is_public_text(const char *ip)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
        return addrclass_is_public((const struct sockaddr *)&in);
    if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1)
        return addrclass_is_public((const struct sockaddr *)&in6);
    return false;
}
