#include "static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../api/app.h"

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
};

const char *static_files_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
            if (!strcasecmp(dot, TYPES[i].ext))
                return TYPES[i].type;
    return "application/octet-stream";
}

bool static_files_path_safe(const char *path)
{
    if (path[0] != '/' || strchr(path, '\\') || strstr(path, "//"))
        return false;
    for (const char *seg = path + 1; *seg;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return strlen(path) < PATH_MAX / 2;
}

/* Opens root + path and checks, after resolving symlinks, that the file is a
 * regular file inside the (resolved) root. Returns the fd or -1. */
static int open_inside(const char *root, const char *path, struct stat *st)
{
    char joined[PATH_MAX], real_root[PATH_MAX], real_file[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s%s", root, path) >= (int)sizeof joined)
        return -1;
    if (!realpath(root, real_root) || !realpath(joined, real_file))
        return -1;
    size_t rl = strlen(real_root);
    if (strncmp(real_file, real_root, rl) != 0 || real_file[rl] != '/')
        return -1;
    int fd = open(real_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

void static_files_serve(struct app *app, const char *method, const char *path,
                        const char *if_none_match, struct response *res)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        response_problem(res, 405, "method_not_allowed", NULL, "allowed: GET, HEAD");
        response_header(res, "Allow", "GET, HEAD");
        return;
    }
    if (!static_files_path_safe(path)) {
        response_problem(res, 404, "not_found", NULL, "no such file");
        return;
    }
    char file[PATH_MAX];
    size_t len = strlen(path);
    snprintf(file, sizeof file, "%s%s", path, path[len - 1] == '/' ? "index.html" : "");

    struct stat st;
    int fd = open_inside(app->config->web_root, file, &st);
    if (fd < 0) {
        response_problem(res, 404, "not_found", NULL, "no such file");
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%lx-%lx-%lx\"", (unsigned long)st.st_mtim.tv_sec,
             (unsigned long)st.st_mtim.tv_nsec, (unsigned long)st.st_size);
    /* Revalidate every time: a new release must reach browsers at once, and a
     * 304 costs one small round trip. */
    response_header(res, "Cache-Control", "no-cache");
    response_header(res, "ETag", etag);
    if (if_none_match && strstr(if_none_match, etag)) {
        close(fd);
        res->status = 304;
        return;
    }
    res->status = 200;
    res->has_file = true;
    res->file_fd = fd;
    res->file_size = (size_t)st.st_size;
    res->content_type = static_files_content_type(file);
}
