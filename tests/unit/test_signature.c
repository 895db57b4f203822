/* notify/signature and base/secretbox: the Wattline-Signature header against
 * an HMAC computed independently (RFC 4231 test case 2 for the primitive),
 * and the sealing of webhook secrets at rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../../base/secretbox.h"
#include "../../notify/signature.h"

static void hmac_matches_rfc4231(void **state)
{
    (void)state;
    char hex[SECRETBOX_HMAC_HEX_LEN + 1];
    assert_true(secretbox_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex));
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void header_signs_t_dot_body(void **state)
{
    (void)state;
    const char *body = "{\"type\":\"alert\"}";
    char header[SIGNATURE_MAX], want[SECRETBOX_HMAC_HEX_LEN + 1], expect[SIGNATURE_MAX];
    assert_true(signature_header("whsec_k", 7, 1700000000, body, strlen(body), header));
    const char *signed_text = "1700000000.{\"type\":\"alert\"}";
    assert_true(secretbox_hmac_sha256_hex("whsec_k", 7, signed_text, strlen(signed_text), want));
    strcpy(expect, "t=1700000000,v1=");
    strcat(expect, want);
    assert_string_equal(header, expect);
    /* Another time, another signature: a replayed header does not fit a new t. */
    char later[SIGNATURE_MAX];
    assert_true(signature_header("whsec_k", 7, 1700000001, body, strlen(body), later));
    assert_string_not_equal(strchr(header, 'v'), strchr(later, 'v'));
}

static void sealed_secrets_open_only_under_their_key(void **state)
{
    (void)state;
    unsigned char key[SECRETBOX_KEY_LEN], other[SECRETBOX_KEY_LEN];
    const char server[] = "a JWT secret of at least thirty-two bytes....";
    assert_true(secretbox_derive_key(server, sizeof server - 1, "purpose-a", key));
    assert_true(secretbox_derive_key(server, sizeof server - 1, "purpose-b", other));
    assert_memory_not_equal(key, other, sizeof key);
    unsigned char again[SECRETBOX_KEY_LEN];
    assert_true(secretbox_derive_key(server, sizeof server - 1, "purpose-a", again));
    assert_memory_equal(key, again, sizeof key); /* every instance derives the same */

    const char secret[] = "whsec_abcdef";
    unsigned char box[sizeof secret - 1 + SECRETBOX_OVERHEAD], out[sizeof secret - 1];
    assert_true(secretbox_seal(key, secret, sizeof secret - 1, box));
    assert_null(memmem(box, sizeof box, "whsec", 5));
    assert_true(secretbox_open(key, box, sizeof box, out));
    assert_memory_equal(out, secret, sizeof out);
    assert_false(secretbox_open(other, box, sizeof box, out));
    box[SECRETBOX_NONCE_LEN] ^= 1;
    assert_false(secretbox_open(key, box, sizeof box, out));
    assert_false(secretbox_open(key, box, SECRETBOX_OVERHEAD - 1, out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hmac_matches_rfc4231),
        cmocka_unit_test(header_signs_t_dot_body),
        cmocka_unit_test(sealed_secrets_open_only_under_their_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
