#include "router.h"

#include <stdbool.h>
#include <string.h>

/* Walks pattern and path segment by segment. On a match, stores parameter
 * values (NUL-terminated copies in buf) and returns true. */
static bool pattern_match(const char *pattern, const char *path, char *buf, size_t bufsize,
                          const char **params, int *nparams)
{
    size_t used = 0;
    int np = 0;
    const char *p = pattern, *s = path;

    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++, s++;
        const char *pend = strchrnul(p, '/');
        const char *send = strchrnul(s, '/');
        size_t plen = (size_t)(pend - p), slen = (size_t)(send - s);
        if (plen >= 2 && p[0] == '{' && pend[-1] == '}') {
            if (slen == 0 || np == REQUEST_MAX_PARAMS || used + slen + 1 > bufsize)
                return false;
            memcpy(buf + used, s, slen);
            buf[used + slen] = '\0';
            params[np++] = buf + used;
            used += slen + 1;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p = pend, s = send;
    }
    if (*p || *s)
        return false;
    *nparams = np;
    return true;
}

static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static void allow_add(char *allow, size_t size, const char *method)
{
    if (strstr(allow, method))
        return;
    size_t len = strlen(allow);
    if (len + strlen(method) + 3 > size)
        return;
    if (len)
        strcat(allow, ", ");
    strcat(allow, method);
}

enum route_result router_match(const struct route *table, size_t n, const char *method,
                               const char *path, struct route_match *m)
{
    bool path_known = false;
    const char *params[REQUEST_MAX_PARAMS];
    int nparams;

    memset(m, 0, offsetof(struct route_match, buf));
    m->buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!pattern_match(table[i].pattern, path, m->buf, sizeof m->buf, params, &nparams))
            continue;
        if (method_matches(table[i].method, method)) {
            m->route = &table[i];
            m->index = (int)i;
            m->nparams = nparams;
            memcpy(m->params, params, sizeof params);
            return ROUTE_FOUND;
        }
        path_known = true;
        allow_add(m->allow, sizeof m->allow, table[i].method);
        if (strcmp(table[i].method, "GET") == 0)
            allow_add(m->allow, sizeof m->allow, "HEAD");
    }
    return path_known ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}
