/* caller: who is making a request, as authentication found it. */
#ifndef WATTLINE_CALLER_H
#define WATTLINE_CALLER_H

#include "../db/models.h"

enum caller_kind { CALLER_ANONYMOUS = 0, CALLER_USER, CALLER_DEVICE };

struct caller {
    enum caller_kind kind;
    long long user_id;              /* CALLER_USER */
    enum role role;                 /* CALLER_USER */
    long long token_exp;            /* CALLER_USER: access token expiry (unix seconds) */
    long long device_id;            /* CALLER_DEVICE */
    enum reading_type reading_type; /* CALLER_DEVICE */
};

#endif
