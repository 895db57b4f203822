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
#define DAY  (24 * H)
#define AGE  (1100 * DAY) /* MAX_READING_AGE_DAYS' default */

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

/* The live usage the last commit_jobs() left to its caller to announce. */
static long long usage[8];
static int nusage;

static enum status commit_jobs(struct fake_store *f, struct job **jobs, int n,
                               struct ingest_group_outcome *out)
{
    struct ingest_store store = fake_store_table(f);
    struct ingest_request *reqs[8];
    for (int i = 0; i < n; i++)
        reqs[i] = &jobs[i]->req;
    enum status st = ingest_group_commit(&store, f, reqs, n, AGE, out);
    nusage = 0;
    if (st == STATUS_OK) {
        assert_in_range(out->nusage, 0, 8);
        for (int i = 0; i < out->nusage; i++)
            usage[i] = out->usage[i];
        nusage = out->nusage;
        free(out->usage);
    }
    return st;
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
    /* T0 is not after the newest stored reading: the insert says what is new. */
    assert_string_equal(f.log, "begin lock_devices insert write commit");
    /* Usage is the caller's to announce (ingest.c gathers it). */
    assert_int_equal(f.nnotified_usage, 0);
    assert_int_equal(nusage, 1);
    assert_true(usage[0] == 1);
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
    assert_int_equal(nusage, 2);
    assert_true(usage[0] == 1 && usage[1] == 3);
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
    /* Two round trips: the lock (with the hours), then the rest. */
    assert_string_equal(f.log, "begin lock_devices append write commit");
    fake_destroy(&f);
}

/* One device's late reading sends the whole group the careful way; the
 * other device's readings still add to the hours the lock read. */
static void a_late_reading_in_the_group_inserts_them_all(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_CUMULATIVE, BIG);
    fake_add_device(&f, 2, READING_INTERVAL, BIG);
    fake_add_reading(&f, 1, T0 + 30 * MIN, 100.0);
    fake_add_hour(&f, 1, T0, 5.0);
    fake_add_reading(&f, 2, T0 + 40 * MIN, 0.5);
    fake_add_hour(&f, 2, T0, 0.5);
    struct job a, b;
    job_init(&a, 1, READING_CUMULATIVE, (long long[]){T0 + 90 * MIN}, (double[]){106.0}, 1);
    job_init(&b, 2, READING_INTERVAL, (long long[]){T0 + 20 * MIN}, (double[]){0.25}, 1);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 1, 0);
    assert_result(&b, STATUS_OK, 1, 0);
    assert_string_equal(f.log, "begin lock_devices insert context write commit");
    assert_near(fake_hour(&f, 1, T0), 8.0, 1e-9);
    assert_near(fake_hour(&f, 1, T0 + H), 3.0, 1e-9);
    assert_near(fake_hour(&f, 2, T0), 0.75, 0);
    fake_destroy(&f);
}

/* A reading stored after the newest one its device row knows of (a change
 * by hand): the append fails on it, and the group is run again the careful
 * way, which counts it as a duplicate. */
static void an_append_that_meets_a_stored_row_is_run_again(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_INTERVAL, BIG);
    fake_add_reading(&f, 1, T0, 1.0);
    fake_add_reading(&f, 1, T0 + 10 * MIN, 2.0);
    fake_add_hour(&f, 1, T0, 3.0);
    f.committed.devices[0].latest_ts = T0; /* the row forgot T0+10min */
    struct job a;
    job_init(&a, 1, READING_INTERVAL, (long long[]){T0 + 10 * MIN, T0 + 20 * MIN},
             (double[]){9.0, 4.0}, 2);
    struct ingest_group_outcome out;
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a}, 1, &out), STATUS_OK);
    assert_result(&a, STATUS_OK, 1, 1);
    assert_string_equal(f.log, "begin lock_devices append rollback "
                               "begin lock_devices insert write commit");
    assert_int_equal(f.committed.nreadings, 3);
    assert_true(fake_find_reading(&f.committed, 1, T0 + 10 * MIN)->value == 2.0);
    assert_near(fake_hour(&f, 1, T0), 7.0, 0);
    assert_true(f.committed.devices[0].latest_ts == T0 + 20 * MIN);
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
    assert_string_equal(f.log, "begin lock_devices insert context write commit");
    /* The newest reading did not change. */
    assert_true(f.committed.devices[0].latest_ts == T0 + 2 * H);
    assert_true(f.committed.devices[1].latest_ts == T0 + 40 * MIN);
    fake_destroy(&f);
}

/* A stored reading older than the window (legacy data, or a lowered
 * MAX_READING_AGE_DAYS): a reading now writes only the window's hours, each
 * with exactly its contract share of the register's difference, whether it
 * comes after the stored one (append) or into the gap (recompute). */
