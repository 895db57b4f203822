/* auth/password: scrypt hashing and verification, the stored format, and the
 * limiter of concurrent hashes. Tests use ln=10 to stay fast; one test runs
 * the default params. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_condattr_setclock */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../auth/password.h"

static const struct password_params FAST = {.log2_n = 10, .r = 8, .p = 1};

static double seconds_since(const struct timespec *start)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    return (double)(end.tv_sec - start->tv_sec) + (double)(end.tv_nsec - start->tv_nsec) / 1e9;
}

/* assert_int_equal for table-driven cases: names the failing case. */
static void expect_int(int got, int want, const char *label, const char *input)
{
    if (got != want)
        print_message("failing case %s: %s\n", label, input);
    assert_int_equal(got, want);
}

/* ---- passwords ---------------------------------------------------------------- */

static void test_password_round_trip(void **state)
{
    (void)state;
    char stored[PASSWORD_HASH_MAX];
    const char *pw = "correct horse battery staple";
    assert_true(password_hash(pw, strlen(pw), &FAST, stored));
    assert_int_equal(strncmp(stored, "$scrypt$ln=10,r=8,p=1$", 22), 0);
    /* 22 + 22 (salt) + 1 + 43 (hash) */
    assert_int_equal(strlen(stored), 22 + 22 + 1 + 43);

    assert_int_equal(password_verify(pw, strlen(pw), stored, &FAST), PASSWORD_MATCH);
    assert_int_equal(password_verify("correct horse battery stapler", 29, stored, &FAST),
                     PASSWORD_MISMATCH);
    assert_int_equal(password_verify(pw, strlen(pw) - 1, stored, &FAST), PASSWORD_MISMATCH);
    assert_int_equal(password_verify("", 0, stored, &FAST), PASSWORD_MISMATCH);
}

static void test_password_salts_differ(void **state)
{
    (void)state;
    char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];
    assert_true(password_hash("hunter2hunter2", 14, &FAST, a));
    assert_true(password_hash("hunter2hunter2", 14, &FAST, b));
    assert_string_not_equal(a, b);
    /* The salt fields themselves differ, not just the hashes. */
    assert_memory_not_equal(a + 22, b + 22, 22);
    assert_int_equal(password_verify("hunter2hunter2", 14, a, &FAST), PASSWORD_MATCH);
    assert_int_equal(password_verify("hunter2hunter2", 14, b, &FAST), PASSWORD_MATCH);
}

#define SALT22 "AAAAAAAAAAAAAAAAAAAAAA"
#define HASH43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void test_password_parse_params_valid(void **state)
{
    (void)state;
    struct password_params p = {0};
    assert_true(password_parse_params("$scrypt$ln=17,r=8,p=1$" SALT22 "$" HASH43, &p));
    assert_int_equal(p.log2_n, 17);
    assert_int_equal(p.r, 8);
    assert_int_equal(p.p, 1);
    assert_true(password_parse_params("$scrypt$ln=12,r=16,p=2$" SALT22 "$" HASH43, &p));
    assert_int_equal(p.log2_n, 12);
    assert_int_equal(p.r, 16);
    assert_int_equal(p.p, 2);

    char stored[PASSWORD_HASH_MAX];
    assert_true(password_hash("pw", 2, &FAST, stored));
    assert_true(password_parse_params(stored, &p));
    assert_int_equal(p.log2_n, FAST.log2_n);
    assert_int_equal(p.r, FAST.r);
    assert_int_equal(p.p, FAST.p);
}

