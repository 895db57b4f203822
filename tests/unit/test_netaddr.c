/* Unit tests for base/netaddr.c: addresses, CIDR lists, and the client
 * behind trusted proxies, hostile X-Forwarded-For headers included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../base/netaddr.h"

static struct netaddr addr(const char *text)
{
    struct netaddr a;
    assert_true(netaddr_parse(text, strlen(text), &a));
    return a;
}

static struct netaddr_set set(const char *list)
{
    struct netaddr_set s;
    char err[128];
    assert_true(netaddr_set_parse(list, &s, err, sizeof err));
    return s;
}

/* The client as text, for one or two X-Forwarded-For headers. */
static void client(const char *trusted, const char *peer, const char *xff1, const char *xff2,
                   char out[NETADDR_TEXT_MAX])
{
    struct netaddr_set t = set(trusted);
    struct netaddr p = addr(peer);
    const char *xff[2] = {xff1, xff2};
    size_t n = xff2 ? 2 : xff1 ? 1 : 0;
    netaddr_client_text(&t, &p, xff, n, out);
}

static void assert_client(const char *trusted, const char *peer, const char *xff,
                          const char *expected)
{
    char out[NETADDR_TEXT_MAX];
    client(trusted, peer, xff, NULL, out);
    assert_string_equal(out, expected);
}

/* ---- addresses ------------------------------------------------------------------ */

static void test_parse_accepts_addresses(void **state)
{
    (void)state;
    static const char *const good[] = {
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "2001:db8::7",
        "fe80::1:2:3:4",
        "::ffff:10.1.2.3",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
    };
    struct netaddr a;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(netaddr_parse(good[i], strlen(good[i]), &a));
}

static void test_parse_refuses_what_is_not_an_address(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "unknown",
        "_hidden",    " 1.2.3.4",
        "1.2.3.4 ",   "1.2.3.4:80",
        "[::1]",      "[::1]:443",
        "::1%eth0",   "1.2.3",
        "1.2.3.4.5",  "256.1.1.1",
        "01.2.3.4",   "1.2.3.4/32",
        "1,2,3,4",    "localhost",
        "::g",        "1.2.3.4 5.6.7.8",
        "0x7f.0.0.1", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
    };
    struct netaddr a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (netaddr_parse(bad[i], strlen(bad[i]), &a))
            fail_msg("'%s' was taken for an address", bad[i]);
    }
    /* An embedded NUL is not hidden by the length. */
    assert_false(netaddr_parse("1.2.3.4\0", 8, &a));
    /* Only len bytes are read. */
    assert_true(netaddr_parse("10.0.0.1garbage", 8, &a));
}

static void test_format_writes_mapped_ipv4_as_ipv4(void **state)
{
    (void)state;
    char out[NETADDR_TEXT_MAX];
    struct netaddr a = addr("::ffff:10.1.2.3");
    netaddr_format(&a, out);
    assert_string_equal(out, "10.1.2.3");
    a = addr("2001:0db8:0000::0007");
    netaddr_format(&a, out);
    assert_string_equal(out, "2001:db8::7");
    struct netaddr b = addr("10.1.2.3"), c = addr("::ffff:10.1.2.3");
    assert_memory_equal(b.bytes, c.bytes, 16);
}

static void test_from_sockaddr(void **state)
{
    (void)state;
    char out[NETADDR_TEXT_MAX];
    struct netaddr a;
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.9", &in4.sin_addr);
    assert_true(netaddr_from_sockaddr((struct sockaddr *)&in4, &a));
    netaddr_format(&a, out);
    assert_string_equal(out, "192.0.2.9");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6.sin6_addr);
    assert_true(netaddr_from_sockaddr((struct sockaddr *)&in6, &a));
    netaddr_format(&a, out);
    assert_string_equal(out, "192.0.2.9");
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(netaddr_from_sockaddr(&un, &a));
    assert_false(netaddr_from_sockaddr(NULL, &a));
}

/* ---- sets of ranges ----------------------------------------------------------------- */

static void test_set_parse_and_contains(void **state)
{
    (void)state;
    struct netaddr_set s = set(" 10.0.0.0/8 ,192.0.2.7,, 2001:db8::/32,\t::1 ,");
    assert_int_equal(s.n, 4);
    assert_true(netaddr_set_contains_text(&s, "10.255.0.1"));
    assert_true(netaddr_set_contains_text(&s, "::ffff:10.0.0.1"));
    assert_false(netaddr_set_contains_text(&s, "11.0.0.1"));
    assert_true(netaddr_set_contains_text(&s, "192.0.2.7"));
    assert_false(netaddr_set_contains_text(&s, "192.0.2.8"));
    assert_true(netaddr_set_contains_text(&s, "2001:db8:ffff::1"));
    assert_false(netaddr_set_contains_text(&s, "2001:db9::1"));
    assert_true(netaddr_set_contains_text(&s, "::1"));
    assert_false(netaddr_set_contains_text(&s, "::2"));
    assert_false(netaddr_set_contains_text(&s, NETADDR_UNKNOWN));
    assert_false(netaddr_set_contains_text(&s, NULL));
}

