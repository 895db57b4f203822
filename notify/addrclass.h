/* addrclass: whether an address a webhook resolves to (or that libcurl is
 * about to connect to) is one the server may call: not loopback, private,
 * link-local, unspecified, multicast or otherwise reserved, in any of its
 * IPv6 spellings of an IPv4 address (::ffff:127.0.0.1, ::127.0.0.1,
 * 64:ff9b::7f00:1). Pure. */
#ifndef WATTLINE_NOTIFY_ADDRCLASS_H
#define WATTLINE_NOTIFY_ADDRCLASS_H

#include <stdbool.h>
#include <sys/socket.h>

/* True when sa (AF_INET or AF_INET6) is a public unicast address; any
 * other family is not. */
bool addrclass_is_public(const struct sockaddr *sa);

/* The same for a numeric address as text; false when it is not one. */
bool addrclass_is_public_text(const char *ip);

#endif
