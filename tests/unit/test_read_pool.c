/* Unit tests for api/read_pool.c and the route table's read_replica flag:
 * when a replica may be read from, which answers go to the primary again,
 * and which routes may read from it at all (the contract's charts,
 * readings, exports and lists; never a write or a single object). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../api/read_pool.h"
#include "../../db/internal.h"
#include "../../server/routes.h"

static void usable_only_when_ready_fresh_and_within_the_lag(void **state)
{
    (void)state;
    assert_true(read_pool_usable(DB_HEALTH_READY, 0.5, 0, 5));
    assert_true(read_pool_usable(DB_HEALTH_READY, 0.5, 5, 5)); /* at the limit: still */
    assert_false(read_pool_usable(DB_HEALTH_READY, 0.5, 5.001, 5));
    assert_false(read_pool_usable(DB_HEALTH_READY, 0.5, -1, 5)); /* lag unknown */
    assert_false(read_pool_usable(DB_HEALTH_DOWN, 0.5, 0, 5));
    assert_false(read_pool_usable(DB_HEALTH_UNKNOWN, 0, 0, 5));
    assert_false(read_pool_usable(DB_HEALTH_OUTDATED, 0.5, 0, 5));
    /* A check that hangs: the last READY is too old to believe. */
    assert_true(read_pool_usable(DB_HEALTH_READY, 3 * DB_HEALTH_INTERVAL_S, 0, 5));
    assert_false(read_pool_usable(DB_HEALTH_READY, 3 * DB_HEALTH_INTERVAL_S + 0.1, 0, 5));
}

static void failures_and_not_found_go_to_the_primary(void **state)
{
    (void)state;
    assert_true(read_pool_retry_status(500));
    assert_true(read_pool_retry_status(503));
    assert_true(read_pool_retry_status(404)); /* created a moment ago, not replayed yet */
    assert_false(read_pool_retry_status(200));
    assert_false(read_pool_retry_status(400)); /* the same on the primary */
    assert_false(read_pool_retry_status(403));
    assert_false(read_pool_retry_status(422));
    assert_false(read_pool_retry_status(429));
}

/* The watcher's state, as db_pool_watch_replica() would set it, decides
 * read_pool_replica() (no connection is ever opened here). */
static void the_replica_is_offered_only_while_its_state_allows(void **state)
{
    (void)state;
    struct db_pool_options opts = {.url = "postgresql://127.0.0.1:1/none", .size = 1};
    struct db_pool *pool = db_pool_create(&opts);
    assert_non_null(pool);
    struct read_pool *rp = read_pool_create(pool, 5);
    assert_non_null(rp);
    assert_null(read_pool_replica(NULL));
    assert_null(read_pool_replica(rp)); /* not checked yet */
    db_pool_health_set(pool, DB_HEALTH_READY);
    assert_null(read_pool_replica(rp)); /* lag unknown */
    db_pool_replica_lag_set(pool, 0.25);
    assert_ptr_equal(read_pool_replica(rp), pool);
    assert_true(db_pool_replica_lag(pool) > 0.249 && db_pool_replica_lag(pool) < 0.251);
    db_pool_replica_lag_set(pool, 6);
    assert_null(read_pool_replica(rp)); /* lagging */
    db_pool_replica_lag_set(pool, 1);
    db_pool_health_set(pool, DB_HEALTH_DOWN);
    assert_null(read_pool_replica(rp));
    read_pool_note(rp, READ_REPLICA);
    read_pool_note(NULL, READ_REPLICA); /* no replica configured: a no-op */
    read_pool_free(rp);
    db_pool_free(pool);
}

/* The routes that may read from the replica, as the contract lists them:
 * charts, readings (and their CSV export) and lists. */
static const char *const REPLICA_ROUTES[] = {
    "/api/v1/users",
    "/api/v1/devices",
    "/api/v1/devices/{id}/consumption",
    "/api/v1/devices/{id}/measurements",
    "/api/v1/devices/{id}/commands",
    "/api/v1/alerts",
    "/api/v1/me/webhooks",
    "/api/v1/me/webhooks/{id}/deliveries",
    "/api/v1/conversations",
    "/api/v1/conversations/{id}/messages",
};
#define NREPLICA (sizeof REPLICA_ROUTES / sizeof REPLICA_ROUTES[0])

static bool listed(const char *pattern)
{
    for (size_t i = 0; i < NREPLICA; i++)
        if (!strcmp(REPLICA_ROUTES[i], pattern))
            return true;
    return false;
}

static void only_gets_of_charts_readings_and_lists_read_the_replica(void **state)
{
    (void)state;
    size_t flagged = 0;
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        const struct route *r = &ROUTES[i];
        if (!r->read_replica)
            continue;
        flagged++;
        /* A write must never land on a standby; a worker is where reads
         * wait for a connection. */
        assert_string_equal(r->method, "GET");
        assert_int_equal(r->thread, THREAD_QUERY);
        if (!listed(r->pattern))
            fail_msg("%s reads from the replica but is no chart, readings or list", r->pattern);
    }
    assert_int_equal(flagged, NREPLICA);
    /* Single objects and the caller itself stay on the primary. */
    for (size_t i = 0; i < ROUTES_COUNT; i++)
        if (!strcmp(ROUTES[i].pattern, "/api/v1/me") ||
            !strcmp(ROUTES[i].pattern, "/api/v1/devices/{id}") ||
            !strcmp(ROUTES[i].pattern, "/api/v1/users/{id}") ||
            !strcmp(ROUTES[i].pattern, "/api/v1/me/conversation"))
            assert_false(ROUTES[i].read_replica);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usable_only_when_ready_fresh_and_within_the_lag),
        cmocka_unit_test(failures_and_not_found_go_to_the_primary),
        cmocka_unit_test(the_replica_is_offered_only_while_its_state_allows),
        cmocka_unit_test(only_gets_of_charts_readings_and_lists_read_the_replica),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