static void test_set_prefix_edges(void **state)
{
    (void)state;
    struct netaddr_set s = set("192.168.1.77/26"); /* host bits dropped: .64 to .127 */
    assert_true(netaddr_set_contains_text(&s, "192.168.1.64"));
    assert_true(netaddr_set_contains_text(&s, "192.168.1.127"));
    assert_false(netaddr_set_contains_text(&s, "192.168.1.63"));
    assert_false(netaddr_set_contains_text(&s, "192.168.1.128"));

    s = set("0.0.0.0/0"); /* every IPv4 address, no IPv6 one */
    assert_true(netaddr_set_contains_text(&s, "203.0.113.1"));
    assert_false(netaddr_set_contains_text(&s, "2001:db8::1"));
    s = set("::/0");
    assert_true(netaddr_set_contains_text(&s, "203.0.113.1"));
    assert_true(netaddr_set_contains_text(&s, "2001:db8::1"));
    s = set("::ffff:10.0.0.0/104"); /* an IPv4 range written as IPv6 */
    assert_true(netaddr_set_contains_text(&s, "10.9.9.9"));
    assert_false(netaddr_set_contains_text(&s, "11.0.0.0"));

    s = set(NULL);
    assert_int_equal(s.n, 0);
    assert_false(netaddr_set_contains_text(&s, "127.0.0.1"));
    s = set(" , ");
    assert_int_equal(s.n, 0);
}

static void test_set_parse_refuses_bad_entries(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "10.0.0.0/33",  "::/129",          "10.0.0.0/",   "10.0.0.0/-1",
        "10.0.0.0/8/8", "10.0.0.0/x",      "localhost",   "10.0.0.0/0008",
        "1.2.3.4:80",   "127.0.0.1, nope", "10.0.0.0 /8",
    };
    struct netaddr_set s;
    char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (netaddr_set_parse(bad[i], &s, err, sizeof err))
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(err, "not an IP address or CIDR range"));
    }
    /* Too many entries. */
    char list[NETADDR_SET_MAX * 16 + 32] = "";
    for (int i = 0; i <= NETADDR_SET_MAX; i++) {
        char one[32];
        snprintf(one, sizeof one, "10.0.%d.%d,", i / 256, i % 256);
        strcat(list, one);
    }
    assert_false(netaddr_set_parse(list, &s, err, sizeof err));
    assert_non_null(strstr(err, "more than"));
}

/* ---- the client -------------------------------------------------------------------- */

static void test_untrusted_peer_is_the_client_whatever_it_says(void **state)
{
    (void)state;
    assert_client("", "203.0.113.5", "198.51.100.1", "203.0.113.5");
    assert_client("10.0.0.0/8", "203.0.113.5", "198.51.100.1", "203.0.113.5");
    assert_client("10.0.0.0/8", "203.0.113.5", "garbage", "203.0.113.5");
    assert_client("10.0.0.0/8", "::ffff:203.0.113.5", NULL, "203.0.113.5");
}

static void test_trusted_peer_walks_right_to_left(void **state)
{
    (void)state;
    /* nginx's $proxy_add_x_forwarded_for: whatever the client sent, then it. */
    assert_client("10.0.0.2", "10.0.0.2", "1.1.1.1, 203.0.113.5", "203.0.113.5");
    /* Two proxies of ours, then the client; the left of it is the client's word. */
    assert_client("10.0.0.0/24", "10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.9", "203.0.113.5");
    /* No header, or only trusted entries: the peer. */
    assert_client("10.0.0.2", "10.0.0.2", NULL, "10.0.0.2");
    assert_client("10.0.0.0/24", "10.0.0.2", "10.0.0.3,10.0.0.4", "10.0.0.2");
    /* Spaces and tabs around entries are fine. */
    assert_client("10.0.0.2", "10.0.0.2", "  \t203.0.113.5\t ", "203.0.113.5");
    /* IPv6 proxy and client; an IPv4-mapped client is written as IPv4. */
    assert_client("2001:db8::/32", "2001:db8::1", "2001:db8:1::5, 2a00::1", "2a00::1");
    assert_client("::1", "::1", "::ffff:198.51.100.7", "198.51.100.7");
    /* A mapped proxy address is trusted by its IPv4 range. */
    assert_client("127.0.0.1", "::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7");
}

