/* ingest/ingest.c: the queue and the committer threads, over a fake store.
 * ingest_submit() blocks until its group committed and returns the result;
 * a submission that breaks a rule fails at once and stores nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "../../ingest/ingest.h"
#include "fake_ingest_store.h"

#define H   ENERGY_HOUR_US
#define MIN (60LL * 1000000)
#define T0  (1795000000LL / 3600 * 3600 * 1000000) /* an hour boundary in 2026 */
#define AGE (1100 * 24 * H)                        /* MAX_READING_AGE_DAYS' default */

static struct ingest *start(struct fake_store *f)
{
    struct ingest_store store = fake_store_table(f);
    char err[128];
    struct ingest *ing = ingest_start(&store, AGE, err, sizeof err);
    assert_non_null(ing);
    return ing;
}

/* ---- a gate the fake's commit waits at ----------------------------------------- */

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool reached, open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void gate_wait(struct fake_store *f)
{
    (void)f;
    pthread_mutex_lock(&gate.mutex);
    gate.reached = true;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.open)
        pthread_cond_wait(&gate.cond, &gate.mutex);
    pthread_mutex_unlock(&gate.mutex);
}

/* Waits until a commit is held at the gate. */
static void gate_await_commit(void)
{
    pthread_mutex_lock(&gate.mutex);
    while (!gate.reached)
        pthread_cond_wait(&gate.cond, &gate.mutex);
    pthread_mutex_unlock(&gate.mutex);
}

/* Lets every commit through from now on. */
static void gate_release(void)
{
    pthread_mutex_lock(&gate.mutex);
    gate.open = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.mutex);
}

/* A thread that submits and records what it got back. */
struct submitter {
    struct ingest *ing;
    struct ingest_submission sub;
    enum status status;
    struct ingest_result result;
    atomic_bool returned;
};

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    s->status = ingest_submit(s->ing, &s->sub, &s->result);
    atomic_store(&s->returned, true);
    return NULL;
}

static void submit_blocks_until_committed(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 7, READING_CUMULATIVE, 1e9);
    f.on_commit = gate_wait;
    struct ingest *ing = start(&f);

    struct ingest_reading r[] = {{T0, 1.0, READING_CUMULATIVE},
                                 {T0 + 30 * MIN, 2.0, READING_CUMULATIVE},
                                 {T0, 5.0, READING_CUMULATIVE}};
    struct submitter s = {.ing = ing, .sub = {7, READING_CUMULATIVE, r, 3, T0 + H}};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, submitter_main, &s), 0);

    /* The commit has started and is held: the submitter is still waiting. */
    gate_await_commit();
    assert_false(atomic_load(&s.returned));
    gate_release();

    pthread_join(thread, NULL);
    assert_int_equal(s.status, STATUS_OK);
    assert_int_equal(s.result.accepted, 2);
    assert_int_equal(s.result.duplicates, 1);
    assert_int_equal(f.committed.nreadings, 2);

    struct ingest_stats st;
    ingest_stats(ing, &st);
    assert_int_equal(st.readings, 2);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.transactions, 1);
    assert_int_equal(st.failures, 0);
    ingest_stop(ing);
    fake_destroy(&f);
}

static void a_bad_reading_fails_the_submission_and_stores_nothing(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 7, READING_INTERVAL, 1e9);
    struct ingest *ing = start(&f);
    long long now = T0 + H;
    const struct ingest_reading bad[] = {
        {T0, -1.0, READING_INTERVAL},                        /* negative */
        {T0, 1.0, READING_CUMULATIVE},                       /* meter_kwh for an interval device */
        {now + INGEST_FUTURE_US + 1, 1.0, READING_INTERVAL}, /* too far ahead */
        {now - AGE - 1, 1.0, READING_INTERVAL},              /* too old */
        {T0, 1.1e12, READING_INTERVAL},                      /* too large */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct ingest_reading r[] = {{T0 + MIN, 1.0, READING_INTERVAL}, bad[i]};
        struct ingest_submission sub = {7, READING_INTERVAL, r, 2, now};
        struct ingest_result res = {-1, -1};
        assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_INVALID);
        assert_int_equal(res.accepted, 0);
        assert_int_equal(res.duplicates, 0);
    }
    struct ingest_submission empty = {7, READING_INTERVAL, NULL, 0, now};
    struct ingest_result res;
    assert_int_equal(ingest_submit(ing, &empty, &res), STATUS_INVALID);
    ingest_stop(ing);
    assert_string_equal(f.log, ""); /* no transaction was even begun */
    assert_int_equal(f.committed.nreadings, 0);
    fake_destroy(&f);
}

