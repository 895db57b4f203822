/* retention: retiring the raw readings of whole months, oldest first, each
 * archived before it is dropped when ARCHIVE_DIR is set. One code path for
 * the server's schedule (RAW_RETENTION_DAYS: at start, then hourly, in a
 * thread of its own) and `wattline archive --before YYYY-MM`.
 *
 * A month goes in three steps, on one connection of the run's own:
 *   1. close (db_retention_close): the horizon moves past it, every instance
 *      hears of it (NOTIFY; ingestion then answers 422 too_old) and the
 *      database refuses late readings into it;
 *   2. archive (api/archive.h), from what step 1 left, now fixed;
 *   3. retire (db_retention_retire): the partition is dropped.
 * A failure stops the run; the next one starts again at that month (a month
 * closed but not dropped keeps its readings until then). Two instances never
 * work at once: the loser of an advisory lock skips its run.
 */
#ifndef WATTLINE_API_RETENTION_H
#define WATTLINE_API_RETENTION_H

#include <stdbool.h>

#include "../db/db.h"
#include "archive.h"

struct retention_options {
    const struct db_pool_options *db; /* one connection per run (size ignored) */
    const char *archive_dir;          /* NULL: months are dropped unarchived */
    bool force;                       /* write archives again even when .done */
    struct archive_report report;     /* what was written and dropped */
    const atomic_bool *stop;          /* true: end the run at the next file (may be NULL) */
};

/* Retires every month before `before` (base/month.h). *skipped when another
 * instance was running (nothing done). STATUS_OK when every month went. */
enum status retention_run(const struct retention_options *opts, int before, bool *skipped);

/* The schedule: a thread that runs retention_run() for the months all older
 * than now - days, at start and then every RETENTION_PERIOD_S, or
 * RETENTION_RETRY_S after a run that failed (the database was away, a lock
 * not had in time). opts (and what it points to) must outlive it. NULL when
 * the thread cannot start. */
#define RETENTION_PERIOD_S 3600
#define RETENTION_RETRY_S  300
struct retention;
struct retention *retention_start(const struct retention_options *opts, int days);
/* Ends a run in progress at its next file (a month half archived is
 * written again next time: it has no .done), then stops. NULL is a no-op. */
void retention_stop(struct retention *r);

#endif
