/* status: the outcome of a domain or database operation. One table in
 * handlers/handler.c maps it to HTTP. Lives at the bottom layer so db/ can
 * return it without knowing about HTTP. */
#ifndef WATTLINE_STATUS_H
#define WATTLINE_STATUS_H

enum status {
    STATUS_OK = 0,
    STATUS_NOT_FOUND,
    STATUS_CONFLICT,
    STATUS_INVALID,
    STATUS_FORBIDDEN,
    STATUS_UNAUTHORIZED,
    STATUS_UNAVAILABLE, /* the database cannot be reached: 503, retry */
    STATUS_INTERNAL,
};

#endif