/* A retired month's reading is too_old: the horizon narrows max_age, only forward. */
static void the_horizon_refuses_retired_months(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    fake_add_device(&f, 7, READING_INTERVAL, 1e9);
    struct ingest *ing = start(&f);
    long long now = T0 + H;
    assert_int_equal(ingest_max_age_us(ing, now, AGE), AGE);
    assert_int_equal(ingest_max_age_us(NULL, now, AGE), AGE);
    ingest_set_horizon(ing, T0);
    assert_int_equal(ingest_max_age_us(ing, now, AGE), H);
    ingest_set_horizon(ing, T0 - 24 * H); /* an older horizon heard late changes nothing */
    assert_int_equal(ingest_max_age_us(ing, now, AGE), H);
    struct ingest_reading before[] = {{T0 - 1, 1.0, READING_INTERVAL}};
    struct ingest_submission sub = {7, READING_INTERVAL, before, 1, now};
    struct ingest_result res;
    assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_INVALID);
    struct ingest_reading at[] = {{T0, 1.0, READING_INTERVAL}};
    sub.readings = at;
    assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_OK);
    assert_int_equal(res.accepted, 1);
    ingest_stop(ing);
    assert_int_equal(f.committed.nreadings, 1);
    fake_destroy(&f);
}

static void a_gone_device_and_an_unreachable_database(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    struct ingest *ing = start(&f);
    struct ingest_reading r[] = {{T0, 1.0, READING_INTERVAL}};
    struct ingest_submission sub = {7, READING_INTERVAL, r, 1, T0 + H};
    struct ingest_result res;
    assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_NOT_FOUND);
    ingest_stop(ing);

    f.unreachable = true;
    ing = start(&f);
    assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_UNAVAILABLE);
    ingest_stop(ing);
    fake_destroy(&f);
}

/* How many times the fake was told to announce outside a transaction. */
static int notify_calls(const struct fake_store *f)
{
    int n = 0;
    for (const char *p = f->log; (p = strstr(p, "notify")) != NULL; p++)
        n += p == f->log || p[-1] == ' ';
    return n;
}

/* Live usage is gathered over the groups of an interval and announced
 * once, each device once and in order, without waiting for more work; what
 * the last groups stored is announced at the stop. */
static void usage_is_announced_once_for_the_groups_of_an_interval(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    for (long long id = 7; id <= 9; id++)
        fake_add_device(&f, id, READING_INTERVAL, 1e9);
    struct ingest *ing = start(&f);
    const long long devices[] = {8, 7, 7};
    for (int i = 0; i < 3; i++) {
        struct ingest_reading r[] = {{T0 + i * MIN, 1.0, READING_INTERVAL}};
        struct ingest_submission sub = {devices[i], READING_INTERVAL, r, 1, T0 + H};
        struct ingest_result res;
        assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_OK);
    }
    /* Announced by the committers' own clock: nothing else happens. */
    for (int waited = 0; waited < 5000 && __atomic_load_n(&f.nnotified_usage, __ATOMIC_ACQUIRE) < 2;
         waited++)
        usleep(1000);
    pthread_mutex_lock(&f.lock); /* the committers' writes are seen */
    int calls = notify_calls(&f);
    pthread_mutex_unlock(&f.lock);
    /* Three groups in well under the interval: one announcement (two if this
     * machine stalled a whole interval in between), never one per group. */
    assert_in_range(calls, 1, 2);
    if (calls == 1) {
        assert_int_equal(f.nnotified_usage, 2);
        assert_true(f.notified_usage[0] == 7 && f.notified_usage[1] == 8);
    }

    struct ingest_reading r[] = {{T0, 1.0, READING_INTERVAL}};
    struct ingest_submission sub = {9, READING_INTERVAL, r, 1, T0 + H};
    struct ingest_result res;
    int before = f.nnotified_usage;
    assert_int_equal(ingest_submit(ing, &sub, &res), STATUS_OK);
    ingest_stop(ing);
    assert_true(f.nnotified_usage > before);
    assert_true(f.notified_usage[f.nnotified_usage - 1] == 9);
    fake_destroy(&f);
}

