/* ingest/group.c: one group commit over a fake store — de-duplication,
 * ordering, the append and recompute paths, the alert decision, devices
 * that are gone, and failures that roll everything back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "../../ingest/group.h"
#include "fake_ingest_store.h"

/* cmocka 1.1.5 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

#define H    ENERGY_HOUR_US
#define MIN  (60LL * 1000000)
#define T0   (1795000000LL / 3600 * 3600 * 1000000) /* an hour boundary in 2026 */
#define RECV (T0 + 10 * H)                          /* when the jobs arrived */
#define BIG  1e9                                    /* a limit never reached */

/* A submission and its readings, on the test's stack. */
struct job {
    struct ingest_request req;
    struct ingest_reading readings[8];
};

static void job_init(struct job *j, long long device, enum reading_type type, const long long *ts,
                     const double *values, int n)
{
    memset(j, 0, sizeof *j);
    for (int i = 0; i < n; i++)
        j->readings[i] = (struct ingest_reading){ts[i], values[i], type};
    j->req.in = (struct ingest_submission){device, type, j->readings, n, RECV};
}

static void assert_result(const struct job *j, enum status st, int accepted, int duplicates)
{
    assert_int_equal(j->req.status, st);
    assert_int_equal(j->req.result.accepted, accepted);
    assert_int_equal(j->req.result.duplicates, duplicates);
}

static enum status commit_jobs(struct fake_store *f, struct job **jobs, int n,
                               struct ingest_group_outcome *out)
{
    struct ingest_store store = fake_store_table(f);
    struct ingest_request *reqs[8];
    for (int i = 0; i < n; i++)
        reqs[i] = &jobs[i]->req;
    return ingest_group_commit(&store, f, reqs, n, out);
}

static void duplicates_within_the_group_and_against_stored(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_CUMULATIVE, BIG);
    fake_add_reading(&f, 1, T0, 100.0);

    struct job a, b;
    /* T0 is stored already; T0+10min twice in one submission. */
    job_init(&a, 1, READING_CUMULATIVE,
             (long long[]){T0 + 20 * MIN, T0, T0 + 10 * MIN, T0 + 10 * MIN},
             (double[]){102.0, 100.0, 101.0, 999.0}, 4);
    /* T0+20min again: the earlier submission's reading counts. */
    job_init(&b, 1, READING_CUMULATIVE, (long long[]){T0 + 20 * MIN, T0 + 30 * MIN},
             (double[]){555.0, 103.0}, 2);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_OK);

    assert_result(&a, STATUS_OK, 2, 2);
    assert_result(&b, STATUS_OK, 1, 1);
    assert_int_equal(out.stored, 3);
    assert_int_equal(out.duplicates, 3);
    assert_int_equal(f.committed.nreadings, 4);
    assert_true(fake_find_reading(&f.committed, 1, T0 + 20 * MIN)->value == 102.0);
    assert_true(fake_find_reading(&f.committed, 1, T0 + 10 * MIN)->value == 101.0);
    assert_near(fake_hour(&f, 1, T0), 3.0, 1e-9);
    assert_true(f.committed.devices[0].latest_ts == T0 + 30 * MIN);
    assert_true(f.committed.devices[0].last_seen == RECV);
    assert_string_equal(f.log, "begin lock_devices insert hours write commit notify");
    assert_int_equal(f.nnotified_usage, 1);
    fake_destroy(&f);
}

/* The fake refuses devices out of ascending order and rows out of (device,
 * ts) order, as the real statements need them. */
