/*
 * devices: the gateway's device list (--devices FILE).
 *
 * One device per line: "TOKEN SOURCE [NAME]", separated by blanks. SOURCE is
 * "profile:household", "csv:PATH" or a CSV path. NAME ([A-Za-z0-9._-], at most
 * 63 characters) names the device in messages and its spool file; it defaults
 * to "device-N", N counting devices from 1. Blank lines and lines starting
 * with '#' are skipped. Tokens and names must be unique.
 */
#ifndef WATTLINE_SIM_DEVICES_H
#define WATTLINE_SIM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

#define DEVICES_NAME_MAX 64

struct device_spec {
    char *token;  /* owned */
    char *source; /* owned */
    char name[DEVICES_NAME_MAX];
};

/* A device token must be visible ASCII (it goes into an HTTP header). */
bool devices_token_valid(const char *token);

/*
 * Parse a device list. On success *out (free with devices_free) holds *count >= 1
 * devices. Returns 0, or -1 with a message naming the line in `err`.
 */
int devices_parse(const char *text, struct device_spec **out, size_t *count, char *err,
                  size_t err_size);

/* Read and parse the file at `path`. Same contract as devices_parse. */
int devices_load(const char *path, struct device_spec **out, size_t *count, char *err,
                 size_t err_size);

void devices_free(struct device_spec *list, size_t count);

#endif
