/* routes: the route table, the one place that says who may call what. */
#ifndef WATTLINE_ROUTES_H
#define WATTLINE_ROUTES_H

#include <stddef.h>

#include "router.h"

extern const struct route ROUTES[];
extern const size_t ROUTES_COUNT;

#endif