static void devices_and_rows_reach_the_store_in_order(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_INTERVAL, BIG);
    fake_add_device(&f, 3, READING_INTERVAL, BIG);
    struct job a, b, c;
    job_init(&a, 3, READING_INTERVAL, (long long[]){T0 + 50 * MIN, T0 + 5 * MIN},
             (double[]){0.5, 0.25}, 2);
    job_init(&b, 1, READING_INTERVAL, (long long[]){T0 + H, T0}, (double[]){2.0, 1.0}, 2);
    job_init(&c, 3, READING_INTERVAL, (long long[]){T0 + 30 * MIN}, (double[]){0.125}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b, &c}, 3, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 2, 0);
    assert_result(&b, STATUS_OK, 2, 0);
    assert_result(&c, STATUS_OK, 1, 0);
    assert_near(fake_hour(&f, 3, T0), 0.875, 0);
    assert_near(fake_hour(&f, 1, T0), 1.0, 0);
    assert_near(fake_hour(&f, 1, T0 + H), 2.0, 0);
    assert_int_equal(f.nnotified_usage, 2);
    assert_true(f.notified_usage[0] == 1 && f.notified_usage[1] == 3);
    fake_destroy(&f);
}

/* Readings after the newest stored one add to the stored hours. */
static void appended_readings_add_to_the_stored_hours(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_CUMULATIVE, BIG);
    fake_add_reading(&f, 1, T0 + 30 * MIN, 100.0);
    fake_add_hour(&f, 1, T0, 5.0);
    struct job a;
    /* 6 kWh over 60 minutes, half in each hour. */
    job_init(&a, 1, READING_CUMULATIVE, (long long[]){T0 + 90 * MIN}, (double[]){106.0}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a}, 1, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 1, 0);
    assert_near(fake_hour(&f, 1, T0), 8.0, 1e-9);
    assert_near(fake_hour(&f, 1, T0 + H), 3.0, 1e-9);
    assert_non_null(strstr(f.log, "hours"));
    assert_null(strstr(f.log, "context"));
    fake_destroy(&f);
}

/* A reading before the newest stored one recomputes its hours from the
 * stored readings around it. */
static void late_readings_recompute_their_hours(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_CUMULATIVE, BIG);
    fake_add_device(&f, 2, READING_INTERVAL, BIG);
    fake_add_reading(&f, 1, T0, 0.0);
    fake_add_reading(&f, 1, T0 + 2 * H, 20.0);
    fake_add_hour(&f, 1, T0, 10.0);
    fake_add_hour(&f, 1, T0 + H, 10.0);
    fake_add_reading(&f, 2, T0 + 10 * MIN, 1.0);
    fake_add_reading(&f, 2, T0 + 40 * MIN, 0.5);
    fake_add_hour(&f, 2, T0, 1.5);

    struct job a, b;
    job_init(&a, 1, READING_CUMULATIVE, (long long[]){T0 + 30 * MIN}, (double[]){15.0}, 1);
    job_init(&b, 2, READING_INTERVAL, (long long[]){T0 + 20 * MIN}, (double[]){0.25}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 1, 0);
    assert_result(&b, STATUS_OK, 1, 0);
    /* 0 -> 15 in the first 30 minutes, 15 -> 20 over the next 90. */
    assert_near(fake_hour(&f, 1, T0), 15.0 + 5.0 / 3, 1e-9);
    assert_near(fake_hour(&f, 1, T0 + H), 10.0 / 3, 1e-9);
    assert_near(fake_hour(&f, 2, T0), 1.75, 0);
    assert_non_null(strstr(f.log, "context"));
    assert_null(strstr(f.log, "hours"));
    /* The newest reading did not change. */
    assert_true(f.committed.devices[0].latest_ts == T0 + 2 * H);
    assert_true(f.committed.devices[1].latest_ts == T0 + 40 * MIN);
    fake_destroy(&f);
}

/* An hour over its limit takes the alert lock and announces inside the
 * transaction; otherwise usage is announced after the commit. */
