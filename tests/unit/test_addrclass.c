/* notify/addrclass: which addresses a webhook may reach, IPv4-mapped and
 * other IPv6 spellings of a private IPv4 address included; and
 * notify/webhook_url's parsing (no DNS here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../notify/addrclass.h"
#include "../../notify/webhook_url.h"

static void refuses_loopback_private_link_local_and_reserved(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2001:db8::1",
        "2002:7f00:1::1",
        "not an address",
        "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (addrclass_is_public_text(refused[i]))
            fail_msg("%s should be refused", refused[i]);
}

static void allows_public_addresses(void **state)
{
    (void)state;
    static const char *const allowed[] = {
        "93.184.216.34", "8.8.8.8",         "172.32.0.1",     "192.169.0.1",
        "100.128.0.1",   "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!addrclass_is_public_text(allowed[i]))
            fail_msg("%s should be allowed", allowed[i]);
}

static void parses_webhook_urls(void **state)
{
    (void)state;
    struct webhook_url u;
    char why[128];
    assert_true(webhook_url_parse("https://hooks.example.com/x?y=1", &u, why, sizeof why));
    assert_true(u.https);
    assert_string_equal(u.host, "hooks.example.com");
    assert_int_equal(u.port, 443);
    assert_true(webhook_url_parse("http://[::ffff:127.0.0.1]:8080/", &u, why, sizeof why));
    assert_false(u.https);
    assert_string_equal(u.host, "::ffff:127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_true(webhook_url_parse("HTTP://example.com", &u, why, sizeof why));
    assert_int_equal(u.port, 80);
    static const char *const bad[] = {
        "ftp://example.com/",
        "https://",
        "http://user:pw@example.com/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://exa mple.com/",
        "http://[::1/",
        "http://example.com:/",
        "javascript:alert(1)",
        "http://example.com:80x/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (webhook_url_parse(bad[i], &u, why, sizeof why))
            fail_msg("%s should not parse", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refuses_loopback_private_link_local_and_reserved),
        cmocka_unit_test(allows_public_addresses),
        cmocka_unit_test(parses_webhook_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
