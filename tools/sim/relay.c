#include "relay.h"

#include <string.h>

void relay_init(struct relay *r)
{
    memset(r, 0, sizeof *r);
}

void relay_switch(struct relay *r, bool on)
{
    r->off = !on;
}

double relay_register(struct relay *r, double raw)
{
    bool reset = r->has_last && raw < r->last_raw;
    double out;
    if (r->off && r->has_last) {
        /* Still: all the source counted since the last reading goes into the offset. */
        out = r->last_out;
        r->offset = raw - out;
    } else {
        if (reset && !r->off)
            r->offset = 0; /* the meter was reset: it starts over with its source */
        out = raw - r->offset;
        if (out < 0) {
            /* A reset smaller than the offset: never a negative register. */
            r->offset = 0;
            out = raw;
        }
    }
    r->has_last = true;
    r->last_raw = raw;
    r->last_out = out;
    return out;
}