static const char *const MALFORMED_HASHES[] = {
    "",
    "$scrypt$",
    "scrypt$ln=10,r=8,p=1$" SALT22 "$" HASH43,
    "$argon2id$v=19$m=65536,t=3,p=4$" SALT22 "$" HASH43,
    "$scrypt$ln=10,r=8$" SALT22 "$" HASH43,
    "$scrypt$r=8,ln=10,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=10,r=8,p=1$" SALT22,
    "$scrypt$ln=10,r=8,p=1$" SALT22 "$",
    "$scrypt$ln=10,r=8,p=1$" SALT22 "$" HASH43 "$",
    "$scrypt$ln=10,r=8,p=1$" SALT22 "$" HASH43 "A",
    "$scrypt$ln=10,r=8,p=1$" SALT22 "$" HASH43 "=",
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAA$" HASH43,    /* 21 chars: bad length */
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAAAA$" HASH43, /* 18-byte salt */
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAA$" HASH43,     /* 15-byte salt */
    "$scrypt$ln=10,r=8,p=1$" SALT22 "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 30 bytes */
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAB$" HASH43, /* non-canonical tail */
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAA*A$" HASH43, /* not base64 */
    "$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAA_A$" HASH43, /* URL alphabet */
    "$scrypt$ln=010,r=8,p=1$" SALT22 "$" HASH43,            /* leading zero */
    "$scrypt$ln=-1,r=8,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln= 10,r=8,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=,r=8,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=10,r=0,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=10,r=8,p=0$" SALT22 "$" HASH43,
    "$scrypt$LN=10,r=8,p=1$" SALT22 "$" HASH43,
};

/* Parseable syntax, but parameters that would cost gigabytes or hours. */
static const char *const ABSURD_HASHES[] = {
    "$scrypt$ln=23,r=8,p=1$" SALT22 "$" HASH43,  "$scrypt$ln=99,r=8,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=123,r=8,p=1$" SALT22 "$" HASH43, "$scrypt$ln=4294967313,r=8,p=1$" SALT22 "$" HASH43,
    "$scrypt$ln=22,r=8,p=1$" SALT22 "$" HASH43, /* 4 GiB */
    "$scrypt$ln=20,r=8,p=1$" SALT22 "$" HASH43, /* 1 GiB */
    "$scrypt$ln=10,r=33,p=1$" SALT22 "$" HASH43, "$scrypt$ln=10,r=8,p=17$" SALT22 "$" HASH43,
    "$scrypt$ln=10,r=8,p=99$" SALT22 "$" HASH43,
};

static void test_password_parse_params_rejects(void **state)
{
    (void)state;
    struct password_params p;
    assert_false(password_parse_params(NULL, &p));
    for (size_t i = 0; i < sizeof MALFORMED_HASHES / sizeof MALFORMED_HASHES[0]; i++) {
        const char *stored = MALFORMED_HASHES[i];
        expect_int(password_parse_params(stored, &p), false, "malformed", stored);
        expect_int(password_verify("pw", 2, stored, &FAST), PASSWORD_BAD_HASH, "malformed", stored);
    }
    for (size_t i = 0; i < sizeof ABSURD_HASHES / sizeof ABSURD_HASHES[0]; i++) {
        const char *stored = ABSURD_HASHES[i];
        expect_int(password_parse_params(stored, &p), false, "absurd", stored);
        expect_int(password_verify("pw", 2, stored, &FAST), PASSWORD_BAD_HASH, "absurd", stored);
    }

    /* A string longer than PASSWORD_HASH_MAX is not read to its end. */
    char long_hash[PASSWORD_HASH_MAX + 64];
    snprintf(long_hash, sizeof long_hash, "$scrypt$ln=10,r=8,p=1$%s$%s", SALT22, HASH43);
    memset(long_hash + strlen(long_hash), 'A', sizeof long_hash - strlen(long_hash) - 1);
    long_hash[sizeof long_hash - 1] = '\0';
    assert_false(password_parse_params(long_hash, &p));
}

static void test_password_hash_rejects_absurd_params(void **state)
{
    (void)state;
    char stored[PASSWORD_HASH_MAX] = "garbage";
    const struct password_params too_big = {.log2_n = 23, .r = 8, .p = 1};
    const struct password_params zero_r = {.log2_n = 10, .r = 0, .p = 1};
    assert_false(password_hash("pw", 2, &too_big, stored));
    assert_string_equal(stored, "");
    assert_false(password_hash("pw", 2, &zero_r, stored));
}

