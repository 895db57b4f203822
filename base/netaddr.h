/* netaddr: client addresses, lists of CIDR ranges, and who the client is
 * behind trusted proxies (X-Forwarded-For). Pure text and bytes: no sockets
 * are touched, nothing is global; the transports (server/http.c and
 * server/ws.c) hand in the peer and the header values.
 *
 * An IPv4 address is held as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so
 * "10.0.0.1" and "::ffff:10.0.0.1" are the same client, fall in the same
 * ranges and are written the same way (as IPv4).
 */
#ifndef WATTLINE_NETADDR_H
#define WATTLINE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* Longest text of an address, with its NUL (INET6_ADDRSTRLEN). */
#define NETADDR_TEXT_MAX 46
/* How a client whose address is not known is logged and keyed: one bucket. */
#define NETADDR_UNKNOWN "unknown"
/* Ranges one list may hold (TRUSTED_PROXIES, METRICS_ALLOW). */
#define NETADDR_SET_MAX 64

struct netaddr {
    unsigned char bytes[16]; /* network order; IPv4 mapped into ::ffff:0:0/96 */
};

struct netaddr_range {
    struct netaddr base; /* bits past prefix are zero */
    int prefix;          /* 0..128, over the 128-bit form */
};

struct netaddr_set {
    int n;
    struct netaddr_range ranges[NETADDR_SET_MAX];
};

/* Parses exactly len bytes of text as one address: dotted IPv4 or IPv6 as
 * inet_pton(3) reads them. Anything else is refused: surrounding space,
 * a port, brackets, a zone ("%eth0"), "unknown", the empty string. */
bool netaddr_parse(const char *text, size_t len, struct netaddr *out);

/* The address of an AF_INET or AF_INET6 socket; false for anything else. */
bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);

/* Canonical text (inet_ntop), an IPv4-mapped address written as IPv4. */
void netaddr_format(const struct netaddr *a, char out[NETADDR_TEXT_MAX]);

/* Parses a comma-separated list of addresses and CIDR ranges ("10.0.0.0/8,
 * ::1, 192.0.2.7"); space around entries is ignored, and so are empty
 * entries. A bare address is a range of one; bits past a prefix are
 * dropped. NULL or "" is the empty set. False with a one-line message in err
 * (naming the entry) on a bad entry or more than NETADDR_SET_MAX of them. */
bool netaddr_set_parse(const char *list, struct netaddr_set *out, char *err, size_t errlen);

/* True when a falls in one of set's ranges. */
bool netaddr_set_contains(const struct netaddr_set *set, const struct netaddr *a);

/* The same for an address as text; false for text that is not an address
 * (NETADDR_UNKNOWN included). */
bool netaddr_set_contains_text(const struct netaddr_set *set, const char *text);

/* Who the client is. A peer outside trusted is the client. A peer in
 * trusted is a proxy: the X-Forwarded-For values (xff[0..nxff), in the
 * order the headers came; each a comma-separated list) are read right to
 * left, and the first address that is not itself trusted is the client; when
 * every one is trusted (or there are none), the peer is. An entry that is
 * not an address stops the walk: the client is unknown. peer NULL means the
 * peer is unknown, and so is the client.
 *
 * Writes the client to *client and returns true, or returns false when it is
 * unknown. The work is linear in the length of the headers. */
bool netaddr_client(const struct netaddr_set *trusted, const struct netaddr *peer,
                    const char *const *xff, size_t nxff, struct netaddr *client);

/* netaddr_client() as text: the client's address, or NETADDR_UNKNOWN. */
void netaddr_client_text(const struct netaddr_set *trusted, const struct netaddr *peer,
                         const char *const *xff, size_t nxff, char out[NETADDR_TEXT_MAX]);

#endif
