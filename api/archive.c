#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../base/month.h"
#include "../db/readings_query.h"
#include "../db/retention.h"
#include "readings_csv.h"

#define DONE_MARKER ".done"

static void say(const struct archive_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct archive_report *r, const char *fmt, ...)
{
    char text[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->line(r->ctx, text);
}

/* fsync of a folder: its entries (a rename, a new file) are durable. */
static bool sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Streams a device's readings of [from, to) into gz as CSV; *rows counts them. */
static enum status write_rows(struct db_conn *c, gzFile gz, const struct retention_device *d,
                              long long from, long long to, long long *rows)
{
    const char *header = readings_csv_header(d->type);
    if (gzwrite(gz, header, (unsigned)strlen(header)) <= 0)
        return STATUS_INTERNAL;
    char *buf = malloc((size_t)ARCHIVE_CHUNK * READINGS_CSV_LINE_MAX);
    if (!buf)
        return STATUS_INTERNAL;
    enum status st = STATUS_OK;
    for (bool more = true; st == STATUS_OK && more;) {
        struct reading_list list;
        st = db_readings_list(c, d->id, from, to, ARCHIVE_CHUNK, &list);
        if (st != STATUS_OK)
            break;
        size_t len = 0;
        for (int i = 0; i < list.count; i++)
            len += readings_csv_line(&list.items[i], buf + len);
        if (len > 0 && gzwrite(gz, buf, (unsigned)len) <= 0)
            st = STATUS_INTERNAL;
        *rows += list.count;
        more = list.count == ARCHIVE_CHUNK;
        if (list.count > 0)
            from = list.items[list.count - 1].ts + 1; /* keyset: below to, no overflow */
        reading_list_free(&list);
    }
    free(buf);
    return st;
}

/* Writes path through path.tmp: the gzip'd CSV of d (or, d NULL, the marker
 * text), fsynced before the rename. */
static enum status write_file(struct db_conn *c, const char *path, const struct retention_device *d,
                              int month, long long *rows)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return STATUS_INTERNAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return STATUS_INTERNAL;
    enum status st = STATUS_OK;
    if (d) {
        /* gzclose() closes the descriptor it was given: a duplicate, so that
         * ours stays open for the fsync. */
        int gzfd = dup(fd);
        gzFile gz = gzfd >= 0 ? gzdopen(gzfd, "wb") : NULL;
        if (!gz) {
            if (gzfd >= 0)
                close(gzfd);
            st = STATUS_INTERNAL;
        } else {
            st = write_rows(c, gz, d, month_start(month) * 1000000LL,
                            month_start(month + 1) * 1000000LL, rows);
            if (gzclose(gz) != Z_OK && st == STATUS_OK)
                st = STATUS_INTERNAL;
        }
    } else {
        static const char text[] = "every device's file of this month is written\n";
        if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
            st = STATUS_INTERNAL;
    }
    if (fsync(fd) != 0 && st == STATUS_OK)
        st = STATUS_INTERNAL;
    if (close(fd) != 0 && st == STATUS_OK)
        st = STATUS_INTERNAL;
    if (st == STATUS_OK && rename(tmp, path) != 0)
        st = STATUS_INTERNAL;
    if (st != STATUS_OK)
        unlink(tmp);
    return st;
}

enum status archive_month(struct db_conn *c, const char *dir, int month, bool force,
                          const struct archive_report *report, const atomic_bool *stop)
{
    char name[MONTH_TEXT_MAX], folder[PATH_MAX], path[PATH_MAX], marker[PATH_MAX];
    month_format(month, name);
    if (snprintf(folder, sizeof folder, "%s/%s", dir, name) >= (int)sizeof folder ||
        snprintf(marker, sizeof marker, "%s/" DONE_MARKER, folder) >= (int)sizeof marker)
        return STATUS_INTERNAL;
    bool made = mkdir(folder, 0750) == 0;
    if (!made && errno != EEXIST) {
        say(report, "archive %s: cannot make %s: %s", name, folder, strerror(errno));
        return STATUS_INTERNAL;
    }
    if (!force && access(marker, F_OK) == 0) {
        say(report, "archive %s: already written in %s (kept; --force writes it again)", name,
            folder);
        return STATUS_OK;
    }
    struct retention_device *devices;
    int n;
    enum status st = db_retention_devices(c, month, &devices, &n);
    for (int i = 0; st == STATUS_OK && i < n; i++) {
        if (stop && atomic_load(stop)) {
            st = STATUS_UNAVAILABLE;
            break;
        }
        char rel[PATH_MAX];
        long long rows = 0;
        if (!month_archive_path(month, devices[i].id, rel, sizeof rel) ||
            snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path)
            st = STATUS_INTERNAL;
        else
            st = write_file(c, path, &devices[i], month, &rows);
        if (st == STATUS_OK)
            say(report, "wrote %s (%lld readings)", path, rows);
        else
            say(report, "archive %s: writing %s failed", name, path);
    }
    free(devices);
    if (st == STATUS_OK && (write_file(c, marker, NULL, month, NULL) != STATUS_OK ||
                            !sync_dir(folder) || (made && !sync_dir(dir)))) {
        say(report, "archive %s: cannot make %s durable: %s", name, folder, strerror(errno));
        st = STATUS_INTERNAL;
    }
    return st;
}
