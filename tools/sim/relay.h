/*
 * relay: what a meter's register shows while its relay switches the load off
 * and on (the `relay` command of --commands).
 *
 * While the relay is off nothing is consumed, so the register stays where it
 * stood, whatever the source says; the source keeps counting, and the gap
 * becomes an offset subtracted from every later register, so once the relay
 * is back on the register continues from where it stood instead of jumping
 * by the energy of the off period. A source whose register drops (a meter
 * reset in a CSV) while the relay is on resets the meter too: the offset goes.
 */
#ifndef WATTLINE_SIM_RELAY_H
#define WATTLINE_SIM_RELAY_H

#include <stdbool.h>

struct relay {
    bool off;
    double offset;   /* kWh the source counted while the relay was off */
    bool has_last;   /* a register went through relay_register */
    double last_raw; /* the source's register of that reading */
    double last_out; /* the meter's register of that reading */
};

/* A relay that is on, with no offset. */
void relay_init(struct relay *r);

/* Switch the load on or off (switching to the state it has changes nothing). */
void relay_switch(struct relay *r, bool on);

/* The meter's register for the next reading, whose source register is `raw`. */
double relay_register(struct relay *r, double raw);

#endif
