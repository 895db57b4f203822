#include "login.h"

#include "../base/log.h"
#include "../db/login_failures.h"
#include "throttle.h"

/* Stale per-account rows deleted per login attempt: enough to keep up with
 * new rows, small enough to cost nothing. */
#define PRUNE_BATCH 10

static long long usec(double seconds)
{
    return (long long)(seconds * 1e6);
}

struct attempt {
    double now;
    double wait; /* > 0: locked, nothing counted */
};

/* The throttle's decision on the stored state: a locked account is refused
 * without counting (so the lock does not grow), else one failure is counted. */
static bool count_failure(struct login_failure *row, void *ctx)
{
    struct attempt *a = ctx;
    struct throttle_state state = {.failures = row->failures,
                                   .window_start = (double)row->window_start / 1e6,
                                   .locked_until = (double)row->locked_until / 1e6};
    a->wait = throttle_wait(&state, a->now);
    if (a->wait > 0)
        return false;
    throttle_fail(&THROTTLE_ACCOUNT, &state, a->now);
    double window_end = state.window_start + THROTTLE_ACCOUNT.window_s;
    *row = (struct login_failure){
        .failures = state.failures,
        .window_start = usec(state.window_start),
        .locked_until = usec(state.locked_until),
        .expires_at = usec(state.locked_until > window_end ? state.locked_until : window_end),
    };
    return true;
}

enum status login_count_attempt(struct db_conn *conn, const char *email, double now, double *wait)
{
    struct attempt a = {.now = now};
    enum status st = db_login_failures_update(conn, email, count_failure, &a);
    *wait = st == STATUS_OK ? a.wait : 0;
    if (st == STATUS_OK && a.wait <= 0 &&
        db_login_failures_prune(conn, usec(now), PRUNE_BATCH) != STATUS_OK)
        log_warn("auth: could not prune old login failures");
    return st;
}

enum status login_forgive_account(struct db_conn *conn, const char *email)
{
    return db_login_failures_clear(conn, email);
}