static void alerts_are_locked_and_announced_inside(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_INTERVAL, 1.0);
    fake_add_device(&f, 2, READING_INTERVAL, 10.0);
    struct job a, b;
    job_init(&a, 1, READING_INTERVAL, (long long[]){T0 + 10 * MIN, T0 + 20 * MIN},
             (double[]){0.6, 0.6}, 2);
    job_init(&b, 2, READING_INTERVAL, (long long[]){T0}, (double[]){5.0}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_OK);
    assert_int_equal(out.alerts, 1);
    assert_string_equal(f.log,
                        "begin lock_devices insert hours lock_alerts write notify_in_tx commit");
    assert_int_equal(f.nnotified_alerts, 1);
    assert_true(f.notified_alerts[0] == 1);

    /* Under the limit: no lock, usage after the commit. */
    f.log[0] = '\0';
    job_init(&b, 2, READING_INTERVAL, (long long[]){T0 + 10 * MIN}, (double[]){1.0}, 1);
    assert_int_equal(commit_jobs(&f, (struct job *[]){&b}, 1, &out), STATUS_OK);
    assert_int_equal(out.alerts, 0);
    assert_string_equal(f.log, "begin lock_devices insert hours write commit notify");

    /* Over the limit again, but the alert exists: the lock, no new alert. */
    f.log[0] = '\0';
    job_init(&a, 1, READING_INTERVAL, (long long[]){T0 + 30 * MIN}, (double[]){0.1}, 1);
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a}, 1, &out), STATUS_OK);
    assert_int_equal(out.alerts, 0);
    assert_string_equal(f.log, "begin lock_devices insert hours lock_alerts write commit notify");
    assert_int_equal(f.committed.nalerts, 1);
    fake_destroy(&f);
}

static void a_device_that_is_gone_fails_only_its_submitter(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_INTERVAL, BIG);
    struct job a, gone, c;
    job_init(&a, 1, READING_INTERVAL, (long long[]){T0}, (double[]){1.0}, 1);
    job_init(&gone, 99, READING_INTERVAL, (long long[]){T0, T0}, (double[]){1.0, 2.0}, 2);
    job_init(&c, 1, READING_INTERVAL, (long long[]){T0 + MIN}, (double[]){1.0}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &gone, &c}, 3, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 1, 0);
    assert_result(&gone, STATUS_NOT_FOUND, 0, 0);
    assert_result(&c, STATUS_OK, 1, 0);
    assert_int_equal(out.stored, 2);
    assert_int_equal(out.duplicates, 0);
    assert_int_equal(f.committed.nreadings, 2);
    fake_destroy(&f);
}

/* Whatever statement fails, the transaction is rolled back and every
 * submitter of the group gets the failure, with nothing counted. */
static void a_failure_rolls_back_and_fails_everyone(void **state)
{
    (void)state;
    const char *ops[] = {"lock_devices", "insert", "hours", "write", "commit"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        struct fake_store f;
        fake_init(&f);
        fake_add_device(&f, 1, READING_INTERVAL, BIG);
        fake_add_device(&f, 2, READING_INTERVAL, BIG);
        f.fail_op = ops[i];
        f.fail_status = STATUS_UNAVAILABLE;
        struct job a, b;
        job_init(&a, 1, READING_INTERVAL, (long long[]){T0, T0}, (double[]){1.0, 1.0}, 2);
        job_init(&b, 2, READING_INTERVAL, (long long[]){T0}, (double[]){1.0}, 1);
        struct ingest_group_outcome out;
        assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_UNAVAILABLE);
        assert_result(&a, STATUS_UNAVAILABLE, 0, 0);
        assert_result(&b, STATUS_UNAVAILABLE, 0, 0);
        assert_int_equal(f.committed.nreadings, 0);
        assert_int_equal(f.committed.nhours, 0);
        assert_int_equal(f.nnotified_usage, 0);
        if (strcmp(ops[i], "commit") != 0) {
            const char *end = f.log + strlen(f.log) - strlen("rollback");
            assert_string_equal(end, "rollback");
            assert_null(strstr(f.log, "commit"));
        }
        fake_destroy(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duplicates_within_the_group_and_against_stored),
        cmocka_unit_test(devices_and_rows_reach_the_store_in_order),
        cmocka_unit_test(appended_readings_add_to_the_stored_hours),
        cmocka_unit_test(late_readings_recompute_their_hours),
        cmocka_unit_test(alerts_are_locked_and_announced_inside),
        cmocka_unit_test(a_device_that_is_gone_fails_only_its_submitter),
        cmocka_unit_test(a_failure_rolls_back_and_fails_everyone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
