/* Unit tests for auth/authn_cache.c: the credential caches' freshness rules
 * with an injected clock, the generations that keep a look-up racing a
 * forget from caching what it read, and the negative cache of wrong device
 * tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../auth/authn_cache.h"

static const double T0 = 1000.0; /* monotonic seconds */

static int setup(void **state)
{
    *state = authn_cache_create();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    authn_cache_free(*state);
    return 0;
}

/* A token hash whose first 16 hex digits pick the sets: "set" is the set in
 * both tables, "tag" tells hashes of one set apart. */
static void make_hash(char out[CRYPTO_SHA256_HEX_LEN + 1], unsigned set, unsigned tag)
{
    snprintf(out, CRYPTO_SHA256_HEX_LEN + 1, "%08x%08x%048x", set, set, tag);
}

/* ---- users ---------------------------------------------------------------- */

static void test_user_entry_is_fresh_from_when_its_query_started(void **state)
{
    struct authn_cache *c = *state;
    enum role role = ROLE_NONE;
    assert_false(authn_cache_user_get(c, 7, T0, &role));

    /* The query starts at T0 and takes 0.8 s: the entry has 0.2 s left. */
    struct authn_ticket t = authn_cache_user_begin(c, T0);
    authn_cache_user_put(c, &t, 7, ROLE_ADMIN);
    assert_true(authn_cache_user_get(c, 7, T0 + 0.8, &role));
    assert_int_equal(role, ROLE_ADMIN);
    assert_true(authn_cache_user_get(c, 7, T0 + AUTHN_CACHE_TTL_S - 0.01, &role));
    assert_false(authn_cache_user_get(c, 7, T0 + AUTHN_CACHE_TTL_S, &role));
    /* Another id in the same slot is not a hit. */
    assert_false(authn_cache_user_get(c, 7 + AUTHN_USER_SLOTS, T0 + 0.1, &role));
}

static void test_user_forget_during_a_look_up_is_not_cached(void **state)
{
    struct authn_cache *c = *state;
    enum role role;
    /* A look-up starts and reads "admin"; the user is demoted here before it
     * stores: its answer is not cached. */
    struct authn_ticket before = authn_cache_user_begin(c, T0);
    authn_cache_user_forget(c, 7);
    authn_cache_user_put(c, &before, 7, ROLE_ADMIN);
    assert_false(authn_cache_user_get(c, 7, T0 + 0.1, &role));

    /* A look-up that starts after the forget is cached. */
    struct authn_ticket after = authn_cache_user_begin(c, T0 + 0.2);
    authn_cache_user_put(c, &after, 7, ROLE_CLIENT);
    assert_true(authn_cache_user_get(c, 7, T0 + 0.3, &role));
    assert_int_equal(role, ROLE_CLIENT);

    /* A forget after the store wipes the entry. */
    authn_cache_user_forget(c, 7);
    assert_false(authn_cache_user_get(c, 7, T0 + 0.3, &role));
}

static void test_user_older_look_up_does_not_overwrite_a_newer_one(void **state)
{
    struct authn_cache *c = *state;
    enum role role;
    struct authn_ticket slow = authn_cache_user_begin(c, T0);
    struct authn_ticket quick = authn_cache_user_begin(c, T0 + 0.5);
    authn_cache_user_put(c, &quick, 7, ROLE_CLIENT);
    authn_cache_user_put(c, &slow, 7, ROLE_ADMIN); /* read earlier: older news */
    assert_true(authn_cache_user_get(c, 7, T0 + 0.6, &role));
    assert_int_equal(role, ROLE_CLIENT);
    /* Still fresh until 1 s after the newer query started. */
    assert_true(authn_cache_user_get(c, 7, T0 + 1.2, &role));
}

static void test_user_gone_is_cached_as_none(void **state)
{
    struct authn_cache *c = *state;
    enum role role = ROLE_ADMIN;
    struct authn_ticket t = authn_cache_user_begin(c, T0);
    authn_cache_user_put(c, &t, 9, ROLE_NONE);
    assert_true(authn_cache_user_get(c, 9, T0 + 0.1, &role));
    assert_int_equal(role, ROLE_NONE);
}

/* ---- devices -------------------------------------------------------------- */

static void test_device_entry_is_fresh_from_when_its_query_started(void **state)
{
    struct authn_cache *c = *state;
    char h[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(h, 3, 1);
    long long id = 0;
    enum reading_type type = READING_CUMULATIVE;
    assert_int_equal(authn_cache_device_get(c, h, T0, &id, &type), AUTHN_CACHE_MISS);

    struct authn_ticket t = authn_cache_device_begin(c, T0);
    authn_cache_device_put(c, &t, h, 42, READING_INTERVAL);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 0.9, &id, &type), AUTHN_CACHE_DEVICE);
    assert_int_equal(id, 42);
    assert_int_equal(type, READING_INTERVAL);
    assert_int_equal(authn_cache_device_get(c, h, T0 + AUTHN_CACHE_TTL_S, &id, &type),
                     AUTHN_CACHE_MISS);
}

