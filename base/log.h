/* log: one line per event on standard output, as text or JSON.
 *
 * The level and format are set once in main before any thread starts and
 * only read afterwards. Callers never pass tokens or passwords.
 */
#ifndef WATTLINE_LOG_H
#define WATTLINE_LOG_H

#include "config.h"

void log_setup(enum log_level level, enum log_format format);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

struct log_request {
    const char *method;
    const char *route; /* pattern, or the path for static files */
    int status;
    double duration_ms;
    const char *request_id;
    const char *client_ip;
};

void log_request(const struct log_request *r);

#endif
