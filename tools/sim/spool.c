#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* flock */
#endif

#include "spool.h"

#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC      "#wattline-sim-spool 1 "
#define SPOOL_LINE_MAX   128
#define SPOOL_HEADER_MAX (SPOOL_SOURCE_MAX + 200)

size_t spool_format_entry(const struct spool_entry *e, char *buf, size_t size)
{
    char ts[TIME_RFC3339_SIZE];
    if (time_format_rfc3339(e->ts_us, ts, sizeof ts) == 0)
        return 0;
    int n = snprintf(buf, size, "%s,%.15g,%" PRId64, ts, e->value, e->seq);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

int spool_parse_entry(const char *line, struct spool_entry *e)
{
    const char *c1 = strchr(line, ',');
    const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (c1 == NULL || c2 == NULL || (size_t)(c1 - line) >= TIME_RFC3339_SIZE)
        return -1;
    char ts[TIME_RFC3339_SIZE];
    memcpy(ts, line, (size_t)(c1 - line));
    ts[c1 - line] = '\0';
    char *end;
    errno = 0;
    double value = strtod(c1 + 1, &end);
    if (end != c2 || errno != 0 || !isfinite(value) || value < 0)
        return -1;
    errno = 0;
    long long seq = strtoll(c2 + 1, &end, 10);
    if (*end != '\0' || end == c2 + 1 || errno != 0 || seq < 0)
        return -1;
    if (time_parse_rfc3339(ts, &e->ts_us) != 0)
        return -1;
    e->value = value;
    e->seq = seq;
    return 0;
}

static size_t format_header(const struct spool_meta *m, char *buf, size_t size)
{
    char start[TIME_RFC3339_SIZE];
    if (time_format_rfc3339(m->start_us, start, sizeof start) == 0)
        return 0;
    int n = snprintf(buf, size, SPOOL_MAGIC "type=%s start=%s interval_us=%" PRId64 " source=%s\n",
                     m->type, start, m->interval_us, m->source);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Copy the text after "key=" up to a blank (or the end if `rest`). */
static const char *take_field(const char *p, const char *key, char *out, size_t size, bool rest)
{
    size_t klen = strlen(key);
    if (strncmp(p, key, klen) != 0 || p[klen] != '=')
        return NULL;
    p += klen + 1;
    size_t len = rest ? strlen(p) : strcspn(p, " ");
    if (len == 0 || len >= size)
        return NULL;
    memcpy(out, p, len);
    out[len] = '\0';
    p += len;
    return rest ? p : (*p == ' ' ? p + 1 : NULL);
}

static int parse_header(const char *line, struct spool_meta *m)
{
    if (strncmp(line, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0)
        return -1;
    const char *p = line + strlen(SPOOL_MAGIC);
    char start[TIME_RFC3339_SIZE], interval[24];
    p = take_field(p, "type", m->type, sizeof m->type, false);
    p = p ? take_field(p, "start", start, sizeof start, false) : NULL;
    p = p ? take_field(p, "interval_us", interval, sizeof interval, false) : NULL;
    p = p ? take_field(p, "source", m->source, sizeof m->source, true) : NULL;
    if (p == NULL || time_parse_rfc3339(start, &m->start_us) != 0)
        return -1;
    char *end;
    errno = 0;
    long long us = strtoll(interval, &end, 10);
    if (*end != '\0' || errno != 0 || us <= 0)
        return -1;
    m->interval_us = us;
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Make a rename or a file creation in `path`'s directory durable. */
static int sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

static int push_pending(struct spool *sp, const struct spool_entry *e)
{
    if (sp->head + sp->count == sp->capacity) {
        if (sp->head > 0) {
            memmove(sp->pending, sp->pending + sp->head, sp->count * sizeof *sp->pending);
            sp->head = 0;
        } else {
            size_t cap = sp->capacity ? sp->capacity * 2 : 256;
            struct spool_entry *bigger = realloc(sp->pending, cap * sizeof *bigger);
            if (bigger == NULL)
                return -1;
            sp->pending = bigger;
            sp->capacity = cap;
        }
    }
    sp->pending[sp->head + sp->count++] = *e;
    return 0;
}

static char *read_whole(int fd, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return NULL;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    buf[size] = '\0';
    *len = size;
    return buf;
}

static int replay_line(struct spool *sp, char *line, off_t end, size_t line_no, char *err,
                       size_t err_size)
{
    if (line_no == 1) {
        if (parse_header(line, &sp->meta) == 0)
            return 0;
        snprintf(err, err_size, "%s is not a wattline-sim spool (bad header)", sp->path);
        return -1;
    }
    if (strncmp(line, "#ack ", 5) == 0) {
        char *stop;
        errno = 0;
        long long offset = strtoll(line + 5, &stop, 10);
        if (*stop == '\0' && errno == 0 && offset >= 0 && offset <= end) {
            if (offset > sp->acked)
                sp->acked = offset;
            return 0;
        }
    } else {
        struct spool_entry e;
        if (spool_parse_entry(line, &e) == 0) {
            e.end = end;
            sp->last = e;
            sp->has_last = true;
            if (push_pending(sp, &e) == 0)
                return 0;
            snprintf(err, err_size, "out of memory");
            return -1;
        }
    }
    snprintf(err, err_size, "%s: line %zu is corrupt", sp->path, line_no);
    return -1;
}

/* Rebuild the in-memory state from the file's text; drops a torn last line. */
static int replay(struct spool *sp, char *text, size_t len, char *err, size_t err_size)
{
    size_t pos = 0, line_no = 0;
    while (pos < len) {
        char *nl = memchr(text + pos, '\n', len - pos);
        if (nl == NULL) {
            /* A crash interrupted this write; it was never sent, so drop it. */
            if (ftruncate(sp->fd, (off_t)pos) != 0) {
                snprintf(err, err_size, "%s: cannot drop torn line: %s", sp->path, strerror(errno));
                return -1;
            }
            len = pos;
            break;
        }
        *nl = '\0';
        line_no++;
        off_t end = (off_t)(nl - text) + 1;
        if (replay_line(sp, text + pos, end, line_no, err, err_size) != 0)
            return -1;
        pos = (size_t)end;
    }
    if (line_no == 0) {
        snprintf(err, err_size, "%s is not a wattline-sim spool (no header)", sp->path);
        return -1;
    }
    sp->size = (off_t)len;
    while (sp->count > 0 && sp->pending[sp->head].end <= sp->acked) {
        sp->head++;
        sp->count--;
    }
    sp->resumed = true;
    return 0;
}

static int start_new(struct spool *sp, const struct spool_meta *meta, char *err, size_t err_size)
{
    char header[SPOOL_HEADER_MAX];
    size_t len = format_header(meta, header, sizeof header);
    if (len == 0 || memchr(meta->source, '\n', strlen(meta->source)) != NULL) {
        snprintf(err, err_size, "source description cannot go in a spool header");
        return -1;
    }
    if (write_all(sp->fd, header, len) != 0 || fdatasync(sp->fd) != 0 ||
        sync_parent_dir(sp->path) != 0) {
        snprintf(err, err_size, "%s: %s", sp->path, strerror(errno));
        return -1;
    }
    sp->meta = *meta;
    sp->size = (off_t)len;
    sp->acked = sp->size;
    return 0;
}

int spool_open(struct spool *sp, const char *path, const struct spool_meta *meta, char *err,
               size_t err_size)
{
    memset(sp, 0, sizeof *sp);
    sp->fd = -1;
    sp->path = strdup(path);
    if (sp->path == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    sp->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (sp->fd < 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(sp->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, err_size, "%s: %s", path,
                 errno == EWOULDBLOCK ? "in use by another simulator" : strerror(errno));
        goto fail;
    }
    size_t len = 0;
    char *text = read_whole(sp->fd, &len);
    if (text == NULL) {
        snprintf(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    int rc = len == 0 ? start_new(sp, meta, err, err_size) : replay(sp, text, len, err, err_size);
    free(text);
    if (rc == 0)
        return 0;
fail:
    spool_close(sp);
    return -1;
}

int spool_append(struct spool *sp, const struct spool_entry *entries, size_t n)
{
    char *buf = malloc(n * SPOOL_LINE_MAX + 1);
    if (buf == NULL)
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t line = spool_format_entry(&entries[i], buf + len, SPOOL_LINE_MAX);
        if (line == 0) {
            free(buf);
            errno = EINVAL;
            return -1;
        }
        len += line;
        buf[len++] = '\n';
    }
    if (write_all(sp->fd, buf, len) != 0 || fdatasync(sp->fd) != 0) {
        int saved = errno;
        free(buf);
        errno = saved;
        return -1;
    }
    /* Offsets follow the same formatting, so they can be replayed without rereading. */
    off_t offset = sp->size;
    for (size_t i = 0; i < n; i++) {
        struct spool_entry e = entries[i];
        char line[SPOOL_LINE_MAX];
        offset += (off_t)spool_format_entry(&e, line, sizeof line) + 1;
        e.end = offset;
        if (push_pending(sp, &e) != 0) {
            free(buf);
            errno = ENOMEM;
            return -1;
        }
        sp->last = e;
        sp->has_last = true;
    }
    sp->size = offset;
    free(buf);
    return 0;
}

size_t spool_pending(const struct spool *sp)
{
    return sp->count;
}

const struct spool_entry *spool_peek(const struct spool *sp, size_t i)
{
    return i < sp->count ? &sp->pending[sp->head + i] : NULL;
}

int spool_ack(struct spool *sp, size_t n)
{
    if (n == 0)
        return 0;
    if (n > sp->count)
        n = sp->count;
    off_t offset = sp->pending[sp->head + n - 1].end;
    sp->head += n;
    sp->count -= n;
    if (sp->count == 0)
        sp->head = 0;
    sp->acked = offset;
    char line[48];
    int len = snprintf(line, sizeof line, "#ack %lld\n", (long long)offset);
    if (write_all(sp->fd, line, (size_t)len) != 0)
        return -1;
    sp->size += len;
    return 0;
}

/* Lines of the compacted file: the pending readings, or the newest one acked. */
static int write_compacted(struct spool *sp, int fd, off_t *ends, off_t *size_out)
{
    char buf[SPOOL_HEADER_MAX];
    size_t len = format_header(&sp->meta, buf, sizeof buf);
    if (len == 0 || write_all(fd, buf, len) != 0)
        return -1;
    off_t size = (off_t)len;
    size_t n = sp->count > 0 ? sp->count : (sp->has_last ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        const struct spool_entry *e = sp->count > 0 ? &sp->pending[sp->head + i] : &sp->last;
        len = spool_format_entry(e, buf, sizeof buf - 1);
        buf[len++] = '\n';
        if (write_all(fd, buf, len) != 0)
            return -1;
        size += (off_t)len;
        ends[i] = size;
    }
    if (sp->count == 0 && sp->has_last) {
        int alen = snprintf(buf, sizeof buf, "#ack %lld\n", (long long)size);
        if (write_all(fd, buf, (size_t)alen) != 0)
            return -1;
        size += alen;
    }
    *size_out = size;
    return fdatasync(fd);
}

static off_t reclaimable_bytes(const struct spool *sp)
{
    if (sp->count == 0)
        return sp->size;
    char line[SPOOL_LINE_MAX];
    const struct spool_entry *first = &sp->pending[sp->head];
    return first->end - (off_t)spool_format_entry(first, line, sizeof line) - 1;
}

int spool_compact(struct spool *sp, off_t threshold)
{
    if (reclaimable_bytes(sp) <= threshold)
        return 0;
    size_t tmp_len = strlen(sp->path) + 5;
    char *tmp = malloc(tmp_len);
    off_t *ends = malloc((sp->count + 1) * sizeof *ends);
    int fd = -1, rc = -1;
    if (tmp == NULL || ends == NULL)
        goto out;
    snprintf(tmp, tmp_len, "%s.tmp", sp->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
        goto out;
    off_t size;
    if (fcntl(fd, F_SETFL, O_APPEND) != 0 || write_compacted(sp, fd, ends, &size) != 0 ||
        rename(tmp, sp->path) != 0)
        goto out;
    /* From here the new file is the spool, whatever happens next. */
    close(sp->fd);
    sp->fd = fd;
    fd = -1;
    for (size_t i = 0; i < sp->count; i++)
        sp->pending[sp->head + i].end = ends[i];
    if (sp->has_last)
        sp->last.end = sp->count > 0 ? ends[sp->count - 1] : ends[0];
    sp->size = size;
    sp->acked = sp->count > 0 ? reclaimable_bytes(sp) : size;
    rc = sync_parent_dir(sp->path);
out:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
    }
    free(ends);
    free(tmp);
    return rc;
}

void spool_close(struct spool *sp)
{
    if (sp->path != NULL && sp->fd >= 0)
        close(sp->fd);
    free(sp->path);
    free(sp->pending);
    memset(sp, 0, sizeof *sp);
    sp->fd = -1;
}