static void an_old_stored_reading_writes_only_the_windows_hours(void **state)
{
    (void)state;
    const long long age = 2 * DAY; /* a small window keeps the fake's tables small */
    const long long old = T0 - 1000 * DAY;
    const long long window_from = RECV - age; /* an hour boundary: RECV is */
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 1, READING_CUMULATIVE, BIG);
    fake_add_reading(&f, 1, old, 0.0);
    struct ingest_store store = fake_store_table(&f);

    /* Append: 1000 days and 10 hours of spread, 6e6 kWh. */
    struct job a;
    job_init(&a, 1, READING_CUMULATIVE, (long long[]){RECV}, (double[]){6e6}, 1);
    struct ingest_request *reqs[] = {&a.req};
    struct ingest_group_outcome out;
    assert_int_equal(ingest_group_commit(&store, &f, reqs, 1, age, &out), STATUS_OK);
    free(out.usage);
    assert_result(&a, STATUS_OK, 1, 0);
    /* [RECV - 2 days, RECV + 1 h): the window, to the new reading's hour */
    assert_int_equal(f.nwritten_hours, 49);
    assert_int_equal(f.committed.nhours, 49);
    const double share = 6e6 * ((double)H / (double)(RECV - old));
    assert_true(fake_hour(&f, 1, window_from) == share);
    assert_true(fake_hour(&f, 1, RECV - H) == share);
    assert_true(fake_hour(&f, 1, window_from - H) == 0.0); /* never written */
    assert_true(fake_hour(&f, 1, RECV) == 0.0);

    /* Late, into the gap: only the window's part of the gap is recomputed,
     * and equals what energy_hours() gives from the stored readings. */
    f.nwritten_hours = 0;
    f.log[0] = '\0';
    struct job b;
    job_init(&b, 1, READING_CUMULATIVE, (long long[]){RECV - 30 * MIN}, (double[]){5e6}, 1);
    reqs[0] = &b.req;
    assert_int_equal(ingest_group_commit(&store, &f, reqs, 1, age, &out), STATUS_OK);
    free(out.usage);
    assert_result(&b, STATUS_OK, 1, 0);
    assert_non_null(strstr(f.log, "context"));
    assert_int_equal(f.nwritten_hours, 49);
    struct energy_reading stored[] = {{old, 0.0}, {RECV - 30 * MIN, 5e6}, {RECV, 6e6}};
    double expect[49];
    energy_hours(READING_CUMULATIVE, stored, 3, window_from, 49, expect);
    for (int i = 0; i < 49; i++)
        assert_true(fake_hour(&f, 1, window_from + i * H) == expect[i]);
    assert_true(fake_hour(&f, 1, RECV - H) > 1e6); /* 1e6 kWh in the last half hour */
    fake_destroy(&f);
}

/* An hour over its limit takes the alert lock, after the hours are written,
 * and announces inside the transaction, usage with it; otherwise usage is
 * left to the caller, to announce after the commit. */
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
    assert_string_equal(
        f.log, "begin lock_devices append write lock_alerts raise_alerts notify_in_tx commit");
    assert_int_equal(f.nnotified_alerts, 1);
    assert_true(f.notified_alerts[0] == 1);
    assert_int_equal(f.nnotified_usage, 2);
    assert_int_equal(nusage, 0);

    /* Under the limit: no lock, usage for the caller. */
    f.log[0] = '\0';
    job_init(&b, 2, READING_INTERVAL, (long long[]){T0 + 10 * MIN}, (double[]){1.0}, 1);
    assert_int_equal(commit_jobs(&f, (struct job *[]){&b}, 1, &out), STATUS_OK);
    assert_int_equal(out.alerts, 0);
    assert_string_equal(f.log, "begin lock_devices append write commit");
    assert_int_equal(nusage, 1);

    /* Over the limit again, but the alert exists: the lock, no new alert. */
    f.log[0] = '\0';
    job_init(&a, 1, READING_INTERVAL, (long long[]){T0 + 30 * MIN}, (double[]){0.1}, 1);
    assert_int_equal(commit_jobs(&f, (struct job *[]){&a}, 1, &out), STATUS_OK);
    assert_int_equal(out.alerts, 0);
    assert_string_equal(f.log, "begin lock_devices append write lock_alerts raise_alerts commit");
    assert_int_equal(nusage, 1);
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
    /* late: device 1 has a newer reading stored, so the group inserts. */
    const struct {
        const char *op;
        bool late;
    } cases[] = {{"lock_devices", false}, {"append", false}, {"write", false}, {"commit", false},
                 {"insert", true},        {"context", true}, {"write", true}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fake_store f;
        fake_init(&f);
        fake_add_device(&f, 1, READING_INTERVAL, BIG);
        fake_add_device(&f, 2, READING_INTERVAL, BIG);
        int stored = cases[i].late ? 1 : 0;
        if (cases[i].late)
            fake_add_reading(&f, 1, T0 + H, 1.0);
        f.fail_op = cases[i].op;
        f.fail_status = STATUS_UNAVAILABLE;
        struct job a, b;
        job_init(&a, 1, READING_INTERVAL, (long long[]){T0, T0}, (double[]){1.0, 1.0}, 2);
        job_init(&b, 2, READING_INTERVAL, (long long[]){T0}, (double[]){1.0}, 1);
        struct ingest_group_outcome out;
        assert_int_equal(commit_jobs(&f, (struct job *[]){&a, &b}, 2, &out), STATUS_UNAVAILABLE);
        assert_result(&a, STATUS_UNAVAILABLE, 0, 0);
        assert_result(&b, STATUS_UNAVAILABLE, 0, 0);
        assert_non_null(strstr(f.log, cases[i].op));
        assert_int_equal(f.committed.nreadings, stored);
        assert_int_equal(f.committed.nhours, 0);
        assert_int_equal(f.nnotified_usage, 0);
        if (strcmp(cases[i].op, "commit") != 0) {
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
        cmocka_unit_test(a_late_reading_in_the_group_inserts_them_all),
        cmocka_unit_test(an_append_that_meets_a_stored_row_is_run_again),
        cmocka_unit_test(late_readings_recompute_their_hours),
        cmocka_unit_test(an_old_stored_reading_writes_only_the_windows_hours),
        cmocka_unit_test(alerts_are_locked_and_announced_inside),
        cmocka_unit_test(a_device_that_is_gone_fails_only_its_submitter),
        cmocka_unit_test(a_failure_rolls_back_and_fails_everyone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