/* ---- when the second committer joins ---------------------------------------------- */

static atomic_int begins; /* transactions begun, counted before the fake's lock */

static enum status counting_begin(void *conn)
{
    atomic_fetch_add(&begins, 1);
    return fake_begin(conn);
}

static void note_done(struct ingest_request *req)
{
    atomic_store((atomic_bool *)req->user, true);
}

/* While one committer stores a group, the other takes the queued jobs only
 * once enough readings wait (one alone grows larger groups); the first takes
 * the rest when its group is done. */
static void a_second_committer_joins_only_for_enough_readings(void **state)
{
    (void)state;
    struct fake_store f;
    fake_init(&f);
    for (long long id = 7; id <= 9; id++)
        fake_add_device(&f, id, READING_INTERVAL, 1e9);
    f.on_commit = gate_wait;
    gate.reached = gate.open = false;
    atomic_store(&begins, 0);
    struct ingest_store store = fake_store_table(&f);
    store.begin = counting_begin;
    char err[128];
    struct ingest *ing = ingest_start(&store, AGE, err, sizeof err);
    assert_non_null(ing);

    struct ingest_reading one[] = {{T0, 1.0, READING_INTERVAL}};
    struct submitter s = {.ing = ing, .sub = {7, READING_INTERVAL, one, 1, T0 + H}};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, submitter_main, &s), 0);
    gate_await_commit();

    /* One reading waits: the idle committer is not even woken. */
    atomic_bool small_done = false, large_done = false;
    struct ingest_request small = {
        .in = {8, READING_INTERVAL, one, 1, T0 + H}, .done = note_done, .user = &small_done};
    ingest_enqueue(ing, &small);
    usleep(50 * 1000);
    assert_int_equal(atomic_load(&begins), 1);

    /* 300 wait: the second committer begins (and waits for the fake). */
    enum { LARGE = 300 };
    static struct ingest_reading many[LARGE];
    for (int i = 0; i < LARGE; i++)
        many[i] = (struct ingest_reading){T0 + i * 1000000LL, 0.5, READING_INTERVAL};
    struct ingest_request large = {
        .in = {9, READING_INTERVAL, many, LARGE, T0 + H}, .done = note_done, .user = &large_done};
    ingest_enqueue(ing, &large);
    for (int waited = 0; waited < 5000 && atomic_load(&begins) < 2; waited++)
        usleep(1000);
    assert_int_equal(atomic_load(&begins), 2);

    gate_release();
    pthread_join(thread, NULL);
    ingest_stop(ing); /* finishes what was taken */
    assert_int_equal(s.status, STATUS_OK);
    assert_true(atomic_load(&small_done) && atomic_load(&large_done));
    assert_int_equal(small.status, STATUS_OK);
    assert_int_equal(large.status, STATUS_OK);
    assert_int_equal(large.result.accepted, LARGE);
    assert_int_equal(f.committed.nreadings, LARGE + 2);
    fake_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submit_blocks_until_committed),
        cmocka_unit_test(a_bad_reading_fails_the_submission_and_stores_nothing),
        cmocka_unit_test(the_horizon_refuses_retired_months),
        cmocka_unit_test(a_gone_device_and_an_unreachable_database),
        cmocka_unit_test(usage_is_announced_once_for_the_groups_of_an_interval),
        cmocka_unit_test(a_second_committer_joins_only_for_enough_readings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