static void test_an_entry_that_is_not_an_address_makes_the_client_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "unknown",
        "203.0.113.5, unknown",
        "203.0.113.5,",
        "203.0.113.5:4711",
        "[2001:db8::1]:443",
        "[2001:db8::1]",
        "203.0.113.5 198.51.100.1",
        "_obfuscated",
        "203.0.113.5, 10.0.0.3, nope, 10.0.0.4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_client("10.0.0.0/24", "10.0.0.2", bad[i], NETADDR_UNKNOWN);
    /* ... but only when the walk reaches it. */
    assert_client("10.0.0.0/24", "10.0.0.2", "garbage, 203.0.113.5", "203.0.113.5");
    assert_client("10.0.0.0/24", "10.0.0.2", ",,,[x]:1, 203.0.113.5 ", "203.0.113.5");
}

static void test_several_headers_are_one_list(void **state)
{
    (void)state;
    char out[NETADDR_TEXT_MAX];
    /* The last header holds the nearest hops. */
    client("10.0.0.0/24", "10.0.0.2", "6.6.6.6", "203.0.113.5, 10.0.0.7", out);
    assert_string_equal(out, "203.0.113.5");
    client("10.0.0.0/24", "10.0.0.2", "203.0.113.5", "10.0.0.7", out);
    assert_string_equal(out, "203.0.113.5");
    client("10.0.0.0/24", "10.0.0.2", "203.0.113.5", "unknown", out);
    assert_string_equal(out, NETADDR_UNKNOWN);
    /* NULL values (absent headers) are skipped. */
    struct netaddr_set t = set("10.0.0.0/24");
    struct netaddr p = addr("10.0.0.2");
    const char *xff[3] = {"203.0.113.5", NULL, NULL};
    netaddr_client_text(&t, &p, xff, 3, out);
    assert_string_equal(out, "203.0.113.5");
    /* An unknown peer is an unknown client. */
    netaddr_client_text(&t, NULL, xff, 1, out);
    assert_string_equal(out, NETADDR_UNKNOWN);
}

/* A header of ~1 MB: many trusted entries, or one endless entry. The walk is
 * linear, never copies the header, and the answer is right. */
static void test_hostile_long_headers(void **state)
{
    (void)state;
    enum { N = 100000 };
    const char *entry = "10.0.0.3, "; /* 10 bytes */
    char *h = malloc(N * 16 + 64);
    assert_non_null(h);
    char *p = h;
    p += sprintf(p, "203.0.113.5, ");
    for (int i = 0; i < N; i++, p += 10)
        memcpy(p, entry, 10);
    sprintf(p, "10.0.0.4");
    assert_client("10.0.0.0/24", "10.0.0.2", h, "203.0.113.5");
    h[0] = 'x'; /* the far end is now garbage */
    assert_client("10.0.0.0/24", "10.0.0.2", h, NETADDR_UNKNOWN);

    memset(h, '1', (size_t)N * 10);
    h[N * 10] = '\0';
    assert_client("10.0.0.0/24", "10.0.0.2", h, NETADDR_UNKNOWN);
    memset(h, ',', (size_t)N * 10);
    assert_client("10.0.0.0/24", "10.0.0.2", h, NETADDR_UNKNOWN);
    /* Many untrusted entries: only the last one is looked at. */
    p = h;
    for (int i = 0; i < N; i++)
        p += sprintf(p, "%d.%d.%d.%d,", 1 + i % 200, i % 256, (i / 256) % 256, 7);
    sprintf(p, "2a00:1450::%x", 0xbeef);
    assert_client("10.0.0.0/24", "10.0.0.2", h, "2a00:1450::beef");
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_addresses),
        cmocka_unit_test(test_parse_refuses_what_is_not_an_address),
        cmocka_unit_test(test_format_writes_mapped_ipv4_as_ipv4),
        cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_set_parse_and_contains),
        cmocka_unit_test(test_set_prefix_edges),
        cmocka_unit_test(test_set_parse_refuses_bad_entries),
        cmocka_unit_test(test_untrusted_peer_is_the_client_whatever_it_says),
        cmocka_unit_test(test_trusted_peer_walks_right_to_left),
        cmocka_unit_test(test_an_entry_that_is_not_an_address_makes_the_client_unknown),
        cmocka_unit_test(test_several_headers_are_one_list),
        cmocka_unit_test(test_hostile_long_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
