/* archive: a month of raw readings written to files before it is dropped,
 * ARCHIVE_DIR/<yyyy-mm>/device-<id>.csv.gz per device with readings that
 * month, each the gzip of exactly what the CSV export of that device and
 * month gives (api/readings_csv.h).
 *
 * Durability: each file is written to "<name>.tmp" in the same folder,
 * fsynced, renamed, and the folder fsynced (and ARCHIVE_DIR too when the
 * month's folder was made now). Readings are streamed in keyset chunks of
 * ARCHIVE_CHUNK (one statement each): a month is never held in memory.
 *
 * "Already archived" means the month's folder holds ".done", written (the
 * same way) only after every device's file: a month with it is not written
 * again unless force. A run that died half way left no .done, so the next
 * one writes the month whole.
 */
#ifndef WATTLINE_API_ARCHIVE_H
#define WATTLINE_API_ARCHIVE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "../db/db.h"

#define ARCHIVE_CHUNK 5000

/* Where a run says what it did, one line at a time (borrowed text). */
struct archive_report {
    void (*line)(void *ctx, const char *text);
    void *ctx;
};

/* Archives month (base/month.h) under dir, reading on conn (no transaction
 * left open). The caller must have closed the month to ingestion first
 * (db_retention_close), so that what is read is all it will ever hold.
 * STATUS_INTERNAL (reported) when a file cannot be written; STATUS_UNAVAILABLE
 * when *stop became true between two files (shutdown; stop may be NULL). */
enum status archive_month(struct db_conn *conn, const char *dir, int month, bool force,
                          const struct archive_report *report, const atomic_bool *stop);

#endif
