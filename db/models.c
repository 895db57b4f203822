#include "models.h"

#include <string.h>

const char *role_name(enum role role)
{
    return role == ROLE_ADMIN ? "admin" : role == ROLE_CLIENT ? "client" : "none";
}

enum role role_parse(const char *name)
{
    if (!name)
        return ROLE_NONE;
    if (!strcmp(name, "admin"))
        return ROLE_ADMIN;
    if (!strcmp(name, "client"))
        return ROLE_CLIENT;
    return ROLE_NONE;
}

const char *reading_type_name(enum reading_type type)
{
    return type == READING_INTERVAL ? "interval" : "cumulative";
}

bool reading_type_parse(const char *name, enum reading_type *out)
{
    if (name && !strcmp(name, "cumulative"))
        *out = READING_CUMULATIVE;
    else if (name && !strcmp(name, "interval"))
        *out = READING_INTERVAL;
    else
        return false;
    return true;
}

bool device_serial_valid(const char *s, size_t len)
{
    if (len == 0 || len > DEVICE_SERIAL_MAX)
        return false;
    bool digits_only = true;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool digit = c >= '0' && c <= '9';
        if (!digit && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '_' && c != '-')
            return false;
        digits_only = digits_only && digit;
    }
    return !digits_only;
}