static void test_password_rehash_when_weaker(void **state)
{
    (void)state;
    char stored[PASSWORD_HASH_MAX];
    assert_true(password_hash("s3cret-pass", 11, &FAST, stored));

    const struct password_params more_n = {.log2_n = 11, .r = 8, .p = 1};
    const struct password_params more_r = {.log2_n = 10, .r = 16, .p = 1};
    const struct password_params more_p = {.log2_n = 10, .r = 8, .p = 2};
    const struct password_params less_n = {.log2_n = 9, .r = 8, .p = 1};
    assert_int_equal(password_verify("s3cret-pass", 11, stored, &FAST), PASSWORD_MATCH);
    assert_int_equal(password_verify("s3cret-pass", 11, stored, &more_n), PASSWORD_MATCH_REHASH);
    assert_int_equal(password_verify("s3cret-pass", 11, stored, &more_r), PASSWORD_MATCH_REHASH);
    assert_int_equal(password_verify("s3cret-pass", 11, stored, &more_p), PASSWORD_MATCH_REHASH);
    /* Stored parameters stronger than current: no downgrade. */
    assert_int_equal(password_verify("s3cret-pass", 11, stored, &less_n), PASSWORD_MATCH);
    /* A wrong password never reports REHASH. */
    assert_int_equal(password_verify("s3cret-pasS", 11, stored, &more_n), PASSWORD_MISMATCH);
}

static void test_password_default_params(void **state)
{
    (void)state;
    char stored[PASSWORD_HASH_MAX];
    assert_int_equal(PASSWORD_PARAMS_DEFAULT.log2_n, 17);
    assert_int_equal(PASSWORD_PARAMS_DEFAULT.r, 8);
    assert_int_equal(PASSWORD_PARAMS_DEFAULT.p, 1);
    assert_true(password_hash("default-params!", 15, &PASSWORD_PARAMS_DEFAULT, stored));
    assert_int_equal(strncmp(stored, "$scrypt$ln=17,r=8,p=1$", 22), 0);
    assert_int_equal(password_verify("default-params!", 15, stored, &PASSWORD_PARAMS_DEFAULT),
                     PASSWORD_MATCH);
}

static void test_password_unknown_user(void **state)
{
    (void)state;
    assert_int_equal(password_verify("anything", 8, NULL, &FAST), PASSWORD_MISMATCH);
    assert_int_equal(password_verify("", 0, NULL, &FAST), PASSWORD_MISMATCH);
    /* That this path costs a full scrypt run is by construction (see
     * password_verify); timing is the benchmark's business, not a test's. */
}

/* ---- limiter ------------------------------------------------------------------ */

static void test_limiter_bounds_and_times_out(void **state)
{
    (void)state;
    assert_null(password_limiter_create(0));
    password_limiter_free(NULL);

    struct password_limiter *limiter = password_limiter_create(2);
    assert_non_null(limiter);
    assert_true(password_limiter_enter(limiter, 0));
    assert_true(password_limiter_enter(limiter, 0));

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_false(password_limiter_enter(limiter, 50));
    double waited = seconds_since(&start);
    assert_true(waited >= 0.045);
    assert_true(waited < 2.0);
    assert_false(password_limiter_enter(limiter, 0));

    password_limiter_leave(limiter);
    assert_true(password_limiter_enter(limiter, 0));
    password_limiter_leave(limiter);
    password_limiter_leave(limiter);
    /* Extra leaves never create slots beyond the configured count. */
    password_limiter_leave(limiter);
    assert_true(password_limiter_enter(limiter, 0));
    assert_true(password_limiter_enter(limiter, 0));
    assert_false(password_limiter_enter(limiter, 0));
    password_limiter_free(limiter);
}

static void *leave_later(void *arg)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
    nanosleep(&pause, NULL);
    password_limiter_leave(arg);
    return NULL;
}

static void test_limiter_wakes_waiter(void **state)
{
    (void)state;
    struct password_limiter *limiter = password_limiter_create(1);
    assert_non_null(limiter);
    assert_true(password_limiter_enter(limiter, 0));

    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, leave_later, limiter), 0);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_true(password_limiter_enter(limiter, 5000));
    /* Woken by the leave, not by the 5 s deadline. */
    assert_true(seconds_since(&start) < 2.0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    password_limiter_leave(limiter);
    password_limiter_free(limiter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_round_trip),
        cmocka_unit_test(test_password_salts_differ),
        cmocka_unit_test(test_password_parse_params_valid),
        cmocka_unit_test(test_password_parse_params_rejects),
        cmocka_unit_test(test_password_hash_rejects_absurd_params),
        cmocka_unit_test(test_password_rehash_when_weaker),
        cmocka_unit_test(test_password_default_params),
        cmocka_unit_test(test_password_unknown_user),
        cmocka_unit_test(test_limiter_bounds_and_times_out),
        cmocka_unit_test(test_limiter_wakes_waiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
