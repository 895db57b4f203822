/* base/crypto: random bytes and tokens, SHA-256, constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "../../base/crypto.h"

/* ---- random tokens and digests --------------------------------------------- */

static void test_token_new_format_and_uniqueness(void **state)
{
    (void)state;
    enum { COUNT = 256 };
    static char tokens[COUNT][CRYPTO_TOKEN_LEN + 1];
    for (int i = 0; i < COUNT; i++) {
        assert_true(crypto_token_new(tokens[i]));
        assert_int_equal(strlen(tokens[i]), CRYPTO_TOKEN_LEN);
        assert_int_equal(strspn(tokens[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "abcdefghijklmnopqrstuvwxyz0123456789-_"),
                         CRYPTO_TOKEN_LEN);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tokens[i], tokens[j]);
    }
}

static void test_random_fills_buffer(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_true(crypto_random(a, sizeof a));
    assert_true(crypto_random(b, sizeof b));
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    assert_true(crypto_random(a, 0));
}

static void test_sha256_hex_known_vectors(void **state)
{
    (void)state;
    char hex[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    crypto_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* The length, not the NUL, delimits the input. */
    crypto_sha256_hex("abcd", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(crypto_equal("abcdef", "abcdef", 6));
    assert_false(crypto_equal("abcdef", "abcdeg", 6));
    assert_true(crypto_equal("abcdef", "abcdeg", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_new_format_and_uniqueness),
        cmocka_unit_test(test_random_fills_buffer),
        cmocka_unit_test(test_sha256_hex_known_vectors),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
