/* base/device_name: a serial's rules (the CHECK of migration 0006) and how
 * a name an MQTT login or a broker message gives is read: digits are an id,
 * anything else valid is a serial. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../../base/device_name.h"

static void serials_follow_the_migrations_check(void **state)
{
    (void)state;
    char longest[DEVICE_SERIAL_MAX + 2];
    memset(longest, 'x', DEVICE_SERIAL_MAX);
    longest[DEVICE_SERIAL_MAX] = '\0';
    const char *good[] = {"a", "Z", "_", "-", "0a", "a0", "123-", "EM-00417", "A_b-9", longest};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(device_serial_valid(good[i]));
    longest[DEVICE_SERIAL_MAX] = 'x';
    longest[DEVICE_SERIAL_MAX + 1] = '\0';
    const char *bad[] = {NULL,  "",    "0",    "123",      "0000",  "a.b", "a/b", "a:b",
                         "a b", "a+b", "a%2f", "\xc4\x83", "tab\t", "#",   "*",   longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(device_serial_valid(bad[i]));
}

static void digits_name_an_id_and_the_rest_a_serial(void **state)
{
    (void)state;
    long long id = -1;
    assert_int_equal(device_name_parse("7", &id), DEVICE_NAME_ID);
    assert_int_equal(id, 7);
    assert_int_equal(device_name_parse("999999999999999999", &id), DEVICE_NAME_ID);
    assert_int_equal(id, 999999999999999999LL);
    id = -1;
    assert_int_equal(device_name_parse("EM-7", &id), DEVICE_NAME_SERIAL);
    assert_int_equal(id, -1); /* untouched */
    assert_int_equal(device_name_parse("7a", &id), DEVICE_NAME_SERIAL);
    assert_int_equal(device_name_parse("-7", &id), DEVICE_NAME_SERIAL); /* a serial, not minus 7 */
}

static void other_names_name_nothing(void **state)
{
    (void)state;
    long long id = -1;
    /* A leading zero, zero itself, an id past a bigint's 18 safe digits,
     * signs and spaces: no device, so no alias for one. */
    const char *bad[] = {NULL, "",   "0",  "07",  "0000",      "1234567890123456789",
                         "+7", " 7", "7 ", "a.b", "devices/7", "x\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(device_name_parse(bad[i], &id), DEVICE_NAME_INVALID);
    assert_int_equal(id, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serials_follow_the_migrations_check),
        cmocka_unit_test(digits_name_an_id_and_the_rest_a_serial),
        cmocka_unit_test(other_names_name_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
