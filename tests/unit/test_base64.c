/* base/base64: the one base64 codec, unpadded, in the standard and the URL
 * alphabet, decoding strictly. Expected texts are RFC 4648's test vectors
 * (section 10) without their padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../../base/base64.h"

static const struct {
    const char *bytes, *text;
} VECTORS[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void base64_encodes_the_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++) {
        size_t n = strlen(VECTORS[i].bytes);
        char out[BASE64_LEN(6) + 1];
        assert_int_equal(BASE64_LEN(n), strlen(VECTORS[i].text));
        base64_encode((const unsigned char *)VECTORS[i].bytes, n, BASE64_STD, out);
        assert_string_equal(out, VECTORS[i].text);
        base64_encode((const unsigned char *)VECTORS[i].bytes, n, BASE64_URL, out);
        assert_string_equal(out, VECTORS[i].text);
    }
}

static void base64_decodes_the_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++) {
        unsigned char out[8];
        size_t len = 99;
        const char *text = VECTORS[i].text;
        assert_true(base64_decode(text, strlen(text), BASE64_STD, out, sizeof out, &len));
        assert_int_equal(len, strlen(VECTORS[i].bytes));
        assert_memory_equal(out, VECTORS[i].bytes, len);
    }
}

static void base64_alphabets_differ_in_two_characters(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0xfb, 0xef, 0xff};
    char out[BASE64_LEN(3) + 1];
    base64_encode(bytes, 3, BASE64_STD, out);
    assert_string_equal(out, "++//");
    base64_encode(bytes, 3, BASE64_URL, out);
    assert_string_equal(out, "--__");

    unsigned char back[3];
    size_t len;
    assert_true(base64_decode("--__", 4, BASE64_URL, back, sizeof back, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(back, bytes, 3);
    assert_false(base64_decode("--__", 4, BASE64_STD, back, sizeof back, &len));
    assert_false(base64_decode("++//", 4, BASE64_URL, back, sizeof back, &len));
}

static void base64_decoding_accepts_only_canonical_text(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t len;
    const char *bad[] = {
        "Zg==",   /* padding */
        "Zh",     /* low bits of the last character not zero */
        "Zm9",    /* likewise, for two bytes */
        "Z",      /* a length of 1 mod 4 encodes no byte count */
        "Zm9vY",  /* likewise */
        "Zm 9v",  /* whitespace */
        "Zm9v\n", /* a newline */
        "Zm*v",   /* not in the alphabet */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (base64_decode(bad[i], strlen(bad[i]), BASE64_STD, out, sizeof out, &len))
            fail_msg("accepted \"%s\"", bad[i]);
    /* The length, not a NUL, delimits the input, and a NUL inside is refused. */
    assert_true(base64_decode("Zm9vYg", 4, BASE64_STD, out, sizeof out, &len));
    assert_int_equal(len, 3);
    assert_false(base64_decode("Zm\0v", 4, BASE64_STD, out, sizeof out, &len));
}

static void base64_decoding_respects_the_capacity(void **state)
{
    (void)state;
    unsigned char out[6];
    size_t len;
    assert_true(base64_decode("Zm9vYmFy", 8, BASE64_STD, out, 6, &len));
    assert_int_equal(len, 6);
    assert_false(base64_decode("Zm9vYmFy", 8, BASE64_STD, out, 5, &len));
    assert_false(base64_decode("Zm9vYg", 6, BASE64_STD, out, 3, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_encodes_the_rfc4648_vectors),
        cmocka_unit_test(base64_decodes_the_rfc4648_vectors),
        cmocka_unit_test(base64_alphabets_differ_in_two_characters),
        cmocka_unit_test(base64_decoding_accepts_only_canonical_text),
        cmocka_unit_test(base64_decoding_respects_the_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
