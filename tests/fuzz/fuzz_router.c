/* fuzz_router: a request line's target, percent-decoded the way
 * libmicrohttpd does it for the server, through the route table
 * (server/router.c over server/routes.c) and, for paths no route knows,
 * the static files (server/static_files.c) under a web root made for the run.
 *
 * Input: the first byte picks the method, the rest is the request target as
 * sent ("/api/v1/devices/12%2Fx?limit=5"). The query is cut off and the path
 * decoded with MHD_http_unescape, as libmicrohttpd does before the access
 * handler sees it (%00 ends the path there, too).
 *
 * The web root holds index.html, js/app.js and sub/index.html, and traps:
 * symlinks to a file beside the root, to the root's parent, to a sibling
 * directory whose name starts with the root's ("root2"), and a directory.
 *
 * Properties (abort on violation):
 *  - a found route has the method asked (HEAD for GET), and its pattern with
 *    the parameters put back is exactly the path; no parameter is empty or
 *    holds a '/';
 *  - 405 comes with an Allow list that does not hold the method;
 *  - a static file served is a regular file whose resolved path is inside
 *    the resolved web root, and a path static_files_path_safe refuses is
 *    never served.
 */
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../api/app.h"
#include "../../server/routes.h"
#include "../../server/static_files.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
#define NMETHODS (sizeof METHODS / sizeof *METHODS)

static char base_dir[PATH_MAX]; /* the run's directory, holding root/ and the traps */
static char real_root[PATH_MAX];
static struct config config;
static struct app app;

static void check(int ok, const char *what, const char *method, const char *path)
{
    if (!ok) {
        fprintf(stderr, "fuzz_router: %s: %s \"%s\"\n", what, method, path);
        abort();
    }
}

static void make_file(const char *rel, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base_dir, rel);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

static void make_dir(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base_dir, rel);
    if (mkdir(p, 0755) != 0)
        abort();
}

static void make_link(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base_dir, rel);
    if (symlink(target, p) != 0)
        abort();
}

static void remove_run_dir(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_router: could not remove %s\n", base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof base_dir, "%s/wattline-fuzz-router-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base_dir))
        abort();
    make_dir("root");
    make_dir("root/js");
    make_dir("root/sub");
    make_dir("root2");
    make_file("secret.txt", "outside the web root\n");
    make_file("root2/secret.txt", "beside the web root\n");
    make_file("root/index.html", "<!doctype html>\n");
    make_file("root/js/app.js", "export {};\n");
    make_file("root/sub/index.html", "<!doctype html>\n");
    make_link("../secret.txt", "root/escape.txt");
    make_link("..", "root/up");
    make_link("../root2", "root/r2");
    make_link("/etc/passwd", "root/passwd");
    make_link("js", "root/jslink");
    atexit(remove_run_dir);

    static char web_root[PATH_MAX];
    snprintf(web_root, sizeof web_root, "%s/root", base_dir);
    if (!realpath(web_root, real_root))
        abort();
    config.web_root = web_root;
    app.config = &config;
    return 0;
}

/* The pattern with the parameters put back. */
static void rebuild(const char *pattern, const struct route_match *m, char *out, size_t size)
{
    size_t used = 0;
    int i = 0;
    for (const char *p = pattern; *p && used < size - 1;) {
        if (*p == '{') {
            const char *v = i < m->nparams ? m->params[i] : "";
            i++;
            used += (size_t)snprintf(out + used, size - used, "%s", v);
            const char *close = strchr(p, '}');
            p = close ? close + 1 : p + strlen(p);
        } else {
            out[used++] = *p++;
        }
    }
    out[used < size ? used : size - 1] = '\0';
}

static bool in_allow(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *a = allow; *a; a += strspn(a, ", ")) {
        size_t len = strcspn(a, ", ");
        if (len == n && !strncmp(a, method, n))
            return true;
        a += len;
    }
    return false;
}

static void check_route(const char *method, const char *path)
{
    struct route_match m;
    enum route_result r = router_match(ROUTES, ROUTES_COUNT, method, path, &m);
    if (r == ROUTE_FOUND) {
        const char *rm = m.route->method;
        check(!strcmp(rm, method) || (!strcmp(method, "HEAD") && !strcmp(rm, "GET")),
              "a route of another method", method, path);
        int braces = 0;
        for (const char *p = m.route->pattern; (p = strchr(p, '{')); p++)
            braces++;
        check(m.nparams == braces, "parameter count is not the pattern's", method, path);
        for (int i = 0; i < m.nparams; i++)
            check(m.params[i][0] && !strchr(m.params[i], '/'), "an empty or multi-segment param",
                  method, path);
        char again[2 * ROUTE_PATH_MAX];
        rebuild(m.route->pattern, &m, again, sizeof again);
        check(!strcmp(again, path), "pattern and params do not make the path", method, path);
    } else if (r == ROUTE_METHOD_NOT_ALLOWED) {
        check(m.allow[0] != '\0', "405 without Allow", method, path);
        check(!in_allow(m.allow, method), "405 although Allow holds the method", method, path);
    } else if (strncmp(path, "/api/", 5) != 0) {
        struct response res = {0};
        static_files_serve(&app, method, path, NULL, &res);
        if (res.has_file) {
            check(res.status == 200, "a file without 200", method, path);
            check(static_files_path_safe(path), "served a path it calls unsafe", method, path);
            char link[64], real[PATH_MAX];
            snprintf(link, sizeof link, "/proc/self/fd/%d", res.file_fd);
            ssize_t n = readlink(link, real, sizeof real - 1);
            check(n > 0, "the served fd has no path", method, path);
            real[n] = '\0';
            size_t rl = strlen(real_root);
            check(!strncmp(real, real_root, rl) && real[rl] == '/',
                  "served a file outside the root", method, path);
            struct stat st;
            check(fstat(res.file_fd, &st) == 0 && S_ISREG(st.st_mode), "served a non-file", method,
                  path);
        } else {
            check(res.status == 404 || res.status == 405, "no file, yet not 404 or 405", method,
                  path);
        }
        response_clear(&res);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libmicrohttpd refuses request lines past its memory limit long before. */
    if (size < 1 || size > 4 * ROUTE_PATH_MAX)
        return 0;
    const char *method = METHODS[data[0] % NMETHODS];
    char *target = malloc(size);
    if (!target)
        abort();
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0';
    char *query = strchr(target, '?');
    if (query)
        *query = '\0';
    MHD_http_unescape(target);
    /* Not only origin-form: "*", "" and "http://host/x" must be refused, too. */
    check_route(method, target);
    free(target);
    return 0;
}