static void test_device_rotation_during_a_look_up_is_not_cached(void **state)
{
    struct authn_cache *c = *state;
    char old[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(old, 3, 1);
    long long id;
    enum reading_type type;

    /* Cached, then rotated here: gone at once. */
    struct authn_ticket t = authn_cache_device_begin(c, T0);
    authn_cache_device_put(c, &t, old, 42, READING_CUMULATIVE);
    authn_cache_device_forget(c, 42);
    assert_int_equal(authn_cache_device_get(c, old, T0 + 0.1, &id, &type), AUTHN_CACHE_MISS);

    /* A look-up of the old token that read the database before the rotation
     * committed, and stores after the forget: not cached. */
    struct authn_ticket racing = authn_cache_device_begin(c, T0 + 0.2);
    authn_cache_device_forget(c, 42);
    authn_cache_device_put(c, &racing, old, 42, READING_CUMULATIVE);
    assert_int_equal(authn_cache_device_get(c, old, T0 + 0.3, &id, &type), AUTHN_CACHE_MISS);
}

static void test_four_devices_share_a_set_and_a_fifth_evicts_the_oldest(void **state)
{
    struct authn_cache *c = *state;
    char h[AUTHN_DEVICE_WAYS + 1][CRYPTO_SHA256_HEX_LEN + 1];
    long long id;
    enum reading_type type;
    for (int i = 0; i <= AUTHN_DEVICE_WAYS; i++) {
        make_hash(h[i], 5, (unsigned)i + 1);
        struct authn_ticket t = authn_cache_device_begin(c, T0 + 0.01 * i);
        authn_cache_device_put(c, &t, h[i], 100 + i, READING_CUMULATIVE);
    }
    assert_int_equal(authn_cache_device_get(c, h[0], T0 + 0.1, &id, &type), AUTHN_CACHE_MISS);
    for (int i = 1; i <= AUTHN_DEVICE_WAYS; i++) {
        assert_int_equal(authn_cache_device_get(c, h[i], T0 + 0.1, &id, &type), AUTHN_CACHE_DEVICE);
        assert_int_equal(id, 100 + i);
    }
}

/* ---- wrong device tokens -------------------------------------------------- */

static void test_bad_token_is_remembered_for_a_minute(void **state)
{
    struct authn_cache *c = *state;
    char h[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(h, 9, 1);
    long long id;
    enum reading_type type;

    /* The look-up started at T0 and answered at T0 + 0.5: 60 s from the answer. */
    struct authn_ticket t = authn_cache_device_begin(c, T0);
    authn_cache_device_put_bad(c, &t, h, T0 + 0.5);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 0.5, &id, &type), AUTHN_CACHE_BAD);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 60.4, &id, &type), AUTHN_CACHE_BAD);
    assert_true(AUTHN_BAD_TOKEN_TTL_S >= 60);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 0.5 + AUTHN_BAD_TOKEN_TTL_S, &id, &type),
                     AUTHN_CACHE_MISS);
    /* Another token is not affected. */
    char other[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(other, 9, 2);
    assert_int_equal(authn_cache_device_get(c, other, T0 + 1, &id, &type), AUTHN_CACHE_MISS);
}

static void test_issued_token_is_no_longer_bad_at_once(void **state)
{
    struct authn_cache *c = *state;
    char h[CRYPTO_SHA256_HEX_LEN + 1], other[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(h, 9, 1);
    make_hash(other, 9, 2);
    long long id;
    enum reading_type type;
    struct authn_ticket t = authn_cache_device_begin(c, T0);
    authn_cache_device_put_bad(c, &t, h, T0);
    authn_cache_device_put_bad(c, &t, other, T0);

    authn_cache_token_issued(c, h);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 1, &id, &type), AUTHN_CACHE_MISS);
    /* Only that token: the others stay bad for their minute. */
    assert_int_equal(authn_cache_device_get(c, other, T0 + 1, &id, &type), AUTHN_CACHE_BAD);

    /* A negative look-up in flight when the token was issued does not store. */
    struct authn_ticket racing = authn_cache_device_begin(c, T0 + 2);
    authn_cache_token_issued(c, h);
    authn_cache_device_put_bad(c, &racing, h, T0 + 2.1);
    assert_int_equal(authn_cache_device_get(c, h, T0 + 2.2, &id, &type), AUTHN_CACHE_MISS);
}

static void test_many_bad_tokens_never_evict_a_good_device(void **state)
{
    struct authn_cache *c = *state;
    char good[CRYPTO_SHA256_HEX_LEN + 1], bad[CRYPTO_SHA256_HEX_LEN + 1];
    make_hash(good, 11, 0);
    long long id;
    enum reading_type type;
    struct authn_ticket t = authn_cache_device_begin(c, T0);
    authn_cache_device_put(c, &t, good, 5, READING_CUMULATIVE);
    /* Far more bad tokens than the negative cache holds, many in the same set. */
    for (unsigned i = 1; i <= 4 * AUTHN_BAD_SETS * AUTHN_BAD_WAYS; i++) {
        make_hash(bad, i % 16 == 0 ? 11 : i, i);
        authn_cache_device_put_bad(c, &t, bad, T0 + 0.001 * i);
    }
    assert_int_equal(authn_cache_device_get(c, good, T0 + 0.5, &id, &type), AUTHN_CACHE_DEVICE);
    assert_int_equal(id, 5);
    /* The newest bad tokens are still known. */
    assert_int_equal(authn_cache_device_get(c, bad, T0 + 20, &id, &type), AUTHN_CACHE_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_user_entry_is_fresh_from_when_its_query_started),
        T(test_user_forget_during_a_look_up_is_not_cached),
        T(test_user_older_look_up_does_not_overwrite_a_newer_one),
        T(test_user_gone_is_cached_as_none),
        T(test_device_entry_is_fresh_from_when_its_query_started),
        T(test_device_rotation_during_a_look_up_is_not_cached),
        T(test_four_devices_share_a_set_and_a_fifth_evicts_the_oldest),
        T(test_bad_token_is_remembered_for_a_minute),
        T(test_issued_token_is_no_longer_bad_at_once),
        T(test_many_bad_tokens_never_evict_a_good_device),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
