/* static_files: the dashboard from WEB_ROOT, with content types, ETags and
 * no way out of the web root (.., encoded dots and slashes, symlinks). */
#ifndef WATTLINE_STATIC_FILES_H
#define WATTLINE_STATIC_FILES_H

#include "../api/handler.h"

struct app;

/* Answers GET/HEAD for path (already percent-decoded by libmicrohttpd) into
 * res: the file, 304 when if_none_match matches, 404, or 405. */
void static_files_serve(struct app *app, const char *method, const char *path,
                        const char *if_none_match, struct response *res);

/* The Content-Type for a file name (by extension). */
const char *static_files_content_type(const char *name);

/* True when a decoded URL path may name a file below the web root: starts
 * with '/', no "." or ".." segment, no backslash, no NUL, no "//". */
bool static_files_path_safe(const char *path);

#endif
