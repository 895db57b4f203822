#include "device_name.h"

#include <string.h>

/* Ids fit a bigint; 18 digits keep the arithmetic below from overflowing. */
#define DEVICE_ID_DIGITS_MAX 18

static bool serial_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool device_serial_valid(const char *s)
{
    if (!s)
        return false;
    size_t len = 0;
    bool all_digits = true;
    for (; s[len]; len++) {
        if (len == DEVICE_SERIAL_MAX || !serial_char(s[len]))
            return false;
        if (s[len] < '0' || s[len] > '9')
            all_digits = false;
    }
    return len > 0 && !all_digits;
}

enum device_name_kind device_name_parse(const char *name, long long *id)
{
    if (!name || !*name)
        return DEVICE_NAME_INVALID;
    size_t digits = strspn(name, "0123456789");
    if (name[digits] != '\0')
        return device_serial_valid(name) ? DEVICE_NAME_SERIAL : DEVICE_NAME_INVALID;
    if (name[0] == '0' || digits > DEVICE_ID_DIGITS_MAX)
        return DEVICE_NAME_INVALID;
    long long v = 0;
    for (size_t i = 0; i < digits; i++)
        v = v * 10 + (name[i] - '0');
    *id = v;
    return DEVICE_NAME_ID;
}
